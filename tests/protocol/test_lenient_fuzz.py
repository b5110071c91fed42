"""Property tests: whatever JSON a server puts in any known field, every reader of getupdates delivers every message.

A rich real-shaped message is taken apart into the paths of its known fields; hypothesis replaces any of them
with any JSON value (strings, huge integers, floats, arrays, objects, null) and also drops junk into ``msgs``.
The readers behind every path must then: raise nothing (the typed ``get_updates`` parser, the page decoder
with and without msgspec, ``updates()``'s per-message reader, bulk ingest), give one row or object per entry
of ``msgs``, hand on the cursor, and agree with each other. The HTTP side of the same paths is covered in
tests/updates/test_real_wire.py.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openclaw_nb import frames as F
from openclaw_nb.protocol import poll as P
from openclaw_nb.protocol.codec import parse_response
from openclaw_nb.updates import message_from_raw

BASE: dict[str, Any] = {
    "seq": 1,
    "message_id": 9001,
    "from_user_id": "u@im.wechat",
    "to_user_id": "b@im.bot",
    "client_id": "c-1",
    "create_time_ms": 1_760_000_000_000,
    "update_time_ms": 1_760_000_000_000,
    "delete_time_ms": 0,
    "session_id": "s",
    "group_id": "",
    "message_type": 1,
    "message_state": 2,
    "context_token": "ctx",
    "run_id": "r",
    "item_list": [
        {
            "type": 1,
            "msg_id": 1,
            "is_completed": True,
            "text_item": {"text": "hi"},
            "ref_msg": {
                "svr_id": 7,
                "title": "t",
                "message_item": {"type": 1, "text_item": {"text": "quoted words"}},
                "partial_text": {"start": "q", "end": "d", "startindex": 0, "endindex": 0, "quotemd5": "00"},
            },
        },
        {
            "type": 2,
            "image_item": {
                "media": {"encrypt_query_param": "p", "aes_key": "k", "encrypt_type": 1, "full_url": "u"},
                "thumb_media": {"encrypt_query_param": "t"},
                "aeskey": "00",
                "mid_size": 3,
            },
        },
        {"type": 3, "voice_item": {"media": {"encrypt_query_param": "v"}, "encode_type": 6, "text": "said"}},
        {"type": 4, "file_item": {"media": {}, "file_name": "f", "md5": "m", "len": "3"}},
        {"type": 5, "video_item": {"media": {}, "video_size": 9, "thumb_media": {}}},
        {"type": 11, "tool_call_start_item": {"tool_name": "x", "tool_call_id": "1"}},
        {"type": 12, "tool_call_result_item": {"tool_name": "x", "tool_call_id": "1", "status": 0}},
    ],
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += _paths(inner, (*path, i))
    return out


PATHS = _paths(BASE)
#: Stands for an integer of 5,000 digits (more than Python converts from text by default) in the body.
BIG = "<5000 digits>"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([2**64 - 1, 2**64, -1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["1", "18446744073709551615", "0x10", "\ud800", BIG]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _replace(message: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = message
    for step in path[:-1]:
        if (isinstance(target, dict) and step in target) or (isinstance(target, list) and isinstance(step, int)):
            try:
                target = target[step]
            except (IndexError, KeyError):
                return
        else:
            return  # an earlier replacement removed this branch
        if not isinstance(target, (dict, list)):
            return
    try:
        target[path[-1]] = value
    except (IndexError, KeyError, TypeError):
        return


messages = st.lists(st.tuples(st.sampled_from(PATHS), json_values), max_size=6).map(lambda changes: _mutated(changes))


def _mutated(changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    message = copy.deepcopy(BASE)
    for path, value in changes:
        _replace(message, path, value)
    return message


def _dumps(value: Any) -> str:
    # Lone surrogates are written as JSON allows; the server could send the same.
    return json.dumps(value, ensure_ascii=False).replace(f'"{BIG}"', "9" * 5000)


entries = st.lists(messages | json_values.filter(lambda v: not isinstance(v, dict)), min_size=1, max_size=4)


def _body(entries: list[Any]) -> bytes:
    text = '{"ret":0,"msgs":[' + ",".join(_dumps(e) for e in entries) + '],"get_updates_buf":"next"}'
    return text.encode("utf-8", "surrogatepass")


def _rows(decoded: P.DecodedPage) -> list[tuple[Any, ...]]:
    raw = P.COL["raw"]
    return [r[:raw] for r in zip(*decoded.columns, strict=True)]


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(entries)
def test_no_reader_raises_and_all_agree(msgs: list[Any]) -> None:
    body = _body(msgs)
    typed = parse_response("get_updates", body)
    assert typed.cursor == "next" and len(typed.messages) == len(msgs)

    decoded = {}
    for use in (True, False) if P._msgspec is not None else (False,):
        P.USE_MSGSPEC = use
        try:
            decoded[use] = P.decode_page(body, 1)
            lean = P.decode_page(body, 1, raw=False)
        finally:
            P.USE_MSGSPEC = P._msgspec is not None
        assert decoded[use].get_updates_buf == "next" and len(decoded[use]) == len(msgs)
        assert _rows(lean) == _rows(decoded[use])
    pages = list(decoded.values())
    assert all(_rows(p) == _rows(pages[0]) for p in pages)
    assert all(sorted(map(repr, p.drift)) == sorted(map(repr, pages[0].drift)) for p in pages)

    page = pages[0]
    ids = page.columns[P.COL["message_id"]]
    for raw, row_id, model in zip(page.columns[P.COL["raw"]], ids, typed.messages, strict=True):
        from_raw = message_from_raw(raw)
        assert from_raw.message_id == model.message_id or row_id is None
        assert (from_raw.decode_error is None) == (model.decode_error is None)

    df = F.frame_from_pages([body], dedup=False)
    assert len(df) == len(msgs)
    assert df["item_types"].tolist() == page.columns[P.COL["item_types"]]


@pytest.mark.parametrize("use_msgspec", [True, False], ids=["msgspec", "stdlib"])
def test_a_page_of_well_typed_known_fields_has_no_drift(use_msgspec: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if use_msgspec and P._msgspec is None:
        pytest.skip("msgspec is not installed")
    monkeypatch.setattr(P, "USE_MSGSPEC", use_msgspec)
    base = copy.deepcopy(BASE)
    base["item_list"][0]["ref_msg"]["partial_text"]["quotemd5"] = ""
    decoded = P.decode_page(_body([base, base]), 1)
    assert decoded.drift == [] and decoded.unreadable == 0
    # the excerpt of "quoted words" from the first "q" to the first "d"
    assert decoded.columns[P.COL["quoted"]] == ["quoted"] * 2


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None)
@given(messages)
def test_the_cheap_drift_check_finds_what_the_models_report(message: dict[str, Any]) -> None:
    from openclaw_nb.protocol import models as m
    from openclaw_nb.protocol.lenient import loads

    data, _repairs = loads(_dumps(message).encode("utf-8", "surrogatepass"))  # as a reader gets it
    built: list[Any] = []
    m.WeixinMessage.from_wire(data, drift=built)
    checked: list[Any] = []
    m.WeixinMessage.find_drift(data, "", checked)
    assert sorted(map(repr, checked)) == sorted(map(repr, built))
