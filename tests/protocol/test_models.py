"""Models: lossless round trips, exact uint64, unknown fields kept, wrong types caught with a path."""

from __future__ import annotations

import json

import pytest

from openclaw_nb.protocol import models as m
from openclaw_nb.protocol.redact import redact

BIG = 2**64 - 1  # the largest uint64, far above 2^53

FULL_MESSAGE = {
    "seq": 7,
    "message_id": BIG,
    "from_user_id": "u1@im.wechat",
    "to_user_id": "b1@im.bot",
    "client_id": "c:1-abcdef01",
    "create_time_ms": 1_760_000_000_000,
    "update_time_ms": 1_760_000_000_500,
    "delete_time_ms": 0,
    "session_id": "s",
    "group_id": "",
    "message_type": 1,
    "message_state": 2,
    "context_token": "ctx-secret-value",
    "run_id": "run-1",
    "future_field": {"nested": [1, 2, 3]},
    "item_list": [
        {
            "type": 1,
            "msg_id": 2**63 + 12345,
            "is_completed": True,
            "text_item": {"text": "hello"},
            "ref_msg": {
                "title": "quoted",
                "svr_id": 2**53 + 1,
                "partial_text": {"start": "h", "end": "o", "startindex": 0, "endindex": 0, "quotemd5": "ab"},
                "message_item": {"type": 1, "text_item": {"text": "earlier"}},
            },
        },
        {
            "type": 2,
            "image_item": {
                "aeskey": "00" * 16,
                "mid_size": 32,
                "media": {"encrypt_query_param": "p", "aes_key": "k", "encrypt_type": 1, "full_url": "http://x"},
            },
        },
        {"type": 3, "voice_item": {"encode_type": 6, "playtime": 1200, "text": "spoken words"}},
        {"type": 4, "file_item": {"file_name": "a b.pdf", "len": "123", "md5": "x"}},
        {"type": 5, "video_item": {"video_size": 64, "play_length": 3}},
        {"type": 11, "tool_call_start_item": {"tool_name": "search", "tool_call_id": "t1"}},
        {"type": 12, "tool_call_result_item": {"tool_name": "search", "tool_call_id": "t1", "status": "ok"}},
        {"type": 99, "mystery_item": {"a": 1}},
    ],
}


def test_round_trip_is_lossless_and_exact() -> None:
    raw = json.loads(json.dumps(FULL_MESSAGE))
    msg = m.WeixinMessage.from_wire(raw)
    assert msg.message_id == BIG
    assert msg.items[0].msg_id == 2**63 + 12345
    assert msg.items[0].ref_msg is not None and msg.items[0].ref_msg.svr_id == 2**53 + 1
    assert msg.to_wire() == FULL_MESSAGE
    # and through JSON text again: still exact
    assert json.loads(json.dumps(msg.to_wire()))["message_id"] == BIG


def test_unknown_fields_are_kept_at_every_level() -> None:
    msg = m.WeixinMessage.from_wire(json.loads(json.dumps(FULL_MESSAGE)))
    assert msg.extra == {"future_field": {"nested": [1, 2, 3]}}
    assert msg.items[7].extra == {"mystery_item": {"a": 1}}
    assert msg.items[7].type_name == "type99"
    assert msg.items[7].payload is None


def test_item_helpers() -> None:
    msg = m.WeixinMessage.from_wire(json.loads(json.dumps(FULL_MESSAGE)))
    assert [i.type_name for i in msg.items[:7]] == [
        "text",
        "image",
        "voice",
        "file",
        "video",
        "tool_call_start",
        "tool_call_result",
    ]
    assert msg.text == "hello\nspoken words"
    assert isinstance(msg.items[3].payload, m.FileItem) and msg.items[3].payload.len == "123"
    assert msg.message_type_name == "user" and msg.message_state_name == "finish"
    assert msg.is_from_user


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"seq": "7"}, "seq"),
        ({"message_id": 1.5}, "message_id"),
        ({"item_list": {"type": 1}}, "item_list"),
        ({"item_list": [{"type": "1"}]}, "item_list[].type"),
        ({"item_list": [{"type": 1, "text_item": "hi"}]}, "item_list[].text_item"),
        ({"item_list": [{"type": 1, "text_item": {"text": 5}}]}, "item_list[].text_item.text"),
        ({"from_user_id": True}, "from_user_id"),
        ({"message_type": True}, "message_type"),
    ],
)
def test_wrong_types_name_the_field(patch: dict, path: str) -> None:
    with pytest.raises(m.WireTypeError) as info:
        m.WeixinMessage.from_wire({**FULL_MESSAGE, **patch}, strict=True)
    assert info.value.path == path
    # Read leniently (the default): nothing raises, the odd value is kept as sent where it was, reported at
    # the same path, and the message goes back to the wire unchanged.
    findings: list = []
    sent = json.loads(json.dumps({**FULL_MESSAGE, **patch}))
    msg = m.WeixinMessage.from_wire(sent, drift=findings)
    assert [(d.path, d.kind) for d in findings if d.kind == "unexpected type"] == [(path, "unexpected type")]
    assert msg.to_wire() == sent
    assert msg.context_token == FULL_MESSAGE["context_token"]  # the rest is typed as usual


def test_nulls_read_as_absent() -> None:
    msg = m.WeixinMessage.from_wire({"seq": None, "item_list": None, "context_token": None})
    assert msg.seq is None and msg.items == [] and msg.to_wire() == {}


def test_repr_redacts_secrets() -> None:
    msg = m.WeixinMessage.from_wire(json.loads(json.dumps(FULL_MESSAGE)))
    text = repr(msg)
    assert "ctx-secret-value" not in text
    assert redact("ctx-secret-value") in text
    status = m.QrStatusResp.from_wire({"status": "confirmed", "bot_token": "tok-ABCDEF-123"})
    assert "tok-ABCDEF-123" not in repr(status)
    assert "extra=<1 field(s) kept as sent: future_field>" in text


def test_response_keeps_raw_and_cursor_alias() -> None:
    raw = {"ret": 0, "msgs": [], "sync_buf": "old-cursor", "longpolling_timeout_ms": 30000}
    resp = m.GetUpdatesResp.from_wire(raw)
    assert resp.raw is raw
    assert resp.cursor == "old-cursor"
    assert m.GetUpdatesResp.from_wire({"get_updates_buf": "new", "sync_buf": "old"}).cursor == "new"


def test_send_message_resp_uint64() -> None:
    resp = m.SendMessageResp.from_wire(json.loads('{"ret":0,"message_id":18446744073709551615}'))
    assert resp.message_id == BIG


def test_text_item_builder() -> None:
    assert m.MessageItem.text("hi").to_wire() == {"type": 1, "text_item": {"text": "hi"}}
