"""Fixtures of the media tests: one live simulator for the package (reset per test), a logged-in bot, a user
who has written to it, and sync/async clients whose retry pauses are recorded instead of slept."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.sim import SimConfig, Simulator

#: Short long-poll window: every get_updates here has a message waiting, so it never waits this long.
LONG_POLL = 0.5
KNOBS = {"long_poll_timeout": LONG_POLL, "seed": 5, "record_requests": 200}


@pytest.fixture(scope="package")
def _server() -> Iterator[Simulator]:
    with Simulator(**KNOBS) as sim:  # type: ignore[arg-type]
        yield sim


@pytest.fixture
def sim(_server: Simulator) -> Iterator[Simulator]:
    _server.reset(SimConfig(**KNOBS))  # a fresh config too: knobs a test changed must not leak
    yield _server
    _server.clear_faults()


class Counting(httpx.BaseTransport):
    """Real HTTP, with the path of every request the client made (retries included) in ``paths``."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path.rsplit("/", 1)[-1])
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncCounting(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path.rsplit("/", 1)[-1])
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class SimClient(Client):
    """A Client on the simulator that records its retry pauses instead of sleeping, and counts requests."""

    sleeps: list[float]
    transport: Counting

    def calls(self, path: str) -> int:
        """How many requests went to ``path`` (last path segment: ``upload``, ``getconfig``...)."""
        return self.transport.paths.count(path)


class AsyncSimClient(AsyncClient):
    sleeps: list[float]
    transport: AsyncCounting


@dataclass
class Bot:
    sim: Simulator
    token: str
    user: str

    def client(self) -> SimClient:
        transport = Counting()
        client = SimClient(
            self.token,
            base_url=self.sim.base_url,
            cdn_base_url=self.sim.cdn_base_url,
            record=False,
            transport=transport,
        )
        client.transport, client.sleeps = transport, []
        client._sleep = client.sleeps.append  # type: ignore[method-assign]
        return client

    def async_client(self) -> AsyncSimClient:
        transport = AsyncCounting()
        client = AsyncSimClient(
            self.token,
            base_url=self.sim.base_url,
            cdn_base_url=self.sim.cdn_base_url,
            record=False,
            transport=transport,
        )
        client.transport, client.sleeps = transport, []

        async def no_wait(seconds: float) -> None:
            client.sleeps.append(seconds)

        client._sleep = no_wait  # type: ignore[method-assign]
        return client


@pytest.fixture
def bot(sim: Simulator) -> Bot:
    login = sim.login_bot("owner")
    user = sim.add_user("bob", "Bob")
    return Bot(sim, login.bot_token, user)


@pytest.fixture
def client(bot: Bot) -> Iterator[SimClient]:
    """A client that has received one message from ``bot.user`` (so it holds that user's context token)."""
    bot.sim.say(bot.user, "hi bot")
    with bot.client() as client:
        page = client.get_updates()
        assert [m.from_user_id for m in page.messages] == [bot.user]
        yield client
