"""Fixtures of the security tests: a live simulator (reset per test) and a home folder in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openclaw_nb.sim import SimConfig, Simulator

#: Login options that make a whole login take milliseconds.
FAST = {"poll_interval": 0.01, "failure_pause": 0.01, "input_check_interval": 0.01, "deadline": 20.0}


def config() -> SimConfig:
    return SimConfig(long_poll_timeout=0.5, record_requests=500)


@pytest.fixture(scope="package")
def _server() -> Iterator[Simulator]:
    with Simulator(config()) as sim:
        yield sim


@pytest.fixture
def sim(_server: Simulator) -> Iterator[Simulator]:
    _server.reset(config())
    yield _server
    _server.clear_faults()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(path))
    return path
