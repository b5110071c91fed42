"""Async ``updates()`` writes its files (pending messages, context tokens, cursor; each fsync'd) in a worker
thread: while one stream's write is stuck on a slow disk, the event loop serves every other task. Against the
simulator over real HTTP; the slow disk is a store whose cursor write waits for the loop to show it is alive."""

from __future__ import annotations

import asyncio
import threading

from openclaw_nb.store import Store

from .conftest import FAST, Bot


class SlowDiskStore(Store):
    """A store whose cursor write holds until the event loop has run a callback (or 5 s pass): on the loop's
    own thread that callback could never run, so the write would record that the loop was stuck."""

    loop: asyncio.AbstractEventLoop
    loop_ran: bool | None = None
    writer_thread: int | None = None

    def save_cursor(self, bot_id: str, get_updates_buf: str) -> None:
        self.writer_thread = threading.get_ident()
        alive = threading.Event()
        self.loop.call_soon_threadsafe(alive.set)
        self.loop_ran = alive.wait(5)
        super().save_cursor(bot_id, get_updates_buf)


def test_a_slow_persistence_write_does_not_stall_the_event_loop(bot: Bot) -> None:
    store = SlowDiskStore()
    ids = [bot.say("alice", f"m{i}")["message_id"] for i in range(3)]

    async def main() -> tuple[list[int], int]:
        store.loop = asyncio.get_running_loop()
        got: list[int] = []
        async with bot.aclient() as client, client.updates(policy=FAST, store=store) as updates:
            async for msg in updates:
                got.append(msg.message_id)  # type: ignore[arg-type]
                # The cursor covering this message was on disk before the message was handed out.
                assert store.load_cursor(bot.bot_id) == client.cursor
                if len(got) == len(ids):
                    break
        return got, threading.get_ident()

    got, loop_thread = asyncio.run(main())
    assert got == ids
    assert store.loop_ran is True, "the event loop was blocked while the stream wrote its cursor"
    assert store.writer_thread is not None and store.writer_thread != loop_thread


def test_a_stream_cancelled_during_its_write_ends_after_the_write(bot: Bot) -> None:
    """A cancellation that arrives while the files are being written waits for them: the cursor is on disk when
    the task ends, and the stream's close does not race the write."""

    order: list[str] = []

    class HeldStore(Store):
        entered = threading.Event()
        release = threading.Event()

        def save_cursor(self, bot_id: str, get_updates_buf: str) -> None:
            self.entered.set()
            assert self.release.wait(10), "the test never released the write"
            super().save_cursor(bot_id, get_updates_buf)
            order.append("cursor written")

    store = HeldStore()
    bot.say("alice", "hello")

    async def main() -> str | None:
        async with bot.aclient() as client:

            async def consume() -> None:
                async for _ in client.updates(policy=FAST, store=store):
                    pass

            task = asyncio.create_task(consume())
            task.add_done_callback(lambda _: order.append("task ended"))
            assert await asyncio.to_thread(store.entered.wait, 10)
            task.cancel()
            store.release.set()
            try:
                await task
            except asyncio.CancelledError:
                pass
            return client.cursor

    cursor = asyncio.run(main())
    assert order == ["cursor written", "task ended"]
    assert cursor and store.load_cursor(bot.bot_id) == cursor
