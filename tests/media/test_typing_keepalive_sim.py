"""The typing keepalive against the simulator over real HTTP on 127.0.0.1: while a ``typing_indicator`` block
runs, status 1 goes out again every ``keepalive`` seconds (as the official client does while it produces a
reply), then status 2; the helper thread (task) is gone when the block ends, also when the block raises."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from openclaw_nb import errors as E
from openclaw_nb.protocol import constants as C
from openclaw_nb.sim.state import SimState

from .conftest import Bot, SimClient

#: A short keepalive, so a test sees several within milliseconds.
FAST = 0.02


def statuses(bot: Bot) -> list[int]:
    return [e.status for e in bot.sim.typing_events]


def helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "openclaw-nb-typing"]


def wait_typing(bot: Bot, n: int) -> None:
    def enough(s: SimState) -> bool:
        return sum(e.status == C.TypingStatus.TYPING for e in s.typing_events) >= n

    bot.sim.wait_for(enough, 10)


def test_the_default_keepalive_is_the_official_five_seconds() -> None:
    assert C.TYPING_KEEPALIVE_SECONDS == 5.0


def test_keepalive_repeats_status_1_then_cancels_and_leaves_no_thread(client: SimClient, bot: Bot) -> None:
    before = threading.active_count()
    with client.typing_indicator(bot.user, keepalive=FAST):
        assert len(helpers()) == 1
        wait_typing(bot, 4)  # the first status 1 and three keepalives at least
    assert helpers() == [] and threading.active_count() == before
    seen = statuses(bot)
    assert seen[-1] == C.TypingStatus.CANCEL and set(seen[:-1]) == {C.TypingStatus.TYPING} and len(seen) >= 5
    # The helper was joined before the cancel went out: nothing can follow the 2.
    assert statuses(bot) == seen


def test_keepalive_ends_when_the_block_raises(client: SimClient, bot: Bot) -> None:
    before = threading.active_count()
    with pytest.raises(ZeroDivisionError), client.typing_indicator(bot.user, keepalive=FAST):
        wait_typing(bot, 2)
        1 / 0  # noqa: B018
    assert helpers() == [] and threading.active_count() == before
    assert statuses(bot)[-1] == C.TypingStatus.CANCEL


def test_keepalive_off_sends_status_1_once(client: SimClient, bot: Bot) -> None:
    for off in (None, 0):
        with client.typing_indicator(bot.user, keepalive=off):
            assert helpers() == []
    assert statuses(bot) == [1, 2, 1, 2]


def test_a_failing_keepalive_does_not_end_the_block(
    client: SimClient, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="openclaw_nb")
    with client.typing_indicator(bot.user, keepalive=FAST):
        wait_typing(bot, 1)
        bot.sim.add_fault(http_500=1.0, count=3, endpoints=["send_typing"])  # every try of the next keepalive
        bot.sim.wait_for(lambda s: not s.faults, 10)
        wait_typing(bot, 2)  # a later keepalive gets through
    assert statuses(bot)[-1] == C.TypingStatus.CANCEL
    warned = [r.getMessage() for r in caplog.records if "typing keepalive" in r.getMessage()]
    assert len(warned) == 1 and bot.user in warned[0]
    assert bot.token not in warned[0]


@pytest.mark.parametrize("bad", [-1, "5", True, float("nan")])
def test_a_bad_keepalive_is_refused_before_anything_is_sent(client: SimClient, bot: Bot, bad: object) -> None:
    with (
        pytest.raises(E.UsageError, match=r"keepalive is the number of seconds .* or None/0"),
        client.typing_indicator(bot.user, keepalive=bad),  # type: ignore[arg-type]
    ):
        pass
    assert statuses(bot) == []


def test_async_keepalive_leaves_no_task(bot: Bot) -> None:
    bot.sim.say(bot.user, "hi async")

    async def main() -> None:
        async with bot.async_client() as client:
            await client.get_updates()
            before = asyncio.all_tasks()
            async with client.typing_indicator(bot.user, keepalive=FAST):
                names = {t.get_name() for t in asyncio.all_tasks() - before}
                assert names == {"openclaw-nb-typing"}
                await asyncio.to_thread(wait_typing, bot, 4)
            assert asyncio.all_tasks() == before
            with pytest.raises(RuntimeError):
                async with client.typing_indicator(bot.user, keepalive=FAST):
                    await asyncio.to_thread(wait_typing, bot, 6)
                    raise RuntimeError("boom")
            assert asyncio.all_tasks() == before

    asyncio.run(main())
    seen = statuses(bot)
    cancels = [i for i, s in enumerate(seen) if s == C.TypingStatus.CANCEL]
    assert len(cancels) == 2 and cancels[-1] == len(seen) - 1
    assert seen.count(C.TypingStatus.TYPING) >= 6
