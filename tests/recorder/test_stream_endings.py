"""A streamed exchange is recorded as it ended.

Read to the end: complete. Closed early by its reader (a break, ``close()``, the client's size cap):
incomplete, not failed. Broken, cancelled or interrupted: failed, with the error. A cancelled streamed upload
keeps asyncio's cancellation for the caller and its record, whatever the md5 worker was doing with its last
chunk. In-memory transports only; no test waits on a clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import httpx
import pytest

from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.errors import CdnError
from openclaw_nb.recorder import Binary, Recorder, capture

CHUNK = 16 * 1024
CHUNKS = 8
OCTET = {"Content-Type": "application/octet-stream"}
CDN = "http://cdn.test/c2c"
DOWNLOAD_URL = f"{CDN}/download?encrypted_query_param=abc"
UPLOAD_URL = f"{CDN}/upload?encrypted_query_param=up&filekey=f"
#: Upload chunks big enough to be hashed on the md5 worker.
BIG = capture.THREAD_HASH_MIN
#: Bound on any wait for another thread, so a broken test fails instead of hanging; never reached when it works.
DEADLINE = 10.0


def _chunk(i: int) -> bytes:
    return bytes([i]) * CHUNK


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _download(request: httpx.Request) -> httpx.Response:
    def chunks() -> Iterator[bytes]:
        for i in range(CHUNKS):
            yield _chunk(i)

    return httpx.Response(200, headers=OCTET, content=chunks())


async def _adownload(request: httpx.Request) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(CHUNKS):
            yield _chunk(i)

    return httpx.Response(200, headers=OCTET, content=chunks())


# -- closed early by the reader: incomplete, not failed --------------------------------------------------------


def test_sync_download_closed_early_by_reader_is_incomplete() -> None:
    rec = Recorder()
    with (
        httpx.Client(transport=rec.wrap(httpx.MockTransport(_download))) as http,
        http.stream("GET", DOWNLOAD_URL) as r,
    ):
        for chunk in r.iter_bytes():
            first = chunk
            break
        # Recorded when the reader's generator went away (GeneratorExit), before the response is closed.
        (ex,) = list(rec)
    assert ex.error is None
    assert ex.status == 200
    assert ex.response_body == Binary(len(first), _md5(first), False)
    assert list(rec) == [ex]  # closing the response afterwards records nothing more


def test_sync_client_capped_download_is_incomplete() -> None:
    with Client("tok", base_url="http://127.0.0.1:1", cdn_base_url=CDN, transport=httpx.MockTransport(_download)) as cl:
        with pytest.raises(CdnError):
            cl.cdn_download("abc", max_bytes=CHUNK + 1)
        (ex,) = [e for e in cl.log if e.call == "cdn_download"]
    assert ex.error is None
    assert ex.response_body == Binary(2 * CHUNK, _md5(_chunk(0) + _chunk(1)), False)


def test_async_download_closed_early_by_reader_is_incomplete() -> None:
    rec = Recorder()

    async def go() -> None:
        transport = rec.wrap_async(httpx.MockTransport(_adownload))
        response = await transport.handle_async_request(httpx.Request("GET", DOWNLOAD_URL))
        chunks = cast(AsyncGenerator[bytes, None], cast(httpx.AsyncByteStream, response.stream).__aiter__())
        first = await chunks.__anext__()
        await chunks.aclose()  # GeneratorExit in the recorder's generator
        (ex,) = list(rec)
        assert ex.error is None
        assert ex.response_body == Binary(len(first), _md5(first), False)
        await response.aclose()
        assert list(rec) == [ex]

    asyncio.run(go())


def test_async_client_stream_broken_off_is_incomplete() -> None:
    rec = Recorder()

    async def go() -> None:
        async with (
            httpx.AsyncClient(transport=rec.wrap_async(httpx.MockTransport(_adownload))) as http,
            http.stream("GET", DOWNLOAD_URL) as r,
        ):
            async for _ in r.aiter_bytes():
                break

    asyncio.run(go())
    (ex,) = list(rec)
    assert ex.error is None
    assert ex.response_body == Binary(CHUNK, _md5(_chunk(0)), False)


def test_async_client_capped_download_is_incomplete() -> None:
    async def go() -> list[Any]:
        transport = httpx.MockTransport(_adownload)
        cl = AsyncClient("tok", base_url="http://127.0.0.1:1", cdn_base_url=CDN, transport=transport)
        try:
            with pytest.raises(CdnError):
                await cl.cdn_download("abc", max_bytes=CHUNK + 1)
        finally:
            await cl.aclose()
        return [e for e in cl.log if e.call == "cdn_download"]

    (ex,) = asyncio.run(go())
    assert ex.error is None
    assert ex.response_body == Binary(2 * CHUNK, _md5(_chunk(0) + _chunk(1)), False)


# -- broken, interrupted or cancelled while reading: failed ----------------------------------------------------


class _BreaksAfterOneChunk(httpx.SyncByteStream):
    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

    def __iter__(self) -> Iterator[bytes]:
        yield _chunk(0)
        raise self._exc


@pytest.mark.parametrize(
    ("exc", "error"),
    [(KeyboardInterrupt(), "KeyboardInterrupt"), (httpx.ReadError("connection reset"), "ReadError: connection reset")],
)
def test_sync_body_read_interrupted_is_recorded(exc: BaseException, error: str) -> None:
    rec = Recorder()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=OCTET, stream=_BreaksAfterOneChunk(exc))

    with httpx.Client(transport=rec.wrap(httpx.MockTransport(handler))) as http, pytest.raises(type(exc)):
        http.get(DOWNLOAD_URL)
    (ex,) = list(rec)
    assert ex.error == error
    assert ex.status == 200
    assert ex.response_body == Binary(CHUNK, _md5(_chunk(0)), False)


def test_async_body_read_cancelled_is_failed() -> None:
    rec = Recorder()

    async def go() -> None:
        read_one = asyncio.Event()
        never = asyncio.Event()

        async def stalls(request: httpx.Request) -> httpx.Response:
            async def chunks() -> AsyncIterator[bytes]:
                yield _chunk(0)
                await never.wait()
                yield _chunk(1)

            return httpx.Response(200, headers=OCTET, content=chunks())

        async def read() -> None:
            async with (
                httpx.AsyncClient(transport=rec.wrap_async(httpx.MockTransport(stalls))) as http,
                http.stream("GET", DOWNLOAD_URL) as r,
            ):
                async for _ in r.aiter_bytes():
                    read_one.set()

        task = asyncio.create_task(read())
        await read_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    (ex,) = list(rec)
    assert ex.error is not None and ex.error.startswith("CancelledError")
    assert ex.response_body == Binary(CHUNK, _md5(_chunk(0)), False)


# -- a cancelled streamed upload -------------------------------------------------------------------------------


class _HeldWorker:
    """An md5 worker held up where a test wants it: ``queued`` keeps it busy with another job so the upload's
    chunk waits in its queue; ``running`` lets the upload's job start and holds it there until ``release``."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.gate = threading.Event()
        self.started = threading.Event()
        self.jobs: list[Future[None]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-md5")
        if where == "queued":
            self._pool.submit(self.gate.wait, DEADLINE)

    def submit(self, fn: Callable[[bytes], None], chunk: bytes) -> Future[None]:
        def held() -> None:
            self.started.set()
            self.gate.wait(DEADLINE)
            fn(chunk)

        job = self._pool.submit(held) if self.where == "running" else self._pool.submit(fn, chunk)
        self.jobs.append(job)
        return job

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self._pool.shutdown(wait=True)


@pytest.fixture
def held_worker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[_HeldWorker]:
    worker = _HeldWorker(request.param)
    monkeypatch.setattr(capture, "_hasher_pool", lambda: worker)
    yield worker
    worker.close()


async def _upload_until_cancelled(rec: Recorder, worker: _HeldWorker, how: str) -> BaseException:
    """Start a two-chunk streamed upload, cancel it while it waits for the worker's digest of chunk one, and
    return what the caller got."""
    sent_one = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * BIG
        sent_one.set()  # the transport asks for more: the upload now waits for chunk one's digest
        yield b"b" * BIG

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=rec.wrap_async(httpx.MockTransport(handler))) as http:
        post = http.post(UPLOAD_URL, content=body(), headers=OCTET)
        if how == "wait_for":
            # The upload cannot finish before the worker is let go, so the timeout lands mid-upload.
            try:
                await asyncio.wait_for(post, 0.01)
            except BaseException as exc:
                return exc
            raise AssertionError("the upload finished")
        task = asyncio.create_task(post)
        await sent_one.wait()
        if worker.where == "running":
            assert await asyncio.get_running_loop().run_in_executor(None, worker.started.wait, DEADLINE)
        task.cancel()
        if worker.where == "running":
            worker.release()  # the job may end now: the recorder must wait for it
        # A queued job stays stuck behind the held one: the recorder must take it back, not wait.
        try:
            await task
        except BaseException as exc:
            return exc
        raise AssertionError("the upload finished")


# A timeout can't let a running job go (the test does that after its own cancel), so only with a queued one.
@pytest.mark.parametrize(
    ("held_worker", "how"),
    [("queued", "cancel"), ("running", "cancel"), ("queued", "wait_for")],
    indirect=["held_worker"],
)
def test_cancelled_async_upload_is_recorded_and_keeps_asyncio_cancellation(held_worker: _HeldWorker, how: str) -> None:
    rec = Recorder()
    exc = asyncio.run(_upload_until_cancelled(rec, held_worker, how))

    assert not isinstance(exc, concurrent.futures.CancelledError), repr(exc)
    assert type(exc) is (asyncio.CancelledError if how == "cancel" else TimeoutError), repr(exc)
    (ex,) = list(rec)
    assert ex.call == "cdn_upload"
    assert ex.status is None
    assert ex.error is not None and ex.error.startswith("CancelledError")
    # Chunk one only, and its digest exact: hashed on the spot if the worker never started on it, waited for if
    # it had.
    assert ex.request_size == BIG
    assert ex.request_body == Binary(BIG, _md5(b"a" * BIG), False)
    (job,) = held_worker.jobs
    if held_worker.where == "queued":
        assert job.cancelled()  # taken back from the queue, not waited for behind another job
    else:
        assert job.done() and not job.cancelled()


# -- the recorder's own troubles stay its own ------------------------------------------------------------------


class _FailingWorker:
    def submit(self, fn: Callable[[bytes], None], chunk: bytes) -> Future[None]:
        job: Future[None] = Future()
        job.set_exception(MemoryError())
        return job


def test_failed_hashing_job_leaves_the_upload_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "_hasher_pool", lambda: _FailingWorker())
    rec = Recorder()

    def body() -> Iterator[bytes]:
        yield b"a" * BIG
        yield b"b" * BIG

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_md5(request.read()).encode())

    with httpx.Client(transport=rec.wrap(httpx.MockTransport(handler))) as http:
        r = http.post(UPLOAD_URL, content=body(), headers=OCTET)
    assert r.status_code == 200
    assert r.text == _md5(b"a" * BIG + b"b" * BIG)
    (ex,) = list(rec)
    assert ex.error is None
    # The digest is unknown: no md5 rather than one of other bytes than the size counts.
    assert ex.request_body == Binary(2 * BIG, "", False)


def test_finish_never_raises_into_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    def broken_sink(flight: capture._InFlight) -> None:
        raise RuntimeError("the recorder is broken")

    flight = capture._InFlight(httpx.Request("GET", DOWNLOAD_URL), 7, True, broken_sink)
    with caplog.at_level(logging.ERROR, logger="openclaw_nb"):
        flight.fail(asyncio.CancelledError())
    assert flight.done
    assert "could not store exchange #7 (cdn_download): RuntimeError" in caplog.text
    assert "the recorder is broken" not in caplog.text  # never the exception's text
