"""Fixtures of the chat panel tests: one live simulator for the package (reset per test) with a short long-poll
window, a bot logged in without QR, a client that records its exchanges, and a private $OPENCLAW_NB_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openclaw_nb.client import Client
from openclaw_nb.live import Feed
from openclaw_nb.sim import SimConfig, Simulator

KNOBS = {"long_poll_timeout": 0.25, "seed": 5}


@pytest.fixture(scope="package")
def _server() -> Iterator[Simulator]:
    with Simulator(**KNOBS) as sim:  # type: ignore[arg-type]
        yield sim


@pytest.fixture
def sim(_server: Simulator) -> Iterator[Simulator]:
    _server.reset(SimConfig(**KNOBS))  # type: ignore[arg-type]
    yield _server
    _server.clear_faults()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(path))
    return path


@pytest.fixture
def client(sim: Simulator) -> Iterator[Client]:
    login = sim.login_bot("owner")
    with Client(login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id) as c:
        yield c


@pytest.fixture
def feed(client: Client) -> Iterator[Feed]:
    running = client.stream(persist=False)
    yield running
    running.stop()
    running.wait(10)  # its notifystop goes out before the client closes
