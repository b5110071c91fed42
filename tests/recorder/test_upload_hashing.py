"""Streamed uploads are hashed on a worker thread chunk by chunk, and the recorded md5 is still exact."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest

from openclaw_nb.recorder import ATTEMPT_KEY, CALL_KEY, Binary, Recorder, capture

from .helpers import LoopbackServer

BIG = capture.THREAD_HASH_MIN


def _chunks() -> list[bytes | bytearray]:
    # Big bytes go to the worker; a small chunk and a big mutable buffer are hashed on the spot in between.
    return [b"a" * BIG, b"b" * 10, bytearray(b"c" * BIG), b"d" * (2 * BIG), b"e" * BIG]


class _Deferred(Future[None]):
    """Runs its work only when someone asks for the result, so a chunk hashed out of turn changes the digest."""

    def __init__(self, fn: Callable[..., None], arg: Any) -> None:
        super().__init__()
        self._work: tuple[Callable[..., None], Any] | None = (fn, arg)

    def result(self, timeout: float | None = None) -> None:
        if self._work is not None:
            fn, arg = self._work
            self._work = None
            fn(arg)
            self.set_result(None)
        return super().result(timeout)


class _DeferringPool:
    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Callable[..., None], arg: Any) -> Future[None]:
        self.submitted += 1
        return _Deferred(fn, arg)


@pytest.fixture
def deferring_pool(monkeypatch: pytest.MonkeyPatch) -> _DeferringPool:
    pool = _DeferringPool()
    monkeypatch.setattr(capture, "_hasher_pool", lambda: pool)
    return pool


def _upload(http: httpx.Client, server: LoopbackServer, content: Any) -> httpx.Response:
    return http.post(
        f"{server.cdn_base_url}/upload",
        params={"encrypted_query_param": server.state.upload_param, "filekey": "abc123", "echo": "md5"},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
        extensions={CALL_KEY: "cdn_upload", ATTEMPT_KEY: 1},
    )


def test_big_chunks_are_hashed_off_thread_in_order(server: LoopbackServer, deferring_pool: _DeferringPool) -> None:
    chunks = _chunks()
    sent = b"".join(chunks)
    rec = Recorder()

    def body() -> Iterator[bytes]:
        yield from chunks  # type: ignore[misc]

    with httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http:
        r = _upload(http, server, body())
    assert r.headers["x-test-md5"] == hashlib.md5(sent).hexdigest()
    assert rec[-1].request_body == Binary(len(sent), hashlib.md5(sent).hexdigest())
    assert deferring_pool.submitted == 3  # the three big bytes chunks; not the bytearray


def test_async_upload_hashed_off_thread(server: LoopbackServer) -> None:
    chunks = _chunks()
    sent = b"".join(chunks)
    rec = Recorder()

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk  # type: ignore[misc]

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=rec.wrap_async(httpx.AsyncHTTPTransport())) as http:
            return await http.post(
                f"{server.cdn_base_url}/upload",
                params={"encrypted_query_param": server.state.upload_param, "filekey": "f", "echo": "md5"},
                content=body(),
                headers={"Content-Type": "application/octet-stream"},
                extensions={CALL_KEY: "cdn_upload", ATTEMPT_KEY: 1},
            )

    r = asyncio.run(go())
    assert r.headers["x-test-md5"] == hashlib.md5(sent).hexdigest()
    assert rec[-1].request_body == Binary(len(sent), hashlib.md5(sent).hexdigest())


def test_upload_cut_short_records_what_was_sent(deferring_pool: _DeferringPool) -> None:
    rec = Recorder()
    first = b"x" * BIG

    def body() -> Iterator[bytes]:
        yield first
        raise OSError("disk gone")

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200)

    with httpx.Client(transport=rec.wrap(httpx.MockTransport(handler))) as http, pytest.raises(OSError):
        http.post("http://cdn/c2c/upload", content=body())
    # The last chunk was still with the hasher when the upload failed; the record waits for it.
    assert deferring_pool.submitted == 1
    assert rec[-1].request_body == Binary(len(first), hashlib.md5(first).hexdigest(), False)
    assert rec[-1].error is not None and "disk gone" in rec[-1].error
