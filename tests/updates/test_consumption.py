"""When a message counts as consumed: once the loop asks for the next one, or on ``ack()``. An exception in
the loop body, or a ``break`` without ``ack()``, leaves it for the next stream; re-deliveries under a new id
carry ``probable_duplicate``. Against the simulator over real HTTP, with both drivers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAST, Bot


class Boom(Exception):
    pass


def say_many(bot: Bot, n: int, start: int = 0) -> list[int]:
    return [bot.say("alice", f"m{i}")["message_id"] for i in range(start, start + n)]


def take(bot: Bot, n: int, *, ack: bool = True) -> list[int]:
    """Iterate until ``n`` messages, then leave with ``break`` (after ``ack()`` when asked)."""
    got: list[int] = []
    with bot.client() as client:
        updates = client.updates(policy=FAST)
        for msg in updates:
            got.append(msg.message_id)  # type: ignore[arg-type]
            if len(got) >= n:
                if ack:
                    updates.ack()
                break
    return got


def test_an_exception_in_the_loop_body_hands_the_message_out_again(bot: Bot) -> None:
    ids = say_many(bot, 5)
    seen: list[int] = []
    with bot.client() as client, pytest.raises(Boom):
        for msg in client.updates(policy=FAST):
            seen.append(msg.message_id)  # type: ignore[arg-type]
            if len(seen) == 3:
                raise Boom("the handler failed")
    assert seen == ids[:3]
    # The third was never consumed: the next stream starts with it, and nothing before it comes again.
    assert take(bot, 3) == ids[2:]


def test_an_exception_in_the_async_loop_body_hands_the_message_out_again(bot: Bot) -> None:
    ids = say_many(bot, 4)

    async def main() -> tuple[list[int], list[int]]:
        first: list[int] = []
        again: list[int] = []
        async with bot.aclient() as client:
            with pytest.raises(Boom):
                async for msg in client.updates(policy=FAST):
                    first.append(msg.message_id)  # type: ignore[arg-type]
                    if len(first) == 2:
                        raise Boom("the handler failed")
        async with bot.aclient() as client:
            updates = client.updates(policy=FAST)
            async for msg in updates:
                again.append(msg.message_id)  # type: ignore[arg-type]
                if len(again) == 3:
                    updates.ack()
                    break
        return first, again

    first, again = asyncio.run(main())
    assert first == ids[:2] and again == ids[1:]


def test_break_without_ack_leaves_the_message_ack_consumes_it(bot: Bot) -> None:
    ids = say_many(bot, 4)
    assert take(bot, 2, ack=False) == ids[:2]
    assert take(bot, 2, ack=True) == ids[1:3]  # the second came again: it was never consumed
    assert take(bot, 1) == ids[3:]


def test_a_clean_with_block_consumes_the_message_in_hand(bot: Bot) -> None:
    ids = say_many(bot, 3)
    with bot.client() as client, client.updates(policy=FAST) as updates:
        for msg in updates:
            assert msg.message_id == ids[0]
            break
    assert take(bot, 2) == ids[1:]


def test_the_pending_file_marks_each_consumed_message(bot: Bot, home: Path) -> None:
    """While the loop runs, each message it consumed is one line after the file's JSON object: a process killed
    here (nothing closed) resumes after the last consumed one."""
    ids = say_many(bot, 6)
    path = home / "accounts" / f"{bot.bot_id}.pending.sync.json"
    with bot.client() as client:
        updates = client.updates(policy=FAST)
        it = iter(updates)
        got = [next(it).message_id for _ in range(4)]  # the fourth is in hand, three are consumed
        lines = path.read_text().splitlines()
        assert got == ids[:4] and len(json.loads(lines[0])["pending"]) == 6 and lines[1:] == ["1", "1", "1"]
        # What a restart sees now (as after a kill): read with a fresh stream on the same files.
        resumed = client._new_stream(None, True, FAST, None)
        assert [json.loads(raw)["message_id"] for raw, _ in resumed.pending] == ids[3:]
        # A mark cut short by a crash (no newline) does not count, and the next mark starts a fresh line.
        with open(path, "a") as fh:
            fh.write("1")
        assert len(client._new_stream(None, True, FAST, None).pending) == 3
        assert next(it).message_id == ids[4]
        lines = path.read_text().splitlines()
        assert lines[1:] == ["1", "1", "1", "1", "1"]  # the torn "1" and the new mark, each a line of its own
        assert len(client._new_stream(None, True, FAST, None).pending) == 1
        it.close()  # type: ignore[attr-defined]  # leaving mid-page: the file is written afresh, compact
    data = json.loads(path.read_text())
    assert [json.loads(raw)["message_id"] for raw in data["pending"]] == ids[4:]


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_redelivery_under_a_new_id_is_flagged_on_the_message(bot: Bot, driver: str) -> None:
    bot.sim.configure(duplicate_rate=1.0, duplicate_new_id=True)
    say_many(bot, 3)
    got: list[Any] = []
    if driver == "sync":
        with bot.client() as client:
            updates = client.updates(policy=FAST)
            for msg in updates:
                got.append(msg)
                if len(got) == 6:
                    updates.ack()
                    break
    else:

        async def main() -> None:
            async with bot.aclient() as client:
                updates = client.updates(policy=FAST)
                async for msg in updates:
                    got.append(msg)
                    if len(got) == 6:
                        updates.ack()
                        break

        asyncio.run(main())
    assert [m.text for m in got] == ["m0", "m0", "m1", "m1", "m2", "m2"]
    assert [m.probable_duplicate for m in got] == [False, True] * 3
    assert len({m.message_id for m in got}) == 6


def test_the_flag_survives_a_restart_in_the_pending_file(bot: Bot) -> None:
    bot.sim.configure(duplicate_rate=1.0, duplicate_new_id=True)
    say_many(bot, 2)
    with bot.client() as client:
        updates = client.updates(policy=FAST)
        for msg in updates:
            assert not msg.probable_duplicate
            updates.ack()
            break
    with bot.client() as client:
        updates = client.updates(policy=FAST)
        flags = []
        for msg in updates:
            flags.append((msg.text, msg.probable_duplicate))
            if len(flags) == 3:
                updates.ack()
                break
    assert flags == [("m0", True), ("m1", False), ("m1", True)]
