"""The simulator answers at once on every uvicorn path, the pure-Python one included: h11 on the asyncio loop,
which is what a base install without ``uvicorn[standard]`` (the ``fast`` extra) runs, Binder too.

That path writes a response's head and body as two writes. With Nagle's algorithm on, the body waited for the
client's delayed ACK: about 40 ms per request, 45 times slower than with httptools. Tests never assert on time,
so these check the mechanism that prevents the stall: every socket the simulator listens on or accepts has
``TCP_NODELAY`` set.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from openclaw_nb import Client
from openclaw_nb.sim import Simulator
from openclaw_nb.sim.server import _bind


def nodelay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_listening_and_accepted_sockets_have_nagle_off() -> None:
    with _bind("127.0.0.1", 0) as listener:
        # asyncio sets TCP_NODELAY on an accepted socket only when it says it is TCP (proto, not 0).
        assert listener.proto == socket.IPPROTO_TCP
        assert nodelay(listener)
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP
                assert nodelay(accepted)


@pytest.fixture
def pure_python_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """A simulator served as a base install serves it: h11 and the stdlib asyncio loop, whatever is installed."""
    real_config = uvicorn.Config

    def config(*args: Any, **kwargs: Any) -> uvicorn.Config:
        kwargs.update(loop="asyncio", http="h11")
        return real_config(*args, **kwargs)

    monkeypatch.setattr(uvicorn, "Config", config)
    with Simulator(long_poll_timeout=1) as sim:
        yield sim


def test_pure_python_path_serves_sequential_requests_with_nagle_off(pure_python_sim: Simulator) -> None:
    sim = pure_python_sim
    bot = sim.login_bot("owner")
    sim.say("alice", "hi")
    with Client(bot.bot_token, base_url=sim.base_url, bot_id=bot.bot_id) as client:
        msg = client.get_updates().messages[0]
        # Small sequential requests on one keep-alive connection: the pattern that stalled.
        for i in range(10):
            client.send_text(msg.from_user_id or "", f"reply {i}")
        server = sim._server
        assert server is not None
        connections = list(server.server_state.connections)
        assert connections, "the client's keep-alive connection should be open"
        for protocol in connections:
            assert isinstance(protocol, H11Protocol), type(protocol)
            transport = protocol.transport
            assert isinstance(transport, asyncio.Transport)
            assert type(transport).__module__.startswith("asyncio."), "the stdlib loop, not uvloop"
            sock = transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), "Nagle is on: ~40 ms per request"
    assert [entry.text for entry in sim.outbox] == [f"reply {i}" for i in range(10)]
