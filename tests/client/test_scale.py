"""Scale and hostile answers on the client side: API answers are read up to ``max_response_bytes`` (a larger one is
a ProtocolError naming the limit and how to raise it, read no further than the limit), and every client shares one
TLS context instead of building its own (what made ``Accounts.load`` of 200 accounts take seconds)."""

from __future__ import annotations

import asyncio
import http.server
import logging
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import AsyncClient, Client, shared_ssl_context
from openclaw_nb.engine import AiohttpEngine
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.poll import PollPolicy
from openclaw_nb.sim import Simulator

CAP = 64 * 1024


def fill_a_page(sim: Simulator, user: str, size: int) -> None:
    """Inbound messages whose getupdates page is well over ``size`` bytes."""
    for i in range(size // 4000 + 10):
        sim.say(user, f"{i:04d} " + "x" * 4000)


def test_an_answer_over_the_cap_is_a_protocol_error_naming_the_limit(sim: Simulator, make_client: Any) -> None:
    login = sim.login_bot("carol")
    fill_a_page(sim, "carol", CAP)
    client = make_client(login.bot_token, bot_id=login.bot_id, max_response_bytes=CAP)
    with pytest.raises(E.ProtocolError) as caught:
        client.get_updates()
    message = str(caught.value)
    assert f"{CAP:,} bytes" in message and "max_response_bytes" in message
    assert caught.value.endpoint == "get_updates"
    # raised, the same page reads whole (nothing was lost: the cursor did not move)
    client.max_response_bytes = C.MAX_API_RESPONSE_BYTES
    page = client.get_updates()
    assert len(page.messages) == min(CAP // 4000 + 10, sim.state.config.page_size)


def test_the_default_cap_reads_a_full_real_page(sim: Simulator, make_client: Any) -> None:
    login = sim.login_bot("dave")
    for i in range(100):
        sim.say("dave", f"{i:03d} " + "长" * 1300)  # 100 messages near the longest text: a big real page
    client = make_client(login.bot_token, bot_id=login.bot_id)
    assert client.max_response_bytes == C.MAX_API_RESPONSE_BYTES
    assert len(client.get_updates().messages) == 100


def test_the_update_stream_names_the_cap_and_reads_on_once_it_is_raised(sim: Simulator) -> None:
    login = sim.login_bot("erin")
    fill_a_page(sim, "erin", CAP)
    expected = CAP // 4000 + 10
    named = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "max_response_bytes" in record.getMessage() and f"{CAP:,} bytes" in record.getMessage():
                named.set()

    watch = Watch()
    logging.getLogger("openclaw_nb").addHandler(watch)
    got: list[Any] = []
    try:
        with Client(
            login.bot_token, base_url=sim.base_url, bot_id=login.bot_id, max_response_bytes=CAP, record=False
        ) as client:
            updates = client.updates(policy=PollPolicy(retry_delay=0.01, backoff_after=1000), persist=False)

            def consume() -> None:
                for msg in updates:
                    got.append(msg)
                    if len(got) >= expected:
                        break

            thread = threading.Thread(target=consume, daemon=True)
            thread.start()
            assert named.wait(10), "the stream's retry never named the cap"
            assert got == []
            client.max_response_bytes = C.MAX_API_RESPONSE_BYTES
            thread.join(20)
            if thread.is_alive():
                updates.stop()
    finally:
        logging.getLogger("openclaw_nb").removeHandler(watch)
    assert len(got) == expected and len({m.message_id for m in got}) == expected


@pytest.mark.parametrize("bad", [0, 1023, "32MB", 1.5, True, None])
def test_max_response_bytes_is_checked(bad: Any) -> None:
    with pytest.raises(E.UsageError, match="max_response_bytes"):
        Client("t", base_url="http://127.0.0.1:9", max_response_bytes=bad)


class Chunked(http.server.BaseHTTPRequestHandler):
    """An answer with no Content-Length, sent in chunks for as long as the client reads (a hostile or broken
    server); ``sent`` counts the bytes that got out before the client hung up."""

    chunk = b"x" * 16384
    total = 64 * 1024 * 1024
    sent = 0
    done = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wfile.write(b'8\r\n{"ret":0\r\n')
            while type(self).sent < self.total:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(self.chunk), self.chunk))
                type(self).sent += len(self.chunk)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading and closed: what the test wants
        finally:
            type(self).done.set()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def chunked_server() -> Iterator[str]:
    Chunked.sent = 0
    Chunked.done = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Chunked)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_streamed_answer_is_read_no_further_than_the_cap(chunked_server: str, driver: str) -> None:
    kw: dict[str, Any] = {"base_url": chunked_server, "max_response_bytes": CAP, "record": False}
    if driver == "sync":
        with Client("t", **kw) as client, pytest.raises(E.ProtocolError, match="max_response_bytes"):
            client.get_config("u@im.wechat")
    else:

        async def run() -> None:
            async with AsyncClient("t", **kw) as client:
                with pytest.raises(E.ProtocolError, match="max_response_bytes"):
                    await client.get_config("u@im.wechat")

        asyncio.run(run())
    assert Chunked.done.wait(10)
    # the client hung up near the cap, long before the server's 64 MiB; socket buffers hold a few MB at most
    assert Chunked.sent < Chunked.total // 4


# --- one TLS context --------------------------------------------------------------------------------------


def test_clients_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kw: Any) -> ssl.SSLContext:
        ctx = real(*args, **kw)
        made.append(ctx)
        return ctx

    monkeypatch.setattr(ssl, "create_default_context", counting)
    shared_ssl_context.cache_clear()
    try:
        clients: list[Any] = [Client("t", base_url="http://127.0.0.1:9", record=False) for _ in range(10)]
        clients += [AsyncClient("t", base_url="https://127.0.0.1:9", record=False) for _ in range(10)]
        assert len(made) == 1  # one for all twenty (each used to build its own)
        transports = [c._http._transport for c in clients]
        contexts = [t.ssl_context if isinstance(t, AiohttpEngine) else t._pool._ssl_context for t in transports]
        assert all(ctx is made[0] for ctx in contexts)
        for c in clients[:10]:
            c.close()
        for c in clients[10:]:
            asyncio.run(c.aclose())
    finally:
        shared_ssl_context.cache_clear()


def test_a_given_transport_is_used_as_is() -> None:
    transport = httpx.HTTPTransport(verify=False)
    with Client("t", base_url="http://127.0.0.1:9", record=False, transport=transport) as client:
        assert client._http._transport is transport
