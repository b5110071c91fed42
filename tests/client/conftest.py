"""Fixtures: one simulator per module, and each test run once with Client and once with AsyncClient.

The async client is driven through a small proxy that runs each coroutine on a private event loop, so one
test body checks both drivers against the same real server.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.protocol.flow import RetryPolicy
from openclaw_nb.sim import Simulator

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


class Blocking:
    """Call an AsyncClient's coroutine methods as if they were blocking (attributes pass through)."""

    def __init__(self, client: AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if inspect.iscoroutinefunction(value):
            return lambda *a, **kw: self._loop.run_until_complete(value(*a, **kw))
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._client, name, value)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(long_poll_timeout=1.0, record_requests=50) as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_faults(sim: Simulator) -> Iterator[None]:
    yield
    sim.clear_faults()


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest, sim: Simulator) -> Iterator[Any]:
    made: list[Any] = []
    loop = asyncio.new_event_loop() if request.param == "async" else None

    def make(token: str | None = None, **kw: Any) -> Any:
        kw.setdefault("base_url", sim.base_url)
        kw.setdefault("cdn_base_url", sim.cdn_base_url)
        kw.setdefault("retry", FAST_RETRY)
        if loop is None:
            client: Any = Client(token, **kw)
        else:
            client = Blocking(AsyncClient(token, **kw), loop)
        made.append(client)
        return client

    make.driver = request.param  # type: ignore[attr-defined]
    yield make
    for client in made:
        client.close()
    if loop is not None:
        loop.close()


@pytest.fixture
def bot_client(sim: Simulator, make_client: Any) -> Any:
    """A client logged in as a fresh simulated bot (no QR), with ``.login`` holding the credentials."""
    login = sim.login_bot()
    client = make_client(login.bot_token, bot_id=login.bot_id)
    client.sim_login = login
    return client
