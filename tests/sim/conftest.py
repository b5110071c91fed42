"""Fixtures of the simulator tests: a pure SimState."""

from __future__ import annotations

import pytest
from simhelpers import sim_config

from openclaw_nb.sim import SimState


@pytest.fixture
def state() -> SimState:
    s = SimState(sim_config())
    s.set_urls("http://sim.test", "http://sim.test/c2c", "127.0.0.1:9")
    return s
