"""The async client's HTTP engine: httpx's own (httpcore) or aiohttp's, behind the same httpx API.

``AsyncClient`` speaks httpx everywhere; only its transport differs. With the ``httpx-aiohttp`` package
installed (the ``fast`` extra) the default engine is aiohttp's, whose connection pool keeps its speed with
many requests in flight where httpcore's async pool slows down (see ``benchmarks/bench_concurrency.py``).
:class:`AiohttpEngine` makes that engine behave as httpcore does for this client:

- errors come out as the httpx exception httpcore raises for the same event, with httpcore's message (the
  aiohttp error is the ``__cause__``): a refused connection is a ``ConnectError``, a reset a ``ReadError``, a
  connection closed before the answer a ``RemoteProtocolError``. (``httpx-aiohttp`` maps the last two to
  ``ConnectTimeout``, which would make the client think an unanswered ``sendmessage`` never left);
- a request whose body could fill the socket buffers (streamed, or over 64 KiB: CDN uploads) goes through
  httpcore: aiohttp has no write timeout, so an upload to a server that stopped reading would wait forever
  where httpcore raises ``WriteTimeout`` (API calls are smaller: the kernel takes their body at once, and the
  read timeout covers the rest on both engines);
- header names go out spelled as the request has them (httpx-aiohttp would send them lower-cased);
- env settings (``HTTP_PROXY``...) are ignored, as on httpcore with a transport of the client's own.

``engine=`` on the client, or ``$OPENCLAW_NB_ASYNC_ENGINE``, chooses: ``"auto"`` (aiohttp when installed,
except in a Jupyter kernel), ``"aiohttp"`` or ``"httpcore"``.

In a kernel, ``"auto"`` is httpcore: blocking calls there (the magics, ``handle.wait()``) re-enter the kernel's
running loop through ``nest_asyncio`` (see :func:`openclaw_nb.env.run_sync`), and a request on aiohttp's engine
that is in flight when that happens can leave the loop's queue of ready callbacks out of step with the
iteration that was running, which kills the kernel (``IndexError: pop from an empty deque`` in
``asyncio``; ``tests/notebooks/test_magics_run_all.py`` shows it). httpcore survives the re-entry. Asked for by
name (``engine="aiohttp"``), aiohttp's engine is used in a kernel too: ``await`` rather than block there.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx

from . import env
from .errors import UsageError

ENGINES = ("auto", "aiohttp", "httpcore")
#: The environment variable read when a client is made without ``engine=``.
ENGINE_ENV = "OPENCLAW_NB_ASYNC_ENGINE"


@functools.cache
def aiohttp_available() -> bool:
    """Whether the aiohttp engine can be used (the ``httpx-aiohttp`` package is installed; looked up once)."""
    return importlib.util.find_spec("httpx_aiohttp") is not None


def resolve_engine(engine: str | None) -> str:
    """The engine a client uses: ``"aiohttp"`` or ``"httpcore"``, from ``engine`` (None: the environment
    variable ``OPENCLAW_NB_ASYNC_ENGINE``, else ``"auto"``)."""
    where = "engine="
    if engine is None:
        engine = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
        where = f"${ENGINE_ENV}="
    if engine not in ENGINES:
        raise UsageError(f"{where}{engine!r} is not an HTTP engine: use one of {', '.join(map(repr, ENGINES))}")
    if engine == "auto":
        return "aiohttp" if aiohttp_available() and not env.in_kernel() else "httpcore"
    if engine == "aiohttp" and not aiohttp_available():
        raise UsageError(
            f"{where}'aiohttp' needs the httpx-aiohttp package: pip install 'openclaw-nb[fast]' "
            "(or pip install httpx-aiohttp), or use engine='httpcore'"
        )
    return engine


def async_transport(engine: str, limits: httpx.Limits, verify: Any) -> httpx.AsyncBaseTransport:
    """A new transport of ``engine`` (as :func:`resolve_engine` returns it)."""
    if engine == "aiohttp":
        return AiohttpEngine(limits=limits, verify=verify)
    return httpx.AsyncHTTPTransport(limits=limits, verify=verify)


#: The largest body sent through aiohttp: one the socket buffers take at once, so no write can wait on the
#: peer (aiohttp has no write timeout). Larger or streamed bodies go through httpcore.
BUFFERED_BODY_BYTES = 64 * 1024


def needs_write_timeout(request: httpx.Request) -> bool:
    """Whether ``request``'s body is streamed or too large for the socket buffers (see the module)."""
    try:
        return len(request.content) > BUFFERED_BODY_BYTES
    except httpx.RequestNotRead:
        return True


def translate(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error httpcore raises where aiohttp raised ``exc`` (None: not an aiohttp or timeout error).

    An httpx error that ``httpx-aiohttp`` made from an aiohttp one is translated from its cause."""
    import aiohttp

    if isinstance(exc, httpx.TransportError):
        if not isinstance(exc.__cause__, aiohttp.ClientError | TimeoutError):
            return None
        exc = exc.__cause__
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(str(exc))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connecting, or waiting for a pooled connection
        return httpx.ConnectTimeout("")
    if isinstance(exc, aiohttp.ClientSSLError):
        return httpx.ConnectError(str(getattr(exc, "certificate_error", None) or exc.os_error))
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, name not found
        return httpx.ConnectError("All connection attempts failed")
    if isinstance(exc, TimeoutError):  # aiohttp's read timeout, or a timeout of its own without a type
        return httpx.ReadTimeout("")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("Server disconnected without sending a response.")
    if isinstance(exc, aiohttp.ClientPayloadError):  # the body ended early or its framing is broken
        return httpx.RemoteProtocolError(str(exc))
    if isinstance(exc, aiohttp.ClientOSError):  # reset by the peer, broken pipe
        return httpx.ReadError("")
    if isinstance(exc, aiohttp.ClientResponseError):  # not an HTTP answer
        return httpx.RemoteProtocolError(exc.message)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.TransportError(str(exc))
    return None


def _reraise(exc: Exception) -> NoReturn:
    """Raise ``exc`` as httpcore would have (its cause: the aiohttp error), or as it is."""
    mapped = translate(exc)
    if mapped is None:
        raise exc
    raise mapped from (exc.__cause__ if isinstance(exc, httpx.TransportError) else exc)


class _Translated(httpx.AsyncByteStream):
    """A response body whose errors come out as httpcore's."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            _reraise(exc)

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except Exception as exc:
            _reraise(exc)


class AiohttpEngine(httpx.AsyncBaseTransport):
    """aiohttp's connection pool behind the httpx transport API, behaving as httpcore's (see the module).

    ``limits.max_connections`` bounds the pool (aiohttp has no separate keep-alive bound: every connection
    it opens is kept while idle, for ``limits.keepalive_expiry`` seconds). ``verify``: a TLS context."""

    def __init__(self, *, limits: httpx.Limits, verify: Any = True) -> None:
        from httpx_aiohttp import AiohttpTransport
        from multidict import CIMultiDict

        self._headers_type = CIMultiDict

        self.limits = limits
        self._verify = verify
        self._aiohttp = AiohttpTransport(limits=limits, verify=verify, trust_env=False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._httpcore: httpx.AsyncHTTPTransport | None = None

    def __repr__(self) -> str:
        return f"AiohttpEngine(max_connections={self.limits.max_connections})"

    @property
    def ssl_context(self) -> Any:
        """The TLS context of its connections (``verify`` as given: the clients' shared one)."""
        return self._aiohttp.ssl_context

    @property
    def fallback(self) -> httpx.AsyncHTTPTransport:
        """The httpcore transport that carries the requests with a large or streamed body (made on first use)."""
        if self._httpcore is None:
            self._httpcore = httpx.AsyncHTTPTransport(limits=self.limits, verify=self._verify)
        return self._httpcore

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if needs_write_timeout(request):
            return await self.fallback.handle_async_request(request)
        self._own_loop()
        headers = request.headers
        # Header names as the request spells them (httpx.Headers hands them to aiohttp lower-cased).
        request.headers = self._headers_type(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in headers.raw
        )  # type: ignore[assignment]
        try:
            response = await self._aiohttp.handle_async_request(request)
        except Exception as exc:
            _reraise(exc)
        finally:
            request.headers = headers
        response.stream = _Translated(response.stream)  # type: ignore[arg-type]
        return response

    def _own_loop(self) -> None:
        """aiohttp's session belongs to the event loop it was made on: on another loop (the first one closed,
        as when a notebook's helper runs each call on a loop of its own), start a new session."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._forget_session()
            self._loop = loop

    def _forget_session(self) -> None:
        session = self._aiohttp.client
        self._aiohttp.client = None
        if session is not None and not callable(session):
            _close_now(session)

    def __del__(self) -> None:
        # A client dropped without aclose() closes its sockets quietly, as httpcore's pool does (aiohttp's
        # session would log "Unclosed client session" on the event loop's error handler).
        try:
            self._forget_session()
        except Exception:  # the interpreter may be shutting down
            pass

    async def aclose(self) -> None:
        await self._aiohttp.aclose()
        if self._httpcore is not None:
            await self._httpcore.aclose()


def _close_now(session: Any) -> None:
    """Close a session's sockets without awaiting (its loop may be closed or not running): the connector
    closes its transports at once; the session is marked closed so it does not warn when collected."""
    connector = session.connector
    session.detach()
    close = getattr(connector, "_close", None)  # the synchronous part of BaseConnector.close()
    if close is not None:
        try:
            close()
        except Exception:  # its loop is gone: nothing left to close on it
            pass
