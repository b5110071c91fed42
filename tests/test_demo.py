"""The README's first command: `openclaw-nb demo` runs the whole tour against the embedded simulator."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from rich.console import Console

from openclaw_nb import demo
from openclaw_nb.demo import run_demo
from openclaw_nb.sim import Simulator

QR_CHARS = set("█▀▄ ")


def qr_lines(text: str) -> list[str]:
    """The lines of a QR code drawn with half blocks (two modules a character), as the terminal login draws it."""
    return [line for line in text.splitlines() if len(line) >= 21 and set(line) <= QR_CHARS]


def test_demo_runs_and_shows_each_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(tmp_path / "home"))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    sims: list[Simulator] = []

    class Kept(Simulator):  # the demo's simulator, kept to read its outbox afterwards
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            sims.append(self)

    monkeypatch.setattr(demo, "Simulator", Kept)
    out = io.StringIO()
    console = Console(file=out, width=160, color_system=None)
    assert run_demo(console, confirm_after=0.2, long_poll=1.0) == 0
    # Each reply carries one run_id per message answered: alice's text, caption and image share one.
    runs = [(e.to_user_id, e.msg.get("run_id")) for e in sims[0].outbox]
    assert [user for user, _ in runs] == ["alice@im.wechat", "bob@im.wechat", "alice@im.wechat", "alice@im.wechat"]
    assert runs[0][1] == runs[2][1] == runs[3][1] != runs[1][1] and all(run for _, run in runs)
    text = out.getvalue()
    # The QR code, drawn in the terminal: at least 11 rows (a version-1 code is 21 modules, plus its border).
    drawn = qr_lines(text)
    assert len(drawn) >= 11 and all(len(line) == len(drawn[0]) for line in drawn), text[:2000]
    assert {"▀", "▄", "█"} <= set("".join(drawn))
    # The recorder's per-call summary: a row per call with its percentiles.
    summary = text.split("per call:\n", 1)[1]
    assert summary.split("\n", 1)[0].split() == ["count", "errors", "error_rate", "p50_ms", "p99_ms", "max_ms"]
    table = summary.split("\n(", 1)[0].splitlines()[2:]  # after the header and the index name, up to the note
    rows = {line.split()[0]: line.split()[1] for line in table if line.strip()}
    assert rows.get("send_message") == "4" and rows.get("cdn_upload") == "1", summary[:1000]
    for needle in (
        "Logged in as bot",
        "alice@im.wechat",
        "bob@im.wechat",
        "You said: Hi bot! What can you do?",
        "decrypted",
        # the DataFrame step: both directions, exact uint64 ids
        "6 rows; message_id is UInt64",
        "bot → alice",
        "send_typing",
        "cdn_upload",
        "done in",
    ):
        assert needle in text, needle
    assert "<redacted" in text
    # nothing saved to the user's data folder, and no temp folder left behind
    assert not (tmp_path / "home").exists()
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("columns", [80, 140])
def test_demo_command_reads_well_in_a_terminal_of(columns: int, tmp_path: Path) -> None:
    """The demo through a pipe with a fixed COLUMNS (a standard terminal, and a wide one): no line is wider, and
    nothing is cut or wrapped mid-item: paths, redactions and message texts stay whole, the upload is described
    in words (no raw repr), and the login summary is shown once with its values lined up."""
    env = {**os.environ, "OPENCLAW_NB_HOME": str(tmp_path / "home"), "COLUMNS": str(columns)}
    proc = subprocess.run(
        [sys.executable, "-m", "openclaw_nb.cli", "demo"], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert "done in" in text
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > columns]
    assert too_wide == [], too_wide[:3]
    # The traffic table: every request's whole path on its row, next to its call.
    for call, request in (
        ("get_bot_qrcode", "POST /ilink/bot/get_bot_qrcode"),
        ("get_qrcode_status", "GET /ilink/bot/get_qrcode_status"),
        ("notify_start", "POST /ilink/bot/msg/notifystart"),
        ("cdn_upload", "POST /c2c/upload"),
    ):
        assert any(re.match(rf"\d+ +{call} +{re.escape(request)} +200\b", line) for line in lines), request
    assert "…" not in "".join(line for line in lines if "/ilink/bot/" in line)
    # Redactions whole: every "<redacted" on a line ends on that line.
    assert text.count("<redacted") == len(re.findall(r"<redacted [0-9a-f]{4}…\(\d+\)>", text)) >= 3
    # Message texts whole, on one line each (as received, as sent, in the frame).
    for message in (
        "'Hi bot! What can you do?'",
        "You said: Hi bot! What can you do?",
        "You said: Hello, is anyone there?",
    ):
        assert any(message in line for line in lines), message
    # The upload in words, not a repr.
    assert "MediaSendResp(" not in text and re.search(r"uploaded demo\.png \(image, [\d,]+ bytes", text)
    # The login summary once, its values in one column.
    summary = [line for line in lines if re.match(r"  (bot id|scanned by|base url|token): ", line)]
    assert [line.split(":", 1)[0].strip() for line in summary] == ["bot id", "scanned by", "base url", "token"]
    assert len({len(line) - len(line.split(":", 1)[1].lstrip()) for line in summary}) == 1, summary
    assert text.count("Logged in as bot") == 1 and "logged in as" not in text
