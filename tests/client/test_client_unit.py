"""Client behaviour on paths a real server can't produce on demand, via httpx.MockTransport.

Everything that a real server can show is tested against the simulator in test_client_sim.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.flow import RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]


def make(handler: Handler, **kw) -> tuple[Client, list[httpx.Request], list[float]]:
    seen: list[httpx.Request] = []
    sleeps: list[float] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    client = Client(
        "tok-123456",
        base_url="http://api.test",
        cdn_base_url="http://cdn.test/c2c",
        transport=httpx.MockTransport(record),
        record=False,
        **kw,
    )
    client._sleep = sleeps.append  # type: ignore[method-assign]
    return client, seen, sleeps


def ok(body: dict | None = None, status: int = 200, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {"ret": 0}, headers=headers)


def test_send_text_exact_wire() -> None:
    client, seen, _ = make(lambda r: ok({"ret": 0, "message_id": 2**64 - 2}))
    resp = client.send_text("u1@im.wechat", "héllo", context_token="ctx-1")
    assert resp.message_id == 2**64 - 2
    (req,) = seen
    assert req.method == "POST" and str(req.url) == "http://api.test/ilink/bot/sendmessage"
    assert req.headers["authorization"] == "Bearer tok-123456"
    assert req.headers["authorizationtype"] == "ilink_bot_token"
    assert req.headers["content-type"] == "application/json"
    assert int(req.headers["content-length"]) == len(req.content)  # computed by httpx, matches the bytes
    uin = base64.b64decode(req.headers["x-wechat-uin"]).decode()
    assert uin.isdigit() and int(uin) < 2**32
    body = json.loads(req.content)
    msg = body["msg"]
    assert msg["to_user_id"] == "u1@im.wechat" and msg["from_user_id"] == ""
    assert msg["message_type"] == 2 and msg["message_state"] == 2 and msg["context_token"] == "ctx-1"
    assert msg["item_list"] == [{"type": 1, "text_item": {"text": "héllo"}}]
    prefix, rest = msg["client_id"].split(":")
    ms, hexpart = rest.split("-")
    assert prefix == "openclaw-nb" and ms.isdigit() and len(hexpart) == 8
    assert resp.client_id == msg["client_id"]
    assert set(body["base_info"]) == {"channel_version", "bot_agent"}


def test_retry_reuses_client_id_with_fresh_uin() -> None:
    # A 5xx after a send is retried only when asked to (retry_sends): see test_client_sim for the default.
    replies = iter([ok(status=503), ok(status=500), ok({"ret": 0, "message_id": 5})])
    policy = RetryPolicy(attempts=3, base_delay=0.5, jitter=0, retry_sends=True)
    client, seen, sleeps = make(lambda r: next(replies), retry=policy)
    client.send_text("u1@im.wechat", "hi", context_token="c")
    ids = {json.loads(r.content)["msg"]["client_id"] for r in seen}
    uins = {r.headers["x-wechat-uin"] for r in seen}
    assert len(seen) == 3 and len(ids) == 1 and len(uins) == 3
    assert sleeps == [0.5, 1.0]


def test_retry_after_header_used() -> None:
    replies = iter([ok(status=429, headers={"Retry-After": "2"}), ok()])
    client, seen, sleeps = make(lambda r: next(replies))
    client.notify_start()
    assert sleeps == [2.0] and len(seen) == 2


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c: c.send_text("", "x"), "to must be a non-empty user id"),
        (lambda c: c.send_text(None, "x"), "to must be a non-empty user id"),
        (lambda c: c.send_text("u@im.wechat", 5), "text must be a str"),
        (lambda c: c.send_text("u@im.wechat", ""), "text is empty"),
        (lambda c: c.send_text("a@im.wechat", "x", chat_id="b@im.wechat"), "not both"),
        (lambda c: c.get_config(""), "user must be a non-empty"),
        (lambda c: c.send_typing("u@im.wechat", ""), "typing_ticket"),
        (lambda c: c.send_typing("u@im.wechat", "t", status=3), "status must be 1"),
        (lambda c: c.get_qrcode_status(""), "qrcode must be"),
        (lambda c: c.get_qrcode_status("q", verify_code="12a"), "verify_code must be the digits"),
        (lambda c: c.get_upload_url(filekey="k"), "needs at least filekey"),
        (lambda c: c.cdn_upload(b"x"), "upload_full_url, or both"),
        (lambda c: c.cdn_download(), "full_url or media.encrypt_query_param"),
        (lambda c: c.get_updates(5), "get_updates_buf must be"),
    ],
)
def test_bad_arguments_raise_before_any_request(call, needle: str) -> None:
    client, seen, _ = make(lambda r: ok())
    with pytest.raises(E.UsageError, match=needle):
        call(client)
    assert seen == []


def test_chat_id_alias() -> None:
    client, seen, _ = make(lambda r: ok())
    client.send_text(chat_id="u9@im.wechat", text="hi")
    assert json.loads(seen[0].content)["msg"]["to_user_id"] == "u9@im.wechat"


def test_constructor_checks() -> None:
    with pytest.raises(E.UsageError, match="base_url"):
        Client(base_url="ilinkai.weixin.qq.com", record=False)
    with pytest.raises(E.UsageError, match="token"):
        Client("", record=False)


def test_repr_never_shows_token() -> None:
    client, _, _ = make(lambda r: ok())
    assert "tok-123456" not in repr(client) and "<redacted" in repr(client)


def test_updates_feed_context_map_and_timeout() -> None:
    page = {
        "ret": 0,
        "get_updates_buf": "cursor-2",
        "longpolling_timeout_ms": 20000,
        "msgs": [
            {
                "message_id": 2**60,
                "from_user_id": "u1@im.wechat",
                "message_type": 1,
                "context_token": "ctx-a",
                "create_time_ms": 1000,
                "item_list": [{"type": 1, "text_item": {"text": "hi"}}],
            },
            {
                "message_id": 2**60 + 1,
                "from_user_id": "u1@im.wechat",
                "message_type": 1,
                "context_token": "ctx-b",
                "create_time_ms": 2000,
            },
            {"message_id": 2**60 + 2, "from_user_id": "bot@im.bot", "message_type": 2, "context_token": "ctx-bot"},
        ],
    }
    timeouts: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return ok(page)

    client, seen, _ = make(handler)
    client.get_updates()
    assert client.cursor == "cursor-2"
    assert client.context_tokens == {"u1@im.wechat": "ctx-b"}
    assert client.peers["u1@im.wechat"].last_inbound_ms == 2000
    assert timeouts[0]["read"] == C.DEFAULT_LONGPOLLING_TIMEOUT_MS / 1000 + C.LONG_POLL_GRACE
    client.get_updates()
    assert timeouts[1]["read"] == 20 + C.LONG_POLL_GRACE  # follows the server's longpolling_timeout_ms
    assert json.loads(seen[1].content)["get_updates_buf"] == "cursor-2"
    # an empty cursor in the answer never replaces a good one
    page["get_updates_buf"] = ""
    client.get_updates()
    assert client.cursor == "cursor-2"


def test_long_poll_client_timeout_is_empty_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    client, seen, sleeps = make(handler)
    client.cursor = "c-7"
    page = client.get_updates()
    assert page.timed_out and page.messages == [] and page.cursor == "c-7" and client.cursor == "c-7"
    assert len(seen) == 1 and sleeps == []


def test_send_rejection_explains_causes() -> None:
    client, _, _ = make(lambda r: ok({"ret": -2, "errmsg": ""}))
    peer = client.peer("u1@im.wechat")
    peer.context_token = "ctx"
    peer.sends_on_token = 10
    peer.last_inbound_ms = 0  # long ago
    with pytest.raises(E.SendRejectedError) as info:
        # One message over the server's limit (splitting raised out of the way), to meet the server's -2.
        client.send_text("u1@im.wechat", "x" * (C.MAX_TEXT_BYTES + 1), max_bytes=2 * C.MAX_TEXT_BYTES, max_chars=None)
    text = str(info.value)
    assert "10 sends already made on this context token (limit 10" in text
    # no Date header from this server: the local clock is the fallback, and the message says so
    assert "h since the user's last message by this computer's clock (replies allowed within 24 h)" in text
    assert f"{C.MAX_TEXT_BYTES + 1:,} bytes of UTF-8" in text
    assert "ctx" not in text.replace("context", "")
    assert info.value.ret == -2 and peer.last_error is not None


@pytest.mark.parametrize(
    ("date", "last_inbound_ms", "shown"),
    [
        # the server's clock (Date) is what counts, whatever this computer's clock says
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 - 25 * 3_600_000, "25.0 h since the user's last message ("),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 - 90 * 60_000, "1.5 h since the user's last message ("),
        # Date has whole seconds: a message stamped later in the same second is "0.0 h", not negative
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 + 900, "0.0 h since the user's last message ("),
        # no Date, and a message stamped ahead of this computer's clock: still never negative
        (None, 2**62, "0.0 h since the user's last message by this computer's clock"),
    ],
)
def test_rejection_hours_use_the_server_clock(date: str | None, last_inbound_ms: int, shown: str) -> None:
    headers = {"Date": date} if date else None
    client, _, _ = make(lambda r: ok({"ret": -2, "errmsg": ""}, headers=headers))
    peer = client.peer("u1@im.wechat")
    peer.context_token, peer.last_inbound_ms = "ctx", last_inbound_ms
    with pytest.raises(E.SendRejectedError) as info:
        client.send_text("u1@im.wechat", "hi")
    text = str(info.value)
    found = re.search(r"(-?[0-9.]+) h since the user's last message", text)
    assert found and float(found.group(1)) >= 0 and shown in text


def test_sends_counted_per_context_token() -> None:
    client, _, _ = make(lambda r: ok({"ret": 0, "message_id": 1}))
    peer = client.peer("u1@im.wechat")
    peer.context_token = "ctx"
    for _ in range(3):
        client.send_text("u1@im.wechat", "hi")
    assert peer.sends_on_token == 3
    client.send_text("u1@im.wechat", "hi", context_token="other")  # explicit other token: not counted
    assert peer.sends_on_token == 3


def test_non_json_answer_is_protocol_error() -> None:
    client, _, _ = make(lambda r: httpx.Response(200, content=b"<html>oops</html>"))
    with pytest.raises(E.ProtocolError, match="notify_start answered with a body that is not JSON"):
        client.notify_start()


def test_async_client_same_wire() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return ok({"ret": 0, "message_id": 2**63})

    async def main() -> None:
        async with AsyncClient(
            "tok", base_url="http://api.test", transport=httpx.MockTransport(handler), record=False
        ) as client:
            resp = await client.send_text("u@im.wechat", "hi", context_token="c")
            assert resp.message_id == 2**63

    asyncio.run(main())
    assert json.loads(seen[0].content)["msg"]["item_list"][0]["text_item"]["text"] == "hi"


def test_cdn_download_cap_streams() -> None:
    client, _, _ = make(lambda r: httpx.Response(200, content=b"x" * 5000))
    with pytest.raises(E.CdnError, match="larger than the 1,000 byte cap"):
        client.cdn_download("param", max_bytes=1000)
    assert client.cdn_download("param", max_bytes=5000) == b"x" * 5000


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c: c.send_text("u@im.wechat", "x", context_token=5), "context_token"),
        (lambda c: c.send_text("u@im.wechat", "x", client_id=5), "client_id"),
        (lambda c: c.send_message({"to_user_id": 5}), "to_user_id should be a string"),
        (lambda c: c.send_message("hello"), "takes a WeixinMessage or a dict"),
        (lambda c: c.get_upload_url(filekey="k", media_type=1, rawsize=1, foo=1), "unknown field"),
        (lambda c: c.get_upload_url(filekey="k", media_type="1", rawsize=1), "media_type should be an integer"),
        (lambda c: c.get_updates(timeout="x"), "timeout is a number"),
        (lambda c: c.get_updates(timeout=0), "timeout is a number"),
        (lambda c: c.use_credentials("t", base_url="example.com"), "base_url must be an http"),
    ],
)
def test_more_bad_arguments_raise_before_any_request(call, needle: str) -> None:
    client, seen, _ = make(lambda r: ok())
    with pytest.raises(E.UsageError, match=needle):
        call(client)
    assert seen == []


def test_broken_gzip_body_is_a_named_error_not_a_bare_one() -> None:
    client, _, _ = make(lambda r: httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(E.TransportError, match=r"notify_start could not get an answer.*DecodingError"):
        client.notify_start()


def test_unusable_redirect_host_is_a_protocol_error() -> None:
    client, seen, _ = make(lambda r: ok({"status": "wait"}))
    with pytest.raises(E.ProtocolError, match="not a usable URL"):
        client.get_qrcode_status("q1", base_url="http://[::1")
    assert seen == []


def test_late_duplicate_does_not_bring_back_an_old_context_token() -> None:
    client, _, _ = make(lambda r: ok())
    from openclaw_nb.protocol import models as m

    new = m.WeixinMessage(from_user_id="u@im.wechat", message_type=1, context_token="new", create_time_ms=2000)
    old = m.WeixinMessage(from_user_id="u@im.wechat", message_type=1, context_token="old", create_time_ms=1000)
    client.remember_message(new)
    client.peer("u@im.wechat").sends_on_token = 4
    client.remember_message(old)  # an at-least-once re-delivery, arriving late
    assert client.context_tokens["u@im.wechat"] == "new"
    assert client.peer("u@im.wechat").sends_on_token == 4


def test_low_level_send_rejection_still_explains() -> None:
    client, _, _ = make(lambda r: ok({"ret": -2}))
    with pytest.raises(E.SendRejectedError, match="10 sends already made on the user's context token"):
        client.send_message({"to_user_id": "u@im.wechat", "item_list": [{"type": 1, "text_item": {"text": "x"}}]})


def test_404_says_to_check_base_url() -> None:
    client, _, _ = make(lambda r: httpx.Response(404, text="no route"))
    with pytest.raises(E.TransportError, match="check base_url"):
        client.notify_start()


def test_reprs_of_requests_hide_the_token() -> None:
    client, _, _ = make(lambda r: ok())
    send, _body = client._api_send("notify_start", None)
    assert "tok-123456" not in repr(send) and "<redacted" in repr(send)


def test_urls_holding_secret_parameters_are_not_cached() -> None:
    from openclaw_nb import client as client_module

    client_module._endpoint_url.cache_clear()
    secret_url = "http://127.0.0.1:9/c2c/download?encrypted_query_param=SECRETSECRET0123"
    assert str(client_module._url(secret_url)) == secret_url
    assert str(client_module._url("http://127.0.0.1:9/ilink/bot/sendmessage")).endswith("/sendmessage")
    client_module._url("http://127.0.0.1:9/ilink/bot/sendmessage")
    info = client_module._endpoint_url.cache_info()
    assert (info.currsize, info.hits) == (1, 1)  # only the endpoint URL, parsed once


def test_an_unusable_url_from_the_server_is_reported_redacted() -> None:
    secret = "SECRETSECRET0123"
    bad_url = f"http://127.0.0.1:9/c2c/download?encrypted_query_param={secret}\x00"
    client = Client("t" * 64, base_url="http://127.0.0.1:9", record=False)
    with client, pytest.raises(E.ProtocolError) as info:
        client.cdn_download(secret, full_url=bad_url)
    assert "not a usable URL" in str(info.value) and secret not in str(info.value)
