"""Fixtures of the recorder tests: a fresh loopback server per test, a recorded session, a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import LoopbackServer, SessionSecrets, run_session


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def server_factory() -> Iterator[Any]:
    started: list[LoopbackServer] = []

    def make(variant: str = "") -> LoopbackServer:
        srv = LoopbackServer(variant).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def recorded_session(server: LoopbackServer) -> Iterator[tuple[Any, LoopbackServer, SessionSecrets]]:
    """A redacted recorder holding one whole session against ``server``."""
    import httpx

    from openclaw_nb.recorder import Recorder

    rec = Recorder()
    with httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http:
        sec = run_session(http, server.base_url)
    sec.server = server.state.secrets
    yield rec, server, sec
