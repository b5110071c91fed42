"""Fixtures of the login tests: one live simulator for the package (reset per test), a home folder in
tmp_path (so nothing touches ~/.openclaw_nb), and fast login options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openclaw_nb.sim import SimConfig, Simulator

#: Seconds the simulator holds a status poll: short, so a test that waits on "nothing happens" stays fast.
LONG_POLL = 0.5
#: Login options that make a whole login take milliseconds.
FAST = {"poll_interval": 0.01, "failure_pause": 0.01, "input_check_interval": 0.01, "deadline": 20.0}


def config() -> SimConfig:
    return SimConfig(long_poll_timeout=LONG_POLL, record_requests=500)


@pytest.fixture(scope="package")
def _server() -> Iterator[Simulator]:
    with Simulator(config()) as sim:
        yield sim


@pytest.fixture
def sim(_server: Simulator) -> Iterator[Simulator]:
    _server.reset(config())  # a fresh config too: a test's configure() must not leak into the next
    yield _server
    _server.clear_faults()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(path))
    return path
