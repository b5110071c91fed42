"""Media upload pieces without a server: plans and items, MIME routing, input checks, the streamed CDN body,
the typing-ticket policy and the progress bars. Paths a real server can show are tested against the
simulator in test_media_sim.py; here ``httpx.MockTransport`` stands in only where that is simpler."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb import media as media_module
from openclaw_nb import progress as progress_module
from openclaw_nb.client import Client
from openclaw_nb.notebook.progress import WidgetProgress
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.crypto import decrypt, key_to_hex
from openclaw_nb.protocol.media import (
    EXTENSION_MIME,
    TypingTicketCache,
    UploadPlan,
    digest,
    guess_kind,
    kind_for_mime,
    mime_for_name,
    parse_kind,
)

USER = "u@im.wechat"


# --- a tiny API + CDN for odd paths -----------------------------------------------------------------


class FakeServer:
    """Answers getuploadurl, the CDN upload and sendmessage; records every request and decrypts uploads."""

    def __init__(self, *, full_url: bool = True, cdn: Callable[[httpx.Request, bytes], httpx.Response] | None = None):
        self.full_url = full_url
        self.cdn = cdn
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.registered: dict[str, Any] = {}
        self.plaintexts: list[bytes] = []
        self.on_upload_url: Callable[[], None] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.requests.append(request)
        self.bodies.append(body)
        path = request.url.path
        if path.endswith("/getuploadurl"):
            self.registered = json.loads(body)
            if self.on_upload_url:
                self.on_upload_url()
            answer = {"ret": 0, "upload_param": "up/param+1"}
            if self.full_url:
                answer["upload_full_url"] = "http://cdn.test/c2c/upload?encrypted_query_param=full"
            return httpx.Response(200, json=answer)
        if path.endswith("/upload"):
            if self.cdn is not None:
                return self.cdn(request, body)
            key = bytes.fromhex(self.registered["aeskey"])
            self.plaintexts.append(decrypt(body, key))
            return httpx.Response(200, headers={C.H_ENCRYPTED_PARAM: "download-param"})
        if path.endswith("/sendmessage"):
            return httpx.Response(200, json={"ret": 0, "message_id": len(self.requests)})
        return httpx.Response(404)

    def paths(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[-1] for r in self.requests]


def make(server: FakeServer) -> tuple[Client, list[float]]:
    sleeps: list[float] = []
    client = Client(
        "tok",
        base_url="http://api.test",
        cdn_base_url="http://cdn.test/c2c",
        transport=httpx.MockTransport(server),
        record=False,
    )
    client._sleep = sleeps.append  # type: ignore[method-assign]
    client.peer(USER).context_token = "ctx"
    return client, sleeps


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


# --- plan and items -----------------------------------------------------------------------------------


def test_plan_request_fields() -> None:
    data = b"hello world"
    size, md5 = digest([data[:4], memoryview(data)[4:]])
    assert (size, md5) == (11, hashlib.md5(data).hexdigest())
    plan = UploadPlan(USER, C.UploadMediaType.IMAGE, size, md5, "a.png")
    wire = plan.request().to_wire()
    assert wire == {
        "filekey": plan.filekey,
        "media_type": 1,
        "to_user_id": USER,
        "rawsize": 11,
        "rawfilemd5": md5,
        "filesize": 16,
        "no_need_thumb": True,
        "aeskey": plan.key.hex(),
    }
    assert len(plan.filekey) == 32 and int(plan.filekey, 16) >= 0 and len(plan.key) == 16
    assert plan.key.hex() not in repr(plan)


@pytest.mark.parametrize(
    ("media_type", "item"),
    [
        (C.UploadMediaType.IMAGE, {"type": 2, "image_item": {"media": "M", "mid_size": 48}}),
        (C.UploadMediaType.VIDEO, {"type": 5, "video_item": {"media": "M", "video_size": 48}}),
        (C.UploadMediaType.FILE, {"type": 4, "file_item": {"media": "M", "file_name": "r é.bin", "len": "40"}}),
    ],
)
def test_message_items_exactly_as_the_protocol_writes_them(media_type: C.UploadMediaType, item: dict) -> None:
    plan = UploadPlan(USER, media_type, 40, "0" * 32, "r é.bin")
    uploaded = plan.uploaded("dl-param")
    media = {
        "encrypt_query_param": "dl-param",
        "aes_key": base64.b64encode(plan.key.hex().encode()).decode(),
        "encrypt_type": 1,
    }
    expected = json.loads(json.dumps(item).replace('"M"', json.dumps(media)))
    assert json.loads(json.dumps(uploaded.message_item().to_wire())) == expected
    assert base64.b64decode(media["aes_key"]) == key_to_hex(plan.key).encode()  # base64 of the hex, not raw
    text = repr(uploaded)
    assert plan.key.hex() not in text and "dl-param" not in text and "<redacted" in text
    assert (uploaded.rawsize, uploaded.filesize, uploaded.kind) == (40, 48, media_type.name.lower())


def test_mime_routing() -> None:
    assert kind_for_mime("video/mp4") == C.UploadMediaType.VIDEO
    assert kind_for_mime("image/png") == C.UploadMediaType.IMAGE
    assert kind_for_mime("application/pdf") == C.UploadMediaType.FILE
    assert kind_for_mime(None) == C.UploadMediaType.FILE
    assert guess_kind("holiday photo.JPG") == C.UploadMediaType.IMAGE
    assert guess_kind("clip.mp4") == C.UploadMediaType.VIDEO
    assert guess_kind("notes.txt") == C.UploadMediaType.FILE
    assert guess_kind("no_extension") == C.UploadMediaType.FILE
    # The official client's fixed table, not the machine's mimetypes: these go as files everywhere.
    for name in ("a.svg", "a.heic", "a.tiff", "a.ico", "a.avif", "a.flv", "a.wmv", "a.m4v", ".png", "a.png.x"):
        assert guess_kind(name) == C.UploadMediaType.FILE, name
    assert mime_for_name("x/y/Clip.MOV") == "video/quicktime" and mime_for_name("a.tar.gz") == "application/gzip"
    assert mime_for_name("a.svg") == mime_for_name(None) == "application/octet-stream"
    assert {guess_kind(f"a{ext}") for ext, mime in EXTENSION_MIME.items() if mime.startswith("audio/")} == {
        C.UploadMediaType.FILE
    }
    assert parse_kind("Video", "x.png") == C.UploadMediaType.VIDEO
    assert parse_kind(C.UploadMediaType.FILE, "x.png") == C.UploadMediaType.FILE
    assert parse_kind(None, "x.png") == C.UploadMediaType.IMAGE
    for bad in ("voice", "picture", 4, True):
        with pytest.raises(ValueError, match="kind must be one of"):
            parse_kind(bad, "x.png")  # type: ignore[arg-type]


# --- checks before any request ------------------------------------------------------------------------


def _unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path.write_bytes(b"secret")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make the open fail the way it would for a user

        def refuse(file: Any, *args: Any, **kw: Any) -> Any:
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return open(file, *args, **kw)

        monkeypatch.setattr(media_module, "open", refuse, raising=False)


def test_bad_input_fails_before_any_request(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = make(server)
    good = tmp_path / "ok.txt"
    good.write_bytes(b"x")
    locked = tmp_path / "locked.bin"
    _unreadable(locked, monkeypatch)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: client.upload(tmp_path / "missing.png", USER), "no such file"),
        (lambda: client.upload(tmp_path, USER), "is a directory"),
        (lambda: client.upload(locked, USER), "cannot read"),
        (lambda: client.upload(good, ""), "to must be a non-empty user id"),
        (lambda: client.upload(good, "   "), "to must be a non-empty user id"),
        (lambda: client.upload(good, None), "to must be a non-empty user id"),  # type: ignore[arg-type]
        (lambda: client.upload(12, USER), "pass a file path"),  # type: ignore[arg-type]
        (lambda: client.upload(good, USER, kind="sticker"), "kind must be one of"),
        (lambda: client.upload(b"x", USER, name=""), "name must be"),
        (lambda: client.send_media(tmp_path / "missing.mp4", USER, caption="hi"), "no such file"),
        (lambda: client.send_file(good, "", caption="hi"), "to must be"),
        (lambda: client.send_image(good, USER, caption=""), "caption must be"),
        (lambda: client.typing(""), "to must be"),
    ]
    for call, message in cases:
        with pytest.raises(E.UsageError, match=message):
            call()
    assert server.requests == []


def test_media_over_budget_fails_before_uploading(server: FakeServer) -> None:
    client, _ = make(server)
    client.peer(USER).sends_on_token = 9
    with pytest.raises(E.UsageError, match="need 2 messages and only 1 of 10"):
        client.send_image(b"\x89PNG", USER, caption="look")
    client.peer(USER).sends_on_token = 10
    with pytest.raises(E.UsageError, match="needs 1 message and only 0 of 10"):
        client.send_file(b"data", USER)
    assert server.requests == []


def test_upload_of_the_wrong_kind_is_refused(server: FakeServer) -> None:
    client, _ = make(server)
    uploaded = client.upload(b"data", USER, name="a.txt")
    with pytest.raises(E.UsageError, match="this upload is a file; send it with send_file"):
        client.send_image(uploaded, USER)


# --- the streamed CDN body ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rawsize", "filesize"), [(0, 16), (1, 16), (15, 16), (16, 32), (17, 32), (3 << 20, (3 << 20) + 16)]
)
def test_ciphertext_size_and_content_length(server: FakeServer, tmp_path: Path, rawsize: int, filesize: int) -> None:
    client, _ = make(server)
    path = tmp_path / "data.bin"
    data = os.urandom(rawsize)
    path.write_bytes(data)
    uploaded = client.upload(path, USER, progress=False)
    assert server.paths() == ["getuploadurl", "upload"]
    cdn = server.requests[1]
    assert cdn.headers["content-length"] == str(filesize) and "transfer-encoding" not in cdn.headers
    assert cdn.headers["content-type"] == "application/octet-stream"
    assert len(server.bodies[1]) == filesize
    assert server.plaintexts == [data]
    assert server.registered["rawsize"] == rawsize and server.registered["filesize"] == filesize
    assert server.registered["rawfilemd5"] == hashlib.md5(data).hexdigest()
    assert (uploaded.rawsize, uploaded.filesize, uploaded.encrypt_query_param) == (rawsize, filesize, "download-param")
    assert str(cdn.url) == "http://cdn.test/c2c/upload?encrypted_query_param=full"  # upload_full_url wins


def test_built_cdn_url_without_full_url() -> None:
    server = FakeServer(full_url=False)
    client, _ = make(server)
    uploaded = client.upload(b"abc", USER)
    url = server.requests[1].url
    assert (url.host, url.path) == ("cdn.test", "/c2c/upload")
    assert url.params["encrypted_query_param"] == "up/param+1"  # URL-encoded on the wire, intact here
    assert url.params["filekey"] == uploaded.filekey
    assert b"up%2Fparam%2B1" in url.raw_path or b"up/param%2B1" in url.raw_path


def test_bytes_and_memoryview_sources(server: FakeServer) -> None:
    client, _ = make(server)
    client.upload(bytearray(b"abc"), USER)
    client.upload(memoryview(b"\x00\x01" * 10).cast("H"), USER)  # a non-byte view is read as its bytes
    assert server.plaintexts == [b"abc", b"\x00\x01" * 10]
    assert server.registered["to_user_id"] == USER


def test_a_file_that_changes_during_upload_is_an_error(server: FakeServer, tmp_path: Path) -> None:
    client, _ = make(server)
    path = tmp_path / "growing.log"
    path.write_bytes(b"line\n" * 100)
    server.on_upload_url = lambda: path.write_bytes(b"line\n" * 200)  # grows between hashing and uploading
    with pytest.raises(E.UsageError, match="changed while it was being uploaded"):
        client.upload(path, USER)
    server.on_upload_url = lambda: path.write_bytes(b"line\n" * 10)  # shrinks
    with pytest.raises(E.UsageError, match="changed while it was being uploaded"):
        client.upload(path, USER)


def test_missing_download_param_is_retried_then_an_error() -> None:
    # As the official client: a 200 without x-encrypted-param is retried like a 5xx, 3 attempts in all.
    server = FakeServer(cdn=lambda request, body: httpx.Response(200))
    client, sleeps = make(server)
    with pytest.raises(E.CdnError, match=r"after 3 attempts \(HTTP 200 without the x-encrypted-param header"):
        client.upload(b"abc", USER)
    assert server.paths() == ["getuploadurl", "upload", "upload", "upload"] and len(sleeps) == 2


def test_getuploadurl_without_a_destination_is_a_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ret": 0})

    client = Client("tok", base_url="http://api.test", transport=httpx.MockTransport(handler), record=False)
    with pytest.raises(E.ProtocolError, match="without upload_full_url or upload_param"):
        client.upload(b"abc", USER)


def test_cdn_4xx_message_prefers_the_header_over_the_body() -> None:
    def reject(request: httpx.Request, body: bytes) -> httpx.Response:
        return httpx.Response(
            403, headers={C.H_ERROR_MESSAGE: "filekey expired (from the header)"}, text="generic body text"
        )

    server = FakeServer(cdn=reject)
    client, sleeps = make(server)
    with pytest.raises(E.CdnError) as info:
        client.upload(b"abc", USER)
    assert "filekey expired (from the header)" in str(info.value)
    assert "generic body text" not in str(info.value)
    assert info.value.status_code == 403 and info.value.attempts == 1 and sleeps == []
    # Without the header, the body is the message.
    server.cdn = lambda request, body: httpx.Response(403, text="only the body says why")
    with pytest.raises(E.CdnError, match="HTTP 403: only the body says why"):
        client.upload(b"abc", USER)


def test_transport_failure_retries_and_resends_the_whole_body(server: FakeServer) -> None:
    calls = {"n": 0}

    def flaky(request: httpx.Request, body: bytes) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        key = bytes.fromhex(server.registered["aeskey"])
        server.plaintexts.append(decrypt(body, key))
        return httpx.Response(200, headers={C.H_ENCRYPTED_PARAM: "p"})

    server.cdn = flaky
    client, sleeps = make(server)
    data = os.urandom(100_000)
    client.upload(data, USER)
    assert calls["n"] == 2 and len(sleeps) == 1 and server.plaintexts == [data]


# --- progress -----------------------------------------------------------------------------------------


class SpyProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, int | bool]] = []

    def start(self, total: int) -> None:
        self.events.append(("start", total))

    def advance(self, nbytes: int) -> None:
        self.events.append(("advance", nbytes))

    def close(self, ok: bool) -> None:
        self.events.append(("close", ok))


def test_progress_follows_each_try(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = iter([httpx.Response(503), httpx.Response(200, headers={C.H_ENCRYPTED_PARAM: "p"})])
    server = FakeServer(cdn=lambda request, body: next(replies))
    client, _ = make(server)
    spy = SpyProgress()
    seen: list[tuple[int, str, bool | None]] = []

    def fake_make(total: int, description: str, enabled: bool | None = None) -> SpyProgress:
        seen.append((total, description, enabled))
        return spy

    monkeypatch.setattr(progress_module, "make_progress", fake_make)
    client.upload(os.urandom(3 << 20), USER, name="big.bin")
    filesize = (3 << 20) + 16
    assert seen == [(filesize, "uploading big.bin", None)]
    starts = [i for i, (kind, _) in enumerate(spy.events) if kind == "start"]
    assert len(starts) == 2, "a retry starts the bar over"
    second = spy.events[starts[1] + 1 : -1]
    assert sum(n for _, n in second) == filesize and spy.events[-1] == ("close", True)


def test_progress_closes_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer(cdn=lambda request, body: httpx.Response(400, headers={C.H_ERROR_MESSAGE: "no"}))
    client, _ = make(server)
    spy = SpyProgress()
    monkeypatch.setattr(progress_module, "make_progress", lambda *a, **k: spy)
    with pytest.raises(E.CdnError):
        client.upload(b"abc", USER, progress=True)
    assert spy.events[-1] == ("close", False)


def test_progress_choice() -> None:
    assert isinstance(progress_module.make_progress(10 << 20, "x", False), progress_module.NullProgress)
    assert isinstance(progress_module.make_progress(progress_module.THRESHOLD, "x"), progress_module.NullProgress)
    # Not in a kernel, stderr not a terminal (pytest captures it): nothing unless asked for.
    assert isinstance(progress_module.make_progress(10 << 20, "x"), progress_module.NullProgress)
    bar = progress_module.make_progress(10 << 20, "x", True)
    assert isinstance(bar, progress_module.RichProgress)
    bar.start(100)
    bar.advance(60)
    bar.start(100)  # a retry
    bar.advance(100)
    bar.close(True)


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr is a terminal and this is no Jupyter kernel: the rich bar is the automatic choice. (Called in
    the test itself: pytest's capture puts its own sys.stderr back between a fixture's setup and the test.)"""
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setattr(progress_module.env, "has_widgets", lambda: False)


def test_progress_picks_the_rich_bar_on_a_terminal_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    _on_a_terminal(monkeypatch)
    threshold = progress_module.THRESHOLD
    assert threshold == 1 << 20  # 1 MiB, as the docs say
    assert isinstance(progress_module.make_progress(threshold + 1, "x"), progress_module.RichProgress)
    assert isinstance(progress_module.make_progress(threshold, "x"), progress_module.NullProgress)
    assert isinstance(progress_module.make_progress(threshold + 1, "x", False), progress_module.NullProgress)


def test_upload_shows_a_bar_for_files_above_1_mib(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _on_a_terminal(monkeypatch)
    bars: list[SpyProgress] = []

    def rich(description: str) -> SpyProgress:
        bars.append(SpyProgress())
        return bars[-1]

    monkeypatch.setattr(progress_module, "RichProgress", rich)
    client, _ = make(server)
    threshold = progress_module.THRESHOLD
    client.upload(b"x" * threshold, USER, name="exactly 1 MiB.bin")  # ciphertext 1 MiB + 16: still no bar
    assert bars == []
    client.upload(b"x" * (threshold + 1), USER, name="just over.bin")
    assert len(bars) == 1 and bars[0].events[0] == ("start", threshold + 16)
    assert bars[0].events[-1] == ("close", True)
    client.upload(b"x" * (threshold + 1), USER, progress=False)
    client.upload(b"small", USER, progress=True)  # asked for: shown whatever the size
    assert len(bars) == 2


def test_widget_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ipywidgets")
    bar = WidgetProgress("uploading a.bin")
    shown: list[object] = []
    monkeypatch.setattr(bar, "_display", shown.append)
    bar.start(1000)
    for _ in range(10):
        bar.advance(100)
    assert len(shown) == 1 and bar._bar.value == 1000 and bar._bar.max == 1000
    assert "1,000 B of 1,000 B" in bar._label.value
    bar.start(1000)
    assert bar._bar.value == 0 and len(shown) == 1
    bar.close(False)
    assert bar._bar.bar_style == "danger" and "failed" in bar._label.value


# --- the typing-ticket policy -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ticket_refreshes_at_a_random_time_within_a_day() -> None:
    clock = Clock()
    cache = TypingTicketCache(clock=clock, rng=lambda: 0.5)
    assert cache.due(USER) and cache.ticket(USER) is None
    cache.succeeded(USER, "t1")
    assert cache.ticket(USER) == "t1" and not cache.due(USER)
    clock.now += 12 * 3600 - 1
    assert not cache.due(USER)
    clock.now += 1
    assert cache.due(USER) and cache.ticket(USER) == "t1"
    for r in (0.0, 0.999):
        cache = TypingTicketCache(clock=clock, rng=lambda r=r: r)
        cache.succeeded(USER, "t")
        assert 0 <= cache.wait(USER) <= C.TYPING_TICKET_REFRESH_WINDOW


def test_ticket_failures_back_off_from_2s_to_1h() -> None:
    clock = Clock()
    cache = TypingTicketCache(clock=clock, rng=lambda: 0.5)
    waits = []
    for _ in range(14):
        cache.failed(USER, "boom", "ctx")
        waits.append(cache.wait(USER))
        assert not cache.due(USER, "ctx")
        clock.now += waits[-1]
        assert cache.due(USER, "ctx")
    assert waits[:6] == [2, 4, 8, 16, 32, 64]
    assert max(waits) == 3600 and waits[-1] == 3600
    cache.succeeded(USER, "t")
    cache.failed(USER, "again")
    assert cache.wait(USER) == 2, "a success resets the back-off"


def test_new_context_token_ends_the_back_off() -> None:
    cache = TypingTicketCache(clock=Clock())
    cache.failed(USER, "-4", "ctx-1")
    assert not cache.due(USER, "ctx-1") and cache.due(USER, "ctx-2")
    cache.invalidate(USER)
    assert cache.due(USER, "ctx-1")
