"""Load, the smaller form of issue 15's test: many accounts on one event loop (``Accounts``), each running its async
update stream with persistence and the recorder on, while messages keep arriving: every message arrives exactly
once, and the recorders' memory stays within the shared budget (the oldest exchanges of all dropped first)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openclaw_nb.accounts import Accounts
from openclaw_nb.protocol.flow import RetryPolicy
from openclaw_nb.protocol.poll import PollPolicy
from openclaw_nb.sim import Simulator
from openclaw_nb.store import Credentials, Store

BUDGET = 1024 * 1024  # far below what 40 recorders of 1,000 exchanges would hold
FAST = PollPolicy(retry_delay=0.01, backoff_after=3, backoff_delay=0.05)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(long_poll_timeout=0.25, seed=3) as s:
        yield s


@pytest.mark.parametrize(
    ("bots", "per_bot"),
    [(40, 100), pytest.param(200, 200, marks=pytest.mark.slow, id="200x200")],  # the full form: 40,000 messages
)
def test_many_accounts_on_one_loop_lose_nothing_within_the_log_budget(
    sim: Simulator, tmp_path: Path, bots: int, per_bot: int
) -> None:
    store = Store(tmp_path)
    users: dict[str, str] = {}
    for i in range(bots):
        user = f"load-user-{bots}-{i}"
        login = sim.login_bot(user)
        users[login.bot_id] = user
        store.save_credentials(
            Credentials(bot_token=login.bot_token, ilink_bot_id=login.bot_id, baseurl=sim.base_url, ilink_user_id=user)
        )
    expected = {bot: {f"{bot} #{n}" for n in range(per_bot)} for bot in users}

    def produce(numbers: range) -> None:
        for n in numbers:
            for bot, user in users.items():
                sim.say(user, f"{bot} #{n}", bot)

    produce(range(per_bot // 2))  # half waiting before the streams start, half while they run
    later = threading.Thread(target=produce, args=(range(per_bot // 2, per_bot),))

    async def main(accounts: Accounts) -> dict[str, list[str]]:
        got: dict[str, list[str]] = {bot: [] for bot in users}

        async def consume(bot: str) -> None:
            async for msg in accounts[bot].updates(policy=FAST, store=store):
                got[bot].append(msg.text)
                if len(got[bot]) >= per_bot:
                    break

        later.start()
        await asyncio.wait_for(asyncio.gather(*(consume(bot) for bot in users)), 120)
        return got

    with Accounts.load(home=tmp_path, log_bytes=BUDGET, retry=RetryPolicy(base_delay=0.01)) as accounts:
        got = accounts._run(main(accounts))
        later.join()
        budget = accounts.log_budget
        assert budget is not None
        logs = [client.log for client in accounts.clients.values()]
        assert budget.used <= budget.max_bytes
        assert budget.used == sum(log.bytes for log in logs)
        assert sum(log.dropped for log in logs) > 0  # the budget, not maxlen, bounded them
        assert all(len(log) < log.maxlen for log in logs)
    for bot in users:
        assert len(got[bot]) == per_bot and set(got[bot]) == expected[bot], bot  # none lost, none twice
        assert store.load_cursor(bot)  # persisted as it went
