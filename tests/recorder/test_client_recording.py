"""The recorder as the clients wire it in: ``Client``/``AsyncClient`` against the simulator over real HTTP.

What a client records (every field, sync and async), retries as attempts, ``record=False``, ``log_size`` and
``redact=False`` (one warning, at the caller's line).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

sim_module = pytest.importorskip("openclaw_nb.sim")

from openclaw_nb.client import AsyncClient, Client  # noqa: E402
from openclaw_nb.protocol.flow import RetryPolicy  # noqa: E402
from openclaw_nb.protocol.redact import is_redacted  # noqa: E402
from openclaw_nb.recorder import Binary, Recorder  # noqa: E402

Simulator = sim_module.Simulator
IMAGE = bytes(range(256)) * 64
#: Retries without back-off: the retry schedule is not under test here, only what the log shows of it.
NO_WAIT = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, jitter=0.0)
#: Where each call goes (the API paths of docs/protocol.md; the simulator's CDN lives under /c2c).
PATHS = {
    "get_bot_qrcode": "/ilink/bot/get_bot_qrcode",
    "get_qrcode_status": "/ilink/bot/get_qrcode_status",
    "notify_start": "/ilink/bot/msg/notifystart",
    "notify_stop": "/ilink/bot/msg/notifystop",
    "get_updates": "/ilink/bot/getupdates",
    "send_message": "/ilink/bot/sendmessage",
    "get_config": "/ilink/bot/getconfig",
    "send_typing": "/ilink/bot/sendtyping",
    "get_upload_url": "/ilink/bot/getuploadurl",
    "cdn_upload": "/c2c/upload",
    "cdn_download": "/c2c/download",
}


@pytest.fixture
def sim() -> Iterator[Any]:
    with Simulator(auto_confirm=0.0, long_poll_timeout=1.0, default_user="alice@im.wechat") as s:
        yield s


def _wire_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "openclaw_nb.wire"]


# --- every field, from the async client ------------------------------------------------------------------


async def _async_session(sim: Any) -> tuple[AsyncClient, str]:
    client = AsyncClient(base_url=sim.base_url, cdn_base_url=sim.cdn_base_url)
    qr = await client.get_bot_qrcode()
    status = await client.get_qrcode_status(qr.qrcode)
    assert status.status == "confirmed", status
    client.use_credentials(status.bot_token, bot_id=status.ilink_bot_id)
    await client.notify_start()
    sim.say("alice", "hello bot")
    page = await client.get_updates()
    user = page.msgs[0].from_user_id
    await client.send_text(user, "hello alice")
    await client.typing(user)
    await client.send_image(IMAGE, user)
    sim.send_image("alice", IMAGE)
    page = await client.get_updates()
    assert bytes(await client.download_media(page.msgs[0].item_list[0])) == IMAGE
    await client.notify_stop()
    return client, status.bot_token


def test_async_client_records_every_exchange_with_every_field(sim: Any) -> None:
    async def run() -> tuple[AsyncClient, str]:
        client, token = await _async_session(sim)
        await client.aclose()
        return client, token

    client, token = asyncio.run(run())
    log = client.log
    assert isinstance(log, Recorder) and log.redacted and log.maxlen == 1000 and log.dropped == 0
    calls = [ex.call for ex in log]
    assert calls == [
        "get_bot_qrcode",
        "get_qrcode_status",
        "notify_start",
        "get_updates",
        "send_message",
        "get_config",
        "send_typing",
        "get_upload_url",
        "cdn_upload",
        "send_message",
        "get_updates",
        "cdn_download",
        "notify_stop",
    ]
    # One request at a time, so ids count up in log order.
    assert [ex.id for ex in log] == list(range(1, len(calls) + 1))
    for ex in log:
        where = f"#{ex.id} {ex.call}"
        assert isinstance(ex.started, datetime) and ex.started.utcoffset() == timedelta(0), where
        assert ex.method == ("GET" if ex.call in ("get_qrcode_status", "cdn_download") else "POST"), where
        assert ex.url.startswith(sim.base_url + PATHS[ex.call]), (where, ex.url)
        assert ex.status == 200 and ex.reason == "OK" and ex.http_version == "HTTP/1.1", where
        assert ex.error is None and not ex.failed and ex.attempt == 1 and ex.redacted, where
        assert isinstance(ex.duration_ms, float) and ex.duration_ms >= 0, where
        assert isinstance(ex.wait_ms, float) and 0 <= ex.wait_ms <= ex.duration_ms, where
        assert isinstance(ex.request_headers, dict) and isinstance(ex.response_headers, dict), where
        assert ex.request_headers["User-Agent"].startswith("openclaw-nb/"), where
        assert isinstance(ex.response_size, int), where
        # The token is never kept: the header keeps its scheme and shows a placeholder.
        auth = ex.request_headers.get("Authorization")
        if ex.call in ("get_bot_qrcode", "get_qrcode_status") or ex.call.startswith("cdn_"):
            assert auth is None, where
        else:
            scheme, credential = auth.split(" ", 1)
            assert scheme == "Bearer" and is_redacted(credential) and token not in auth, where
        # Bodies: JSON parsed, binary as size + md5, nothing for a GET.
        if ex.method == "GET":
            assert ex.request_body is None, where
        elif ex.call == "cdn_upload":
            assert isinstance(ex.request_body, Binary) and ex.request_body.size == ex.request_size, where
            assert ex.request_body.size % 16 == 0 and ex.request_body.size > len(IMAGE), where
            assert len(ex.request_body.md5) == 32, where
            assert is_redacted(ex.response_headers["x-encrypted-param"]), where
        elif ex.call == "get_bot_qrcode":  # unauthenticated, as the official client: no base_info
            assert ex.request_body == {"local_token_list": []}, where
        else:
            assert isinstance(ex.request_body, dict) and "base_info" in ex.request_body, where
        if ex.call == "cdn_download":
            assert isinstance(ex.response_body, Binary) and ex.response_body.size == ex.response_size, where
        elif ex.call != "cdn_upload":
            assert isinstance(ex.response_body, dict), where
            assert ex.response_body.get("ret", 0) == 0 and ex.ret in (0, None), where
    # Some values worth checking where they are: the token handed out is the one every later call shows, the
    # context token from the poll is the one the reply echoes.
    login = log.filter(call="get_qrcode_status")[0]
    assert log.filter(call="get_updates")[0].request_headers["Authorization"] == (
        "Bearer " + login.response_body["bot_token"]
    )
    page = log.filter(call="get_updates")[0].response_body
    reply = log.filter(call="send_message")[0].request_body
    assert is_redacted(page["msgs"][0]["context_token"])
    assert reply["msg"]["context_token"] == page["msgs"][0]["context_token"]
    assert reply["msg"]["item_list"][0]["text_item"]["text"] == "hello alice"
    assert "qrcode=" + log[0].response_body["qrcode"] in login.url  # QR ids are not secrets


# --- retries ---------------------------------------------------------------------------------------------


def _send_with_two_500s(sim: Any, kind: str) -> Recorder:
    # A 5xx after a send is retried only on request (retry_sends): it may have delivered the message.
    retry = RetryPolicy(attempts=NO_WAIT.attempts, base_delay=0, max_delay=0, retry_sends=True)
    login = sim.login_bot("alice")
    sim.say("alice", "hello bot")
    sim.add_fault(http_500=1.0, count=2, endpoints=["send_message"])
    if kind == "sync":
        with Client(login.bot_token, base_url=sim.base_url, retry=retry) as client:
            user = client.get_updates().msgs[0].from_user_id
            client.send_text(user, "after two 500s")
        return client.log

    async def run() -> Recorder:
        async with AsyncClient(login.bot_token, base_url=sim.base_url, retry=retry) as client:
            user = (await client.get_updates()).msgs[0].from_user_id
            await client.send_text(user, "after two 500s")
        return client.log

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_retried_call_is_recorded_once_per_attempt(sim: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="openclaw_nb.wire"):
        log = _send_with_two_500s(sim, kind)
    sends = log.filter(call="send_message")
    assert [(ex.call, ex.attempt, ex.status) for ex in sends] == [
        ("send_message", 1, 500),
        ("send_message", 2, 500),
        ("send_message", 3, 200),
    ]
    assert [ex.failed for ex in sends] == [True, True, False]
    assert [ex.id for ex in sends] == [2, 3, 4]  # three requests, three exchanges, in order
    # The same request every time (so the same client_id), and the server stored it once (the 500s came first).
    assert sends[0].request_body == sends[1].request_body == sends[2].request_body
    assert [e.text for e in sim.outbox] == ["after two 500s"]
    assert log.filter(call="send_message", errors_only=True).frame()["attempt"].tolist() == [1, 2]
    summary = log.summary()
    assert summary.loc["send_message", "count"] == 3 and summary.loc["send_message", "errors"] == 2
    # The wire log says which attempt a line is.
    lines = [r.getMessage() for r in _wire_records(caplog)]
    assert len(lines) == len(log) == 4
    assert [("(attempt 2)" in line, "(attempt 3)" in line) for line in lines[1:]] == [
        (False, False),
        (True, False),
        (False, True),
    ]


# --- record=False, log_size ----------------------------------------------------------------------------


def test_record_false_makes_no_recording(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    login = sim.login_bot("alice")
    transport = httpx.HTTPTransport()
    with (
        caplog.at_level(logging.DEBUG, logger="openclaw_nb.wire"),
        Client(login.bot_token, base_url=sim.base_url, record=False, transport=transport) as client,
    ):
        assert client.log is None
        assert client._http._transport is transport  # nothing wrapped around the transport
        client.notify_start()
        client.get_updates()
    assert _wire_records(caplog) == []
    assert [n.kind for n in sim.notifications] == ["start"]  # the calls did go out

    async def run() -> None:
        atransport = httpx.AsyncHTTPTransport()
        async with AsyncClient(login.bot_token, base_url=sim.base_url, record=False, transport=atransport) as ac:
            assert ac.log is None
            assert ac._http._transport is atransport
            await ac.notify_start()

    with caplog.at_level(logging.DEBUG, logger="openclaw_nb.wire"):
        asyncio.run(run())
    assert _wire_records(caplog) == []
    assert [n.kind for n in sim.notifications] == ["start", "start"]


def test_log_size_bounds_the_ring_and_counts_what_fell_out(sim: Any) -> None:
    login = sim.login_bot("alice")
    with Client(login.bot_token, base_url=sim.base_url, log_size=3) as client:
        assert client.log.maxlen == 3 and len(client.log) == 0 and client.log.dropped == 0
        for _ in range(5):
            client.notify_start()
        assert len(client.log) == 3 and client.log.dropped == 2
        assert [ex.id for ex in client.log] == [3, 4, 5]  # the oldest went first
        client.notify_stop()
        assert [ex.call for ex in client.log] == ["notify_start", "notify_start", "notify_stop"]
        assert client.log.dropped == 3 and client.log[-1].id == 6

    async def run() -> Recorder:
        async with AsyncClient(login.bot_token, base_url=sim.base_url, log_size=2) as ac:
            for _ in range(3):
                await ac.notify_start()
        return ac.log

    alog = asyncio.run(run())
    assert alog.maxlen == 2 and [ex.id for ex in alog] == [2, 3] and alog.dropped == 1
    with Client("tok") as default:
        assert default.log.maxlen == 1000  # the documented default
    with pytest.raises(ValueError, match="at least 1"):
        Client("tok", log_size=0)


# --- redact=False --------------------------------------------------------------------------------------


def _unredacted_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, UserWarning) and "redact=False" in str(w.message)]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_redact_false_warns_once_and_keeps_the_values(sim: Any, kind: str) -> None:
    login = sim.login_bot("alice")
    cls = Client if kind == "sync" else AsyncClient
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # count every warning, not one per place
        client = cls(login.bot_token, base_url=sim.base_url, redact=False)
    assert len(_unredacted_warnings(caught)) == 1, [str(w.message) for w in caught]
    assert client.log is not None and client.log.redacted is False

    async def calls() -> None:
        await client.notify_start()
        await client.get_updates()
        await client.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recording, viewing and exporting never warn again
        if kind == "sync":
            client.notify_start()
            client.get_updates()
            client.close()
        else:
            asyncio.run(calls())
        frame = client.log.frame()
    assert len(frame) == 2
    assert client.log[0].request_headers["Authorization"] == f"Bearer {login.bot_token}"
    assert not client.log[0].redacted


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_redact_false_warning_points_at_the_callers_line(sim: Any, kind: str) -> None:
    login = sim.login_bot("alice")
    cls = Client if kind == "sync" else AsyncClient
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        client = cls(login.bot_token, base_url=sim.base_url, redact=False)
    if kind == "sync":
        client.close()
    else:
        asyncio.run(client.aclose())
    (warning,) = _unredacted_warnings(caught)
    assert (warning.filename, warning.lineno) == (__file__, line)
