"""Pieces of the update stream that need no server: lenient message typing, the reply budget, media rules,
file names."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import Peer
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.protocol.inbound import inbound_media, safe_filename, sniff
from openclaw_nb.updates import Media, message_from_raw, reply_budget_of


def test_a_wrongly_typed_field_is_kept_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    raw = json.dumps({"message_id": 2**64 - 1, "client_id": 5, "item_list": [{"type": "x"}], "seq": 3})
    with caplog.at_level(logging.WARNING, "openclaw_nb"):
        msg = message_from_raw(raw)
    assert msg.message_id == 2**64 - 1 and msg.seq == 3
    assert msg.extra == {"client_id": 5} and msg.items[0].extra == {"type": "x"}
    assert msg.items[0].type_name == "typex" and json.loads(raw) == msg.to_wire()
    odd = message_from_raw("[1]")  # not an object: flagged, never raised (the stream must go on)
    assert odd.decode_error == "not a JSON object (array)" and odd.raw_text == "[1]" and odd.message_id is None
    torn = message_from_raw('{"message_id": 12, "item_list": [')
    assert torn.message_id == 12 and torn.decode_error is not None and torn.decode_error.startswith("not JSON")


def test_reply_budget_rules() -> None:
    now = 1_700_000_000.0
    fresh = Peer("u", context_token="t", last_inbound_ms=int((now - 3600) * 1000), sends_on_token=3)
    budget = reply_budget_of(fresh, "u", now)
    assert budget.can_reply and budget.sends_left == C.SENDS_PER_CONTEXT_TOKEN - 3 and budget.reason == "ok"
    assert budget.window_left == timedelta(hours=23)
    assert "secret-token" not in repr(Peer("u", context_token="secret-token"))
    stale = Peer("u", context_token="t", last_inbound_ms=int((now - 25 * 3600) * 1000))
    late = reply_budget_of(stale, "u", now)
    assert not late.can_reply and late.window_left == timedelta(0) and "24 h" in late.reason
    used = reply_budget_of(Peer("u", context_token="t", last_inbound_ms=int(now * 1000), sends_on_token=10), "u", now)
    assert not used.can_reply and used.sends_left == 0
    nobody = reply_budget_of(None, "x", now)
    assert not nobody.can_reply and "not written" in nobody.reason


def test_key_rules() -> None:
    key = crypto.new_key()
    other = crypto.new_key()
    image = {
        "type": 2,
        "msg_id": 7,
        "image_item": {
            "aeskey": key.hex(),
            "media": {"encrypt_query_param": "p", "aes_key": crypto.key_to_raw_b64(other)},
        },
    }
    info = inbound_media(image)
    assert info.key == key and info.key_source == "image_item.aeskey"  # the hex key wins for images
    assert key.hex() not in repr(info)  # keys never shown
    image["image_item"]["aeskey"] = "zz"
    assert inbound_media(image).key == other  # a damaged hex key falls back to media.aes_key
    del image["image_item"]["media"]["aes_key"]
    with pytest.raises(E.ProtocolError, match=r"image_item\.aeskey"):
        inbound_media(image)
    file_item = {
        "type": 4,
        "file_item": {
            "media": {"full_url": "http://x/y", "aes_key": crypto.key_to_message_aes_key(key)},
            "len": "12",
            "file_name": "a.pdf",
        },
    }
    info = inbound_media(file_item)
    assert info.key == key and info.size == 12 and info.full_url == "http://x/y" and info.default_name() == "a.pdf"
    raw_b64_file = {"type": 4, "file_item": {"media": {"aes_key": base64.b64encode(key).decode()}}}
    assert inbound_media(raw_b64_file).key == key  # both base64 forms are accepted wherever they appear
    with pytest.raises(E.UsageError, match="no media"):
        inbound_media({"type": 1, "text_item": {"text": "hi"}})
    voice = inbound_media(
        {"type": 3, "msg_id": 9, "voice_item": {"media": {"encrypt_query_param": "q"}, "encode_type": 7}}
    )
    assert voice.key is None and voice.key_source == "none" and voice.default_name() == "voice-9.mp3"


def test_file_names_and_sniffing() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\\\Windows\\\\evil.exe") == "evil.exe"
    assert safe_filename("..") == "file" and safe_filename("", fallback="x") == "x"
    assert safe_filename("CON.txt") == "_CON.txt" and safe_filename("a\x00b.txt") == "a_b.txt"
    long = safe_filename("é" * 300 + ".txt")
    assert long.endswith(".txt") and len(long.encode()) <= 200
    assert sniff(b"\xff\xd8\xff\xe0") == ("image/jpeg", ".jpg") and sniff(b"hello") == (None, "")
    info = inbound_media({"type": 2, "msg_id": 1, "image_item": {"media": {"encrypt_query_param": "p"}}})
    media = Media(b"GIF89a...", info)
    assert media == b"GIF89a..." and media.name == "image-1.gif" and "image/gif" in media._repr_mimebundle_()


def test_inbound_media_reads_ids_and_sizes_in_either_json_type() -> None:
    # The official parser takes msg_id as a number or a string of digits; file_item.len is a string on the wire,
    # but a number must not lose the size either.
    as_text = inbound_media({"type": 4, "msg_id": "77", "file_item": {"media": {}, "file_name": "a.txt", "len": "12"}})
    as_number = inbound_media({"type": 4, "msg_id": 77, "file_item": {"media": {}, "file_name": "a.txt", "len": 12}})
    assert (as_text.msg_id, as_text.size) == (as_number.msg_id, as_number.size) == (77, 12)
    odd = inbound_media({"type": 4, "msg_id": [1], "file_item": {"media": {}, "len": "x"}})
    assert (odd.msg_id, odd.size) == (None, None)
