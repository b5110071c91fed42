"""Every kind of exchange is recorded with the right fields, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC

import httpx
import pytest

from openclaw_nb.recorder import ATTEMPT_KEY, CALL_KEY, Binary, Recorder, Text, call_from_path

from .helpers import DOWNLOAD_CHUNK, DOWNLOAD_CHUNKS, LoopbackServer


def _client(rec: Recorder, **kw: object) -> httpx.Client:
    return httpx.Client(transport=rec.wrap(httpx.HTTPTransport()), **kw)  # type: ignore[arg-type]


def test_json_call_fields(server: LoopbackServer) -> None:
    rec = Recorder()
    token = server.state.bot_token
    body = {"get_updates_buf": "", "base_info": {"channel_version": "1.0.0"}}
    with _client(rec) as http:
        r = http.post(
            f"{server.base_url}/ilink/bot/getupdates",
            json=body,
            headers={"Authorization": f"Bearer {token}", "X-WECHAT-UIN": "MTIz"},
            extensions={CALL_KEY: "get_updates", ATTEMPT_KEY: 2},
        )
    assert r.json()["ret"] == 0
    (ex,) = list(rec)
    assert ex.id == 1
    assert ex.call == "get_updates"
    assert ex.attempt == 2
    assert ex.method == "POST"
    assert ex.url == f"{server.base_url}/ilink/bot/getupdates"
    assert ex.status == 200 and ex.reason == "OK" and ex.http_version == "HTTP/1.1"
    assert ex.error is None and not ex.failed and ex.ret == 0
    assert ex.started.tzinfo is not None and ex.started.utcoffset() == UTC.utcoffset(None)
    assert ex.duration_ms is not None and ex.wait_ms is not None and 0 <= ex.wait_ms <= ex.duration_ms
    assert ex.request_body == body
    assert ex.request_size == len(json.dumps(body, separators=(",", ":")))
    assert ex.request_headers["X-WECHAT-UIN"] == "MTIz"
    assert ex.request_headers["Authorization"].startswith("Bearer <redacted ")
    resp = ex.response_body
    assert isinstance(resp, dict) and resp["get_updates_buf"].startswith("cur-1-")
    # uint64 ids stay exact Python ints
    assert resp["msgs"][0]["message_id"] == server.state.message_id + 1
    assert resp["msgs"][0]["context_token"].startswith("<redacted ")
    assert ex.response_headers["content-type"] == "application/json"
    assert ex.response_size == len(r.content)


def test_get_poll_without_extensions_derives_the_call(server: LoopbackServer) -> None:
    rec = Recorder()
    with _client(rec) as http:
        http.get(f"{server.base_url}/ilink/bot/get_qrcode_status", params={"qrcode": server.state.qrcode})
    ex = rec[-1]
    assert ex.call == "get_qrcode_status"
    assert ex.attempt == 1
    assert ex.method == "GET"
    assert ex.request_body is None
    # QR ids are not secrets; the bot token in the answer is.
    assert ex.url.endswith(f"?qrcode={server.state.qrcode}")
    assert ex.response_body["status"] == "confirmed"
    assert ex.response_body["bot_token"].startswith("<redacted ")


def test_call_from_path() -> None:
    assert call_from_path("/ilink/bot/sendmessage") == "send_message"
    assert call_from_path("/c2c/upload") == "cdn_upload"
    assert call_from_path("/c2c/download") == "cdn_download"
    assert call_from_path("/something/else") == "else"


def test_streamed_upload_is_counted_not_buffered(server: LoopbackServer) -> None:
    rec = Recorder()
    chunks = [bytes([i]) * 10_000 for i in range(13)]
    sent = b"".join(chunks)
    param = server.state.upload_param

    def body() -> Iterator[bytes]:
        yield from chunks

    with _client(rec) as http:
        r = http.post(
            f"{server.cdn_base_url}/upload",
            params={"encrypted_query_param": param, "filekey": "abc123", "echo": "md5"},
            content=body(),
            headers={"Content-Type": "application/octet-stream"},
            extensions={CALL_KEY: "cdn_upload", ATTEMPT_KEY: 1},
        )
    assert r.status_code == 200
    # The request was streamed through: nobody read it into memory.
    assert not hasattr(r.request, "_content")
    ex = rec[-1]
    assert ex.call == "cdn_upload"
    assert ex.request_body == Binary(len(sent), hashlib.md5(sent).hexdigest())
    assert ex.request_size == len(sent)
    assert r.headers["x-test-md5"] == hashlib.md5(sent).hexdigest()
    assert "filekey=abc123" in ex.url
    assert param not in ex.url and "encrypted_query_param=<redacted " in ex.url
    assert ex.response_headers["x-encrypted-param"].startswith("<redacted ")
    assert ex.response_body is None and ex.response_size == 0


def test_streamed_download_is_recorded_when_closed(server: LoopbackServer) -> None:
    rec = Recorder()
    expected = b"".join(bytes([i]) * DOWNLOAD_CHUNK for i in range(DOWNLOAD_CHUNKS))
    got = []
    with _client(rec) as http:
        with http.stream(
            "GET",
            f"{server.cdn_base_url}/download",
            params={"encrypted_query_param": server.state.download_param},
            extensions={CALL_KEY: "cdn_download"},
        ) as resp:
            for chunk in resp.iter_raw():
                got.append(chunk)
                # Still streaming: nothing is recorded before the body has been read and closed.
                assert len(rec) == 0
        assert len(rec) == 1
    assert len(got) > 1, "the body reached the caller in one piece: the wrapper buffered it"
    assert b"".join(got) == expected
    ex = rec[-1]
    assert ex.response_body == Binary(len(expected), hashlib.md5(expected).hexdigest(), True)
    assert ex.response_size == len(expected)


def test_download_closed_early_is_marked_incomplete(server: LoopbackServer) -> None:
    rec = Recorder()
    with (
        _client(rec) as http,
        http.stream(
            "GET", f"{server.cdn_base_url}/download", params={"encrypted_query_param": server.state.download_param}
        ) as resp,
    ):
        first = next(resp.iter_raw())
    ex = rec[-1]
    assert isinstance(ex.response_body, Binary)
    assert ex.response_body.complete is False
    assert 0 < ex.response_body.size < DOWNLOAD_CHUNK * DOWNLOAD_CHUNKS
    assert ex.response_body.size >= len(first)


def test_timeout_is_recorded_and_reraised(server: LoopbackServer) -> None:
    rec = Recorder()
    with _client(rec) as http, pytest.raises(httpx.ReadTimeout) as info:
        http.post(
            f"{server.base_url}/hold", json={"get_updates_buf": ""}, timeout=0.2, extensions={CALL_KEY: "get_updates"}
        )
    ex = rec[-1]
    assert ex.call == "get_updates"
    assert ex.status is None and ex.failed
    assert ex.error is not None and ex.error.startswith("ReadTimeout")
    assert str(info.value) in ex.error
    assert ex.request_body == {"get_updates_buf": ""}
    assert ex.duration_ms is not None and ex.wait_ms is None


def test_connection_error_is_recorded_and_reraised(closed_port: int) -> None:
    rec = Recorder()
    with _client(rec) as http, pytest.raises(httpx.ConnectError):
        http.post(f"http://127.0.0.1:{closed_port}/ilink/bot/sendmessage", json={"msg": {}})
    ex = rec[-1]
    assert ex.call == "send_message"
    assert ex.status is None
    assert ex.error is not None and ex.error.startswith("ConnectError")
    assert ex.outcome == "ConnectError"


def test_text_body_and_error_status(server: LoopbackServer) -> None:
    rec = Recorder()
    with _client(rec) as http:
        http.get(f"{server.cdn_base_url}/download", params={"encrypted_query_param": "wrong"})
        http.get(f"{server.base_url}/plain")
    missing, plain = rec
    assert missing.status == 404 and missing.failed
    assert missing.response_body == Text("not found", 9)
    assert isinstance(plain.response_body, Text)
    assert server.state.bot_token not in plain.response_body.text


def test_whole_session_records_every_call(recorded_session: tuple) -> None:
    rec, _server, _secrets = recorded_session
    calls = [ex.call for ex in rec]
    assert calls == [
        "get_bot_qrcode",
        "get_qrcode_status",
        "get_updates",
        "get_config",
        "send_typing",
        "get_upload_url",
        "cdn_upload",
        "send_message",
        "cdn_download",
        "send_message",
    ]
    assert [ex.id for ex in rec] == list(range(1, 11))
    assert all(ex.status == 200 and not ex.failed for ex in rec), rec.frame()[["call", "status", "ret"]]


# -- async twins -------------------------------------------------------------------------------------------------


def test_async_exchanges(server: LoopbackServer) -> None:
    rec = Recorder()
    payload = [bytes([7]) * 5000] * 4

    async def body() -> AsyncIterator[bytes]:
        for chunk in payload:
            yield chunk

    async def main() -> None:
        async with httpx.AsyncClient(transport=rec.wrap_async(httpx.AsyncHTTPTransport())) as http:
            await http.post(
                f"{server.base_url}/ilink/bot/sendtyping",
                json={"typing_ticket": "x", "status": 1},
                extensions={CALL_KEY: "send_typing"},
            )
            await http.post(
                f"{server.cdn_base_url}/upload",
                params={"encrypted_query_param": server.state.upload_param},
                content=body(),
                headers={"Content-Type": "application/octet-stream"},
            )
            async with http.stream(
                "GET", f"{server.cdn_base_url}/download", params={"encrypted_query_param": server.state.download_param}
            ) as resp:
                n = 0
                async for chunk in resp.aiter_raw():
                    n += len(chunk)
                    assert len(rec) == 2  # recorded only once the body has been read
            assert len(rec) == 3
            with pytest.raises(httpx.ReadTimeout):
                await http.get(f"{server.base_url}/hold", timeout=0.2)

    asyncio.run(main())
    typing, upload, download, held = rec
    assert typing.call == "send_typing" and typing.response_body == {"ret": -2}
    assert typing.failed and typing.ret == -2
    sent = b"".join(payload)
    assert upload.call == "cdn_upload" and upload.request_body == Binary(len(sent), hashlib.md5(sent).hexdigest())
    assert download.call == "cdn_download"
    assert (
        isinstance(download.response_body, Binary) and download.response_body.size == DOWNLOAD_CHUNK * DOWNLOAD_CHUNKS
    )
    assert held.error is not None and held.error.startswith("ReadTimeout")


# -- odd paths a real server can't produce on demand -----------------------------------------------------------


class _BrokenStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"ret": 0, "context_token": "abc'
        raise httpx.ReadError("connection reset mid-body")


def test_error_mid_body_keeps_only_a_hash() -> None:
    rec = Recorder()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=_BrokenStream())

    with httpx.Client(transport=rec.wrap(httpx.MockTransport(handler))) as http, pytest.raises(httpx.ReadError):
        http.post("http://x/ilink/bot/getupdates", json={})
    ex = rec[-1]
    assert ex.status == 200 and ex.failed
    assert ex.error == "ReadError: connection reset mid-body"
    # A cut-off JSON body could end inside a secret: only its size and hash are kept.
    assert isinstance(ex.response_body, Binary) and ex.response_body.complete is False


def test_prebuilt_response_and_gzip() -> None:
    rec = Recorder()
    data = {"ret": 0, "typing_ticket": "TICKET-SECRET"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getconfig"):
            return httpx.Response(200, json=data)  # already read: MockTransport style
        raw = gzip.compress(json.dumps(data).encode())
        return httpx.Response(
            200,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
            stream=httpx.ByteStream(raw),
        )

    with httpx.Client(transport=rec.wrap(httpx.MockTransport(handler))) as http:
        assert http.post("http://x/ilink/bot/getconfig", json={}).json() == data
        assert http.post("http://x/ilink/bot/other", json={}).json() == data
    for ex in rec:
        assert ex.response_body["ret"] == 0
        assert ex.response_body["typing_ticket"].startswith("<redacted ")
