"""Uploads really stream: a file is never held whole in memory (issue 5's "never held whole twice").

``httpx.MockTransport`` reads the whole request body before answering, so it cannot tell a streaming client
from one that buffers the file or its ciphertext. The transports here consume ``request.stream`` chunk by
chunk, as a socket would, keeping nothing but a running MD5 of the decrypted plaintext, and the upload runs
under ``tracemalloc``: its peak must stay far below the file's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.crypto import CHUNK

USER = "u@im.wechat"
#: Big enough that buffering it once shows plainly; small enough to hash, encrypt and decrypt in well under
#: a second.
FILE_SIZE = 48 << 20
#: Far below the file size: the streamed upload needs a few 1 MiB buffers (the audit measured 4 MiB).
PEAK_LIMIT = 16 << 20


class StreamingCdn:
    """Answers getuploadurl and the CDN upload. The upload body is read piece by piece, each piece decrypted
    into a running MD5 and dropped, as a socket-backed server would."""

    def __init__(self) -> None:
        self.registered: dict[str, Any] = {}
        self.pieces = 0
        self.received = 0
        self.content_length: str | None = None
        self.chunked = False
        self.plain_md5 = ""
        self._dec: Any = None
        self._unpad: Any = None
        self._md5 = hashlib.md5()

    def upload_url(self, body: bytes) -> httpx.Response:
        self.registered = json.loads(body)
        return httpx.Response(200, json={"ret": 0, "upload_full_url": "http://cdn.test/c2c/upload?p=1"})

    def begin(self, request: httpx.Request) -> None:
        assert request.url.path.endswith("/upload"), request.url
        key = bytes.fromhex(self.registered["aeskey"])
        self._dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
        self._unpad = padding.PKCS7(128).unpadder()
        self.content_length = request.headers.get("content-length")
        self.chunked = "transfer-encoding" in request.headers

    def feed(self, piece: bytes) -> None:
        self.pieces += 1
        self.received += len(piece)
        self._md5.update(self._unpad.update(self._dec.update(piece)))

    def finish(self) -> httpx.Response:
        self._md5.update(self._unpad.update(self._dec.finalize()) + self._unpad.finalize())
        self.plain_md5 = self._md5.hexdigest()
        return httpx.Response(200, headers={C.H_ENCRYPTED_PARAM: "download-param"})


class SyncStreamingTransport(httpx.BaseTransport):
    def __init__(self, cdn: StreamingCdn) -> None:
        self.cdn = cdn

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getuploadurl"):
            return self.cdn.upload_url(request.read())
        self.cdn.begin(request)
        assert isinstance(request.stream, httpx.SyncByteStream)
        for piece in request.stream:
            self.cdn.feed(piece)
        return self.cdn.finish()


class AsyncStreamingTransport(httpx.AsyncBaseTransport):
    def __init__(self, cdn: StreamingCdn) -> None:
        self.cdn = cdn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getuploadurl"):
            return self.cdn.upload_url(await request.aread())
        self.cdn.begin(request)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for piece in request.stream:
            self.cdn.feed(piece)
        return self.cdn.finish()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A FILE_SIZE file written in 1 MiB blocks (never built in memory), and its MD5."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    md5 = hashlib.md5()
    block = bytearray(os.urandom(CHUNK))
    with open(path, "wb") as fh:
        for i in range(FILE_SIZE // CHUNK):
            block[:8] = i.to_bytes(8, "little")  # every block differs
            md5.update(block)
            fh.write(block)
    return path, md5.hexdigest()


@contextmanager
def traced() -> Iterator[list[int]]:
    """Trace allocations in the block; the list gets the peak traced memory above the start, in bytes."""
    peak: list[int] = []
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    try:
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1] - start)
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _check(cdn: StreamingCdn, md5: str, peak: int, result_filesize: int) -> None:
    filesize = (FILE_SIZE // 16 + 1) * 16
    assert cdn.registered["rawsize"] == FILE_SIZE and cdn.registered["filesize"] == filesize == result_filesize
    assert cdn.registered["rawfilemd5"] == md5 == cdn.plain_md5  # all of it arrived, decryptable
    assert cdn.received == filesize and cdn.content_length == str(filesize) and not cdn.chunked
    assert cdn.pieces >= FILE_SIZE // CHUNK, f"the body came in {cdn.pieces} pieces: it was not streamed"
    assert peak <= PEAK_LIMIT, f"peak traced memory {peak / 2**20:.1f} MiB for a {FILE_SIZE >> 20} MiB upload"


@pytest.mark.parametrize("record", [False, True], ids=["recorder-off", "recorder-on"])
def test_sync_upload_streams_in_bounded_memory(big_file: tuple[Path, str], record: bool) -> None:
    path, md5 = big_file
    cdn = StreamingCdn()
    client = Client("tok", base_url="http://api.test", transport=SyncStreamingTransport(cdn), record=record)
    with client, traced() as peak:
        uploaded = client.upload(path, USER, kind="file", progress=False)
    _check(cdn, md5, peak[0], uploaded.filesize)


def test_async_upload_streams_in_bounded_memory(big_file: tuple[Path, str]) -> None:
    path, md5 = big_file
    cdn = StreamingCdn()

    async def main() -> tuple[int, int]:
        async with AsyncClient(
            "tok", base_url="http://api.test", transport=AsyncStreamingTransport(cdn), record=False
        ) as client:
            with traced() as peak:
                uploaded = await client.upload(path, USER, kind="file", progress=False)
            return peak[0], uploaded.filesize

    peak, filesize = asyncio.run(main())
    _check(cdn, md5, peak, filesize)
