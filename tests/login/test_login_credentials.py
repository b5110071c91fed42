"""Saved credentials after a QR login: file content, modes, atomic replacement, from_saved, the account list,
forget, which tokens go into local_token_list, and the logins a newer one of the same user supersedes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from openclaw_nb import errors as E
from openclaw_nb.accounts import forget, forget_superseded, list_accounts
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.sim import Simulator
from openclaw_nb.store import Credentials, Store

from .conftest import FAST
from .helpers import Phone


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def login(sim: Simulator, user: str = "alice", **kw: object) -> tuple[Client, object]:
    client = Client(base_url=sim.base_url, record=False)
    return client, client.login(display="none", on_event=Phone(sim, user=user), **{**FAST, **kw})


def test_file_content_and_modes(sim: Simulator, home: Path) -> None:
    client, result = login(sim)
    path = Path(result.saved_to)  # type: ignore[attr-defined]
    assert path == home / "accounts" / f"{client.bot_id}.json"
    data = json.loads(path.read_text())
    assert set(data) == {"bot_token", "ilink_bot_id", "baseurl", "ilink_user_id", "saved_at"}
    assert data["bot_token"] == client.token and data["ilink_bot_id"] == client.bot_id
    assert data["baseurl"] == sim.base_url and data["ilink_user_id"] == "alice@im.wechat"
    assert isinstance(data["saved_at"], float)
    assert mode(path) == 0o600
    assert mode(home / "accounts") == 0o700 and mode(home) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    client.close()


def test_relogin_replaces_the_file_atomically(sim: Simulator, home: Path) -> None:
    # A saved login of the same bot whose token has gone stale: it is not "bound", so the scan confirms
    # with a new token, and the file is replaced (a new inode, never rewritten in place).
    old = sim.login_bot("carol")
    store = Store()
    path = store.save_credentials(Credentials("stale-token", old.ilink_bot_id, old.baseurl, "carol@im.wechat"))
    inode = os.stat(path).st_ino
    client, result = login(sim, user="carol")
    assert result.bot_id == old.ilink_bot_id and client.token not in ("stale-token", old.bot_token)  # type: ignore[attr-defined]
    assert json.loads(path.read_text())["bot_token"] == client.token
    assert os.stat(path).st_ino != inode and mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    client.close()


def test_a_failed_save_keeps_the_old_file_and_the_login(
    sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old = sim.login_bot("erin")
    store = Store()
    path = store.save_credentials(Credentials("stale-token", old.ilink_bot_id, old.baseurl))
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    client, result = login(sim, user="erin")
    assert result.ok and result.saved_to is None  # type: ignore[attr-defined]
    assert client.token and client.token != "stale-token"  # logged in all the same
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert "could not be saved" in caplog.text and client.token not in caplog.text
    client.close()


def test_from_saved_round_trip(sim: Simulator, home: Path) -> None:
    first, _one = login(sim, user="alice")
    second, _two = login(sim, user="bob")
    with Client.from_saved(record=False) as latest:  # the latest login when no bot id is given
        assert (latest.token, latest.bot_id, latest.base_url) == (second.token, second.bot_id, second.base_url)
        assert latest.get_updates(timeout=2).ret in (0, None)  # the token works
    with Client.from_saved(first.bot_id, record=False) as again:
        assert again.token == first.token

    async def async_round_trip() -> None:
        async with AsyncClient.from_saved(first.bot_id, record=False) as aclient:
            assert aclient.token == first.token and isinstance(aclient, AsyncClient)
            assert (await aclient.get_updates(timeout=2)).ret in (0, None)

    import asyncio

    asyncio.run(async_round_trip())
    with pytest.raises(E.UsageError, match=r"no saved account 'nobody@im.bot'.*saved: "):
        Client.from_saved("nobody@im.bot")
    first.close()
    second.close()


def test_from_saved_elsewhere_saves_there_too(sim: Simulator, home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    login_bot = sim.login_bot("frank")
    Store(other).save_credentials(Credentials("stale", login_bot.ilink_bot_id, login_bot.baseurl))
    with Client.from_saved(home=other, record=False) as client:
        result = client.login(display="none", on_event=Phone(sim, user="frank"), **FAST)
    assert Path(result.saved_to).parent == other / "accounts"
    assert not (home / "accounts").exists()


def test_save_false_writes_nothing(sim: Simulator, home: Path) -> None:
    client, result = login(sim, save=False)
    assert result.saved_to is None and client.token  # type: ignore[attr-defined]
    assert not home.exists()
    client.close()


def test_list_accounts_and_forget(sim: Simulator, home: Path) -> None:
    a, _ = login(sim, user="alice")
    b, _ = login(sim, user="bob")
    table = list_accounts()
    assert list(table["ilink_bot_id"]) == [b.bot_id, a.bot_id]  # most recent first
    assert list(table["ilink_user_id"]) == ["bob@im.wechat", "alice@im.wechat"]
    shown = table.to_string() + repr(table) + table.to_html()
    assert a.token not in shown and b.token not in shown and "<redacted" in shown  # type: ignore[operator]
    assert str(table["saved_at"].dtype).startswith("datetime64")
    assert forget(a.bot_id) is True  # type: ignore[arg-type]
    assert forget(a.bot_id) is False  # type: ignore[arg-type]
    assert list(list_accounts()["ilink_bot_id"]) == [b.bot_id]
    a.close()
    b.close()


def test_local_token_list_is_the_ten_most_recent(sim: Simulator, home: Path) -> None:
    store = Store()
    for i in range(12):
        store.save_credentials(Credentials(f"token-{i:02d}", f"bot{i}@im.bot", sim.base_url, saved_at=1000.0 + i))
    client, _result = login(sim, user="gina")
    body = [r["body"] for r in sim.requests if r["endpoint"] == "get_bot_qrcode"][-1]
    assert body["local_token_list"] == [f"token-{i:02d}" for i in range(11, 1, -1)]
    client.close()


def test_store_creates_a_missing_home_0700_but_leaves_an_existing_one(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "b" / "home"
    Store(fresh).save_credentials(Credentials("t", "x@im.bot", "http://x"))
    assert mode(fresh) == 0o700 and mode(fresh / "accounts") == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    Store(shared).save_cursor("x@im.bot", "cursor")
    assert mode(shared) == 0o755 and mode(shared / "accounts") == 0o700


def save_old(store: Store, token: str, bot_id: str, user: str, saved_at: float) -> Credentials:
    creds = Credentials(token, bot_id, "http://old.test", user, saved_at=saved_at)
    store.save_credentials(creds)
    store.save_context_tokens(bot_id, {"peer@im.wechat": {"context_token": "ctx-secret"}})
    return creds


def test_superseded_logins_stay_out_of_local_token_list_and_binded_redirect_works(sim: Simulator, home: Path) -> None:
    # Two saved logins of alice (two bots, as a login elsewhere would leave): the older one is superseded. Only
    # the newer token goes out, so the server's binded_redirect (which names no bot) can only mean that one.
    store = Store()
    older, newer = sim.login_bot("alice"), sim.login_bot("alice")
    for login_, when in ((older, 1000.0), (newer, 2000.0)):
        store.save_credentials(
            Credentials(login_.bot_token, login_.ilink_bot_id, sim.base_url, login_.ilink_user_id, saved_at=when)
        )
    table = list_accounts()
    assert list(zip(table["ilink_bot_id"], table["superseded"], strict=True)) == [
        (newer.ilink_bot_id, False),
        (older.ilink_bot_id, True),
    ]
    assert str(table["superseded"].dtype) == "bool"
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=Phone(sim, user="alice"), **FAST)
        assert client.token == newer.bot_token
    assert result.outcome == "binded_redirect" and result.bot_id == newer.ilink_bot_id
    body = [r["body"] for r in sim.requests if r["endpoint"] == "get_bot_qrcode"][-1]
    assert body["local_token_list"] == [newer.bot_token]
    assert [c.ilink_bot_id for c in store.superseded()] == [older.ilink_bot_id]


def test_a_new_login_names_what_it_supersedes_and_forget_superseded_removes_it(sim: Simulator, home: Path) -> None:
    store = Store()
    save_old(store, "old-token-of-alice", "old@im.bot", "alice@im.wechat", 1000.0)
    save_old(store, "old-token-of-bob", "bob-old@im.bot", "bob@im.wechat", 1000.0)
    client, result = login(sim, user="alice")
    client.close()
    assert result.new_token and result.superseded == ("old@im.bot",) and result.forgotten == ()  # type: ignore[attr-defined]
    assert "superseded=('old@im.bot',)" in repr(result)
    # Still on disk, flagged, out of the next local_token_list; bob's login is not alice's business.
    assert dict(zip(list_accounts()["ilink_bot_id"], list_accounts()["superseded"], strict=True)) == {
        result.bot_id: False,  # type: ignore[attr-defined]
        "old@im.bot": True,
        "bob-old@im.bot": False,
    }
    assert store.accounts(superseded=False)[0].ilink_bot_id == result.bot_id  # type: ignore[attr-defined]
    assert forget_superseded() == ["old@im.bot"]
    assert not (home / "accounts" / "old@im.bot.json").exists()
    assert not (home / "accounts" / "old@im.bot.context-tokens.json").exists()
    assert (home / "accounts" / "bob-old@im.bot.json").exists() and forget_superseded() == []


def test_login_forget_superseded_removes_them_as_the_official_client_does(sim: Simulator, home: Path) -> None:
    store = Store()
    save_old(store, "old-token-of-carl", "carl-old@im.bot", "carl@im.wechat", 1000.0)
    client, result = login(sim, user="carl", forget_superseded=True)
    client.close()
    assert result.forgotten == ("carl-old@im.bot",) and result.superseded == ()  # type: ignore[attr-defined]
    assert [c.ilink_bot_id for c in store.accounts()] == [result.bot_id]  # type: ignore[attr-defined]
    assert not (home / "accounts" / "carl-old@im.bot.context-tokens.json").exists()
    # Sent with this login's QR request (it was the current login of carl then), never again.
    body = [r["body"] for r in sim.requests if r["endpoint"] == "get_bot_qrcode"][-1]
    assert body["local_token_list"] == ["old-token-of-carl"]
