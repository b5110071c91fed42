"""On-disk state: atomic writes, 0600/0700 modes, round trips, clear errors on damage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from openclaw_nb import errors as E
from openclaw_nb.store import Credentials, Store, atomic_write_bytes, home


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_credentials_round_trip_and_modes(tmp_path: Path) -> None:
    store = Store(tmp_path / "h")
    creds = Credentials("secret-token-value", "abc@im.bot", "http://127.0.0.1:1", "u@im.wechat", saved_at=10.0)
    path = store.save_credentials(creds)
    assert path == tmp_path / "h" / "accounts" / "abc@im.bot.json"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert store.load_credentials("abc@im.bot") == creds
    assert "secret-token-value" not in repr(creds)


def test_latest_account_first(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save_credentials(Credentials("t1", "a@im.bot", "http://x", saved_at=1.0))
    store.save_credentials(Credentials("t2", "b@im.bot", "http://x", saved_at=2.0))
    store.save_cursor("a@im.bot", "cur")  # not an account file
    assert [c.ilink_bot_id for c in store.accounts()] == ["b@im.bot", "a@im.bot"]
    assert store.load_credentials().ilink_bot_id == "b@im.bot"


def test_missing_and_damaged(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(E.UsageError, match="no saved account in"):
        store.load_credentials()
    store.save_credentials(Credentials("t1", "a@im.bot", "http://x"))
    with pytest.raises(E.UsageError, match=r"no saved account 'zz@im.bot'.*saved: a@im.bot"):
        store.load_credentials("zz@im.bot")
    (store.accounts_dir / "broken@im.bot.json").write_text("{not json")
    with pytest.raises(E.UsageError, match="not valid JSON"):
        store.load_credentials("broken@im.bot")
    assert [c.ilink_bot_id for c in store.accounts()] == ["a@im.bot"]  # damaged file skipped


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind


def test_cursor_and_context_tokens(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.load_cursor("a@im.bot") == ""
    store.save_cursor("a@im.bot", "c-1")
    store.save_context_tokens("a@im.bot", {"u@im.wechat": {"context_token": "x", "last_inbound_ms": 5}})
    assert store.load_cursor("a@im.bot") == "c-1"
    assert store.load_context_tokens("a@im.bot") == {"u@im.wechat": {"context_token": "x", "last_inbound_ms": 5}}
    (store.accounts_dir / "a@im.bot.pending.sync.json").write_text("{}")  # the update stream's backlog
    (store.accounts_dir / "a@im.bot.feed.jsonl").write_text("{}\n")  # the live feed's rows
    assert store.forget("a@im.bot") and not store.forget("a@im.bot")
    assert store.load_cursor("a@im.bot") == ""
    assert not list(store.accounts_dir.glob("a@im.bot*"))


def test_bad_bot_ids(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for bad in ("", "  ", ".."):
        with pytest.raises(E.UsageError):
            store.save_cursor(bad, "c")
    store.save_cursor("../../evil", "c")
    assert all(p.parent == store.accounts_dir for p in store.accounts_dir.iterdir())


def test_home_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(tmp_path / "env-home"))
    assert home() == tmp_path / "env-home"
    monkeypatch.delenv("OPENCLAW_NB_HOME")
    assert home() == Path("~/.openclaw_nb").expanduser()
