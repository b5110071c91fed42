"""``openclaw-nb login`` in-process against the simulator (a simulated user confirms every QR code at once)."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from openclaw_nb.cli import main
from openclaw_nb.sim import Simulator


def test_cli_login_saves_and_says_how_to_use_it(
    sim: Simulator, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.configure(auto_confirm=0.0)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["login", "--base-url", sim.base_url]) == 0
    out = capsys.readouterr().out
    (saved,) = (home / "accounts").glob("*.json")
    data = json.loads(saved.read_text())
    assert "Scan the QR code with WeChat (QR 1/3)" in out and "/_sim/scan/" in out
    assert f"✓ Logged in as bot {data['ilink_bot_id']}" in out
    assert f"Client.from_saved({data['ilink_bot_id']!r})" in out
    assert data["bot_token"] not in out


def test_cli_login_failure_and_bad_arguments(
    sim: Simulator, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--base-url", sim.base_url, "--deadline", "0.3", "--home", str(tmp_path / "h")]) == 1
    out = capsys.readouterr().out
    assert "✗ No confirmed login within 0.3 seconds" in out and "Run login() again" in out
    assert not (tmp_path / "h").exists() and not home.exists()
    assert main(["login", "--base-url", "ftp://nowhere"]) == 2
    assert "base_url must be an http:// or https:// URL" in capsys.readouterr().err


def test_cli_login_forget_superseded(
    sim: Simulator, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from openclaw_nb.store import Credentials, Store

    store = Store()
    store.save_credentials(Credentials("old-token", "old@im.bot", sim.base_url, "owner@im.wechat", saved_at=1.0))
    sim.configure(auto_confirm=0.0)  # the config's default user, owner@im.wechat, confirms
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["login", "--base-url", sim.base_url]) == 0
    assert "supersedes: old@im.bot (forget_superseded() removes them)" in capsys.readouterr().out
    assert [c.ilink_bot_id for c in store.superseded()] == ["old@im.bot"]
    sim.revoke_token()  # the next login gets a new token (else: binded_redirect, nothing new to save)
    assert main(["login", "--base-url", sim.base_url, "--forget-superseded"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"removed: +old@im\.bot \(superseded\)", out) and store.superseded() == []
    assert "old-token" not in out
