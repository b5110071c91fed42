"""Response checking: every error branch gives a typed error naming the endpoint, never a bare KeyError."""

from __future__ import annotations

import json

import pytest

from openclaw_nb import errors as E
from openclaw_nb.protocol import models as m
from openclaw_nb.protocol.codec import http_status_error, parse_response
from openclaw_nb.protocol.models import GetUpdatesResp


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_success_builds_model() -> None:
    resp = parse_response("send_message", body({"ret": 0, "message_id": 2**60 + 3}))
    assert isinstance(resp, m.SendMessageResp) and resp.message_id == 2**60 + 3


def test_empty_object_is_success() -> None:
    assert isinstance(parse_response("send_message", b"{}"), m.SendMessageResp)


@pytest.mark.parametrize(
    ("endpoint", "payload", "cls"),
    [
        ("get_updates", {"ret": -14, "errmsg": "session timeout"}, E.StaleTokenError),
        ("send_message", {"errcode": -14}, E.StaleTokenError),
        ("send_message", {"ret": -2, "errmsg": ""}, E.SendRejectedError),
        ("send_message", {"ret": -3}, E.InvalidArgumentsError),
        ("get_config", {"ret": -4}, E.NotYetContactedError),
        ("send_typing", {"ret": -4}, E.ApiError),
        ("get_updates", {"ret": -2}, E.ApiError),
        ("get_updates", {"ret": 0, "errcode": 7, "errmsg": "x"}, E.ApiError),
        ("get_updates", {"ret": "-14"}, E.StaleTokenError),
    ],
)
def test_business_errors_are_typed(endpoint: str, payload: dict, cls: type) -> None:
    with pytest.raises(E.ApiError) as info:
        parse_response(endpoint, body(payload))
    assert type(info.value) is cls
    assert info.value.endpoint == endpoint
    assert str(info.value).startswith(f"{endpoint} failed (")
    assert info.value.raw == payload


def test_stale_token_tells_user_to_log_in() -> None:
    with pytest.raises(E.StaleTokenError, match=r"log in again|Log in again"):
        parse_response("get_updates", body({"ret": -14}))


def test_api_error_fields() -> None:
    with pytest.raises(E.ApiError) as info:
        parse_response("get_upload_url", body({"ret": -1, "errcode": -100, "errmsg": "boom"}))
    err = info.value
    assert (err.ret, err.errcode, err.errmsg, err.code) == (-1, -100, "boom", -1)
    assert "ret=-1" in str(err) and "errcode=-100" in str(err) and "'boom'" in str(err)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "not JSON: <empty>"),
        (b"<html>502 Bad Gateway</html>", "not JSON: <html>502 Bad Gateway</html>"),
        (b"[1, 2]", "not an object"),
        (b'"text"', "not an object"),
        (b"null", "not an object"),
        (b'{"ret": 0, "msgs": "nope"}', "'msgs' that is not an array"),
        (b'{"ret": {"a": 1}}', "non-integer 'ret'"),
        (b'{"ret": 0, "get_updates_buf": 35000}', "get_updates_buf that is not a string cursor"),
        (b'{"ret": 0, "sync_buf": ["c"], "msgs": [{"message_id": 1}]}', "sync_buf that is not a string cursor"),
        # (a wrongly typed longpolling_timeout_ms is no error: it is only a hint, see test_poll_window.py)
    ],
)
def test_bad_bodies_are_protocol_errors(content: bytes, needle: str) -> None:
    with pytest.raises(E.ProtocolError) as info:
        parse_response("get_updates", content)
    assert info.value.endpoint == "get_updates"
    assert needle in str(info.value)
    assert str(info.value).startswith("get_updates answered")


def test_snippets_are_redacted_and_short() -> None:
    secret = "S3CRET-context-token-value"
    bad = body({"ret": 0, "msgs": [{"context_token": secret}], "get_updates_buf": 7, "pad": "y" * 5000})
    with pytest.raises(E.ProtocolError) as info:
        parse_response("get_updates", bad)
    assert secret not in str(info.value)
    assert len(info.value.snippet) <= 200
    broken = b'{"bot_token": "' + secret.encode() + b'", oops'
    with pytest.raises(E.ProtocolError) as info2:
        parse_response("get_qrcode_status", broken)
    assert secret not in str(info2.value) and "<redacted" in str(info2.value)


def test_http_status_error_messages() -> None:
    err = http_status_error("send_message", 503, b"down", {"x-error-message": "maintenance"}, attempts=3)
    assert isinstance(err, E.TransportError) and err.status_code == 503 and err.attempts == 3
    assert (
        str(err) == "send_message got HTTP 503 after 3 attempts: maintenance; the server had a problem, try again later"
    )
    assert "rate limiting" in str(http_status_error("get_updates", 429, b""))


@pytest.mark.parametrize("value", ["--1", "²", "1-", " ", "0x10", "1e3"])
def test_odd_code_strings_are_protocol_errors(value: str) -> None:
    with pytest.raises(E.ProtocolError, match="non-integer 'ret'"):
        parse_response("get_updates", body({"ret": value}))


@pytest.mark.parametrize(
    ("payload", "cls"),
    [
        ({"ret": -1, "errcode": -14}, E.StaleTokenError),
        ({"ret": -14, "errcode": -1}, E.StaleTokenError),
        ({"ret": -1, "errcode": -2}, E.SendRejectedError),
        ({"ret": -1, "errcode": -3}, E.InvalidArgumentsError),
    ],
)
def test_specific_code_wins_when_ret_and_errcode_disagree(payload: dict, cls: type) -> None:
    with pytest.raises(cls):
        parse_response("send_message", body(payload))


@pytest.mark.parametrize("depth", [400, 5000], ids=["beyond-the-models", "beyond-json"])
def test_absurdly_nested_quote_costs_only_its_own_message(depth: int) -> None:
    # 400 levels: valid for json, too deep for the models' recursion; 5000: too deep for json itself.
    item = '{"type":1,"ref_msg":{"message_item":' * depth + '{"type":1}' + "}}" * depth
    deep = '{"message_id":77,"item_list":[' + item + "]}"
    good = '{"message_id":78,"item_list":[{"type":1,"text_item":{"text":"fine"}}]}'
    content = ('{"ret":0,"msgs":[' + deep + "," + good + '],"get_updates_buf":"next"}').encode()
    page = parse_response("get_updates", content)
    assert isinstance(page, GetUpdatesResp) and page.cursor == "next"
    bad, fine = page.messages
    assert bad.message_id == 77 and bad.decode_error == "nested too deeply to read" and bad.raw_text == deep
    assert fine.message_id == 78 and fine.text == "fine" and fine.decode_error is None


def test_truncated_body_does_not_leak_the_secret() -> None:
    secret = "ctx-abcdefghijklmnopqrstuvwxyz0123456789"
    cut = b'{"ret":0,"msgs":[{"context_token":"' + secret.encode()
    with pytest.raises(E.ProtocolError) as info:
        parse_response("get_updates", cut)
    assert secret not in str(info.value) and "<redacted" in str(info.value)
