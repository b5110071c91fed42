"""The README's first command: `openclaw-nb demo` runs the whole tour against the embedded simulator."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from openclaw_nb.demo import run_demo


def test_demo_runs_and_shows_each_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(tmp_path / "home"))
    out = io.StringIO()
    console = Console(file=out, width=160, color_system=None)
    assert run_demo(console, confirm_after=0.2, long_poll=1.0) == 0
    text = out.getvalue()
    for needle in (
        "Logged in as bot",
        "alice@im.wechat",
        "bob@im.wechat",
        "You said: Hi bot! What can you do?",
        "decrypted",
        # the DataFrame step: both directions, exact uint64 ids
        "6 rows; message_id is UInt64",
        "bot → alice@im.wechat",
        "send_typing",
        "cdn_upload",
        "done in",
    ):
        assert needle in text, needle
    assert "<redacted" in text
    # nothing saved to the user's data folder
    assert not (tmp_path / "home").exists()


def test_demo_command_exits_zero(tmp_path: Path) -> None:
    env = {**os.environ, "OPENCLAW_NB_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    proc = subprocess.run(
        [sys.executable, "-m", "openclaw_nb.cli", "demo"], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "done in" in proc.stdout
