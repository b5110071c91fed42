"""Files the project writes: folders it creates are 0700 and folders it did not create keep their mode; the
temporary files of interrupted atomic writes are cleaned on start and by forget()."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from openclaw_nb.client import Client
from openclaw_nb.journal import STALE_TEMP_SECONDS, atomic_write_bytes, clean_temp_files
from openclaw_nb.sim import Simulator
from openclaw_nb.store import Credentials, Store

from .conftest import config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftover(folder: Path, name: str, secret: str, *, age: float) -> Path:
    """A temporary file as a write killed between mkstemp and os.replace leaves it, ``age`` seconds old."""
    path = folder / f".{name}.k1ll3d{len(list(folder.iterdir()))}.tmp"
    path.write_text(secret)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_every_folder_created_is_0700_and_an_existing_one_is_never_chmodded(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    old = os.umask(0o022)
    try:
        atomic_write_bytes(shared / "state.json", b"{}")  # as `openclaw-nb sim --state /tmp/state.json` does
        assert mode(shared) == 0o755  # not ours: left alone
        deep = shared / "a" / "b" / "c"
        atomic_write_bytes(deep / "state.json", b"{}")
        assert [mode(p) for p in (shared / "a", shared / "a" / "b", deep)] == [0o700] * 3
        assert mode(deep / "state.json") == 0o600
        home = tmp_path / "x" / "home"
        Store(home).save_cursor("bot@im.bot", "cursor")
        assert mode(tmp_path / "x") == 0o700 and mode(home) == 0o700 and mode(home / "accounts") == 0o700
    finally:
        os.umask(old)


def test_store_start_removes_stale_temp_files_but_not_a_write_in_progress(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    store.save_credentials(Credentials("tok-" + "a" * 40, "bot@im.bot", "http://127.0.0.1:1"))
    accounts = store.accounts_dir
    stale = [
        leftover(accounts, "bot@im.bot.json", "tok-stale-1", age=STALE_TEMP_SECONDS * 10),
        leftover(accounts, "bot@im.bot.sync.json", "cursor", age=STALE_TEMP_SECONDS + 5),
    ]
    fresh = leftover(accounts, "bot@im.bot.context-tokens.json", "ctx", age=0)
    other = accounts / "notes.tmp"  # not a temporary file of ours
    other.write_text("keep")
    Store(tmp_path / "home")  # a new start
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and other.exists()
    assert [c.ilink_bot_id for c in Store(tmp_path / "home").accounts()] == ["bot@im.bot"]


def test_forget_removes_the_accounts_temp_files_whatever_their_age(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    store.save_credentials(Credentials("tok-" + "b" * 40, "bot@im.bot", "http://127.0.0.1:1"))
    store.save_credentials(Credentials("tok-" + "c" * 40, "other@im.bot", "http://127.0.0.1:1"))
    accounts = store.accounts_dir
    mine = [
        leftover(accounts, "bot@im.bot.json", "tok-" + "b" * 40, age=0),
        leftover(accounts, "bot@im.bot.pending.sync.json", "pending", age=0),
    ]
    theirs = leftover(accounts, "other@im.bot.json", "tok-" + "c" * 40, age=0)
    assert store.forget("bot@im.bot")
    assert not any(p.exists() for p in mine)
    assert theirs.exists() and (accounts / "other@im.bot.json").exists()
    # Only leftovers: forget() still reports that it removed something.
    again = leftover(accounts, "bot@im.bot.json", "tok-x", age=0)
    assert store.forget("bot@im.bot") and not again.exists()
    assert not store.forget("bot@im.bot")


def test_simulator_start_removes_the_state_files_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "sim-state.json"
    stale = leftover(tmp_path, path.name, "simulated tokens", age=STALE_TEMP_SECONDS * 2)
    unrelated = leftover(tmp_path, "other.json", "not ours", age=STALE_TEMP_SECONDS * 2)
    sim = Simulator(config(), state_path=path)
    assert not stale.exists() and unrelated.exists()
    with sim:
        sim.login_bot("alice")
    assert path.exists() and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{path.name}.")] == []


def test_clean_temp_files_reports_what_it_removed(tmp_path: Path) -> None:
    a = leftover(tmp_path, "a.json", "x", age=STALE_TEMP_SECONDS * 2)
    assert clean_temp_files(tmp_path, ["b.json"]) == []
    assert clean_temp_files(tmp_path) == [a]
    assert clean_temp_files(tmp_path / "missing") == []


def test_the_stream_creates_the_data_folder_0700(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "a" / "b" / "home"  # nothing of it exists: the stream writes first
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(home))
    login = sim.login_bot("alice")
    sim.say("alice", "hello")
    old = os.umask(0o022)
    try:
        with Client(login.bot_token, base_url=sim.base_url, bot_id=login.ilink_bot_id, record=False) as client:
            feed = client.stream(notify=False)
            feed.wait_for(1)
            feed.stop()
            feed.wait(10)
    finally:
        os.umask(old)
    assert (home / "accounts").is_dir()
    created = [tmp_path / "a", tmp_path / "a" / "b", home, home / "accounts"]
    assert {str(p.relative_to(tmp_path)): mode(p) for p in created} == {
        str(p.relative_to(tmp_path)): 0o700 for p in created
    }
    assert all(mode(f) == 0o600 for f in (home / "accounts").iterdir() if f.is_file())
