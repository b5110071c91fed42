"""Fixtures of the simulator tests: a pure SimState, one live Simulator per session (reset for each test)
and an httpx client on it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from simhelpers import LONG_POLL, sim_config

from openclaw_nb.sim import SimState, Simulator


@pytest.fixture
def state() -> SimState:
    s = SimState(sim_config())
    s.set_urls("http://sim.test", "http://sim.test/c2c", "127.0.0.1:9")
    return s


@pytest.fixture(scope="session")
def _server() -> Iterator[Simulator]:
    with Simulator(sim_config()) as sim:
        yield sim


@pytest.fixture
def sim(_server: Simulator) -> Iterator[Simulator]:
    _server.reset(sim_config())
    yield _server
    _server.clear_faults()


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=LONG_POLL + 5) as client:
        yield client
