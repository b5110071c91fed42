"""Capturing exchanges: the httpx transport wrappers and the bookkeeping of one exchange in flight.

Owns the contract with the client: ``Recorder.wrap`` / ``wrap_async`` return transports that pass every
request through unchanged and record it; the call name and retry attempt come from the request extensions
``openclaw_nb.call`` / ``openclaw_nb.attempt``. While an exchange is on the wire only references are taken;
when it is over it is stored with its raw parts, and :meth:`_InFlight.build` redacts them the first time the
exchange is looked at (nothing on the request path redacts). Streamed bodies are counted and hashed chunk by
chunk, never buffered.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from time import perf_counter, time
from typing import Any

import httpx

from ..protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH, ENDPOINTS_BY_PATH
from ..protocol.redact import (
    SECRET_FIELDS,
    SECRET_HEADERS,
    redact_body_text,
    redact_header,
    redact_text,
    redact_url,
)
from .exchange import Binary, Exchange, JsonText, Text, decode_header_value

#: Request extension keys the client sets on every request.
CALL_KEY = "openclaw_nb.call"
ATTEMPT_KEY = "openclaw_nb.attempt"

#: Text bodies (JSON or not) are kept up to this size; past it only size and md5 are kept.
MAX_TEXT_BODY = 4 * 1024 * 1024

wire_log = logging.getLogger("openclaw_nb.wire")

_exchange = Exchange._of  # fields in exchange._FIELDS order

_SECRET_HEADER_NAMES = SECRET_HEADERS | SECRET_FIELDS


def call_from_path(path: str) -> str:
    """The logical call for a URL path when the client did not say: endpoint name, ``cdn_upload``, or the tail."""
    ep = ENDPOINTS_BY_PATH.get(path)
    if ep is not None:
        return ep.name
    if path.endswith(CDN_UPLOAD_PATH):
        return "cdn_upload"
    if path.endswith(CDN_DOWNLOAD_PATH):
        return "cdn_download"
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return tail or "/"


def _is_text_type(content_type: str) -> bool:
    ct = content_type.lower()
    return "json" in ct or ct.startswith("text/") or "xml" in ct or "x-www-form-urlencoded" in ct


# What a raw header name means to the recorder: 0 keep, 1 Content-Type, 2 Content-Encoding, 3 redact, 4 a URL
# (Location, Content-Location: its secret query parameters are redacted). Header names are few and never
# secret, so each is classified once, not per exchange.
_NAME_KINDS: dict[bytes, int] = {}
_MAX_NAME_KINDS = 512
_URL_HEADER_NAMES = frozenset({"location", "content-location"})
# Every secret name holds one of these stems; redact_text also takes "Bearer x". A value without any of them
# (nearly all: User-Agent, Date, Content-Length...) holds no secret redact_text would find, and is not scanned.
# The Kelvin sign is the one character that lower() turns into a letter of a stem.
_SECRET_HINT = re.compile(rb"token|key|ticket|authoriz|param|bearer|\xe2\x84\xaa", re.IGNORECASE)


def _name_kind(raw_name: bytes) -> int:
    lname = raw_name.decode("latin-1").lower()
    kind = (
        1
        if lname == "content-type"
        else 2
        if lname == "content-encoding"
        else 3
        if lname in _SECRET_HEADER_NAMES
        else 4
        if lname in _URL_HEADER_NAMES
        else 0
    )
    if len(_NAME_KINDS) < _MAX_NAME_KINDS:  # a server inventing names must not grow this without bound
        _NAME_KINDS[raw_name] = kind
    return kind


def _scan_headers(headers: httpx.Headers) -> tuple[list[Any], str, str]:
    """httpx's raw (name, value) list, a new one ours to keep, with Content-Type and Content-Encoding."""
    raw: list[Any] = headers.raw
    return raw, *_content_headers(raw)


def _content_headers(raw: list[Any]) -> tuple[str, str]:
    """Content-Type and Content-Encoding (lower-case) from a raw (name, value) list; "" when absent."""
    ctype = encoding = ""
    kinds = _NAME_KINDS
    # Not headers.encoding / headers.get: those re-scan every header on each call.
    for raw_name, raw_value in raw:
        kind = kinds.get(raw_name)
        if kind is None:
            kind = _name_kind(raw_name)
        if kind == 1:
            ctype = decode_header_value(raw_value)
        elif kind == 2:
            encoding = decode_header_value(raw_value).strip().lower()
    return ctype, encoding


def _redact_headers(raw: list[Any]) -> list[Any]:
    """A new list of the raw (name, value) pairs, redacted: a secret header's whole value; the secret query
    parameters of a Location / Content-Location URL; and in any other value, a secret it names
    (``token=...``, ``Bearer ...``). ``raw`` itself is left as it was, so an interrupted redaction can be
    tried again."""
    kinds = _NAME_KINDS
    out: list[Any] = []
    for raw_name, raw_value in raw:
        kind = kinds.get(raw_name)
        if kind is None:
            kind = _name_kind(raw_name)
        if kind == 3:
            out.append((raw_name, redact_header(raw_name.decode("latin-1"), decode_header_value(raw_value))))
        elif kind == 4 or _SECRET_HINT.search(raw_value) is not None:
            value = decode_header_value(raw_value)
            redacted = redact_text(redact_url(value) if kind == 4 else value)
            out.append((raw_name, raw_value if redacted == value else redacted))
        else:
            out.append((raw_name, raw_value))
    return out


def _reason(response: httpx.Response) -> str:
    # response.reason_phrase without its KeyError and enum lookup when the transport gave no phrase
    # (MockTransport and other in-memory responses).
    phrase = response.extensions.get("reason_phrase")
    if phrase is None:
        return _standard_reason(response.status_code)
    return phrase.decode("ascii", errors="ignore")


_standard_reason = functools.lru_cache(maxsize=1024)(httpx.codes.get_reason_phrase)


def decode_body(data: bytes, content_type: str, redact: bool) -> Any:
    """A whole body as kept in the log: redacted :class:`JsonText`, redacted :class:`Text`, or :class:`Binary`.

    JSON is redacted (parsed, walked, written again if it held a secret) and kept as text, parsed again only
    when looked at (see :class:`JsonText` for why). Text that looks
    like JSON is redacted as JSON whatever its Content-Type says; other text as free text, and if that can't
    vouch for every secret in it (:func:`~openclaw_nb.protocol.redact.vouched`), only its size and md5 are kept.
    """
    if not data:
        return None
    ct = content_type.lower()
    if len(data) <= MAX_TEXT_BODY:
        is_json = "json" in ct or (not ct and data[:1] in (b"{", b"["))
        if is_json or _is_text_type(ct) or not ct:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None and "\x00" not in text:
                kind = JsonText if is_json else Text
                kept = redact_body_text(text, is_json) if redact else text
                if kept is not None:
                    return kind(kept, len(data))
    return Binary(len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())


#: Streamed request chunks at least this big are hashed on a worker thread while the transport sends them
#: (hashlib lets go of the GIL for big buffers, so hashing and sending overlap); smaller ones cost less to
#: hash on the spot than to hand over.
THREAD_HASH_MIN = 256 * 1024

_hasher: ThreadPoolExecutor | None = None
_hasher_lock = threading.Lock()


def _forget_hasher_in_child() -> None:
    # Its thread did not survive the fork; the child starts its own on first use.
    global _hasher, _hasher_lock
    _hasher = None
    _hasher_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_hasher_in_child)


def _hasher_pool() -> ThreadPoolExecutor:
    global _hasher
    if _hasher is None:
        with _hasher_lock:
            if _hasher is None:
                _hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openclaw_nb-md5")
    return _hasher


class _CountingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Wraps a streamed request body: counts and hashes the chunks as the transport sends them.

    A big chunk is hashed on the worker thread while it is being sent; the next chunk waits for it, so the
    digest sees the chunks in order and at most one chunk is held for hashing. Only ``bytes`` go to the
    worker: a mutable buffer could change under it once handed on.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.complete = False
        self._pending: Future[None] | None = None
        self._pending_chunk: bytes | None = None  # what _pending hashes, hashed here if its job never runs
        self._lost = False  # a hashing job failed: the digest is unknown

    def _take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._lost:
            return
        if len(chunk) >= THREAD_HASH_MIN and type(chunk) is bytes:
            self._pending = _hasher_pool().submit(self.md5.update, chunk)
            self._pending_chunk = chunk
        else:
            self.md5.update(chunk)

    def _settle(self, take_back: bool = False) -> None:
        """Bring the digest up to date with the chunk handed to the worker: wait for its job or, with
        ``take_back``, hash the chunk here if the worker has not started on it (nobody waits behind other
        uploads' chunks then). A job cancelled by anyone leaves its chunk to be hashed here; a job that failed
        leaves the digest unknown. Never raises the job's outcome; an interrupt of the wait leaves it pending.
        """
        pending, chunk = self._pending, self._pending_chunk
        if pending is None:
            return
        if not (take_back and pending.cancel()):
            try:
                pending.result()
            except Exception:  # failed, or cancelled elsewhere (concurrent.futures.CancelledError): see below
                pass
        self._pending = self._pending_chunk = None
        if pending.cancelled():  # the worker never touched the digest with it
            if chunk is not None:
                self.md5.update(chunk)
        elif pending.exception() is not None:
            self._lost = True

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._settle()
            self._take(chunk)
            yield chunk
        self.complete = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import asyncio

        async for chunk in self._inner:
            if self._pending is not None:
                # asyncio.wait, not a bare await: cancelling the upload must not cancel the hashing job (body()
                # settles it), and the job's own outcome is _settle's business, not the upload's.
                await asyncio.wait((asyncio.wrap_future(self._pending),))
                self._settle()
            self._take(chunk)
            yield chunk
        self.complete = True

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()

    def body(self) -> Binary:
        """The body as recorded: size and md5 of every chunk taken, ``complete`` if the stream ran to its end.

        The last chunk handed to the worker (even if the upload stopped or was cancelled there) is settled
        first, so the digest is exact. Only if a hashing job failed is it unknown: the md5 is then "" and the
        body incomplete, never a digest of other bytes than ``size`` counts. Raises only what interrupts the
        wait for a running job (KeyboardInterrupt).
        """
        self._settle(take_back=True)
        if self._lost:
            return Binary(self.size, "", False)
        return Binary(self.size, self.md5.hexdigest(), self.complete)


class _InFlight:
    """One exchange from its request to the end of its response body, then its raw parts until looked at.

    While the exchange is on the wire only what costs next to nothing is taken (references to the raw
    headers, body bytes and chunks, timings). When it is over, the recorder stores an :class:`Exchange` with
    what holds no secret (:meth:`known`) and this object as its pending raw parts; the first look at anything
    else calls :meth:`values`, which builds the redacted fields with :meth:`build` and drops every raw reference.
    """

    __slots__ = (
        "_sink",
        "attempt",
        "call",
        "complete",
        "done",
        "encoding",
        "error",
        "http_version",
        "id",
        "md5",
        "method",
        "reason",
        "redact",
        "req_body",
        "req_content",
        "req_headers",
        "req_size",
        "req_stream",
        "resp_chunks",
        "resp_ctype",
        "resp_headers",
        "resp_size",
        "started",
        "status",
        "t0",
        "t_end",
        "t_headers",
        "url",
    )

    _sink: Callable[[_InFlight], None] | None

    def __getstate__(self) -> Any:
        # The raw parts (token, keys, upload parameters in clear) never leave in a pickle, a copy or a state.
        raise TypeError(
            "a recorder's in-flight exchange holds unredacted data and cannot be pickled or copied; "
            "pickle or copy the Exchange from the log instead (it is redacted first)"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__getstate__()

    def __init__(self, request: httpx.Request, ident: int, redact: bool, sink: Callable[[_InFlight], None]) -> None:
        self.t0 = perf_counter()
        self.started = time()  # the Exchange makes it a datetime when asked
        self._sink = sink
        self.id = ident
        self.redact = redact
        ext = request.extensions
        self.call = str(ext.get(CALL_KEY) or call_from_path(request.url.path))
        self.attempt = int(ext.get(ATTEMPT_KEY) or 1)
        self.method = request.method
        self.url = str(request.url)
        self.req_headers: list[Any] = request.headers.raw  # a new list on each call: ours to keep and change
        self.req_stream: _CountingStream | None = None
        self.req_body: Any = None
        self.req_content: bytes | None = None
        self.req_size: int | None = None
        try:
            content = request.content
        except httpx.RequestNotRead:
            # A streamed upload: count and hash it as the transport sends it, never hold it.
            self.req_stream = _CountingStream(request.stream)
            request.stream = self.req_stream
        else:
            self.req_size = len(content)
            self.req_content = content
        self.status: int | None = None
        self.reason = ""
        self.http_version = "HTTP/1.1"
        self.resp_headers: Any = {}
        self.resp_ctype = ""
        self.encoding = ""
        self.resp_chunks: list[bytes] | None = None
        self.md5: Any = None
        self.resp_size = 0
        self.t_headers: float | None = None
        self.t_end = 0.0
        self.error: str | None = None
        self.done = False
        self.complete = False

    def response_started(self, response: httpx.Response) -> None:
        self.t_headers = perf_counter()
        self.status = response.status_code
        self.reason = _reason(response)
        self.http_version = response.http_version
        self.resp_headers, self.resp_ctype, self.encoding = _scan_headers(response.headers)
        if _is_text_type(self.resp_ctype) or not self.resp_ctype:
            self.resp_chunks = []
        else:
            self.md5 = hashlib.md5(usedforsecurity=False)

    def feed(self, chunk: bytes) -> None:
        self.resp_size += len(chunk)
        if self.resp_chunks is not None:
            self.resp_chunks.append(chunk)
            if self.resp_size > MAX_TEXT_BODY:
                # Too big to keep as text: fall back to size + md5 from here on.
                self.md5 = hashlib.md5(b"".join(self.resp_chunks), usedforsecurity=False)
                self.resp_chunks = None
        else:
            self.md5.update(chunk)

    def fail(self, exc: BaseException) -> None:
        """The exchange ended with ``exc`` (an error, a cancellation, an interrupt). Never raises (see finish).

        Once finished the exchange is stored as it was: a later failure changes nothing recorded."""
        if self.done:
            return
        if self.error is None:
            try:
                error = f"{type(exc).__name__}: {exc}"
            except Exception:  # an exception whose str() fails still names its type
                error = type(exc).__name__
            self.error = error.rstrip(": ")  # redacted by build()
        self.finish(complete=False)

    def finish(self, complete: bool = True) -> None:
        """The exchange is over: hand it to the recorder (once), which builds and stores it.

        Never raises, bar an interrupt while it waits for the last upload chunk's digest: a recorder problem
        must not replace the request's own result or exception. It is logged instead.
        """
        if self.done:
            return
        self.done = True
        self.t_end = perf_counter()
        self.complete = complete
        stream = self.req_stream
        if stream is not None:
            # Settle the last chunk's digest here: the upload is over, and its stream is not ours to keep.
            self.req_stream = None
            self.req_size = stream.size
            try:
                self.req_body = stream.body()
            except Exception as exc:
                self.req_body = Binary(stream.size, "", False)
                self._report("hash the request body of", exc)
        sink, self._sink = self._sink, None  # the stored exchange keeps this object: not the recorder too
        try:
            if sink is not None:
                sink(self)
        except Exception as exc:
            self._report("store", exc)

    def _report(self, what: str, exc: Exception, kept: str = "") -> None:
        # The exception's type and where it was raised, not its text or traceback: they could quote the
        # unredacted data the recorder was working on.
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ is not None else None
        at = f" at {os.path.basename(where.filename)}:{where.lineno} in {where.name}" if where is not None else ""
        logging.getLogger("openclaw_nb").error(
            "the recorder could not %s exchange #%d (%s): %s%s%s. Please report this as a bug.",
            what,
            self.id,
            self.call,
            type(exc).__name__,
            at,
            kept,
        )

    def known(self) -> tuple[Any, ...]:
        """The fields of a finished exchange that hold no secret, in ``_FIELDS`` order; None for the others
        (URL, headers, bodies, error), which :meth:`values` makes when the exchange is first looked at."""
        return self._fields(None, None, None, None, None, None)

    def values(self) -> tuple[Any, ...]:
        """Every field of the finished exchange, redacted if the recorder redacts (see :meth:`built`)."""
        return self.built()._v

    def built(self) -> Exchange:
        """:meth:`build`, or if that fails (a recorder bug) a stand-in that says so; the failure is logged."""
        try:
            return self.build()
        except Exception as exc:
            self._report("build", exc, "; it is kept as a stand-in without headers or bodies")
            return self._unbuilt(exc)

    def build(self) -> Exchange:
        """The recorded :class:`Exchange`, redacted if the recorder redacts; drops the raw parts it came from."""
        redact = self.redact
        resp_body: Any = None
        chunks = self.resp_chunks
        if self.status is not None:
            if chunks is not None and self.complete:
                data = b"".join(chunks)
                if self.encoding and self.encoding != "identity":
                    data = _decode_content(data, self.encoding)
                resp_body = decode_body(data, self.resp_ctype, redact)
            elif chunks is not None:
                # A cut-off text body could end inside a secret that redaction would then miss: keep a hash.
                data = b"".join(chunks)
                resp_body = Binary(len(data), hashlib.md5(data, usedforsecurity=False).hexdigest(), False)
            elif self.md5 is not None:
                resp_body = Binary(self.resp_size, self.md5.hexdigest(), self.complete)
        req_headers = self.req_headers
        req_body = self.req_body
        if self.req_content is not None:
            req_body = decode_body(self.req_content, _content_headers(req_headers)[0], redact)
        resp_headers = self.resp_headers
        error = self.error
        url = self.url
        if redact:
            req_headers = _redact_headers(req_headers)
            if resp_headers:
                resp_headers = _redact_headers(resp_headers)
            url = redact_url(url)
            if error is not None:
                error = redact_text(error)
        self._drop_raw()
        return self._exchange(url, req_headers, req_body, resp_headers, resp_body, error)

    def _drop_raw(self) -> None:
        # An unredacted part must not outlive the exchange it belongs to.
        self.resp_chunks = self.req_content = None
        self.req_headers = self.resp_headers = []
        self.error = None
        self.url = ""

    def _unbuilt(self, exc: Exception) -> Exchange:
        """A stand-in for an exchange :meth:`build` failed on: what is safe to show, and that it failed."""
        self._drop_raw()
        error = f"the recorder could not build this exchange ({type(exc).__name__}); see the openclaw_nb log"
        return self._exchange("", [], None, [], None, error)

    def _exchange(
        self, url: str, req_headers: Any, req_body: Any, resp_headers: Any, resp_body: Any, error: str | None
    ) -> Exchange:
        return _exchange(self._fields(url, req_headers, req_body, resp_headers, resp_body, error))

    def _fields(
        self, url: Any, req_headers: Any, req_body: Any, resp_headers: Any, resp_body: Any, error: Any
    ) -> tuple[Any, ...]:
        return (
            self.id,
            self.started,
            self.call,
            self.method,
            url,
            req_headers,
            req_body,
            self.status,
            resp_headers,
            resp_body,
            (self.t_end - self.t0) * 1000.0,
            error,
            self.attempt,
            None if self.t_headers is None else (self.t_headers - self.t0) * 1000.0,
            self.http_version,
            self.reason,
            self.req_size,
            self.resp_size if self.status is not None else None,
            self.redact,
        )


def _decode_content(data: bytes, encoding: str) -> bytes:
    try:
        return httpx.Response(200, headers={"content-encoding": encoding}, content=data).content
    except httpx.DecodingError:
        return data


class _SyncResponseStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, flight: _InFlight) -> None:
        self._inner = inner
        self._flight = flight

    def __iter__(self) -> Iterator[bytes]:
        flight = self._flight
        try:
            for chunk in self._inner:
                flight.feed(chunk)
                yield chunk
        except GeneratorExit:
            # The reader stopped early (a break, close(), a size cap): incomplete, not failed.
            flight.finish(complete=False)
            raise
        except BaseException as exc:  # a cancelled or interrupted exchange is recorded too
            flight.fail(exc)
            raise
        flight.finish()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            # Closed before the end (the caller stopped reading): what was read is all we know.
            self._flight.finish(complete=False)


class _AsyncResponseStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, flight: _InFlight) -> None:
        self._inner = inner
        self._flight = flight

    async def __aiter__(self) -> AsyncIterator[bytes]:
        flight = self._flight
        try:
            async for chunk in self._inner:
                flight.feed(chunk)
                yield chunk
        except GeneratorExit:
            # The reader stopped early (aclose(), a size cap, the generator collected): incomplete, not failed.
            flight.finish(complete=False)
            raise
        except BaseException as exc:  # a cancelled or interrupted exchange is recorded too
            flight.fail(exc)
            raise
        flight.finish()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._flight.finish(complete=False)


def _already_read(response: httpx.Response) -> bytes | None:
    # Responses built with content= (MockTransport handlers) arrive already read; httpx never iterates
    # or closes their stream, so the exchange must be finished on the spot.
    return response.__dict__.get("_content")


class RecordingTransport(httpx.BaseTransport):
    """A sync transport that records every exchange of ``inner`` and passes it through unchanged."""

    def __init__(self, inner: httpx.BaseTransport, begin: Callable[[httpx.Request], _InFlight]) -> None:
        self.inner = inner
        self._begin = begin

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        flight = self._begin(request)
        try:
            response = self.inner.handle_request(request)
        except BaseException as exc:  # a cancelled or interrupted exchange is recorded too
            flight.fail(exc)
            raise
        flight.response_started(response)
        content = _already_read(response)
        if content is not None:
            flight.feed(content)
            flight.finish()
        else:
            response.stream = _SyncResponseStream(response.stream, flight)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`RecordingTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, begin: Callable[[httpx.Request], _InFlight]) -> None:
        self.inner = inner
        self._begin = begin

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        flight = self._begin(request)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as exc:  # a cancelled or interrupted exchange is recorded too
            flight.fail(exc)
            raise
        flight.response_started(response)
        content = _already_read(response)
        if content is not None:
            flight.feed(content)
            flight.finish()
        else:
            response.stream = _AsyncResponseStream(response.stream, flight)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
