"""The update stream against the simulator over real HTTP on 127.0.0.1: exactly once, in order, across
restarts and failures, with both drivers, as an iterator and as a live feed."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb import errors as E
from openclaw_nb.protocol.poll import PollPolicy
from openclaw_nb.store import Store

from .conftest import FAST, LONG_POLL, Bot, files_of

USERS = [f"user{i}@im.wechat" for i in range(5)]


def produce(bot: Bot, n: int, start: int = 0) -> list[int]:
    """``n`` messages from several users, interleaved; returns their message_ids in sending order."""
    return [bot.say(USERS[i % len(USERS)], f"msg {i}")["message_id"] for i in range(start, start + n)]


def producer_thread(bot: Bot, n: int, ids: list[int]) -> threading.Thread:
    thread = threading.Thread(target=lambda: ids.extend(produce(bot, n)), daemon=True)
    thread.start()
    return thread


def collect(updates: Any, n: int, timeout: float = 30.0) -> list[Any]:
    """Iterate until ``n`` messages (a watchdog stops the stream at the deadline, so a test can fail)."""
    got: list[Any] = []
    watchdog = threading.Timer(timeout, updates.stop)
    watchdog.start()
    try:
        for msg in updates:
            got.append(msg)
            if len(got) >= n:
                updates.ack()  # handled: without it, break leaves the message for the next stream
                break
    finally:
        watchdog.cancel()
    return got


# --- exactly once, in order --------------------------------------------------------------------------


def test_thousands_exactly_once_in_order_sync(bot: Bot) -> None:
    ids: list[int] = []
    with bot.client() as client:
        updates = client.updates(policy=FAST)
        thread = producer_thread(bot, 2500, ids)
        got = collect(updates, 2500)
        thread.join()
    assert [m.message_id for m in got] == ids
    assert [m.text for m in got] == [f"msg {i}" for i in range(2500)]
    assert {m.from_user_id for m in got} == set(USERS)
    assert max(ids) > 2**53  # the simulator's ids are big: they came through exact


def test_thousands_exactly_once_in_order_async(bot: Bot) -> None:
    ids: list[int] = []

    async def main() -> list[Any]:
        got: list[Any] = []
        async with bot.aclient() as client:
            updates = client.updates(policy=FAST)
            thread = producer_thread(bot, 2000, ids)

            async def consume() -> None:
                async for msg in updates:
                    got.append(msg)
                    if len(got) >= 2000:
                        break

            await asyncio.wait_for(consume(), 30)
            thread.join()
        return got

    got = asyncio.run(main())
    assert [m.message_id for m in got] == ids


def test_feed_in_a_thread_exactly_once(bot: Bot) -> None:
    ids: list[int] = []
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        thread = producer_thread(bot, 3000, ids)
        thread.join()
        df = feed.wait_for(3000, timeout=30)
        feed.stop()
        feed.wait(5)
    assert df["message_id"].tolist() == ids
    assert df["seq"].is_monotonic_increasing and not df["probable_duplicate"].any()
    assert len(feed) == 3000 and feed.running is False and feed.status == "stopped"


def test_a_new_row_can_be_answered_at_once(bot: Bot) -> None:
    """The client knows a row's context token by the time the row is visible (reply-on-sight works)."""
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        try:
            for i in range(30):
                user = f"quick{i}@im.wechat"
                said = bot.say(user, f"hello {i}")
                feed.wait_for(i + 1, timeout=10)
                assert client.context_tokens.get(user) == said["context_token"], f"row {i}: token not known yet"
        finally:
            feed.stop()
            feed.wait(5)


def test_announced_rows_are_already_in_the_built_frame(bot: Bot) -> None:
    """A reader woken for new rows finds the frame built: reading it does no conversion work, because the
    feed built it before announcing the rows it waits for."""
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        try:
            for i in range(20):
                bot.say(f"reader{i % 3}@im.wechat", f"hello {i}")
                feed.wait_rows(i + 1, timeout=10)
                buffer = feed._buffer
                assert buffer._framed >= len(feed) >= i + 1, f"row {i}: announced before it was built"
                built = buffer._frame
                assert feed.frame["text"].iloc[i] == f"hello {i}"
                assert buffer._frame is built or len(buffer) > len(feed)  # nothing rebuilt for announced rows
        finally:
            feed.stop()
            feed.wait(5)


def test_rows_nobody_waits_for_are_left_to_the_next_read(bot: Bot) -> None:
    """Without a waiter the feed only appends (a backlog drains at full speed); the next read converts it all,
    and a waiter for a count the rows do not reach yet does not make the feed build either."""
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        try:
            for i in range(40):
                bot.say(f"idle{i % 4}@im.wechat", f"nobody reads {i}")
            deadline = time.monotonic() + 10
            while len(feed) < 40 and time.monotonic() < deadline:
                threading.Event().wait(0.01)
            assert len(feed) == 40
            assert feed._buffer._framed == 0, "the feed built a frame nobody asked for"
            with pytest.raises(TimeoutError):
                feed.wait_rows(41, timeout=0.2)  # a waiter for a row that does not come
            assert feed._buffer._framed == 0
            assert feed.frame["text"].tolist() == [f"nobody reads {i}" for i in range(40)]
            assert feed._buffer._framed == 40 and feed._wanted == []
        finally:
            feed.stop()
            feed.wait(5)


def test_half_a_surrogate_pair_does_not_stop_the_feed(bot: Bot) -> None:
    # The simulator sends it escaped (as JSON allows); the feed keeps running and shows a replacement mark.
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        try:
            for text in ("before", "half \ud83d an emoji", "after"):
                bot.say("surrogate@im.wechat", text)
            df = feed.wait_for(3, timeout=10)
            assert feed.running and feed.error is None
            assert df["text"].tolist() == ["before", "half \ufffd an emoji", "after"]
        finally:
            feed.stop()
            feed.wait(5)


def test_feed_as_a_task_exactly_once(bot: Bot) -> None:
    ids: list[int] = []

    async def main() -> Any:
        async with bot.aclient() as client:
            feed = client.stream(policy=FAST)
            assert feed.running  # returned at once, polling in the background
            thread = producer_thread(bot, 2000, ids)
            await feed.until(2000, timeout=30)
            thread.join()
            feed.stop()
            await feed.finished()
            return feed

    feed = asyncio.run(main())
    assert feed.frame["message_id"].tolist() == ids and not feed.running


def test_async_stream_needs_a_running_loop(bot: Bot) -> None:
    client = bot.aclient()
    with pytest.raises(E.UsageError, match="running event loop"):
        client.stream()


# --- restart: nothing lost, nothing replayed ---------------------------------------------------------------


def test_restart_mid_page_resumes_without_loss_or_replay(bot: Bot, home: Path) -> None:
    ids = produce(bot, 350)  # pages of 100: stopping after 130 leaves 70 of the second page unconsumed
    with bot.client() as client:
        first = collect(client.updates(policy=FAST), 130)
    assert files_of(home) == [
        f"{bot.bot_id}.context-tokens.json",
        f"{bot.bot_id}.pending.sync.json",
        f"{bot.bot_id}.sync.json",
    ]
    pending = json.loads((home / "accounts" / f"{bot.bot_id}.pending.sync.json").read_text())
    assert len(pending["pending"]) == 70
    ids += produce(bot, 50, start=350)
    with bot.client() as client:  # a new kernel: a new client, state only from disk
        assert client.cursor == ""
        second = collect(client.updates(policy=FAST), 270)
    assert [m.message_id for m in first + second] == ids


def test_restart_feed_resumes(bot: Bot) -> None:
    ids = produce(bot, 250)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_for(250)
        feed.stop()
        feed.wait(5)
    ids += produce(bot, 40, start=250)
    with bot.client() as client:
        feed2 = client.stream(policy=FAST)
        feed2.wait_for(290)
        feed2.stop()
        feed2.wait(5)
    # The second feed's frame starts with the first one's rows (rebuilt from its log), then the new ones.
    assert feed.frame["message_id"].tolist() == ids[:250] and feed2.frame["message_id"].tolist() == ids


def test_crash_between_pending_and_cursor_write_replays_nothing(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst moment to die: the page is on disk as pending, the cursor is not. The restart hands out the
    pending messages and drops the page the server serves again (same ids)."""
    ids = produce(bot, 30)

    def crash(*a: Any) -> None:
        raise OSError("disk gone at the worst moment")

    with bot.client() as client:
        monkeypatch.setattr(Store, "save_cursor", crash)
        with pytest.raises(OSError):
            collect(client.updates(policy=FAST), 30)
        monkeypatch.undo()
    with bot.client() as client:
        got = collect(client.updates(policy=FAST), 30)
        ids += produce(bot, 5, start=30)
        got += collect(client.updates(policy=FAST), 5)
    assert [m.message_id for m in got] == ids


def test_no_account_keeps_the_cursor_in_memory(bot: Bot, home: Path, caplog: pytest.LogCaptureFixture) -> None:
    produce(bot, 3)
    with bot.client() as client, caplog.at_level(logging.WARNING, "openclaw_nb"):
        client.bot_id = None
        assert len(collect(client.updates(policy=FAST), 3)) == 3
        assert client.cursor  # kept in memory
    assert "in memory only" in caplog.text and files_of(home) == []
    produce(bot, 2, start=3)
    with bot.client() as client:
        client.bot_id = None
        got = collect(client.updates(policy=FAST, account="my-notebook"), 5)
    # Nothing was persisted and the last page was never acknowledged: the server serves it again.
    assert [m.text for m in got] == [f"msg {i}" for i in range(5)]
    assert "my-notebook.sync.json" in files_of(home)


# --- failures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["http_500", "http_429", "reset", "malformed_json"])
def test_each_failure_is_retried_visibly(bot: Bot, fault: str, caplog: pytest.LogCaptureFixture) -> None:
    bot.sim.add_fault(**{fault: 1.0}, count=2, endpoints=["get_updates"])
    ids = produce(bot, 5)
    with bot.client() as client, caplog.at_level(logging.INFO, "openclaw_nb"):
        updates = client.updates(policy=FAST)
        got = collect(updates, 5)
    assert [m.message_id for m in got] == ids
    kinds = [e.kind for e in updates.events]
    assert kinds[:2] == ["retry", "retry"], kinds
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "getupdates failed" in r.message]
    assert len(warnings) == 2 and "retry 1 in 0.01 s" in warnings[0].message


def test_third_failure_in_a_row_backs_off(bot: Bot) -> None:
    bot.sim.add_fault(http_500=1.0, count=4, endpoints=["get_updates"])
    produce(bot, 1)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_for(1)
        feed.stop()
    events = [(e.kind, e.delay) for e in feed.events if e.kind in ("retry", "backoff")]
    assert events == [("retry", 0.01), ("retry", 0.01), ("backoff", 0.05), ("retry", 0.01)]
    assert "backing off" in feed._repr_html_()  # the live view shows it


def test_stop_interrupts_a_long_back_off(bot: Bot) -> None:
    bot.sim.add_fault(http_500=1.0, endpoints=["get_updates"])
    with bot.client() as client:
        updates = client.updates(policy=PollPolicy(retry_delay=30, backoff_delay=300))
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.extend(updates), daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not updates.events and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert updates.status.startswith("retrying in 30")
        updates.stop()
        thread.join(5)  # a stop that waited out the 30 s retry delay would leave the thread alive here
        assert not thread.is_alive() and result == []


def test_client_side_timeout_is_not_a_failure(bot: Bot) -> None:
    bot.sim.add_fault(delay_ms=1500, count=2, endpoints=["get_updates"])
    ids = produce(bot, 2)
    with bot.client() as client:
        updates = client.updates(policy=PollPolicy(timeout=0.3, retry_delay=0.01))
        got = collect(updates, 2)
    assert [m.message_id for m in got] == ids
    assert not [e for e in updates.events if e.kind in ("retry", "backoff")]


@pytest.mark.parametrize("how", ["fault", "revoked"])
def test_stale_token_ends_the_iterator(bot: Bot, how: str) -> None:
    if how == "fault":
        bot.sim.add_fault(stale_token=1.0, endpoints=["get_updates"])
    else:
        bot.sim.revoke_token(bot.bot_id)
    with bot.client() as client, pytest.raises(E.StaleTokenError) as info:
        collect(client.updates(policy=FAST), 1, timeout=10)
    message = str(info.value)
    assert "-14" in message and "log in again" in message.lower()


def test_stale_token_stops_the_feed_visibly(bot: Bot) -> None:
    produce(bot, 3)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_for(3)
        bot.sim.revoke_token(bot.bot_id)
        with pytest.raises(E.StaleTokenError):
            feed.wait(10)
    assert isinstance(feed.error, E.StaleTokenError) and "log in again" in feed.status
    assert "log in again" in feed._repr_html_() and len(feed.frame) == 3


def test_stale_token_ends_the_async_feed(bot: Bot) -> None:
    async def main() -> Any:
        async with bot.aclient() as client:
            feed = client.stream(policy=FAST)
            bot.sim.revoke_token(bot.bot_id)
            with pytest.raises(E.StaleTokenError):
                await asyncio.wait_for(feed.finished(), 10)
            return feed

    feed = asyncio.run(main())
    assert not feed.running and isinstance(feed.error, E.StaleTokenError)


def test_async_stop_cancels_the_poll_in_flight(bot: Bot) -> None:
    bot.sim.configure(long_poll_timeout=20)

    async def main() -> None:
        async with bot.aclient() as client:
            updates = client.updates(policy=FAST)
            got: list[Any] = []

            async def consume() -> None:
                async for msg in updates:
                    got.append(msg)

            task = asyncio.create_task(consume())
            # wait until the server holds the poll (it would hold it for 20 s)
            deadline = time.monotonic() + 10
            while bot.sim.state.waiters(("bot", bot.bot_id)) == 0:
                assert time.monotonic() < deadline, "the long poll never reached the server"
                await asyncio.sleep(0.005)
            updates.stop()
            # a stop that waited for the held poll to end would take 20 s: the deadline fails it
            await asyncio.wait_for(task, 5)
            assert got == []

    asyncio.run(main())


# --- duplicates ----------------------------------------------------------------------------------------


def test_redelivered_same_id_is_dropped(bot: Bot) -> None:
    bot.sim.configure(duplicate_rate=1.0)
    ids = produce(bot, 20)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_for(20)
        # every message was served twice; give the loop the chance to (wrongly) add the copies
        bot.say("late@im.wechat", "marker")
        df = feed.wait_for(21)
        feed.stop()
    assert df["message_id"].tolist()[:20] == ids and len(df) == 21
    assert feed._stream.state.dropped >= 20


def test_redelivered_new_id_is_flagged_not_dropped(bot: Bot) -> None:
    bot.sim.configure(duplicate_rate=1.0, duplicate_new_id=True)
    produce(bot, 10)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        df = feed.wait_for(20)
        feed.stop()
    assert len(df) == 20 and df["message_id"].is_unique
    assert df["probable_duplicate"].tolist() == [False, True] * 10
    assert "probable" in feed._repr_html_()


# --- context tokens and the reply budget --------------------------------------------------------------


def test_context_tokens_feed_send_text_and_persist(bot: Bot, home: Path) -> None:
    bot.say("alice@im.wechat", "first")
    last = bot.say("alice@im.wechat", "second")
    with bot.client() as client:
        collect(client.updates(policy=FAST), 2)
        assert client.context_tokens["alice@im.wechat"] == last["context_token"]
        for i in range(10):
            client.send_text("alice@im.wechat", f"reply {i}")
        budget = client.reply_budget("alice@im.wechat")
        assert budget.sends_left == 0 and not budget.can_reply and "sends" in budget.reason
        with pytest.raises(E.SendRejectedError):
            client.send_text("alice@im.wechat", "one too many")
    saved = json.loads((home / "accounts" / f"{bot.bot_id}.context-tokens.json").read_text())
    assert saved["alice@im.wechat"]["context_token"] == last["context_token"]
    with bot.client() as client:  # a restarted kernel can reply at once: the token comes from disk
        updates = client.updates(policy=FAST)
        assert client.context_tokens["alice@im.wechat"] == last["context_token"]
        updates.stop()
    assert bot.sim.outbox[-1].msg["context_token"] == last["context_token"]


def test_reply_budget_of_unknown_and_fresh_users(bot: Bot) -> None:
    with bot.client() as client:
        unknown = client.reply_budget("nobody@im.wechat")
        assert not unknown.can_reply and "not written" in unknown.reason
        bot.say("bob@im.wechat", "hi")
        collect(client.updates(policy=FAST), 1)
        fresh = client.reply_budget("bob@im.wechat")
        assert fresh.can_reply and fresh.sends_left == 10
        assert 23.9 * 3600 < fresh.window_left.total_seconds() <= 24 * 3600
        feed = client.stream(policy=FAST)
        users = feed.users
        feed.stop()
    assert users.loc["bob@im.wechat", "sends_left"] == 10 and bool(users.loc["bob@im.wechat", "can_reply"])
    token = client.context_tokens["bob@im.wechat"]
    assert token not in users.to_string() and "redacted" in users.loc["bob@im.wechat", "context_token"]


def test_long_poll_window_of_the_server_is_used(bot: Bot) -> None:
    with bot.client() as client:
        bot.say("a@im.wechat", "x")
        collect(client.updates(policy=FAST), 1)
        assert client.longpolling_timeout_ms == int(LONG_POLL * 1000)
