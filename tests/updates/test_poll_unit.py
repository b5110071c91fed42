"""The poll loop without I/O: the flow is driven by hand, outcome by outcome, and every decision checked."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import poll as P
from openclaw_nb.protocol.flow import Failure, Reply, Send, Sleep

BIG = 2**64 - 5  # above 2^53: a float64 would round it


def make_send(cursor: str, timeout: float) -> Send:
    body = json.dumps({"get_updates_buf": cursor}).encode()
    return Send("get_updates", "POST", "http://x", "/ilink/bot/getupdates", {}, {}, body, timeout)


def msg(i: int, user: str = "u1@im.wechat", text: str | None = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": i,
        "message_id": BIG - i,
        "from_user_id": user,
        "to_user_id": "b@im.bot",
        "create_time_ms": 1_700_000_000_000 + i * 1000,
        "message_type": 1,
        "message_state": 2,
        "context_token": f"ctx{i}",
        "item_list": [{"type": 1, "text_item": {"text": text if text is not None else f"m{i}"}}],
    }
    out.update(kw)
    return out


def page(msgs: list[dict[str, Any]], cursor: str = "c1", **kw: Any) -> Reply:
    body = {"ret": 0, "msgs": msgs, "get_updates_buf": cursor, **kw}
    return Reply(200, {}, json.dumps(body).encode())


def run(state: P.PollState, outcomes: list[Any]) -> tuple[P.Page, list[Any]]:
    """Drive one page flow with the given outcomes; return the page and every action yielded."""
    flow = state.page_flow(make_send)
    actions = [next(flow)]
    feed = iter(outcomes)
    try:
        while True:
            action = actions[-1]
            actions.append(flow.send(None if isinstance(action, Sleep) else next(feed)))
    except StopIteration as done:
        return done.value, actions


@pytest.fixture(params=[True, False], ids=["msgspec", "stdlib"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param and P._msgspec is None:
        pytest.skip("msgspec is not installed")
    monkeypatch.setattr(P, "USE_MSGSPEC", request.param)
    return bool(request.param)


def test_page_advances_cursor_and_flattens(decoder: bool) -> None:
    state = P.PollState()
    result, actions = run(state, [page([msg(1), msg(2)], cursor="next", longpolling_timeout_ms=20_000)])
    assert isinstance(actions[0], Send) and json.loads(actions[0].content)["get_updates_buf"] == ""
    assert actions[0].timeout == C.DEFAULT_LONGPOLLING_TIMEOUT_MS / 1000 + C.LONG_POLL_GRACE
    assert state.cursor == "next" and result.cursor_changed and len(result) == 2
    rows = result.rows()
    assert rows[0][P.COL["message_id"]] == BIG - 1 and rows[0][P.COL["text"]] == "m1"
    assert json.loads(rows[1][P.COL["raw"]]) == msg(2)
    # the server's window decides the next poll's client-side timeout (plus the grace)
    _, actions = run(state, [page([], cursor="next")])
    assert actions[0].timeout == 20 + C.LONG_POLL_GRACE
    assert json.loads(actions[0].content)["get_updates_buf"] == "next"


def test_empty_cursor_never_replaces(decoder: bool) -> None:
    state = P.PollState(cursor="keep")
    result, _ = run(state, [page([msg(1)], cursor="")])
    assert state.cursor == "keep" and not result.cursor_changed and len(result) == 1
    run(state, [Reply(200, {}, b'{"ret":0,"msgs":[],"sync_buf":"alias"}')])
    assert state.cursor == "alias"  # the deprecated alias counts


def test_client_timeout_is_an_empty_page() -> None:
    state = P.PollState(cursor="c", policy=P.PollPolicy(timeout=1.5))
    state.failures = 2
    result, actions = run(state, [Failure(httpx.ReadTimeout("slow"), timeout=True)])
    assert result.timed_out and len(result) == 0 and state.cursor == "c" and state.failures == 0
    assert actions[0].timeout == 1.5  # the policy's override


def test_failure_policy_2s_then_30s_then_again() -> None:
    """The official plugin: 2 s after each failure, the third in a row waits 30 s and counting restarts."""
    state = P.PollState()
    events: list[P.PollEvent] = []
    state.on_event = events.append
    bad = [
        Reply(500, {}, b"oops"),
        Failure(httpx.ConnectError("refused")),
        Reply(200, {}, b'{"ret":-1,"errmsg":"busy"}'),
        Reply(200, {}, b'{"ret":0,"msgs":[{"seq":'),  # malformed JSON
        Reply(200, {}, b'{"errcode":-5}'),
        Reply(429, {}, b""),
    ]
    result, actions = run(state, [*bad, page([msg(1)])])
    sleeps = [a.seconds for a in actions if isinstance(a, Sleep)]
    assert sleeps == [C.POLL_RETRY_DELAY, C.POLL_RETRY_DELAY, C.POLL_BACKOFF_DELAY] * 2
    assert [e.kind for e in events] == ["retry", "retry", "backoff"] * 2
    assert "HTTP 500" in events[0].message and "ConnectError" in events[1].message
    assert "backing off 30 s" in events[2].message and "3 times in a row" in events[2].message
    assert len(result) == 1 and state.failures == 0 and state.status == "polling"


def test_policy_is_configurable() -> None:
    policy = P.PollPolicy(retry_delay=0.01, backoff_after=2, backoff_delay=0.05)
    state = P.PollState(policy)
    _, actions = run(state, [Reply(502, {}, b""), Reply(502, {}, b""), Reply(502, {}, b""), page([])])
    assert [a.seconds for a in actions if isinstance(a, Sleep)] == [0.01, 0.05, 0.01]
    with pytest.raises(E.UsageError):
        P.PollPolicy(backoff_after=0)


def test_stale_token_ends_the_flow() -> None:
    state = P.PollState()
    with pytest.raises(E.StaleTokenError) as info:
        run(state, [Reply(200, {}, b'{"ret":-14,"errmsg":"session timeout"}')])
    assert "log in again" in str(info.value).lower() or "login" in str(info.value).lower()
    assert state.events[-1].kind == "stale" and "stale" in state.status


def test_repeated_ids_dropped_with_bounded_memory(decoder: bool) -> None:
    state = P.PollState(P.PollPolicy(dedup_size=3))
    _first, _ = run(state, [page([msg(1), msg(2)])])
    again, _ = run(state, [page([msg(2), msg(3), msg(1)])])  # a page served twice, partly
    assert [r[P.COL["seq"]] for r in again.rows()] == [3] and again.dropped == 2
    assert len(state.seen) == 3
    run(state, [page([msg(4)])])
    assert len(state.seen) == 3 and (BIG - 1) not in state.seen  # the oldest id was forgotten


def test_probable_duplicates_flagged_not_dropped(decoder: bool) -> None:
    state = P.PollState(P.PollPolicy(duplicate_window=10))
    base = msg(1, text="same words")
    redelivered = dict(base, message_id=12345, create_time_ms=base["create_time_ms"] + 1000)
    other_user = dict(base, message_id=12346, from_user_id="u2@im.wechat")
    late = dict(base, message_id=12347, create_time_ms=base["create_time_ms"] + 60_000)
    result, _ = run(state, [page([base, redelivered, other_user, late])])
    flags = [r[P.COL["probable_duplicate"]] for r in result.rows()]
    assert flags == [False, True, False, False] and result.flagged == 1
    assert any(e.kind == "duplicate" and "12345" in e.message for e in state.events)


def test_media_signature_uses_the_media_id(decoder: bool) -> None:
    def image(i: int, param: str) -> dict[str, Any]:
        return msg(i, item_list=[{"type": 2, "image_item": {"media": {"encrypt_query_param": param}}}])

    state = P.PollState()
    result, _ = run(state, [page([image(1, "A"), image(2, "B"), image(3, "A")])])
    assert [r[P.COL["probable_duplicate"]] for r in result.rows()] == [False, False, True]
    assert all(r[P.COL["has_media"]] for r in result.rows())


ODD_MESSAGES: list[dict[str, Any]] = [
    msg(1),
    {"message_id": 2**63 + 7},  # almost nothing
    msg(3, item_list=[{"type": 3, "voice_item": {"text": "spoken", "encode_type": 6, "media": {"full_url": "u"}}}]),
    msg(4, item_list=[{"type": 1, "text_item": {"text": "a"}}, {"type": 2, "image_item": {}}, {"type": 99}]),
    msg(
        5,
        item_list=[
            {"type": 1, "text_item": {"text": "reply"}, "ref_msg": {"title": "t", "svr_id": BIG}},
            {"type": 1, "ref_msg": {"message_item": {"text_item": {"text": "not me"}}}},
        ],
    ),
    msg(6, item_list=[{"ref_msg": {"message_item": {"voice_item": {"text": "quoted voice"}}, "svr_id": 3}}]),
    msg(7, item_list=None, message_type=2, message_state=0),
    msg(8, item_list=[{"type": 11, "tool_call_start_item": {"tool_name": "x"}}], run_id="r", extra_field=[1, 2]),
    msg(9, message_type=7),  # a message type this version does not know
    msg(10, text=""),
]
WRONGLY_TYPED: list[dict[str, Any]] = [
    msg(11, seq="11"),  # wrong JSON type: lenient path, value missing
    msg(12, item_list=[{"type": "1", "text_item": {"text": "x"}}]),
    msg(13, from_user_id=5, context_token=None),
    msg(14, item_list=["not an item"]),
]


@pytest.mark.parametrize("messages", [ODD_MESSAGES, WRONGLY_TYPED], ids=["odd", "wrongly-typed"])
def test_both_decoders_give_the_same_rows(messages: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    if P._msgspec is None:
        pytest.skip("msgspec is not installed")
    body = json.dumps({"ret": 0, "msgs": [*messages, 5, "x"], "get_updates_buf": "c"}).encode()
    monkeypatch.setattr(P, "USE_MSGSPEC", True)
    fast = P.decode_page(body, 1)
    monkeypatch.setattr(P, "USE_MSGSPEC", False)
    slow = P.decode_page(body, 1)
    assert fast.unreadable == slow.unreadable == 2  # 5 and "x": delivered as flagged rows, never dropped
    raw = P.COL["raw"]
    fast_rows = [r[:raw] for r in zip(*fast.columns, strict=True)]
    slow_rows = [r[:raw] for r in zip(*slow.columns, strict=True)]
    assert fast_rows == slow_rows and fast.signatures == slow.signatures
    sent = [*messages, 5, "x"]
    assert [json.loads(x) for x in fast.columns[raw]] == [json.loads(x) for x in slow.columns[raw]] == sent
    problems = fast.columns[P.COL["decode_error"]]
    assert problems[-2:] == ["not a JSON object (number)", "not a JSON object (string)"]
    assert problems[:-2] == [None] * len(messages)
    assert sorted(map(repr, fast.drift)) == sorted(map(repr, slow.drift))


@pytest.mark.parametrize("use_msgspec", [True, False], ids=["msgspec", "stdlib"])
@pytest.mark.parametrize(
    "messages", [ODD_MESSAGES, WRONGLY_TYPED, [*ODD_MESSAGES, 5]], ids=["odd", "wrongly-typed", "non-object"]
)
def test_a_page_without_raw_text_has_the_same_rows(
    messages: list[Any], use_msgspec: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # raw=False takes a one-pass decoder for well-typed pages and the full path for the rest: same rows.
    if use_msgspec and P._msgspec is None:
        pytest.skip("msgspec is not installed")
    monkeypatch.setattr(P, "USE_MSGSPEC", use_msgspec)
    body = json.dumps({"ret": 0, "msgs": messages, "get_updates_buf": "c2", "longpolling_timeout_ms": 9}).encode()
    full = P.decode_page(body, 1)
    lean = P.decode_page(body, 1, raw=False)
    raw = P.COL["raw"]
    assert lean.columns[raw] == [None] * len(full)
    assert lean.columns[:raw] == full.columns[:raw] and lean.signatures == full.signatures
    assert (lean.get_updates_buf, lean.longpolling_timeout_ms, lean.unreadable) == ("c2", 9, full.unreadable)
    with pytest.raises(E.StaleTokenError):
        P.decode_page(b'{"ret":0,"errcode":-14,"msgs":[]}', raw=False)


def test_flatten_rules() -> None:
    rows = {r[0]: r for r in (P.flatten(m, "")[0] for m in ODD_MESSAGES + WRONGLY_TYPED)}
    c = P.COL
    assert rows[3][c["text"]] == "spoken" and rows[3][c["has_media"]] and rows[3][c["item_types"]] == "voice"
    assert rows[4][c["item_types"]] == "text,image,type99" and rows[4][c["text"]] == "a"
    assert rows[5][c["quoted"]] == "t" and rows[5][c["quoted_svr_id"]] == BIG
    assert rows[6][c["quoted"]] == "quoted voice" and rows[6][c["item_types"]] == "none"
    assert rows[7][c["item_types"]] == "" and rows[7][c["message_type"]] == 2
    assert rows[8][c["item_types"]] == "tool_call_start"
    by_id = {r[c["message_id"]]: r for r in (P.flatten(m, "")[0] for m in WRONGLY_TYPED)}
    assert by_id[BIG - 11][c["seq"]] is None  # seq "11" is a string, not an int
    assert rows[12][c["item_types"]] == "type1"  # "1" is a string, not the text type
    assert rows[13][c["from_user_id"]] is None
    assert rows[14][c["item_types"]] == "none"


def test_envelope_errors_are_typed() -> None:
    with pytest.raises(E.ProtocolError):
        P.decode_page(b"[1,2]")
    with pytest.raises(E.ProtocolError):
        P.decode_page(b'{"ret":0,"msgs":7}')
    with pytest.raises(E.StaleTokenError):
        P.decode_page(b'{"ret":0,"errcode":-14}')
    with pytest.raises(E.ApiError):
        P.decode_page(b'{"ret":"-3"}')


def test_recent_ids_and_detector_bounds() -> None:
    ids = P.RecentIds(2, [1, 2, 3])
    assert list(ids.recent(5)) == [2, 3] and 1 not in ids and not ids.add(3)
    det = P.DuplicateDetector(window=1, maxlen=4)
    assert det.check("a", "s", 0, 1) == (False, None)
    assert det.check("a", "s", 500, 2) == (True, 1)
    assert det.check("b", "s", 600, 3) == (False, None)
    assert det.check("c", "s", 700, 4) == (False, None)
    assert len(det) <= 4  # two generations of at most maxlen / 2
    assert det.check("a", None, 800, 5) == (False, None)
    # an original stays comparable for a whole window, across a generation change...
    det = P.DuplicateDetector(window=1)
    assert det.check("u", "hi", 0, 1) == (False, None)
    assert det.check("v", "x", 900, 2) == (False, None)
    assert det.check("w", "y", 1100, 3) == (False, None)  # a new generation starts here
    assert det.check("u", "hi", 1000, 9) == (True, 1)  # still within the window of message 1
    # ...and is forgotten once it is more than a window old
    assert det.check("z", "z", 2300, 4) == (False, None)
    assert det.check("u", "hi", 2400, 10) == (False, None)
    assert len(det) <= 3
