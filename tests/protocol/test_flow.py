"""The shared flows driven by hand: retry decisions, Retry-After, long-poll timeouts, CDN rules."""

from __future__ import annotations

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.protocol import models as m
from openclaw_nb.protocol.endpoints import ENDPOINTS
from openclaw_nb.protocol.flow import (
    Failure,
    Reply,
    RetryPolicy,
    Send,
    Sleep,
    api_call,
    cdn_download_flow,
    cdn_upload_flow,
    parse_retry_after,
)

POLICY = RetryPolicy(attempts=3, base_delay=1.0, max_delay=8.0, jitter=0.0)


def send_for(name: str) -> Send:
    ep = ENDPOINTS[name]
    return Send(name, ep.method, "http://h", ep.path, {}, {}, b"{}", ep.timeout)


def drive(flow, outcomes):
    """Feed outcomes to a flow; return (actions seen, result or exception)."""
    actions = []
    outcomes = list(outcomes)
    try:
        action = next(flow)
        while True:
            actions.append(action)
            action = flow.send(None if isinstance(action, Sleep) else outcomes.pop(0))
    except StopIteration as stop:
        return actions, stop.value
    except Exception as exc:
        return actions, exc


OK = Reply(200, {}, b'{"ret":0}')


def test_success_first_try() -> None:
    actions, result = drive(api_call(ENDPOINTS["notify_start"], send_for("notify_start"), POLICY), [OK])
    assert [type(a) for a in actions] == [Send] and isinstance(result, m.NotifyResp)


def test_5xx_then_success_backs_off_exponentially() -> None:
    outcomes = [Reply(500, {}, b""), Reply(503, {}, b""), OK]
    actions, result = drive(api_call(ENDPOINTS["notify_start"], send_for("notify_start"), POLICY), outcomes)
    assert isinstance(result, m.NotifyResp)
    sends = [a for a in actions if isinstance(a, Send)]
    assert [s.attempt for s in sends] == [1, 2, 3]
    assert [a.seconds for a in actions if isinstance(a, Sleep)] == [1.0, 2.0]
    assert sends[0].content is sends[2].content  # same bytes (same client_id) on every retry


def test_retry_after_is_honoured() -> None:
    outcomes = [Reply(429, {"retry-after": "3"}, b""), Reply(503, {"retry-after": "8"}, b""), OK]
    actions, result = drive(api_call(ENDPOINTS["send_message"], send_for("send_message"), POLICY), outcomes)
    assert [a.seconds for a in actions if isinstance(a, Sleep)] == [3.0, 8.0]
    assert isinstance(result, m.SendMessageResp)


def test_retry_after_beyond_max_delay_stops_and_says_so() -> None:
    outcomes = [Reply(429, {"retry-after": "120"}, b"")]
    actions, err = drive(api_call(ENDPOINTS["send_message"], send_for("send_message"), POLICY), outcomes)
    assert isinstance(err, E.TransportError) and err.status_code == 429
    assert "asked to wait 120 s" in str(err) and "max_delay" in str(err)
    assert not any(isinstance(a, Sleep) for a in actions)


@pytest.mark.parametrize(("status", "retried"), [(429, True), (500, True), (501, False), (507, True), (520, True)])
def test_which_statuses_are_retried(status: int, retried: bool) -> None:
    actions, _ = drive(
        api_call(ENDPOINTS["notify_start"], send_for("notify_start"), POLICY), [Reply(status, {}, b""), OK]
    )
    assert (len([a for a in actions if isinstance(a, Send)]) == 2) is retried


def test_redirect_status_is_an_error_with_a_hint() -> None:
    _, err = drive(api_call(ENDPOINTS["notify_start"], send_for("notify_start"), POLICY), [Reply(302, {}, b"")])
    assert isinstance(err, E.TransportError) and "check base_url" in str(err)


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"attempts": "3"}, {"attempts": 2.5}, {"jitter": 1.5}, {"base_delay": -1}, {"max_delay": "x"}],
)
def test_retry_policy_checks_its_fields(kwargs: dict) -> None:
    with pytest.raises(E.UsageError, match="RetryPolicy"):
        RetryPolicy(**kwargs)


def test_gives_up_after_attempts_with_status() -> None:
    outcomes = [Reply(500, {}, b"")] * 3
    actions, err = drive(api_call(ENDPOINTS["notify_start"], send_for("notify_start"), POLICY), outcomes)
    assert isinstance(err, E.TransportError) and err.status_code == 500 and err.attempts == 3
    assert len([a for a in actions if isinstance(a, Send)]) == 3


def test_4xx_not_retried() -> None:
    actions, err = drive(api_call(ENDPOINTS["notify_start"], send_for("notify_start"), POLICY), [Reply(404, {}, b"")])
    assert isinstance(err, E.TransportError) and err.status_code == 404 and len(actions) == 1


def test_transport_errors_retried_then_reported() -> None:
    fail = Failure(httpx.ConnectError("refused"))
    _, err = drive(api_call(ENDPOINTS["send_message"], send_for("send_message"), POLICY), [fail] * 3)
    assert isinstance(err, E.TransportError) and "after 3 attempts" in str(err) and "ConnectError" in str(err)
    assert isinstance(err.__cause__, httpx.ConnectError)


# --- sendmessage: never retried blindly --------------------------------------------------------------------


def deliver(policy: RetryPolicy = POLICY):
    """A sendmessage call as the client makes it: with the message's client_id."""
    return api_call(ENDPOINTS["send_message"], send_for("send_message"), policy, client_id="cid:1-abcdef01")


SENT_OK = Reply(200, {}, b'{"ret":0,"message_id":7}')
AMBIGUOUS = [
    Failure(httpx.ReadTimeout("slow"), timeout=True),
    Failure(httpx.WriteTimeout("slow"), timeout=True),
    Failure(httpx.ReadError("reset")),
    Failure(httpx.RemoteProtocolError("Server disconnected without sending a response")),
    Reply(500, {}, b"Internal Server Error"),
    Reply(502, {}, b"Bad Gateway"),
    Reply(503, {}, b""),
    Reply(504, {}, b"Gateway Timeout"),
]


@pytest.mark.parametrize("outcome", AMBIGUOUS)
def test_a_send_that_may_have_arrived_is_not_retried(outcome) -> None:
    actions, err = drive(deliver(), [outcome])
    assert isinstance(err, E.DeliveryUnknownError) and isinstance(err, E.TransportError)
    assert len(actions) == 1  # one try, no sleep
    assert err.client_id == "cid:1-abcdef01" and err.endpoint == "send_message" and err.attempts == 1
    assert "may or may not have been delivered" in str(err) and "client_id='cid:1-abcdef01'" in str(err)
    assert err.status_code == (outcome.status if isinstance(outcome, Reply) else None)


@pytest.mark.parametrize(
    "unsent",
    [
        Failure(httpx.ConnectError("[Errno 111] Connection refused"), not_sent=True),
        Failure(httpx.ConnectTimeout("connect"), timeout=True, not_sent=True),
        Failure(httpx.PoolTimeout("pool"), timeout=True, not_sent=True),
        Reply(429, {"retry-after": "2"}, b""),
    ],
)
def test_a_send_the_server_never_took_is_retried(unsent) -> None:
    actions, result = drive(deliver(), [unsent, SENT_OK])
    assert isinstance(result, m.SendMessageResp) and result.message_id == 7
    assert len([a for a in actions if isinstance(a, Send)]) == 2


def test_a_send_that_never_connects_says_it_was_not_sent() -> None:
    refused = Failure(httpx.ConnectError("refused"), not_sent=True)
    _, err = drive(deliver(), [refused] * 3)
    assert type(err) is E.TransportError and "after 3 attempts" in str(err)
    assert "no connection was made, so the message was not sent" in str(err)


def test_retry_sends_opts_back_in_with_the_same_request() -> None:
    policy = RetryPolicy(attempts=3, base_delay=1.0, max_delay=8.0, jitter=0.0, retry_sends=True)
    actions, result = drive(deliver(policy), [AMBIGUOUS[0], AMBIGUOUS[4], SENT_OK])
    sends = [a for a in actions if isinstance(a, Send)]
    assert isinstance(result, m.SendMessageResp) and len(sends) == 3
    assert {a.content for a in sends} == {b"{}"}  # the same bytes, so the same client_id
    # Out of tries: still unknown, and the error says what the earlier tries saw.
    actions, err = drive(deliver(policy), [AMBIGUOUS[0], Failure(httpx.ConnectError("x"), not_sent=True)] * 2)
    assert isinstance(err, E.DeliveryUnknownError) and err.attempts == 3 and "earlier try" in str(err)


def test_a_garbled_answer_to_a_send_says_it_probably_arrived() -> None:
    _, err = drive(deliver(), [Reply(200, {}, b"<html>")])
    assert isinstance(err, E.ProtocolError)
    assert any("probably delivered" in note and "cid:1-abcdef01" in note for note in err.__notes__)


def test_retry_sends_must_be_a_bool() -> None:
    with pytest.raises(E.UsageError, match="retry_sends is True or False"):
        RetryPolicy(retry_sends="yes")  # type: ignore[arg-type]


def test_long_poll_timeout_is_an_empty_page() -> None:
    timeout = Failure(httpx.ReadTimeout("slow"), timeout=True)
    flow = api_call(ENDPOINTS["get_updates"], send_for("get_updates"), POLICY, body={"get_updates_buf": "cur-1"})
    actions, result = drive(flow, [timeout])
    assert isinstance(result, m.GetUpdatesResp)
    assert result.timed_out and result.messages == [] and result.cursor == "cur-1" and len(actions) == 1


def test_non_long_poll_timeout_retries() -> None:
    timeout = Failure(httpx.ReadTimeout("slow"), timeout=True)
    actions, result = drive(api_call(ENDPOINTS["send_message"], send_for("send_message"), POLICY), [timeout, OK])
    assert isinstance(result, m.SendMessageResp) and len([a for a in actions if isinstance(a, Send)]) == 2


@pytest.mark.parametrize(
    ("outcome", "why"),
    [
        (Failure(httpx.ConnectError("x")), {"read_as_wait": "ConnectError: x"}),
        (Reply(502, {}, b""), {"read_as_wait": "HTTP 502"}),
        (Reply(504, {}, b""), {"read_as_wait": "HTTP 504"}),
        (Failure(httpx.ReadTimeout("t"), True), {"client_timeout": True}),
    ],
)
def test_qr_status_gateway_errors_read_as_wait(outcome, why) -> None:
    flow = api_call(
        ENDPOINTS["get_qrcode_status"], send_for("get_qrcode_status"), POLICY, gateway_errors_as_timeout=True
    )
    _, result = drive(flow, [outcome])
    assert isinstance(result, m.QrStatusResp) and result.status == "wait"
    assert result.extra == why  # the caller can tell "not scanned yet" from "server unreachable"


def test_business_error_not_retried() -> None:
    actions, err = drive(
        api_call(ENDPOINTS["get_updates"], send_for("get_updates"), POLICY), [Reply(200, {}, b'{"ret":-14}')]
    )
    assert isinstance(err, E.StaleTokenError) and len(actions) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def cdn_send() -> Send:
    return Send("cdn_upload", "POST", "http://cdn", "/upload", {}, {}, b"x" * 16, 60)


def test_cdn_upload_success_and_missing_header() -> None:
    _, param = drive(cdn_upload_flow(cdn_send(), POLICY), [Reply(200, {"x-encrypted-param": "dl"}, b"")])
    assert param == "dl"
    # A 200 without the header is retried like a 5xx (as the official client does), then reported.
    actions, err = drive(cdn_upload_flow(cdn_send(), POLICY), [Reply(200, {}, b"")] * 3)
    assert isinstance(err, E.CdnError) and "x-encrypted-param" in str(err) and "after 3 attempts" in str(err)
    assert len([a for a in actions if isinstance(a, Send)]) == 3
    outcomes = [Reply(200, {}, b""), Reply(200, {"x-encrypted-param": "dl"}, b"")]
    actions, param = drive(cdn_upload_flow(cdn_send(), POLICY), outcomes)
    assert param == "dl" and [a.seconds for a in actions if isinstance(a, Sleep)] == [1.0]


def test_cdn_upload_4xx_fails_at_once_with_server_message() -> None:
    actions, err = drive(cdn_upload_flow(cdn_send(), POLICY), [Reply(400, {"x-error-message": "md5 mismatch"}, b"")])
    assert isinstance(err, E.CdnError) and "md5 mismatch" in str(err) and len(actions) == 1


def test_cdn_upload_two_5xx_then_success() -> None:
    outcomes = [Reply(500, {}, b""), Failure(httpx.ReadError("reset")), Reply(200, {"x-encrypted-param": "ok"}, b"")]
    actions, param = drive(cdn_upload_flow(cdn_send(), POLICY), outcomes)
    assert param == "ok" and len([a for a in actions if isinstance(a, Send)]) == 3


def test_cdn_upload_gives_up_after_three() -> None:
    _, err = drive(cdn_upload_flow(cdn_send(), POLICY), [Reply(500, {}, b"")] * 3)
    assert isinstance(err, E.CdnError) and "after 3 attempts" in str(err)


def test_cdn_download_cap() -> None:
    send = Send("cdn_download", "GET", "http://cdn", "/download", {}, {}, None, 60, max_bytes=10)
    _, err = drive(cdn_download_flow(send, POLICY), [Reply(200, {}, b"x" * 10, truncated=True)])
    assert isinstance(err, E.CdnError) and "10 byte cap" in str(err)


# --- jitter -----------------------------------------------------------------------------------------------


def test_jitter_spreads_each_delay_within_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from openclaw_nb.protocol import flow

    monkeypatch.setattr(flow.random, "random", random.Random(20240611).random)
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=100.0, jitter=0.25)
    for attempt in range(1, 6):
        base = 0.5 * 2 ** (attempt - 1)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0.75 * base <= d <= 1.25 * base for d in delays), (attempt, min(delays), max(delays))
        assert len(set(delays)) > 100  # really spread, not one value
        assert min(delays) < base < max(delays)
    # Retry-After is the server's number: no jitter on it
    assert {policy.delay(2, retry_after=3.0) for _ in range(20)} == {3.0}


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_jitter_extremes(monkeypatch: pytest.MonkeyPatch, draw: float) -> None:
    from openclaw_nb.protocol import flow

    monkeypatch.setattr(flow.random, "random", lambda: draw)
    policy = RetryPolicy(base_delay=2.0, max_delay=100.0, jitter=0.25)
    assert policy.delay(1) == pytest.approx(2.0 * (1 + 0.25 * (2 * draw - 1)))


def test_jitter_never_pushes_a_delay_above_max_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from openclaw_nb.protocol import flow

    rng = random.Random(7)
    monkeypatch.setattr(flow.random, "random", rng.random)
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=8.0, jitter=1.0)
    delays = [policy.delay(attempt) for attempt in range(1, 10) for _ in range(100)]
    assert max(delays) <= 8.0 and min(delays) >= 0.0
    # the largest draw at the cap: without the second cap this would be 8 * 2 = 16 s
    monkeypatch.setattr(flow.random, "random", lambda: 0.999999)
    assert policy.delay(4) == 8.0 and policy.delay(9) == 8.0
    assert RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.25).delay(1000) == 8.0  # no overflow either


def test_api_call_sleeps_are_jittered_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from openclaw_nb.protocol import flow

    monkeypatch.setattr(flow.random, "random", random.Random(3).random)
    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=3.0, jitter=0.5)
    outcomes = [Reply(500, {}, b""), Reply(502, {}, b""), Reply(503, {}, b""), OK]
    actions, result = drive(api_call(ENDPOINTS["notify_start"], send_for("notify_start"), policy), outcomes)
    assert isinstance(result, m.NotifyResp)
    sleeps = [a.seconds for a in actions if isinstance(a, Sleep)]
    assert len(sleeps) == 3
    for attempt, seconds in enumerate(sleeps, 1):
        base = min(1.0 * 2 ** (attempt - 1), 3.0)
        assert 0.5 * base <= seconds <= min(1.5 * base, 3.0)


# --- the server's clock -----------------------------------------------------------------------------------


def test_parse_http_date_ms() -> None:
    from openclaw_nb.protocol.flow import parse_http_date_ms

    assert parse_http_date_ms("Wed, 21 Oct 2015 07:28:00 GMT") == 1445412480000
    for bad in (None, "", "soon", "Wed, 21 Oct 2015 07:28:00", "Wed, 99 Oct 2015 07:28:00 GMT"):
        assert parse_http_date_ms(bad) is None
