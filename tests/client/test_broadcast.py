"""Broadcast over real HTTP against the simulator: mixed outcomes for 64 users, the reply budget respected,
media uploaded per user, Ctrl-C and cancellation keeping the table so far, and no message sent twice."""

from __future__ import annotations

import _thread
import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from openclaw_nb import errors as E
from openclaw_nb.broadcast import (
    BROADCAST_COLUMNS,
    NOT_STARTED,
    REJECTED,
    SENT,
    SKIPPED,
    UNKNOWN,
    BroadcastInterrupted,
    BroadcastResult,
)
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.flow import RetryPolicy
from openclaw_nb.sim import Simulator

TEXT = "the class starts at 9 today"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh simulator per test: each test counts the whole outbox."""
    with Simulator(long_poll_timeout=0.5, record_requests=500) as s:
        yield s


def _client(sim: Simulator, driver: str, token: str, **kw: Any) -> Any:
    cls = Client if driver == "sync" else AsyncClient
    return cls(token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, retry=FAST_RETRY, **kw)


def _call(client: Any, method: str, *args: Any, **kw: Any) -> Any:
    """Call a method of either driver to completion (the async one on a private loop)."""
    value = getattr(client, method)(*args, **kw)
    if asyncio.iscoroutine(value):
        return client._test_loop.run_until_complete(value)
    return value


class Class64:
    """64 users who wrote to the bot, plus the three every broadcast must tell apart:

    - ``late`` wrote 25 h ago (simulated clock): their reply window is closed;
    - ``chatty`` wrote, and the bot already made the 10 sends their context token allows;
    - ``stranger`` is known to the server but never wrote: no context token, so the server refuses (-2).
    """

    def __init__(self, sim: Simulator, driver: str) -> None:
        self.sim = sim
        self.bot = sim.login_bot()
        self.late = sim.add_user("late")
        sim.say(self.late, "see you tomorrow", self.bot.bot_id)
        sim.advance(hours=25)
        self.users = [sim.add_user(f"student{i:02d}") for i in range(61)]
        self.chatty = sim.add_user("chatty")
        self.stranger = sim.add_user("stranger")
        for user in [*self.users, self.chatty]:
            sim.say(user, "hi", self.bot.bot_id)
        self.client = _client(sim, driver, self.bot.bot_token)
        if driver == "async":
            self.client._test_loop = asyncio.new_event_loop()
        _call(self.client, "get_updates", timeout=2)
        for i in range(C.SENDS_PER_CONTEXT_TOKEN):
            _call(self.client, "send_text", self.chatty, f"reply {i}")
        self.targets = [*self.users, self.late, self.chatty, self.stranger]
        assert len(self.targets) == 64

    def close(self) -> None:
        _call(self.client, "close" if isinstance(self.client, Client) else "aclose")
        loop = getattr(self.client, "_test_loop", None)
        if loop is not None:
            loop.close()

    def broadcasts(self) -> list[Any]:
        """The outbox entries carrying the broadcast text."""
        return [e for e in self.sim.outbox if e.text == TEXT]


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_mixed_outcomes_for_64_users(sim: Simulator, driver: str) -> None:
    group = Class64(sim, driver)
    try:
        # Three sends meet trouble: two are stored by the server but the answer is lost, one gets a 500.
        sim.add_fault(lost_response=1.0, count=2, endpoints=["send_message"])
        sim.add_fault(http_500=1.0, count=1, endpoints=["send_message"])
        seen: list[tuple[str, int, int]] = []
        result = _call(
            group.client,
            "broadcast",
            [*group.targets, group.users[0]],  # a repeat is sent to once
            TEXT,
            concurrency=64,
            on_progress=lambda row, done, total: seen.append((row.user, done, total)),
        )
    finally:
        group.close()
    assert isinstance(result, BroadcastResult) and group.client.last_broadcast is result
    frame = result.frame
    assert list(frame.columns) == list(BROADCAST_COLUMNS)
    assert list(frame["user"]) == group.targets
    rows = {row.user: row for row in result.rows}

    late, chatty, stranger = rows[group.late], rows[group.chatty], rows[group.stranger]
    assert late.status == SKIPPED and late.reason.startswith("more than 24 h since the user's last message")
    assert "(25.0 h since the user's last message" in late.reason
    assert chatty.status == SKIPPED and "all 10 sends on the current context token are used" in chatty.reason
    assert late.client_id is None and chatty.client_id is None  # never sent
    assert stranger.status == REJECTED and stranger.code == -2 and "context_token missing" in stranger.reason

    unknown = [r for r in result.rows if r.status == UNKNOWN]
    assert len(unknown) == 3 and all(r.client_id and r.message_id is None for r in unknown)
    assert result.counts == {SENT: 58, REJECTED: 1, UNKNOWN: 3, SKIPPED: 2, NOT_STARTED: 0}
    assert (result.sent, result.skipped, result.not_started) == (58, 2, 0) and result.interrupted is None

    # The server's view: one message per sent user, with the id the table reports; the two whose answer
    # was lost were stored too; nothing went to a skipped or rejected user, and nobody got it twice.
    delivered = group.broadcasts()
    per_user = Counter(e.to_user_id for e in delivered)
    assert max(per_user.values()) == 1 and len(delivered) == 58 + 2
    by_user = {e.to_user_id: e for e in delivered}
    for row in result.rows:
        if row.status == SENT:
            assert by_user[row.user].message_id == row.message_id and by_user[row.user].client_id == row.client_id
    assert sum(r.client_id in {e.client_id for e in delivered} for r in unknown) == 2
    assert not {group.late, group.chatty, group.stranger} & set(per_user)
    assert str(frame["message_id"].dtype) == "UInt64" and frame["message_id"].max() > 2**53
    # Nothing shown carries a secret: not the bot token, not a context token.
    shown = repr(result) + result._repr_html_() + frame.to_string()
    secrets = [group.bot.bot_token, *group.client.context_tokens.values()]
    assert secrets and not any(secret in shown for secret in secrets)

    # The progress callback saw every target once, counting up.
    assert sorted(u for u, _, _ in seen) == sorted(group.targets)
    assert [d for _, d, _ in seen] == list(range(1, 65)) and {t for _, _, t in seen} == {64}
    # The sends are in the client's own protocol log (the sync client's private engine shares it).
    logged = [ex for ex in group.client.log if ex.call == "send_message"]
    assert len(logged) == C.SENDS_PER_CONTEXT_TOKEN + 62
    # The budget follows the broadcast: each sent user has one send counted on their token.
    assert group.client.peers[group.users[1]].sends_on_token in (0, 1)
    assert sum(group.client.peers[u].sends_on_token for u in group.users) == 58 + 3


def _table(driver: str) -> pd.DataFrame:
    with Simulator(long_poll_timeout=0.5) as sim:
        group = Class64(sim, driver)
        try:
            result = _call(group.client, "broadcast", group.targets, TEXT, concurrency=8)
        finally:
            group.close()
    return result.frame.drop(columns=["message_id", "client_id"])


def test_sync_and_async_give_the_same_table() -> None:
    sync, async_ = _table("sync"), _table("async")
    assert list(sync["status"].value_counts().sort_index().items()) == [(REJECTED, 1), (SENT, 61), (SKIPPED, 2)]
    pd.testing.assert_frame_equal(sync, async_)


def test_cancelling_the_task_keeps_the_table_so_far(sim: Simulator) -> None:
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i:02d}") for i in range(64)]
    sim.add_fault(delay_ms=200, endpoints=["send_message"])  # every send takes a while

    async def main() -> BroadcastResult:
        client = _client(sim, "async", bot.bot_token)
        eight = asyncio.Event()

        def progress(row: Any, done: int, total: int) -> None:
            if done == 8:
                eight.set()

        task = asyncio.ensure_future(client.broadcast(users, TEXT, concurrency=4, on_progress=progress))
        await eight.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as caught:
            await task
        await client.aclose()
        table = caught.value.broadcast  # type: ignore[attr-defined]
        assert client.last_broadcast is table
        return table

    result = asyncio.run(main())
    counts = result.counts
    # The sends under way when the task was cancelled finished: none is left unknown, none was cut off.
    assert counts[UNKNOWN] == 0 and counts[REJECTED] == 0
    assert 8 <= counts[SENT] < 64 and counts[NOT_STARTED] == 64 - counts[SENT]
    # Every send that started has its outcome: none is left half-way (a client_id but no status).
    assert all(r.client_id is None for r in result.rows if r.status == NOT_STARTED)
    assert result.interrupted == "cancelled" and "cancelled" in result.summary()
    delivered = [e for e in sim.outbox if e.text == TEXT]
    assert sorted(e.to_user_id for e in delivered) == sorted(result.users(SENT))
    assert result.users(NOT_STARTED) == [u for u in users if u not in set(result.users(SENT))]


def test_a_second_cancel_stops_the_sends_under_way(sim: Simulator) -> None:
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i:02d}") for i in range(16)]

    async def main() -> BroadcastResult:
        client = _client(sim, "async", bot.bot_token)
        # The first four sends are held for long: cancel twice while they are under way.
        sim.add_fault(delay_ms=2_000, count=4, endpoints=["send_message"])
        task = asyncio.ensure_future(client.broadcast(users, TEXT, concurrency=4))
        await asyncio.wait_for(_until(lambda: not sim.faults), 10)  # all four reached the server
        task.cancel()
        for _ in range(3):
            await asyncio.sleep(0)  # let the broadcast take the first cancellation
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as caught:
            await task
        await client.aclose()
        return caught.value.broadcast  # type: ignore[attr-defined]

    result = asyncio.run(main())
    unknown = [r for r in result.rows if r.status == UNKNOWN]
    assert result.sent == 0 and len(unknown) == 4 and all(r.client_id for r in unknown)
    assert all("cancelled while this send was under way" in r.reason for r in unknown)
    assert result.counts[NOT_STARTED] == 16 - result.sent - 4


async def _until(predicate: Any) -> None:
    """Poll ``predicate`` on the event loop until it holds (the caller bounds the wait)."""
    while not predicate():
        await asyncio.sleep(0.005)


def test_ctrl_c_from_on_progress_stops_a_sync_broadcast(sim: Simulator) -> None:
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i:02d}") for i in range(64)]
    sim.add_fault(delay_ms=50, endpoints=["send_message"])

    def progress(row: Any, done: int, total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    with Client(bot.bot_token, base_url=sim.base_url) as client:
        with pytest.raises(BroadcastInterrupted) as caught:
            client.broadcast(users, TEXT, concurrency=4, on_progress=progress)
        assert isinstance(caught.value, KeyboardInterrupt)
        result = caught.value.result
        assert client.last_broadcast is result
    assert result.interrupted == "interrupted" and "table is in .result" in str(caught.value)
    # Sends finished while the interrupt travelled to the engine thread are kept; the rest never started.
    assert result.counts[UNKNOWN] == 0 and 10 <= result.sent < 64
    assert result.sent + result.not_started == 64
    delivered = [e for e in sim.outbox if e.text == TEXT]
    assert sorted(e.to_user_id for e in delivered) == sorted(result.users(SENT))


def test_real_ctrl_c_while_a_sync_broadcast_waits(sim: Simulator) -> None:
    # SIGINT's effect (KeyboardInterrupt in the main thread) while Client.broadcast waits for its engine.
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i:02d}") for i in range(64)]
    sim.add_fault(delay_ms=50, endpoints=["send_message"])

    def interrupt_after_8() -> None:
        sim.wait_for(lambda state: len(state.outbox) >= 8, timeout=10)
        _thread.interrupt_main()

    helper = threading.Thread(target=interrupt_after_8)
    with Client(bot.bot_token, base_url=sim.base_url) as client:
        helper.start()
        with pytest.raises(BroadcastInterrupted) as caught:
            client.broadcast(users, TEXT, concurrency=4)
        helper.join()
    result = caught.value.result
    assert 8 <= result.sent < 64 and result.counts[UNKNOWN] == 0
    assert result.sent + result.not_started == 64
    delivered = [e for e in sim.outbox if e.text == TEXT]
    assert Counter(e.to_user_id for e in delivered) == Counter(result.users(SENT))


def test_a_sync_broadcast_inside_a_running_event_loop(sim: Simulator) -> None:
    # As in a notebook cell, where the kernel's loop is running: the engine has its own loop in a worker
    # thread, so nothing has to re-enter the running one.
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i}") for i in range(8)]

    async def cell() -> BroadcastResult:
        with Client(bot.bot_token, base_url=sim.base_url) as client:
            return client.broadcast(users, TEXT, progress=False)

    result = asyncio.run(cell())
    assert result.sent == 8 and sorted(e.to_user_id for e in sim.outbox) == sorted(users)


def test_real_ctrl_c_in_an_asyncio_run_script(sim: Simulator) -> None:
    # asyncio.run turns Ctrl-C into a cancellation of the main task: the broadcast winds down, asyncio.run
    # raises KeyboardInterrupt, and the table so far stays in client.last_broadcast.
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i:02d}") for i in range(64)]
    sim.add_fault(delay_ms=50, endpoints=["send_message"])
    client = _client(sim, "async", bot.bot_token)

    def interrupt_after_8() -> None:
        sim.wait_for(lambda state: len(state.outbox) >= 8, timeout=10)
        _thread.interrupt_main()

    async def script() -> None:
        try:
            await client.broadcast(users, TEXT, concurrency=4)
        finally:
            await client.aclose()

    helper = threading.Thread(target=interrupt_after_8)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(script())
    helper.join()
    result = client.last_broadcast
    assert result is not None and result.interrupted == "cancelled"
    assert 8 <= result.sent < 64 and result.sent + result.not_started == 64 and result.counts[UNKNOWN] == 0
    delivered = [e for e in sim.outbox if e.text == TEXT]
    assert Counter(e.to_user_id for e in delivered) == Counter(result.users(SENT))


def test_media_is_uploaded_once_per_user(sim: Simulator, driver: str) -> None:
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i}") for i in range(5)]
    for user in users:
        sim.say(user, "hi", bot.bot_id)
    client = _client(sim, driver, bot.bot_token)
    if driver == "async":
        client._test_loop = asyncio.new_event_loop()
    try:
        _call(client, "get_updates", timeout=2)
        result = _call(client, "broadcast", users, PNG, kind="image", caption="today's chart", progress=False)
        # An upload made beforehand goes to everyone as it is.
        uploaded = _call(client, "upload", b"a,b\n1,2\n", users[0], "file", name="data.csv")
        again = _call(client, "broadcast", users[:3], uploaded)
    finally:
        if driver == "async":
            client._test_loop.run_until_complete(client.aclose())
            client._test_loop.close()
        else:
            client.close()
    assert result.counts[SENT] == 5 and again.counts[SENT] == 3
    images = [e for e in sim.outbox if e.item_types == [C.ItemType.IMAGE]]
    assert sorted(e.to_user_id for e in images) == sorted(users)
    assert all(e.data == PNG and not e.problems for e in images)
    captions = [e.to_user_id for e in sim.outbox if e.text == "today's chart"]
    assert sorted(captions) == sorted(users)
    uploads = [r for r in sim.requests if r.get("endpoint") == "get_upload_url"]
    assert sorted(r["body"]["to_user_id"] for r in uploads) == sorted([*users, users[0]])
    files = [e for e in sim.outbox if e.item_types == [C.ItemType.FILE]]
    assert sorted(e.to_user_id for e in files) == sorted(users[:3]) and {e.data for e in files} == {b"a,b\n1,2\n"}


def test_progress_bar_on_a_terminal(sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    sim.configure(require_context_token=False, reply_window_seconds=None)
    bot = sim.login_bot()
    users = [sim.add_user(f"u{i}") for i in range(12)]
    with Client(bot.bot_token, base_url=sim.base_url) as client:
        result = client.broadcast(users, TEXT, progress=True)
    assert result.sent == 12
    err = capsys.readouterr().err
    assert "broadcast (text)" in err and "12/12" in err


def test_usage_errors_name_the_fix() -> None:
    client = Client("t" * 64, base_url="http://127.0.0.1:9")
    with pytest.raises(E.UsageError, match="list of user ids"):
        client.broadcast("alice@im.wechat", TEXT)
    with pytest.raises(E.UsageError, match="non-empty user id"):
        client.broadcast(["alice@im.wechat", ""], TEXT)
    with pytest.raises(E.UsageError, match="text is empty"):
        client.broadcast(["alice@im.wechat"], "")
    with pytest.raises(E.UsageError, match="kind='image'"):
        client.broadcast(["alice@im.wechat"], "chart.png", caption="today")
    with pytest.raises(E.UsageError, match="concurrency"):
        client.broadcast(["alice@im.wechat"], TEXT, concurrency=0)
    with pytest.raises(E.UsageError, match="no such file"):
        client.broadcast(["alice@im.wechat"], "missing.png", kind="image")
    with pytest.raises(E.UsageError, match="got int"):
        client.broadcast(["alice@im.wechat"], 42)
    with pytest.raises(E.UsageError, match="on_progress"):
        client.broadcast(["alice@im.wechat"], TEXT, on_progress="print")  # type: ignore[arg-type]
    with pytest.raises(E.UsageError, match="status is one of"):
        BroadcastResult([]).users("failed")
    client.close()
    assert repr(BroadcastResult([])) == "<BroadcastResult 0 targets: none>"


def test_the_notebook_bar_counts_messages() -> None:
    from openclaw_nb.notebook.progress import WidgetProgress

    shown: list[object] = []
    bar = WidgetProgress("broadcast (text)", unit="messages")
    bar._display = shown.append  # type: ignore[assignment]
    bar.start(64)
    for _ in range(64):
        bar.advance(1)
    bar.close(True)
    assert len(shown) == 1 and bar._bar.value == 64 and bar._bar.bar_style == "success"
    assert bar._label.value == "broadcast (text): 64 of 64 messages"
