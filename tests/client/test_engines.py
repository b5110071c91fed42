"""The async client's two HTTP engines (httpcore and aiohttp's) behave the same, against the real simulator.

Each scenario runs on both engines and compares what a user sees: result, exception type and message, what
the recorder holds. The rest of the async suite runs on both engines too (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from openclaw_nb import engine as engine_mod
from openclaw_nb import errors as E
from openclaw_nb.client import DEFAULT_LIMITS, AsyncClient, Client, shared_ssl_context
from openclaw_nb.engine import BUFFERED_BODY_BYTES, AiohttpEngine, async_transport, resolve_engine
from openclaw_nb.protocol.flow import RetryPolicy
from openclaw_nb.sim import Simulator

pytest.importorskip("httpx_aiohttp")

ENGINES = ("httpcore", "aiohttp")
COMPARES_ENGINES = True  # tests/conftest.py: no second run per engine
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(long_poll_timeout=1.0, record_requests=50) as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_faults(sim: Simulator) -> Iterator[None]:
    yield
    sim.clear_faults()


def on_both(scenario: Callable[[str], Awaitable[Any]]) -> dict[str, Any]:
    """``scenario(engine)`` run on each engine (its own event loop): what it returned, or the exception."""
    seen: dict[str, Any] = {}
    for name in ENGINES:
        try:
            seen[name] = asyncio.run(scenario(name))
        except Exception as exc:
            seen[name] = exc
    return seen


async def ready_client(sim: Simulator, **kw: Any) -> tuple[AsyncClient, str]:
    """A logged-in client that has read one message from a user (so it holds a context token)."""
    login = sim.login_bot()
    client = AsyncClient(login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, retry=FAST_RETRY, **kw)
    user = f"u-{client.engine}-{id(client)}@im.wechat"
    sim.say(user, "hi", bot_id=login.bot_id)
    page = await client.get_updates(timeout=5)
    assert page.msgs, "the simulator's message should arrive"
    return client, user


# --- choosing ----------------------------------------------------------------------------------------------


def test_in_a_kernel_auto_is_httpcore_and_aiohttp_only_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocking calls in a kernel re-enter its loop (nest_asyncio), which aiohttp's engine does not survive: there
    "auto" picks httpcore (tests/notebooks/test_magics_run_all.py runs the magics in a real kernel)."""
    from openclaw_nb import env

    monkeypatch.delenv(engine_mod.ENGINE_ENV, raising=False)
    monkeypatch.setattr(env, "in_kernel", lambda: True)
    assert resolve_engine(None) == resolve_engine("auto") == "httpcore"
    assert resolve_engine("aiohttp") == "aiohttp"
    assert Client("t", record=False).engine == "httpcore"
    monkeypatch.setattr(env, "in_kernel", lambda: False)
    assert resolve_engine("auto") == "aiohttp"


def test_the_engine_is_chosen_by_argument_or_environment_and_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(engine_mod.ENGINE_ENV, raising=False)
    assert resolve_engine(None) == "aiohttp"  # auto, with httpx-aiohttp installed
    for name in ENGINES:
        client = AsyncClient("t", engine=name, record=False)
        assert client.engine == name and f"engine={name!r}" in repr(client)
        transport = client._http._transport
        assert ("AiohttpEngine" in repr(transport)) == (name == "aiohttp")
        # the pool sizes chosen by benchmarks/bench_concurrency.py
        size = transport.limits.max_connections if name == "aiohttp" else transport._pool._max_connections
        assert size == (64 if name == "aiohttp" else 16)
        asyncio.run(client.aclose())
    monkeypatch.setenv(engine_mod.ENGINE_ENV, "httpcore")
    assert AsyncClient("t").engine == "httpcore"
    assert AsyncClient("t", engine="aiohttp").engine == "aiohttp"  # the argument wins
    assert AsyncClient("t", transport=httpx.AsyncHTTPTransport()).engine == "transport"
    assert Client("t").engine == "httpcore"


def test_the_plain_install_runs_on_httpcore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(engine_mod.ENGINE_ENV, raising=False)
    monkeypatch.setattr(engine_mod, "aiohttp_available", lambda: False)
    assert AsyncClient("t").engine == "httpcore"
    with pytest.raises(E.UsageError, match=r"needs the httpx-aiohttp package: pip install 'openclaw-nb\[fast\]'"):
        AsyncClient("t", engine="aiohttp")


def test_bad_engine_choices_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(E.UsageError, match=r"engine='curl' is not an HTTP engine: use one of 'auto', 'aiohttp'"):
        AsyncClient("t", engine="curl")
    monkeypatch.setenv(engine_mod.ENGINE_ENV, "fast")
    with pytest.raises(E.UsageError, match=r"\$OPENCLAW_NB_ASYNC_ENGINE='fast' is not an HTTP engine"):
        AsyncClient("t")
    with pytest.raises(E.UsageError, match="both choose the HTTP engine: give one of them"):
        AsyncClient("t", engine="aiohttp", transport=httpx.AsyncHTTPTransport())


# --- the same behaviour ------------------------------------------------------------------------------------


def test_a_send_records_the_same_exchange_and_wire_headers(sim: Simulator) -> None:
    async def scenario(engine: str) -> tuple[Any, ...]:
        client, user = await ready_client(sim, engine=engine)
        sim.clear_conformance()
        async with client:
            await client.send_text(user, "hello")
        entry = client.log[-1]
        sent = sim.wait_for_outbox(bot_id=client.bot_id)[-1]
        return entry.call, entry.status, sorted(entry.request_headers), sent.text, sim.conformance()

    seen = on_both(scenario)
    assert seen["httpcore"] == seen["aiohttp"]
    assert seen["aiohttp"][3] == "hello" and seen["aiohttp"][4] == []


def test_the_request_bytes_on_the_wire_are_the_same() -> None:
    """Header names keep their spelling (httpx-aiohttp alone sends them lower-cased), in the same order."""

    async def scenario(engine: str) -> list[bytes]:
        heads: list[bytes] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k == b"Content-Length"
            )
            await reader.readexactly(length)
            heads.append(head)
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"ret":0}')
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, AsyncClient("tok", base_url=f"http://127.0.0.1:{port}", engine=engine) as client:
            await client.notify_start()
        return [line.split(b":")[0] for line in heads[0].split(b"\r\n")]

    seen = on_both(scenario)
    assert seen["httpcore"] == seen["aiohttp"]
    assert b"AuthorizationType" in seen["aiohttp"] and b"iLink-App-Id" in seen["aiohttp"]


def test_refused_connection_reads_the_same(sim: Simulator) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario(engine: str) -> Any:
        async with AsyncClient("t", base_url=f"http://127.0.0.1:{port}", retry=FAST_RETRY, engine=engine) as c:
            await c.notify_start()

    seen = on_both(scenario)
    core, aio = seen["httpcore"], seen["aiohttp"]
    assert isinstance(core, E.TransportError) and type(aio) is type(core)
    assert str(aio) == str(core) and "ConnectError: All connection attempts failed" in str(core)
    assert type(aio.__cause__) is type(core.__cause__) is httpx.ConnectError


@pytest.mark.parametrize("fault", ["reset", "lost_response"])
def test_a_send_without_an_answer_is_delivery_unknown_on_both(sim: Simulator, fault: str) -> None:
    """httpx-aiohttp alone reports these as ConnectTimeout ("never sent"): a retry could deliver twice."""

    async def scenario(engine: str) -> Any:
        client, user = await ready_client(sim, engine=engine)
        sim.add_fault(**{fault: 1.0}, count=1, endpoints=["send_message"])
        async with client:
            await client.send_text(user, "once", client_id="cid-1")

    seen = on_both(scenario)
    core, aio = seen["httpcore"], seen["aiohttp"]
    assert isinstance(core, E.DeliveryUnknownError), core
    assert type(aio) is type(core) and str(aio) == str(core)
    assert type(aio.__cause__) is type(core.__cause__)


def test_timeouts_fire_with_the_same_types(sim: Simulator) -> None:
    async def scenario(engine: str) -> tuple[Any, ...]:
        client, _user = await ready_client(sim, engine=engine)
        async with client:
            sim.add_fault(delay_ms=3000, count=1, endpoints=["get_updates"])
            page = await client.get_updates(timeout=0.3)  # a long poll's own timeout: an empty page
            transport = async_transport(engine, DEFAULT_LIMITS, shared_ssl_context())
            async with httpx.AsyncClient(transport=transport) as raw:
                sim.add_fault(delay_ms=3000, count=1, endpoints=["get_config"])
                try:
                    await raw.post(f"{sim.base_url}/ilink/bot/getconfig", json={}, timeout=0.3)
                except httpx.TimeoutException as exc:
                    return page.timed_out, page.msgs, type(exc), str(exc)
        return ("no timeout",)

    seen = on_both(scenario)
    assert seen["httpcore"] == seen["aiohttp"] == (True, [], httpx.ReadTimeout, "")


def test_a_cancelled_request_leaves_the_pool_usable(sim: Simulator) -> None:
    """One pooled connection only: a cancelled request that kept its connection would stall the next one."""

    async def scenario(engine: str) -> Any:
        transport = async_transport(engine, httpx.Limits(max_connections=1), shared_ssl_context())
        client, user = await ready_client(sim, transport=transport)
        async with client:
            sim.add_fault(delay_ms=5000, count=1, endpoints=["get_config"])
            task = asyncio.create_task(client.get_config(user))
            # the rule is dropped once the server drew it: the request is at the server
            await asyncio.to_thread(sim.wait_for, lambda st: not st.faults, 5.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            config = await asyncio.wait_for(client.get_config(user), 5.0)
            sent = await asyncio.wait_for(client.send_text(user, "after"), 5.0)
            return bool(config.typing_ticket), sent.ret, sim.wait_for_outbox(bot_id=client.bot_id)[-1].text

    seen = on_both(scenario)
    assert seen["httpcore"] == seen["aiohttp"] == (True, 0, "after")


def test_streamed_upload_and_capped_download(sim: Simulator) -> None:
    data = bytes(range(256)) * 2048  # 512 KiB: over BUFFERED_BODY_BYTES, so the upload goes through httpcore

    async def scenario(engine: str) -> tuple[Any, ...]:
        client, user = await ready_client(sim, engine=engine)
        async with client:
            media = await client.upload(data, user, "file", name="a.bin", progress=False)
            whole = await client.cdn_download(media.encrypt_query_param)
            try:
                await client.cdn_download(media.encrypt_query_param, max_bytes=1000)
            except E.OpenClawError as exc:
                capped: Any = (type(exc), str(exc).replace(media.encrypt_query_param, "<param>"))
            else:
                capped = "not capped"
            return len(whole), media.filesize, capped

    seen = on_both(scenario)
    assert seen["httpcore"] == seen["aiohttp"], seen
    size, filesize, capped = seen["aiohttp"]
    assert size == filesize > len(data) and capped != "not capped"


def test_retry_after_is_honoured_on_both(sim: Simulator) -> None:
    async def scenario(engine: str) -> tuple[Any, ...]:
        client, user = await ready_client(sim, engine=engine)
        async with client:
            sim.add_fault(http_429=1.0, retry_after=0, count=1, endpoints=["send_message"])
            resp = await client.send_text(user, "after 429")
        attempts = [e.status for e in client.log if e.call == "send_message"]
        return resp.ret, attempts

    seen = on_both(scenario)
    assert seen["httpcore"] == seen["aiohttp"] == (0, [429, 200])


# --- what aiohttp cannot do, and how the engine covers it ---------------------------------------------------


@pytest.fixture
def deaf_server() -> Iterator[int]:
    """A loopback port whose server accepts connections and never reads from them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections complete in the kernel and are never accepted
    yield listener.getsockname()[1]
    listener.close()


async def _post(transport: httpx.AsyncBaseTransport, port: int, content: Any) -> BaseException | None:
    async with httpx.AsyncClient(transport=transport) as http:
        try:
            await asyncio.wait_for(http.post(f"http://127.0.0.1:{port}/", content=content, timeout=0.5), 5.0)
        except (httpx.TransportError, TimeoutError) as exc:
            return exc
    return None


def test_large_and_streamed_bodies_get_a_write_timeout(deaf_server: int) -> None:
    """aiohttp has no write timeout: the engine sends large and streamed bodies through httpcore, which
    raises WriteTimeout when the peer stops reading (aiohttp alone would wait; asyncio's 5 s stops it)."""
    big = b"x" * (64 << 20)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"x" * (1 << 20)

    async def scenario(engine: str) -> tuple[Any, ...]:
        transport = async_transport(engine, DEFAULT_LIMITS, True)
        return type(await _post(transport, deaf_server, big)), type(await _post(transport, deaf_server, chunks()))

    seen = on_both(scenario)
    assert seen["httpcore"] == seen["aiohttp"] == (httpx.WriteTimeout, httpx.WriteTimeout)

    async def small() -> Any:
        engine = AiohttpEngine(limits=DEFAULT_LIMITS)
        body = b"{}" * (BUFFERED_BODY_BYTES // 2)  # fits the socket buffers: sent by aiohttp, then read times out
        return type(await _post(engine, deaf_server, body)), engine._httpcore

    assert asyncio.run(small()) == (httpx.ReadTimeout, None)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "Server disconnected without sending a response."),  # closed after reading the request
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", None),  # the body ends early
        (b"HELLO\r\n\r\n", None),  # not HTTP
    ],
    ids=["closed", "short-body", "not-http"],
)
def test_broken_answers_raise_the_same_error_types(answer: bytes, message: str | None) -> None:
    """A server that closes early or does not speak HTTP: the same httpx error on both engines (for a short
    body and a bad status line, the texts are each library's own)."""

    async def scenario(engine: str) -> tuple[type[BaseException], str]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, httpx.AsyncClient(transport=async_transport(engine, DEFAULT_LIMITS, True)) as http:
            try:
                response = await http.get(f"http://127.0.0.1:{port}/", timeout=5)
                await response.aread()
            except httpx.TransportError as exc:
                return type(exc), str(exc)
        return type(None), "answered"

    seen = on_both(scenario)
    assert seen["httpcore"][0] is seen["aiohttp"][0] is httpx.RemoteProtocolError, seen
    if message is not None:
        assert seen["httpcore"][1] == seen["aiohttp"][1] == message


def test_neither_engine_reads_proxy_settings_from_the_environment(
    sim: Simulator, deaf_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client gives httpx a transport of its own, so HTTP_PROXY is not read, on either engine (a plain
    httpx client would send through the proxy: a deaf one here, so it times out)."""
    proxy = f"http://127.0.0.1:{deaf_server}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def plain() -> Any:
        async with httpx.AsyncClient(timeout=0.5) as http:
            try:
                await http.post(f"{sim.base_url}/ilink/bot/msg/notifystart", json={})
            except httpx.TimeoutException as exc:
                return type(exc)
        return None

    assert asyncio.run(plain()) is httpx.ReadTimeout  # the environment's proxy would be used

    async def scenario(engine: str) -> int:
        login = sim.login_bot()
        async with AsyncClient(login.bot_token, base_url=sim.base_url, engine=engine, retry=FAST_RETRY) as client:
            return (await client.notify_start()).ret

    assert on_both(scenario) == {"httpcore": 0, "aiohttp": 0}
