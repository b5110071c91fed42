"""Several saved accounts on one event loop, and a broadcast that reports per target instead of failing."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.accounts import BROADCAST_COLUMNS, Accounts
from openclaw_nb.broadcast import BroadcastInterrupted
from openclaw_nb.client import AsyncClient
from openclaw_nb.sim import Simulator
from openclaw_nb.store import Credentials, Store


def save_bots(sim: Simulator, *users: str) -> list[str]:
    store = Store()
    ids = []
    for user in users:
        login = sim.login_bot(user)
        store.save_credentials(Credentials(login.bot_token, login.ilink_bot_id, login.baseurl, login.ilink_user_id))
        ids.append(login.ilink_bot_id)
    return ids


def test_broadcast_with_one_failing_target(sim: Simulator, home: Path) -> None:
    bot_a, bot_b = save_bots(sim, "alice", "bob")
    sim.say("alice", "hi", bot_a)
    sim.say("bob", "hi", bot_b)
    sim.add_user("zed")  # known to the server, but never wrote to bot_a: no context token, so -2

    async def main() -> object:
        async with Accounts.load(record=False) as accounts:
            assert sorted(accounts) == sorted([bot_a, bot_b]) and len(accounts) == 2
            assert all(isinstance(accounts[b], AsyncClient) for b in accounts)
            # Each bot learns its users' context tokens from one poll.
            await asyncio.gather(*(accounts[b].get_updates(timeout=2) for b in accounts))
            return await accounts.broadcast(
                "hello all",
                to=[
                    (bot_a, "alice@im.wechat"),
                    (bot_b, "bob@im.wechat"),
                    (bot_a, "zed@im.wechat"),
                    ("ghost@im.bot", "x"),
                ],
            )

    result = asyncio.run(main())
    table = result.frame  # type: ignore[attr-defined]
    assert list(table.columns) == list(BROADCAST_COLUMNS)
    rows = table.to_dict("records")
    assert [(r["account"], r["user"], r["status"]) for r in rows] == [
        (bot_a, "alice@im.wechat", "sent"),
        (bot_b, "bob@im.wechat", "sent"),
        (bot_a, "zed@im.wechat", "rejected"),
        ("ghost@im.bot", "x", "skipped"),
    ]
    outbox = {(e.bot_id, e.to_user_id): e for e in sim.outbox}
    assert set(outbox) == {(bot_a, "alice@im.wechat"), (bot_b, "bob@im.wechat")}
    assert all(e.text == "hello all" for e in outbox.values())
    # message ids are exact uint64 values above 2**53, even next to missing ones.
    assert str(table["message_id"].dtype) == "UInt64"
    assert rows[0]["message_id"] == outbox[(bot_a, "alice@im.wechat")].message_id > 2**53
    assert rows[2]["message_id"] is None or str(rows[2]["message_id"]) == "<NA>"
    assert rows[2]["code"] == -2 and "-2" in rows[2]["reason"]
    assert rows[3]["reason"] == "account ghost@im.bot is not loaded"
    shown = table.to_string()
    assert all(b.token not in shown for b in sim.bots.values())


def test_each_account_broadcasts_to_its_own_users(sim: Simulator, home: Path) -> None:
    bots = save_bots(sim, "t1", "t2", "t3")
    heard = {bot: [sim.add_user(f"{bot[:6]}-s{i}") for i in range(4)] for bot in bots}
    for bot, users in heard.items():
        for user in users:
            sim.say(user, "hi", bot)
    sim.add_user("quiet")  # never wrote to anyone: no account sends to them

    async def main() -> object:
        async with Accounts.load(record=False) as accounts:
            await asyncio.gather(*(accounts[b].get_updates(timeout=2) for b in accounts))
            seen: list[int] = []
            result = await accounts.broadcast("news", concurrency=3, on_progress=lambda r, d, t: seen.append(d))
            assert seen == list(range(1, 13))
            return result

    result = asyncio.run(main())
    frame = result.frame  # type: ignore[attr-defined]
    assert result.counts["sent"] == 12  # type: ignore[attr-defined]
    assert sorted(zip(frame["account"], frame["user"], strict=True)) == sorted(
        (bot, user) for bot, users in heard.items() for user in users
    )
    sent = sorted((e.bot_id, e.to_user_id) for e in sim.outbox if e.text == "news")
    assert sent == sorted(zip(frame["account"], frame["user"], strict=True))
    by_id = {e.message_id: e for e in sim.outbox}
    assert all(by_id[int(m)].bot_id == a for a, m in zip(frame["account"], frame["message_id"], strict=True))


def test_ctrl_c_stops_a_sync_accounts_broadcast(sim: Simulator, home: Path) -> None:
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bots = save_bots(sim, "k1", "k2")
    users = [sim.add_user(f"k{i:02d}") for i in range(20)]
    sim.add_fault(delay_ms=30, endpoints=["send_message"])

    def stop_after_5(row: object, done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with Accounts.load(record=False) as accounts, pytest.raises(BroadcastInterrupted) as caught:
        accounts.broadcast_sync("hi", {bot: users for bot in bots}, concurrency=2, on_progress=stop_after_5)
    result = caught.value.result
    assert 5 <= result.sent < 40 and result.sent + result.not_started == 40
    sent = Counter((e.bot_id, e.to_user_id) for e in sim.outbox if e.text == "hi")
    assert max(sent.values()) == 1
    assert sorted(sent) == sorted((r.account, r.user) for r in result.rows if r.status == "sent")
    sim.clear_faults()


def test_broadcast_sync_on_a_private_loop(sim: Simulator, home: Path) -> None:
    sim.configure(require_context_token=False, reply_window_seconds=None)  # no user has to write first
    (bot,) = save_bots(sim, "carol")
    sim.add_user("dave")
    with Accounts.load([bot], record=False) as accounts:
        first = accounts.broadcast_sync("one", to=[(bot, "carol@im.wechat"), (bot, "dave@im.wechat")])
        second = accounts.broadcast_sync("two", to=[(bot, "carol@im.wechat")])  # same clients, same loop
    assert list(first.frame["status"]) == ["sent", "sent"] and list(second.frame["status"]) == ["sent"]
    assert [e.text for e in sim.outbox] == ["one", "one", "two"]


def test_usage_errors() -> None:
    accounts = Accounts({})
    with pytest.raises(E.UsageError, match="no account 'x' loaded"):
        accounts["x"]
    with pytest.raises(E.UsageError, match="pair"):
        asyncio.run(accounts.broadcast("hi", to=["bot-only"]))
    with pytest.raises(E.UsageError):
        asyncio.run(accounts.broadcast("", to=[]))
    assert repr(accounts) == "Accounts(none)"


class InFlight(httpx.AsyncBaseTransport):
    """Counts the sendmessage requests under way at once (started, not yet answered)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.now = 0
        self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sending = request.url.path.endswith("/sendmessage")
        if sending:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            if sending:
                self.now -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_broadcast_sends_concurrently(sim: Simulator, home: Path) -> None:
    # The server holds every send for a while, so a broadcast that sends one after the other has one send
    # under way at a time; a concurrent one has them all. concurrency=1 serialises on purpose.
    sim.configure(require_context_token=False, reply_window_seconds=None)
    (bot,) = save_bots(sim, "owner")
    users = [sim.add_user(name) for name in ("u1", "u2", "u3", "u4")]
    to = [(bot, user) for user in users]

    async def main(concurrency: int) -> tuple[list[str], int]:
        sim.add_fault(delay_ms=300, count=len(to), endpoints=["send_message"])
        transport = InFlight()
        async with Accounts.load([bot], record=False, transport=transport) as accounts:
            result = await accounts.broadcast("news", to=to, concurrency=concurrency)
        return list(result.frame["status"]), transport.most

    statuses, most = asyncio.run(main(16))
    assert statuses == ["sent"] * len(to) and most > 1
    statuses, most = asyncio.run(main(1))
    assert statuses == ["sent"] * len(to) and most == 1
    assert sim.faults == [] and len(sim.outbox) == 2 * len(to)
