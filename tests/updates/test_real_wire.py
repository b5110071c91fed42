"""Real-wire tolerance: every shape real traffic has, and hostile pages, through every path that reads getupdates.

Each page is written byte for byte and served over real HTTP by :mod:`.wire_server` (the simulator can't encode
invalid UTF-8 or 5,000 levels of nesting). The paths: the typed ``get_updates()``, ``updates()`` (sync and
async), the live feed (``stream()``), and bulk ingest (``frame_from_pages``), each with and without msgspec.
They must deliver every message once, advance the cursor, agree on the rows, and report the same drift.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pandas as pd
import pytest

from openclaw_nb import frames as F
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.protocol import models as m
from openclaw_nb.protocol import poll as P

from .conftest import FAST
from .wire_server import WireServer, page

T = 1_760_000_000_000
FULL = "hello there friend"
ALICE = "alice@im.wechat"


def msg(mid: Any, items: list[dict[str, Any]], **fields: Any) -> str:
    body = {
        "seq": fields.pop("seq", 1),
        "message_id": mid,
        "from_user_id": ALICE,
        "to_user_id": "bot@im.bot",
        "create_time_ms": T,
        "message_type": 1,
        "message_state": 2,
        "context_token": "ctx-secret-alice",
        "item_list": items,
        **fields,
    }
    return json.dumps(body, ensure_ascii=False)


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": 1, "text_item": {"text": value}, **extra}


REAL_SHAPES = [
    # ids as strings of digits, as the official parser accepts them
    msg("1001", [text(FULL, msg_id="5001")]),
    # a partial quote: start/end are the excerpt's first and last characters, quotemd5 picks the reading
    msg(
        1002,
        [
            text(
                "what do you mean?",
                ref_msg={
                    "message_item": text(FULL),
                    "svr_id": "1001",
                    "partial_text": {
                        "start": "t",
                        "end": "e",
                        "startindex": 0,
                        "endindex": 2,
                        "quotemd5": hashlib.md5(b"there").hexdigest(),
                    },
                },
            )
        ],
        seq=2,
    ),
    # an ID-only quote (newer WeChat apps): only svr_id; the text comes from the client's recent history
    msg(1003, [text("and this?", ref_msg={"svr_id": 1001})], seq=3),
    # tool-call items and a run id
    msg(
        1004,
        [
            {"type": 11, "tool_call_start_item": {"tool_name": "search", "tool_call_id": "tc-1"}},
            {"type": 12, "tool_call_result_item": {"tool_name": "search", "tool_call_id": "tc-1", "status": "ok"}},
        ],
        seq=4,
        run_id="run-7",
    ),
    # an unknown item type and an unknown field
    msg(1005, [text("from a newer app"), {"type": 99, "future_item": {"x": 1}}], seq=5, future_flag=True),
    # media with a full_url and a thumbnail, a voice note with its transcript
    msg(
        1006,
        [
            {
                "type": 2,
                "image_item": {
                    "media": {"encrypt_query_param": "p-img", "full_url": "https://cdn.example/d?x=1"},
                    "thumb_media": {"encrypt_query_param": "p-thumb"},
                    "thumb_size": 99,
                },
            },
            {"type": 3, "voice_item": {"media": {"encrypt_query_param": "p-voice"}, "text": "spoken words"}},
        ],
        seq=6,
    ),
]

#: Exactly what the drift report must list for that page: (path, kind).
REAL_DRIFT = {
    ("msgs[].message_id", "unexpected type"),
    ("msgs[].item_list[].msg_id", "unexpected type"),
    ("msgs[].item_list[].ref_msg.svr_id", "unexpected type"),
    ("msgs[].item_list[].type", "unknown value"),
    ("msgs[].item_list[].future_item", "unknown field"),
    ("msgs[].future_flag", "unknown field"),
}

#: (message_id, item_types, text, quoted, quoted_svr_id, decode_error) per message of REAL_SHAPES.
REAL_ROWS = [
    (1001, "text", FULL, None, None, None),
    (1002, "text", "what do you mean?", "there", 1001, None),
    (1003, "text", "and this?", FULL, 1001, None),
    (1004, "tool_call_start,tool_call_result", "", None, None, None),
    (1005, "text,type99", "from a newer app", None, None, None),
    (1006, "image,voice", "spoken words", None, None, None),
]


@pytest.fixture(params=["msgspec", "stdlib"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "msgspec" and P._msgspec is None:
        pytest.skip("msgspec is not installed")
    monkeypatch.setattr(P, "USE_MSGSPEC", request.param == "msgspec")
    return str(request.param)


def model_row(message: m.WeixinMessage) -> tuple[Any, ...]:
    return (
        message.message_id,
        ",".join(item.type_name for item in message.items),
        message.text,
        message.quoted,
        message.quoted_svr_id,
        message.decode_error,
    )


def frame_rows(df: Any) -> list[tuple[Any, ...]]:
    cols = ["message_id", "item_types", "text", "quoted", "quoted_svr_id", "decode_error"]
    out = []
    for row in df[cols].astype(object).itertuples(index=False, name=None):
        out.append(tuple(None if pd.isna(v) else v for v in row))
    return [
        (int(r[0]) if r[0] is not None else None, r[1], r[2], r[3], int(r[4]) if r[4] is not None else None, r[5])
        for r in out
    ]


def drift_of(client: Client | AsyncClient) -> set[tuple[str, str]]:
    return {(e.path, e.kind) for e in client.drift_log.entries() if e.endpoint == "get_updates"}


def client_for(wire: WireServer, kind: str = "sync") -> Any:
    cls = Client if kind == "sync" else AsyncClient
    return cls("tok-123456", base_url=wire.base_url, bot_id="bot@im.bot", record=False)


def run_paths(body: bytes, count: int) -> dict[str, Any]:
    """Read one page through every path; returns per path its rows, drift and the cursor it ended on."""
    out: dict[str, Any] = {}
    with WireServer() as wire:
        wire.add("", body)
        with client_for(wire) as client:
            resp = client.get_updates()
            out["get_updates"] = ([model_row(x) for x in resp.messages], drift_of(client), client.cursor)

        with client_for(wire) as client:
            got: list[m.WeixinMessage] = []
            it = client.updates(persist=False, policy=FAST)
            for message in it:
                got.append(message)
                if len(got) == count:
                    it.stop()
            out["updates"] = ([model_row(x) for x in got], drift_of(client), it.state.cursor)

        async def read_async() -> None:
            async with client_for(wire, "async") as client:
                got: list[m.WeixinMessage] = []
                it = client.updates(persist=False, policy=FAST)
                async for message in it:
                    got.append(message)
                    if len(got) == count:
                        it.stop()
                out["async updates"] = ([model_row(x) for x in got], drift_of(client), it.state.cursor)

        asyncio.run(read_async())

        with client_for(wire) as client:
            feed = client.stream(persist=False, policy=FAST)
            try:
                feed.wait_rows(count, timeout=20)
                df = feed.frame
            finally:
                feed.stop()
            out["stream"] = (frame_rows(df), drift_of(client), feed._stream.state.cursor)
        served = dict(wire.served)
    out["frame_from_pages"] = (frame_rows(F.frame_from_pages([body])), None, None)
    out["served"] = served
    return out


def test_a_real_shaped_page_goes_through_every_path(decoder: str) -> None:
    body = page(REAL_SHAPES, "c1")
    results = run_paths(body, len(REAL_SHAPES))
    assert results.pop("served") == {"": 4}, "each client read the page once, and none asked for it again"
    for path, (rows, drift, cursor) in results.items():
        assert rows == REAL_ROWS, path
        if drift is not None:
            assert drift == REAL_DRIFT, path
            assert cursor == "c1", path


def test_the_typed_models_of_a_real_shaped_page() -> None:
    with WireServer() as wire:
        wire.add("", page(REAL_SHAPES, "c1"))
        with client_for(wire) as client:
            msgs = client.get_updates().messages
    partial = msgs[1].items[0].ref_msg
    assert partial is not None and partial.partial_text is not None
    assert (partial.partial_text.start, partial.partial_text.end, partial.partial_text.endindex) == ("t", "e", 2)
    assert msgs[0].message_id == 1001 and msgs[0].items[0].msg_id == 5001  # strings of digits read as uint64
    tools = msgs[3].items
    assert tools[0].tool_call_start_item is not None and tools[0].tool_call_start_item.tool_call_id == "tc-1"
    assert tools[1].tool_call_result_item is not None and tools[1].tool_call_result_item.status == "ok"
    assert msgs[3].run_id == "run-7"
    assert msgs[4].extra == {"future_flag": True} and msgs[4].items[1].extra == {"future_item": {"x": 1}}
    image = msgs[5].items[0].image_item
    assert image is not None and image.thumb_media is not None and image.thumb_media.encrypt_query_param == "p-thumb"
    assert image.media is not None and image.media.full_url == "https://cdn.example/d?x=1"
    # Lossless: every message goes back to the wire exactly as it came.
    assert [x.to_wire() for x in msgs] == [json.loads(x) for x in REAL_SHAPES]


def test_the_drift_report_names_each_finding_once_with_a_redacted_example() -> None:
    with WireServer() as wire:
        wire.add("", page(REAL_SHAPES, "c1"))
        wire.add("c1", page([msg("2001", [text("again")], future_flag=False)], "c2"))
        with client_for(wire) as client:
            client.get_updates()
            client.get_updates()
            df = client.drift
    assert list(df.columns) == ["endpoint", "path", "kind", "seen", "count", "first_seen", "last_seen", "example"]
    by_path = {(r.path, r.kind): r for r in df.itertuples()}
    assert by_path[("msgs[].future_flag", "unknown field")].count == 2  # one entry, counted per message
    assert by_path[("msgs[].message_id", "unexpected type")].count == 2
    assert by_path[("msgs[].item_list[].type", "unknown value")].seen == "99"
    assert by_path[("msgs[].future_flag", "unknown field")].seen == "boolean"
    assert "ctx-secret-alice" not in df.to_string()


#: Hostile entries of msgs, each with why it is flagged or how it is repaired.
def hostile_messages() -> list[tuple[str, bytes, str | None]]:
    deep = '{"type":1,"ref_msg":{"message_item":' * 5000 + '{"type":1}' + "}}" * 5000
    return [
        ("type-array", msg(3001, [{"type": [1], "text_item": {"text": "a"}}]).encode(), None),
        ("type-object", msg(3002, [{"type": {"v": 1}, "text_item": {"text": "b"}}]).encode(), None),
        ("deep", ('{"message_id":3003,"item_list":[' + deep + "]}").encode(), "nested too deeply to read"),
        ("bad-utf8", msg(3004, [text("cafe")]).encode().replace(b"cafe", b"caf\xff"), None),
        ("lone-surrogate", msg(3005, [text("x")]).encode().replace(b'"x"', b'"\\ud800"'), None),
        ("long-int-known", msg(3006, [text("d")], seq=1).encode().replace(b'"seq": 1', b'"seq": ' + b"9" * 5000), None),
        ("long-int-unknown", msg(3007, [text("e")]).encode()[:-1] + b', "big": ' + b"7" * 5000 + b"}", None),
        ("not-an-object", b"7", "not a JSON object (number)"),
        ("string-entry", b'"hello"', "not a JSON object (string)"),
    ]


GOOD = msg(3100, [text("still here")])


@pytest.mark.parametrize("case", [h[0] for h in hostile_messages()])
def test_a_hostile_message_costs_only_itself(case: str, decoder: str) -> None:
    _, bad, problem = next(h for h in hostile_messages() if h[0] == case)
    body = page([bad, GOOD], "c1")
    results = run_paths(body, 2)
    assert results.pop("served") == {"": 4}, "a page is never served again because of a decoding failure"
    first_rows = None
    for path, (rows, _drift, cursor) in results.items():
        assert len(rows) == 2, path
        assert rows[1] == (3100, "text", "still here", None, None, None), path
        assert rows[0][5] == problem, path
        if cursor is not None:
            assert cursor == "c1", path
        if first_rows is None:
            first_rows = rows
        # Arrow strings can't hold half a surrogate pair: frames show U+FFFD where the models keep it (the raw
        # column keeps the escape as sent).
        assert [_arrow(r) for r in rows] == [_arrow(r) for r in first_rows], f"{path} disagrees with get_updates"


def _arrow(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.replace("\ud800", "\ufffd") if isinstance(v, str) else v for v in row)


def test_only_a_body_that_is_not_an_object_is_an_error() -> None:
    from openclaw_nb import errors as E

    with WireServer() as wire:
        wire.add("", b"<html>524: A timeout occurred</html>")
        with client_for(wire) as client, pytest.raises(E.ProtocolError, match="not JSON"):
            client.get_updates()


@pytest.mark.parametrize(
    ("answer", "message_id", "kept"),
    [
        (b'{"ret":0,"message_id":"123"}', 123, {}),  # a string of digits: the same id
        (b'{"ret":0,"message_id":"abc"}', None, {"message_id": "abc"}),  # unreadable: still a success
        (b'{"ret":0,"message_id":[1]}', None, {"message_id": [1]}),
        (b"{}", None, {}),  # older servers
    ],
)
def test_a_delivered_send_never_raises_over_its_answer(answer: bytes, message_id: Any, kept: dict[str, Any]) -> None:
    with WireServer() as wire:
        wire.answers["sendmessage"] = answer
        with client_for(wire) as client:
            resp = client.send_text(ALICE, "hello", context_token="ctx-1")
    assert resp.message_id == message_id and resp.extra == kept
    assert resp.raw == json.loads(answer)


def test_an_id_only_quote_of_the_bots_own_message_shows_its_text(sim: Any, bot: Any) -> None:
    # The official client keeps its own sends to resolve such quotes; so does this client (client.history).
    with bot.client() as client:
        sim.say("alice", "what is the answer?")
        asked = client.get_updates().messages[0]
        sent = client.send_text(asked.from_user_id, "forty-two, always")
        sim.say("alice", "really?", quote=sent.message_id, id_only=True)
        feed = client.stream(persist=False, policy=FAST)
        try:
            feed.wait_rows(1, timeout=20)
            row = feed.frame.iloc[-1]
        finally:
            feed.stop()
    assert row["text"] == "really?" and row["quoted"] == "forty-two, always"
    assert int(row["quoted_svr_id"]) == sent.message_id


def test_read_log_reads_hostile_lines_as_flagged_rows(tmp_path: Any) -> None:
    # A saved JSONL log holds each message's JSON as the server sent it, hostile ones included: reading it back
    # gives the same rows as the stream gave, never an exception for the whole file.
    lines = [h[1] for h in hostile_messages()] + [GOOD.encode()]
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    df = F.read_log(path, dedup=False)
    assert len(df) == len(lines)
    rows = frame_rows(df)
    assert rows[-1] == (3100, "text", "still here", None, None, None)
    by_id = {r[0]: r for r in rows if r[0] is not None}
    assert by_id[3001][1] == "type?" and by_id[3002][1] == "type?"  # a type that is an array or object
    assert by_id[3003][5] == "nested too deeply to read"
    assert [r[5] for r in rows].count("not a JSON object (number)") == 1
