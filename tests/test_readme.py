"""The README stays true: its endpoint table is the protocol core's table, and its test command is CI's."""

from __future__ import annotations

import re
from pathlib import Path

from openclaw_nb.protocol.endpoints import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_endpoint_table_matches_protocol_core() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- endpoints -->\n(.*?)\n<!-- /endpoints -->", text, re.S)
    assert found, "README.md lost its <!-- endpoints --> markers"
    assert found.group(1).strip() == markdown_table(), "regenerate the README table from markdown_table()"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", text, re.S)
    assert "openclaw-nb demo" in blocks[0]
    assert "pytest" in blocks[1]
    marked = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```\n<!-- /test-command -->", text, re.S)
    assert marked and marked.group(1) == blocks[1]


def test_ten_line_example_runs(capsys) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The Python API in ten lines", 1)[1]
    code = re.search(r"```python\n(.*?)\n```", section, re.S)
    assert code, "the ten-line example is missing"
    exec(compile(code.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "send_message" in out and "get_updates" in out
