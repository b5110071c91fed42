"""Fixtures of the update-stream tests: one live simulator for the package (reset per test) with a short
long-poll window, a bot logged in without QR, a private $OPENCLAW_NB_HOME per test, and a fast poll policy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.protocol.poll import PollPolicy
from openclaw_nb.sim import SimConfig, Simulator

#: The server's hold of an idle long poll: short, so a stop or an idle stretch costs little.
LONG_POLL = 0.25
KNOBS = {"long_poll_timeout": LONG_POLL, "seed": 11}
#: The failure policy shrunk for tests (the real one waits 2 s and 30 s).
FAST = PollPolicy(retry_delay=0.01, backoff_after=3, backoff_delay=0.05)


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


@dataclass
class Bot:
    sim: Simulator
    bot_id: str
    token: str

    def client(self, **kw: Any) -> Client:
        kw.setdefault("record", False)
        return Client(
            self.token, base_url=self.sim.base_url, cdn_base_url=self.sim.cdn_base_url, bot_id=self.bot_id, **kw
        )

    def aclient(self, **kw: Any) -> AsyncClient:
        kw.setdefault("record", False)
        return AsyncClient(
            self.token, base_url=self.sim.base_url, cdn_base_url=self.sim.cdn_base_url, bot_id=self.bot_id, **kw
        )

    def say(self, user: str, text: str) -> dict[str, Any]:
        return self.sim.say(user, text, bot_id=self.bot_id)


@pytest.fixture
def bot(sim: Simulator) -> Bot:
    login = sim.login_bot("owner")
    return Bot(sim, login.bot_id, login.bot_token)


def files_of(home: Path) -> list[str]:
    accounts = home / "accounts"
    return sorted(p.name for p in accounts.iterdir()) if accounts.is_dir() else []
