"""The README's media section stays true: its code block runs against the simulator, as the ten-line example
does in tests/test_readme.py, and everything it sends arrives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.media import split_text
from openclaw_nb.protocol.text import TEXT_CHUNK_CHARS, filter_markdown

from .conftest import Bot, SimClient

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Sending media, long text and typing"


def media_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, "README.md lost its media section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)\n```", section, re.S)
    assert code, "the media section has no python example"
    return code.group(1)


def test_media_section_example_runs(
    client: SimClient, bot: Bot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"chart.png": b"\x89PNG chart", "report.pdf": b"%PDF report", "clip.mp4": b"mp4 clip", "notes.txt": b"hi"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    long_text = "A sentence of the long answer. " * 250  # 7,750 characters: two messages
    namespace = {
        "client": client,
        "user": bot.user,
        "slow_computation": lambda: "42",
        "very_long_text": long_text,
    }
    exec(compile(media_block(), "README.md", "exec"), namespace)

    printed = capsys.readouterr().out
    uploaded = namespace["media"]
    assert printed.startswith("UploadedMedia(kind='file', file_name='data.csv'")
    assert "rawsize=8, filesize=16" in printed and "aeskey=<redacted" in printed
    assert uploaded.aeskey not in printed and uploaded.encrypt_query_param not in printed  # type: ignore[attr-defined]
    outbox = bot.sim.outbox
    assert all(entry.problems == [] for entry in outbox)
    media = [(entry.item_types, entry.data) for entry in outbox if entry.item_types != [C.ItemType.TEXT]]
    assert media == [
        ([C.ItemType.IMAGE], files["chart.png"]),
        ([C.ItemType.FILE], files["report.pdf"]),
        ([C.ItemType.VIDEO], files["clip.mp4"]),
        ([C.ItemType.FILE], files["notes.txt"]),
        ([C.ItemType.FILE], b"a,b\n1,2\n"),
    ]
    texts = [entry.text for entry in outbox if entry.item_types == [C.ItemType.TEXT]]
    assert texts == ["today's numbers", *split_text(long_text, max_chars=TEXT_CHUNK_CHARS)] and len(texts) == 3
    assert [e.status for e in bot.sim.typing_events] == [1, 2, 1, 2]
    assert namespace["answer"] == "42"


def test_markdown_examples_are_what_the_filter_does() -> None:
    """Every before/after row of the README's Markdown table, through the filter (checked once against the
    official client's own filter while it was written)."""
    section = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    table = section.split("**Markdown.**", 1)[1].split("\n\n**", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (`[^`]+`|unchanged) \|$", table, re.M)
    assert len(rows) >= 8, "the README lost its Markdown examples"
    for before, after in rows:
        assert filter_markdown(before) == (before if after == "unchanged" else after.strip("`")), before
