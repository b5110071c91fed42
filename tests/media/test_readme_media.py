"""The README's media section stays true: its code block runs against the simulator, as the ten-line example
does in tests/test_readme.py, and everything it sends arrives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.media import split_text
from openclaw_nb.protocol.text import TEXT_CHUNK_CHARS, filter_markdown
from openclaw_nb.sim import Simulator

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Sending media, long text and typing"


def media_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, "README.md lost its media section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)\n```", section, re.S)
    assert code, "the media section has no python example"
    return code.group(1)


def test_media_section_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The block runs as written (its own simulator, files and client), and the simulated phone gets every
    file intact, the caption, the long text in 4,000-character parts and the typing indicator on and off."""
    import openclaw_nb

    sims: list[Simulator] = []

    class Kept(Simulator):  # the block's simulator, kept to read what arrived
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            sims.append(self)

    monkeypatch.setattr(openclaw_nb, "Simulator", Kept)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(media_block(), "README.md", "exec"), namespace)

    printed = capsys.readouterr().out
    uploaded = namespace["media"]
    assert printed.startswith("UploadedMedia(kind='file', file_name='data.csv'")
    assert "rawsize=8, filesize=16" in printed and "aeskey=<redacted" in printed
    assert uploaded.aeskey not in printed and uploaded.encrypt_query_param not in printed
    (sim,) = sims
    outbox = sim.outbox
    assert all(entry.problems == [] for entry in outbox)
    media = [(entry.item_types, entry.data) for entry in outbox if entry.item_types != [C.ItemType.TEXT]]
    image, file, video = [C.ItemType.IMAGE], [C.ItemType.FILE], [C.ItemType.VIDEO]
    assert [kinds for kinds, _ in media] == [image, file, video, file, file]
    assert media[0][1] is not None and media[0][1].startswith(b"\x89PNG\r\n\x1a\n")  # the chart, decrypted
    assert [data for _, data in media[1:]] == [
        b"%PDF-1.4 a stand-in report\n",
        b"\x00\x00\x00\x18ftypmp42 a stand-in clip",
        b"notes\n",
        b"a,b\n1,2\n",
    ]
    texts = [entry.text for entry in outbox if entry.item_types == [C.ItemType.TEXT]]
    long_text = namespace["very_long_text"]
    assert texts == ["today's numbers", *split_text(long_text, max_chars=TEXT_CHUNK_CHARS)] and len(texts) == 4
    assert [e.status for e in sim.typing_events] == [1, 2, 1, 2]
    assert namespace["answer"] == sum(i * i for i in range(10**6))


def test_markdown_examples_are_what_the_filter_does() -> None:
    """Every before/after row of the README's Markdown table, through the filter (checked once against the
    official client's own filter while it was written)."""
    section = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    table = section.split("**Markdown.**", 1)[1].split("\n\n**", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (`[^`]+`|unchanged) \|$", table, re.M)
    assert len(rows) >= 8, "the README lost its Markdown examples"
    for before, after in rows:
        assert filter_markdown(before) == (before if after == "unchanged" else after.strip("`")), before
