"""notifystart / notifystop around the update stream, against the simulator over real HTTP on 127.0.0.1: sent
before the first poll and once at the end, however the stream ends (break, Ctrl-C in the loop body or during
a poll, a cancelled task, stop(), -14, the interpreter exiting), never when turned off, and a failing notify
does not stop the stream."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from openclaw_nb import errors as E
from openclaw_nb.sim import Simulator

from .conftest import FAST, Bot


def kinds(sim: Simulator) -> list[str]:
    return [n.kind for n in sim.notifications]


def calls(sim: Simulator) -> list[str]:
    """The endpoints the simulator saw, in order (needs ``record_requests``)."""
    return [r["endpoint"] for r in sim.requests]


def held(bot: Bot, timeout: float = 10.0) -> None:
    """Block until a long poll of the bot is held by the simulator."""
    bot.sim.wait_for(lambda s: s.waiters(("bot", bot.bot_id)), timeout)


# --- the sync iterator ---------------------------------------------------------------------------------


def test_start_before_the_first_poll_and_stop_after_break(bot: Bot) -> None:
    bot.sim.configure(record_requests=100)
    bot.say("alice@im.wechat", "hi")
    with bot.client() as client:
        for msg in client.updates(policy=FAST):
            assert msg.text == "hi"
            assert kinds(bot.sim) == ["start"]  # the loop serves the account while it runs
            break
    assert kinds(bot.sim) == ["start", "stop"]
    seen = calls(bot.sim)
    assert seen.index("notify_start") < seen.index("get_updates") < seen.index("notify_stop")
    assert {n.bot_id for n in bot.sim.notifications} == {bot.bot_id}


def test_notify_false_sends_neither(bot: Bot) -> None:
    bot.say("alice@im.wechat", "hi")
    with bot.client() as client:
        for _msg in client.updates(policy=FAST, notify=False):
            break
        feed = client.stream(notify=False)
        bot.say("alice@im.wechat", "again")
        feed.wait_rows(1)
        feed.stop()
        feed.wait(10)
    assert kinds(bot.sim) == []


def test_notify_must_be_a_bool(bot: Bot) -> None:
    with bot.client() as client, pytest.raises(E.UsageError, match=r"notify is True .* or False, got 'no'"):
        client.updates(notify="no")  # type: ignore[arg-type]


def test_stop_from_another_thread_sends_stop_once(bot: Bot) -> None:
    with bot.client() as client:
        updates = client.updates(policy=FAST)

        def stop_when_held() -> None:
            held(bot)
            updates.stop()

        threading.Thread(target=stop_when_held, daemon=True).start()
        with updates:
            assert list(updates) == []
    assert kinds(bot.sim) == ["start", "stop"]  # the loop's end and __exit__ share one stop


def test_ctrl_c_in_the_loop_body(bot: Bot) -> None:
    bot.say("alice@im.wechat", "hi")
    with bot.client() as client, pytest.raises(KeyboardInterrupt):
        for _msg in client.updates(policy=FAST):
            raise KeyboardInterrupt
    assert kinds(bot.sim) == ["start", "stop"]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT goes to the main thread")
def test_ctrl_c_during_a_poll(bot: Bot) -> None:
    bot.sim.configure(long_poll_timeout=30)  # the poll stays held until the signal interrupts it

    def interrupt() -> None:
        held(bot)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with bot.client() as client, pytest.raises(KeyboardInterrupt):
        for _msg in client.updates(policy=FAST):
            pass
    assert kinds(bot.sim) == ["start", "stop"]


def test_no_stop_after_a_stale_token(bot: Bot) -> None:
    bot.say("alice@im.wechat", "hi")
    with bot.client() as client, pytest.raises(E.StaleTokenError):
        for _msg in client.updates(policy=FAST):
            bot.sim.revoke_token(bot.bot_id)  # the next poll answers -14
    assert kinds(bot.sim) == ["start"]  # a notifystop with a dead token would only get -14 too


def test_a_failing_notify_does_not_stop_the_stream(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    bot.sim.add_fault(http_500=1.0, count=1, endpoints=["notify_start"])
    bot.sim.add_fault(reset=1.0, count=1, endpoints=["notify_stop"])
    bot.say("alice@im.wechat", "hi")
    caplog.set_level(logging.WARNING, logger="openclaw_nb")
    with bot.client() as client:
        updates = client.updates(policy=FAST)
        got = []
        for msg in updates:
            got.append(msg.text)
            break
    assert got == ["hi"]
    assert kinds(bot.sim) == []  # neither reached the simulator's handler
    failed = [e.message for e in updates.events if e.kind == "notify"]
    assert len(failed) == 2
    assert failed[0].startswith("notifystart failed (") and failed[1].startswith("notifystop failed (")
    assert sum("failed" in r.getMessage() and "notify" in r.getMessage() for r in caplog.records) == 2
    assert bot.token not in " ".join(failed)


# --- the async iterator --------------------------------------------------------------------------------


def test_async_stop_on_cancel_during_a_poll(bot: Bot) -> None:
    async def main() -> None:
        async with bot.aclient() as client:

            async def consume() -> None:
                async for _msg in client.updates(policy=FAST):
                    pass

            task = asyncio.create_task(consume())
            await asyncio.to_thread(held, bot)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert kinds(bot.sim) == ["start", "stop"]  # sent before the task finished

    asyncio.run(main())


def test_async_with_and_break(bot: Bot) -> None:
    bot.say("alice@im.wechat", "hi")

    async def main() -> list[str]:
        async with bot.aclient() as client:
            async with client.updates(policy=FAST) as updates:
                async for _msg in updates:
                    break
            return kinds(bot.sim)  # on the way out of the block, before the generator is collected

    assert asyncio.run(main()) == ["start", "stop"]
    assert kinds(bot.sim) == ["start", "stop"]  # the generator's own ending sent no second stop


def test_async_break_without_async_with(bot: Bot) -> None:
    bot.say("alice@im.wechat", "hi")

    async def main() -> None:
        async with bot.aclient() as client:
            async for _msg in client.updates(policy=FAST):
                break
            # The event loop closes the abandoned generator (at the latest when it shuts down its generators).
            await asyncio.to_thread(bot.sim.wait_for, lambda s: "stop" in [n.kind for n in s.notifications], 10)

    asyncio.run(main())
    assert kinds(bot.sim) == ["start", "stop"]


def test_async_break_where_the_loop_has_no_generator_hooks(bot: Bot) -> None:
    # Under some nested notebook loops the running loop has no async generator hooks: Python then closes an
    # abandoned generator at once, where its ``finally`` must not await. The stop goes out from a task of its
    # own, and the client stays usable.
    bot.say("alice@im.wechat", "hi")

    async def main() -> None:
        saved = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=None, finalizer=None)
        try:
            async with bot.aclient() as client:
                async for _msg in client.updates(policy=FAST):
                    break
                await asyncio.to_thread(bot.sim.wait_for, lambda s: "stop" in [n.kind for n in s.notifications], 10)
                bot.say("alice@im.wechat", "again")
                page = await client.get_updates()  # the connection the stop used is in order
                assert [m.text for m in page.messages] == ["again"]
        finally:
            sys.set_asyncgen_hooks(*saved)

    asyncio.run(main())
    assert kinds(bot.sim) == ["start", "stop"]


# --- the live feed -------------------------------------------------------------------------------------


def test_thread_feed_start_and_stop(bot: Bot) -> None:
    with bot.client() as client:
        feed = client.stream()
        bot.say("alice@im.wechat", "hi")
        feed.wait_rows(1)
        assert kinds(bot.sim) == ["start"]
        feed.stop()
        feed.wait(10)
    assert kinds(bot.sim) == ["start", "stop"]


def test_async_feed_stop_cancels_and_sends_stop(bot: Bot) -> None:
    async def main() -> None:
        async with bot.aclient() as client:
            feed = client.stream()
            await asyncio.to_thread(held, bot)
            assert kinds(bot.sim) == ["start"]
            feed.stop()
            await feed.finished()
            assert feed.error is None
            assert kinds(bot.sim) == ["start", "stop"]

    asyncio.run(main())


def test_async_feed_task_cancelled_from_outside(bot: Bot) -> None:
    async def main() -> None:
        async with bot.aclient() as client:
            feed = client.stream()
            await asyncio.to_thread(held, bot)
            assert feed._task is not None
            feed._task.cancel()  # as a kernel restart or a cancelled cell would
            with pytest.raises(E.UsageError, match="cancelled"):
                await feed.finished()
            assert kinds(bot.sim) == ["start", "stop"]

    asyncio.run(main())


def test_thread_feed_sends_stop_when_the_interpreter_exits(bot: Bot, tmp_path: Any) -> None:
    # A separate interpreter starts a feed against this simulator and exits while the feed's long poll is
    # held (a kernel shutdown): the atexit hook tells the server.
    bot.sim.configure(long_poll_timeout=30)
    script = textwrap.dedent(
        f"""
        import sys
        from openclaw_nb.client import Client
        client = Client({bot.token!r}, base_url={bot.sim.base_url!r}, bot_id={bot.bot_id!r}, record=False)
        feed = client.stream(persist=False)
        sys.stdin.readline()   # the test says when the poll is held
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        held(bot, timeout=30)
        assert kinds(bot.sim) == ["start"]
        assert proc.stdin is not None
        proc.stdin.write(b"\n")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert kinds(bot.sim) == ["start", "stop"]
