"""Both clients against the simulator over real HTTP on 127.0.0.1: every endpoint, every error type."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import AsyncClient
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.protocol.flow import RetryPolicy
from openclaw_nb.sim import Simulator

TWO_53 = 2**53


def user() -> str:
    return f"u{uuid.uuid4().hex[:10]}@im.wechat"


def last_request(sim: Simulator, endpoint: str) -> dict[str, Any]:
    matching = [r for r in sim.requests if r.get("endpoint") == endpoint]
    assert matching, f"the simulator saw no {endpoint} request"
    return matching[-1]


def receive_from(sim: Simulator, client: Any, who: str, text: str = "hello") -> Any:
    sim.say(who, text, bot_id=client.bot_id)
    page = client.get_updates()
    msgs = [m for m in page.messages if m.from_user_id == who]
    assert msgs, "the message said to the simulator did not come back from getupdates"
    return msgs[-1]


def test_qr_login_by_hand(sim: Simulator, make_client: Any) -> None:
    client = make_client()
    qr = client.get_bot_qrcode(local_token_list=["t1", "t2"])
    assert qr.qrcode and qr.qrcode_img_content.startswith(sim.base_url)
    req = last_request(sim, "get_bot_qrcode")
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert req["method"] == "POST" and "authorization" not in headers
    assert req["body"] == {"local_token_list": ["t1", "t2"]}  # no base_info, as the official client
    assert req["query"].get("bot_type") == "3"
    # nothing happened yet: the server holds the poll, then says wait
    assert client.get_qrcode_status(qr.qrcode).status == "wait"
    status_req = last_request(sim, "get_qrcode_status")
    sent = {k.lower() for k in status_req["headers"]}
    assert {"ilink-app-id", "ilink-app-clientversion"} <= sent
    assert not sent & {"authorization", "authorizationtype", "x-wechat-uin", "content-type", "skroutetag"}
    sim.scan(qr.qrcode, "alice")
    assert client.get_qrcode_status(qr.qrcode).status == "scaned"
    sim.confirm(qr.qrcode)
    done = client.get_qrcode_status(qr.qrcode)
    assert done.status == "confirmed" and done.ilink_bot_id.endswith("@im.bot")
    assert done.bot_token and done.baseurl == sim.base_url and done.ilink_user_id == "alice@im.wechat"
    assert done.bot_token not in repr(done)
    client.use_credentials(done.bot_token, base_url=done.baseurl, bot_id=done.ilink_bot_id)
    assert client.notify_start().ret in (0, None)


def test_updates_and_reply(sim: Simulator, bot_client: Any) -> None:
    who = user()
    msg = receive_from(sim, bot_client, who, "hi there")
    assert msg.message_id > TWO_53 and msg.text == "hi there" and msg.context_token
    assert bot_client.context_tokens[who] == msg.context_token
    assert bot_client.cursor  # advanced to the server's cursor
    resp = bot_client.send_text(who, "reply")
    assert resp.message_id > TWO_53
    (entry,) = [e for e in sim.outbox if e.msg.get("to_user_id") == who]
    assert entry.text == "reply" and entry.msg["context_token"] == msg.context_token
    assert entry.msg["client_id"] == resp.client_id
    req = last_request(sim, "send_message")
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["authorization"] == f"Bearer {bot_client.sim_login.bot_token}"
    assert headers["authorizationtype"] == "ilink_bot_token"
    assert base64.b64decode(headers["x-wechat-uin"]).decode().isdigit()
    assert req["body"]["base_info"]["bot_agent"].startswith("openclaw-nb/")


def test_empty_long_poll_keeps_cursor(sim: Simulator, bot_client: Any) -> None:
    receive_from(sim, bot_client, user())
    cursor = bot_client.cursor
    page = bot_client.get_updates()  # nothing new: the simulator answers at the end of its 1 s window
    assert page.messages == [] and bot_client.cursor == cursor
    assert bot_client.longpolling_timeout_ms == 1000


def test_client_timeout_is_empty_page(sim: Simulator, bot_client: Any) -> None:
    sim.add_fault(delay_ms=3000, endpoints=["get_updates"], count=1)
    page = bot_client.get_updates(timeout=0.2)
    assert page.timed_out and page.messages == []


def test_uint64_exact_through_raw(sim: Simulator, bot_client: Any) -> None:
    who = user()
    big = 2**64 - 7
    stored = sim.inbound(
        {
            "from_user_id": who,
            "message_id": big,
            "message_type": 1,
            "item_list": [{"type": 1, "text_item": {"text": "big"}, "msg_id": big - 1}],
        },
        bot_id=bot_client.bot_id,
    )
    page = bot_client.get_updates()
    (msg,) = [m for m in page.messages if m.from_user_id == who]
    assert msg.message_id == stored["message_id"] > TWO_53  # the server assigns message ids
    assert msg.items[0].msg_id == big - 1  # item ids as sent, exact above 2^63
    assert msg.to_wire()["item_list"][0]["msg_id"] == big - 1


def record_sleeps(client: Any) -> list[float]:
    """Replace the client's back-off sleep with a recorder (the retry timing is what is under test)."""
    target = getattr(client, "_client", client)
    seen: list[float] = []
    if isinstance(target, AsyncClient):

        async def fake(seconds: float) -> None:
            seen.append(seconds)

        target._sleep = fake
    else:
        target._sleep = seen.append
    return seen


def test_429_honours_retry_after(sim: Simulator, make_client: Any) -> None:
    login = sim.login_bot()
    client = make_client(login.bot_token, retry=RetryPolicy(base_delay=0.01, max_delay=10))
    sleeps = record_sleeps(client)
    sim.add_fault(http_429=1.0, count=1, retry_after=3, endpoints=["notify_start"])
    assert client.notify_start().ret in (0, None)
    assert sleeps == [3.0]


def test_persistent_500_is_transport_error(sim: Simulator, bot_client: Any) -> None:
    sim.add_fault(http_500=1.0, endpoints=["notify_stop"])
    with pytest.raises(E.TransportError) as info:
        bot_client.notify_stop()
    assert info.value.status_code == 500 and info.value.attempts == 3 and "notify_stop" in str(info.value)


def test_connection_reset_is_transport_error(sim: Simulator, bot_client: Any) -> None:
    sim.add_fault(reset=1.0, endpoints=["notify_start"])
    with pytest.raises(E.TransportError, match="notify_start could not get an answer"):
        bot_client.notify_start()


def test_malformed_json_is_protocol_error(sim: Simulator, bot_client: Any) -> None:
    sim.add_fault(malformed_json=1.0, count=1, endpoints=["get_updates"])
    with pytest.raises(E.ProtocolError, match="get_updates answered with a body that is not JSON"):
        bot_client.get_updates()


def test_stale_token(sim: Simulator, make_client: Any) -> None:
    login = sim.login_bot()
    client = make_client(login.bot_token, bot_id=login.bot_id)
    sim.revoke_token(login.bot_id)
    with pytest.raises(E.StaleTokenError) as info:
        client.get_updates()
    assert info.value.code == C.RET_STALE_TOKEN and "log in again" in str(info.value).lower()
    assert login.bot_token not in str(info.value)
    unknown = make_client("not-a-real-token")
    with pytest.raises(E.StaleTokenError):
        unknown.notify_start()


def test_forced_stale_token_fault(sim: Simulator, bot_client: Any) -> None:
    sim.add_fault(stale_token=1.0, count=1, endpoints=["send_message"])
    who = user()
    receive_from(sim, bot_client, who)
    with pytest.raises(E.StaleTokenError):
        bot_client.send_text(who, "x")


def test_quota_of_ten_sends_explained(sim: Simulator, bot_client: Any) -> None:
    who = user()
    receive_from(sim, bot_client, who)
    for i in range(C.SENDS_PER_CONTEXT_TOKEN):
        bot_client.send_text(who, f"reply {i}")
    with pytest.raises(E.SendRejectedError) as info:
        bot_client.send_text(who, "one too many")
    assert "10 sends already made on this context token" in str(info.value)
    assert info.value.ret == C.RET_SEND_REJECTED
    # the next message from the user brings a fresh token and a fresh budget
    receive_from(sim, bot_client, who, "again")
    assert bot_client.send_text(who, "thanks").message_id


def hours_since_last_message(error: BaseException) -> float:
    found = re.search(r"(-?[0-9.]+) h since the user's last message", str(error))
    assert found, f"no hours in: {error}"
    return float(found.group(1))


def test_reply_window_closes_after_24h(sim: Simulator, bot_client: Any) -> None:
    # The hours are counted on the server's clock (its Date header), which sim.advance moves; this
    # computer's clock does not move, and used to give "0.0 h" here, or "-25.0 h" after a second round.
    who = user()
    receive_from(sim, bot_client, who)
    sim.advance(hours=25)
    with pytest.raises(E.SendRejectedError) as info:
        bot_client.send_text(who, "too late")
    text = str(info.value)
    assert 25.0 <= hours_since_last_message(info.value) < 26.0
    assert "h since the user's last message (replies allowed within 24 h)" in text
    assert "reply window closed" in text  # the server's own errmsg is kept
    # the user writes again (on the advanced clock): the window reopens, and closes again 30 h later
    receive_from(sim, bot_client, who, "back again")
    assert bot_client.send_text(who, "welcome back").message_id
    sim.advance(hours=30)
    with pytest.raises(E.SendRejectedError) as info:
        bot_client.send_text(who, "too late again")
    assert 30.0 <= hours_since_last_message(info.value) < 31.0


def test_reply_budget_counts_on_the_servers_clock(sim: Simulator, bot_client: Any) -> None:
    """The budget's time left follows the simulator's clock (its Date header), not this computer's."""
    from openclaw_nb.updates import budget_rows

    who = user()
    receive_from(sim, bot_client, who)
    fresh = bot_client.reply_budget(who)
    assert fresh.can_reply and fresh.window_left is not None
    assert 23.9 * 3600 < fresh.window_left.total_seconds() <= 24 * 3600
    ahead = bot_client.server_now() - time.time()  # the module's simulator may have been advanced already
    sim.advance(hours=20)
    bot_client.get_config(who)  # any answer brings the server's Date
    assert abs(bot_client.server_now() - time.time() - ahead - 20 * 3600) < 5
    later = bot_client.reply_budget(who)
    # Date has whole seconds: the server's clock is known to a second or two
    assert 3.9 * 3600 < later.window_left.total_seconds() <= 4 * 3600 + 2
    (row,) = [r for r in budget_rows(bot_client.peers, now=bot_client.server_now()) if r["user"] == who]
    assert 3.9 * 3600 < row["window_left"].total_seconds() <= 4 * 3600 + 2
    sim.advance(hours=5)
    bot_client.get_config(who)
    closed = bot_client.reply_budget(who)
    assert not closed.can_reply and closed.window_left.total_seconds() == 0


def test_rejection_inside_the_window_says_so(sim: Simulator, bot_client: Any) -> None:
    who = user()
    receive_from(sim, bot_client, who)
    sim.advance(hours=2)
    sim.configure(rate_limit_sends=1)
    try:
        assert bot_client.send_text(who, "first").message_id
        with pytest.raises(E.SendRejectedError) as info:
            bot_client.send_text(who, "second")
    finally:
        sim.configure(rate_limit_sends=None)
    text = str(info.value)
    assert info.value.errmsg == "rate limited"
    assert "likely causes: the server is rate limiting this bot (wait 30 minutes or more)" in text
    assert "1 of 10 sends used on this context token" in text
    assert 2.0 <= hours_since_last_message(info.value) < 3.0
    assert "h since the user's last message (within the 24 h reply window)" in text
    assert "computer's clock" not in text  # the simulator sends a Date, as real servers do


def test_reply_without_context_token_rejected(sim: Simulator, bot_client: Any) -> None:
    who = user()
    sim.add_user(who)
    with pytest.raises(E.SendRejectedError, match="no context_token was sent"):
        bot_client.send_text(who, "cold message")


def test_unknown_user_is_invalid_arguments(sim: Simulator, bot_client: Any) -> None:
    with pytest.raises(E.InvalidArgumentsError) as info:
        bot_client.send_message(
            {
                "to_user_id": "nobody-here@im.wechat",
                "message_type": 2,
                "item_list": [{"type": 1, "text_item": {"text": "x"}}],
            }
        )
    assert info.value.code == C.RET_INVALID_ARGS


def test_typing(sim: Simulator, bot_client: Any) -> None:
    who = user()
    sim.add_user(who)
    with pytest.raises(E.NotYetContactedError, match="has not written to the bot yet"):
        bot_client.get_config(who)
    receive_from(sim, bot_client, who)
    ticket = bot_client.get_config(who).typing_ticket
    assert ticket and ticket not in repr(bot_client.get_config(who))
    assert bot_client.send_typing(who, ticket, C.TypingStatus.TYPING).ret in (0, None)
    assert bot_client.send_typing(who, ticket, C.TypingStatus.CANCEL).ret in (0, None)
    events = [(e.user_id, e.status) for e in sim.typing_events if e.user_id == who]
    assert events == [(who, 1), (who, 2)]
    with pytest.raises(E.ApiError):
        bot_client.send_typing(who, "wrong-ticket")


def test_notify_start_stop_recorded(sim: Simulator, bot_client: Any) -> None:
    bot_client.notify_start()
    bot_client.notify_stop()
    kinds = [n.kind for n in sim.notifications if n.bot_id == bot_client.bot_id]
    assert kinds[-2:] == ["start", "stop"]


@pytest.mark.parametrize("full_url", [True, False])
def test_upload_url_cdn_round_trip(sim: Simulator, bot_client: Any, full_url: bool) -> None:
    sim.configure(upload_full_url=full_url)
    try:
        who = user()
        receive_from(sim, bot_client, who)
        data = b"file body \xe4\xb8\xad" * 100
        key, filekey = crypto.new_key(), crypto.new_filekey()
        resp = bot_client.get_upload_url(
            filekey=filekey,
            media_type=C.UploadMediaType.FILE,
            to_user_id=who,
            rawsize=len(data),
            rawfilemd5=crypto.md5_hex(data),
            filesize=crypto.padded_size(len(data)),
            no_need_thumb=True,
            aeskey=crypto.key_to_hex(key),
        )
        assert bool(resp.upload_full_url) is full_url and resp.upload_param
        ciphertext = crypto.encrypt(data, key)
        param = bot_client.cdn_upload(
            ciphertext, upload_param=resp.upload_param, filekey=filekey, full_url=resp.upload_full_url
        )
        assert param
        assert bot_client.cdn_download(param) == ciphertext
        assert crypto.decrypt(bot_client.cdn_download(param), key) == data
    finally:
        sim.configure(upload_full_url=True)


def test_cdn_rejects_bad_md5_with_its_message(sim: Simulator, bot_client: Any) -> None:
    who = user()
    receive_from(sim, bot_client, who)
    data, key, filekey = b"abc" * 10, crypto.new_key(), crypto.new_filekey()
    resp = bot_client.get_upload_url(
        filekey=filekey,
        media_type=3,
        to_user_id=who,
        rawsize=len(data),
        rawfilemd5="0" * 32,
        filesize=crypto.padded_size(len(data)),
        no_need_thumb=True,
        aeskey=crypto.key_to_hex(key),
    )
    with pytest.raises(E.CdnError) as info:
        bot_client.cdn_upload(crypto.encrypt(data, key), upload_param=resp.upload_param, filekey=filekey)
    assert info.value.status_code == 400 and "md5" in str(info.value).lower() and info.value.attempts == 1


def test_recorder_sees_every_call_and_no_secret(sim: Simulator, bot_client: Any) -> None:
    who = user()
    msg = receive_from(sim, bot_client, who)
    bot_client.send_text(who, "logged")
    frame = bot_client.log.frame()
    assert {"get_updates", "send_message"} <= set(frame["call"])
    dumped = frame.to_json(date_format="iso") + json.dumps([str(x) for x in bot_client.log])
    assert bot_client.sim_login.bot_token not in dumped and msg.context_token not in dumped


def test_abandoned_qr_poll_does_not_swallow_the_scan(make_client: Any) -> None:
    import threading

    with Simulator(long_poll_timeout=30) as slow:
        client = make_client(base_url=slow.base_url)
        qr = client.get_bot_qrcode()
        # poll A: the client gives up after 0.3 s, but the server still holds it for 30 s
        assert client.get_qrcode_status(qr.qrcode, timeout=0.3).extra == {"client_timeout": True}
        answers: list[Any] = []
        checker = make_client(base_url=slow.base_url)  # poll B, on its own connection
        thread = threading.Thread(target=lambda: answers.append(checker.get_qrcode_status(qr.qrcode, timeout=10)))
        thread.start()
        slow.wait_for(lambda st: st.waiters(("qr", qr.qrcode)) >= 2, timeout=10)
        slow.scan(qr.qrcode, "alice")
        thread.join(timeout=15)
        assert answers and answers[0].status == "scaned"  # B saw it, not only the abandoned A


# --- the server's longpolling_timeout_ms, checked before use ----------------------------------------------


def recording_transport(make_client: Any) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """A real transport that notes each request's timeouts: ``(kwargs for make_client, timeouts seen)``."""
    seen: list[dict[str, float]] = []
    transport: Any
    if make_client.driver == "sync":

        class Sync(httpx.HTTPTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                seen.append(request.extensions["timeout"])
                return super().handle_request(request)

        transport = Sync()
    else:

        class Async(httpx.AsyncHTTPTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                seen.append(request.extensions["timeout"])
                return await super().handle_async_request(request)

        transport = Async()
    return {"transport": transport}, seen


@pytest.mark.parametrize(
    ("reported", "window"),
    [(10**20, C.MAX_LONGPOLLING_TIMEOUT_MS), (-5, 1000), (0, 1000), ("soon", 1000), (3_600_000, 120_000)],
)
def test_odd_longpolling_timeout_from_the_server(
    sim: Simulator, make_client: Any, caplog: pytest.LogCaptureFixture, reported: Any, window: int
) -> None:
    login = sim.login_bot()
    kw, timeouts = recording_transport(make_client)
    client = make_client(login.bot_token, bot_id=login.bot_id, **kw)
    who = user()
    receive_from(sim, client, who)
    assert client.longpolling_timeout_ms == 1000  # the simulator's real window
    sim.configure(reported_long_poll_ms=reported)
    try:
        with caplog.at_level(logging.WARNING, logger="openclaw_nb"):
            # the page that carries the odd value still delivers its message
            assert receive_from(sim, client, who, "odd window").text == "odd window"
            assert last_request(sim, "get_updates") and client.longpolling_timeout_ms == window
            # and the polls after it work: 10**20 used to raise OverflowError from the socket (sync client)
            for _ in range(2):
                page = client.get_updates()
                assert page.messages == [] and client.longpolling_timeout_ms == window
    finally:
        sim.configure(reported_long_poll_ms=None)
    warned = [r for r in caplog.records if "longpolling_timeout_ms" in r.getMessage() and r.name == "openclaw_nb"]
    assert len(warned) == (0 if reported == 0 else 1)  # once per client, not once per poll
    # A window of the wrong JSON type is also wire drift (its own logger, once; listed in client.drift).
    drifted = [e for e in client.drift_log.entries() if e.path == "longpolling_timeout_ms"]
    assert len(drifted) == (1 if isinstance(reported, str) else 0)
    if warned:
        assert warned[0].levelno == logging.WARNING and len(warned[0].getMessage()) < 300
    last = timeouts[-1]
    assert last["read"] == window / 1000 + C.LONG_POLL_GRACE
    assert last["connect"] == C.CONNECT_TIMEOUT  # connecting never waits as long as a long poll


def test_odd_longpolling_timeout_in_the_update_stream(sim: Simulator, make_client: Any) -> None:
    login = sim.login_bot()
    client = make_client(login.bot_token, bot_id=login.bot_id)
    who = user()
    stream = client.updates(persist=False)
    if make_client.driver == "sync":
        messages = iter(stream)

        def next_message() -> Any:
            return next(messages)
    else:
        amessages = stream.__aiter__()

        def next_message() -> Any:
            return client._loop.run_until_complete(amessages.__anext__())

    sim.configure(reported_long_poll_ms=10**20)
    try:
        sim.say(who, "one", bot_id=login.bot_id)
        assert next_message().text == "one"
        assert stream.state.longpolling_timeout_ms == C.MAX_LONGPOLLING_TIMEOUT_MS
        sim.say(who, "two", bot_id=login.bot_id)
        assert next_message().text == "two"  # the next poll used the clamped window (no OverflowError)
        assert [e.kind for e in stream.events].count("window") == 1
    finally:
        stream.stop()
        sim.configure(reported_long_poll_ms=None)


def test_connect_timeout_is_short_for_every_call(sim: Simulator, bot_client: Any, make_client: Any) -> None:
    kw, timeouts = recording_transport(make_client)
    client = make_client(bot_client.sim_login.bot_token, bot_id=bot_client.bot_id, **kw)
    client.notify_start()
    client.get_updates(timeout=0.5)
    window = client.longpolling_timeout_ms
    client.get_updates()
    notify, short_poll, poll = timeouts
    assert notify == {"connect": C.CONNECT_TIMEOUT, "read": 10.0, "write": 10.0, "pool": 10.0}
    assert short_poll == {"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5}  # never above the whole
    assert poll["connect"] == C.CONNECT_TIMEOUT and poll["read"] == window / 1000 + C.LONG_POLL_GRACE


def test_requests_are_built_exactly_as_httpx_builds_them(
    sim: Simulator, bot_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The client builds its requests without ``build_request`` (fewer copies); every part must come out the same:
    method, URL and query, header names, case, order and values, body, timeout and extensions."""
    from openclaw_nb import client as client_module

    pairs: list[tuple[Any, Any]] = []
    real = client_module.BaseClient._build_httpx_request

    def both(self: Any, http: Any, send: Any, content: Any) -> Any:
        built = real(self, http, send, content)
        general = http.build_request(
            send.method,
            send.full_url,
            params=dict(send.params) if send.params else None,
            headers=dict(send.headers),
            content=content if isinstance(content, bytes) else None,
            timeout=client_module._timeout(send.timeout),
            extensions={client_module.EXT_CALL: send.call, client_module.EXT_ATTEMPT: send.attempt},
        )
        pairs.append((built, general))
        return built

    monkeypatch.setattr(client_module.BaseClient, "_build_httpx_request", both)
    who = user()
    receive_from(sim, bot_client, who)
    bot_client.send_text(who, "built by hand")
    bot_client.get_qrcode_status("no-such-code")  # a GET with a query string
    photo = tmp_path / "p.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    bot_client.send_image(photo, to=who)  # getuploadurl, then a streamed CDN upload
    assert len(pairs) >= 5
    for built, general in pairs:
        assert (built.method, str(built.url)) == (general.method, str(general.url))
        assert built.headers.raw == general.headers.raw or (
            # a streamed upload: build_request was given no body here, so only its length header differs
            [h for h in built.headers.raw if h[0].lower() != b"content-length"]
            == [h for h in general.headers.raw if h[0].lower() not in (b"content-length", b"transfer-encoding")]
        )
        assert built.extensions == general.extensions
        if general.content:
            assert built.content == general.content
