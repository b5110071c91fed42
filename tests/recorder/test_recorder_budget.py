"""The recorder's byte budget: each recorder keeps its exchanges within a memory budget (oldest dropped first,
counted in ``dropped``), several recorders can share one (``Accounts`` does), and the estimate it counts with
stays close to what the exchanges really hold."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb import Client
from openclaw_nb.accounts import DEFAULT_SHARED_LOG_BYTES, Accounts
from openclaw_nb.recorder import LogBudget, Recorder, footprint
from openclaw_nb.sim import Simulator
from openclaw_nb.store import Credentials, Store


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(long_poll_timeout=0.01) as s:
        yield s


def bot_client(sim: Simulator, user: str, **kw: Any) -> Client:
    login = sim.login_bot(user)
    return Client(login.bot_token, base_url=sim.base_url, bot_id=login.bot_id, **kw)


def test_a_recorder_keeps_within_its_byte_budget(sim: Simulator) -> None:
    budget = 40_000
    with bot_client(sim, "ann", log_bytes=budget) as client:
        ids = []
        for i in range(60):
            sim.say("ann", f"message {i} " * 30)
            client.get_updates()
            ids.append(client.log[-1].id)
            assert client.log.bytes <= budget
        kept = [ex.id for ex in client.log]
        assert kept == ids[-len(kept) :]  # the newest, in order: the oldest went first
        assert client.log.dropped == len(ids) - len(kept) > 0
        assert client.log.bytes == sum(footprint(ex) for ex in client.log)
        assert client.log.max_bytes == budget and client.log.maxlen == 1000


def test_the_newest_exchange_stays_whatever_its_size() -> None:
    rec = Recorder(max_bytes=1)
    assert rec.budget.max_bytes == 1
    with Simulator(long_poll_timeout=0.01) as sim:
        login = sim.login_bot("bo")
        with Client(login.bot_token, base_url=sim.base_url, log_bytes=1) as client:
            client.get_updates()
            first = client.log[-1].id
            client.get_updates()
            assert [ex.id for ex in client.log] == [first + 1] and client.log.dropped == 1


def test_recorders_sharing_a_budget_drop_the_oldest_of_all(sim: Simulator) -> None:
    shared = LogBudget(60_000)
    a = bot_client(sim, "cy", log_bytes=shared)
    b = bot_client(sim, "di", log_bytes=shared)
    order: list[tuple[str, int]] = []
    with a, b:
        for i in range(40):
            for name, client, user in (("a", a, "cy"), ("b", b, "di")):
                if i % 3 == 0:
                    sim.say(user, "x" * 500)
                client.get_updates()
                order.append((name, client.log[-1].id))
                assert shared.used <= shared.max_bytes
        kept = {("a", ex.id) for ex in a.log} | {("b", ex.id) for ex in b.log}
        assert kept == set(order[-len(kept) :])  # a suffix of everything both recorded
        assert a.log.dropped + b.log.dropped == len(order) - len(kept) > 0
        assert shared.used == a.log.bytes + b.log.bytes
        assert a.log.budget is b.log.budget is shared


def test_clear_and_collection_give_the_bytes_back(sim: Simulator) -> None:
    shared = LogBudget(10_000_000)
    a = bot_client(sim, "ed", log_bytes=shared)
    b = bot_client(sim, "fa", log_bytes=shared)
    for _ in range(2):
        a.get_updates()
        b.get_updates()
    held_by_b = b.log.bytes
    assert shared.used == a.log.bytes + held_by_b > 0
    a.log.clear()
    assert a.log.bytes == 0 and shared.used == held_by_b
    a.close()
    b.close()
    del b
    gc.collect()
    assert shared.used == 0


def test_the_estimate_is_close_to_the_memory_held(sim: Simulator) -> None:
    with bot_client(sim, "gil", log_size=5000, log_bytes=None) as client:
        for _ in range(3):  # warm up caches the recorder fills once (header names, pools)
            client.get_updates()
        client.log.clear()
        gc.collect()
        tracemalloc.start()
        try:
            for i in range(200):
                if i % 2:
                    sim.say("gil", f"a message of some length, number {i} " * 5)
                client.get_updates()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
            counted = client.log.bytes
            client.log.clear()
            gc.collect()
            held -= tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert 0.6 * held <= counted <= 1.5 * held, (counted, held)


@pytest.mark.parametrize("bad", [0, -5, "8MB", 1.5, True])
def test_bad_budgets_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        Recorder(max_bytes=bad)
    with pytest.raises(ValueError, match="bytes"):
        LogBudget(bad)


def test_accounts_share_one_budget(sim: Simulator, tmp_path: Path) -> None:
    store = Store(tmp_path)
    for user in ("hal", "ivy", "jo"):
        login = sim.login_bot(user)
        store.save_credentials(
            Credentials(bot_token=login.bot_token, ilink_bot_id=login.bot_id, baseurl=sim.base_url, ilink_user_id=user)
        )
    with Accounts.load(home=tmp_path) as accounts:
        budget = accounts.log_budget
        assert budget is not None and budget.max_bytes == DEFAULT_SHARED_LOG_BYTES
        assert all(client.log.budget is budget for client in accounts.clients.values())
    with Accounts.load(home=tmp_path, log_bytes=50_000) as accounts:
        assert accounts.log_budget is not None and accounts.log_budget.max_bytes == 50_000
    with Accounts.load(home=tmp_path, log_bytes=None) as accounts:
        budgets = {id(client.log.budget) for client in accounts.clients.values()}
        assert accounts.log_budget is None and len(budgets) == 3
