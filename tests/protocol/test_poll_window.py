"""The server's ``longpolling_timeout_ms`` is a hint, checked before use: huge values are clamped, nonsense is
ignored, and a page is never lost over it (docs/protocol.md: a positive value is the window of the next poll)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import poll as P
from openclaw_nb.protocol.codec import parse_response
from openclaw_nb.protocol.flow import Reply
from openclaw_nb.protocol.models import GetUpdatesResp

MAX = C.MAX_LONGPOLLING_TIMEOUT_MS


def test_the_bound_is_documented_and_sane() -> None:
    # The official default and longest observed window is 35 s; the bound leaves room above it, and a poll's
    # own timeout (window + grace) stays far from what a socket timeout can hold.
    assert C.DEFAULT_LONGPOLLING_TIMEOUT_MS == 35_000 < MAX == 120_000
    assert MAX / 1000 + C.LONG_POLL_GRACE == 130.0


@pytest.mark.parametrize(
    ("value", "window", "warns"),
    [
        (35_000, 35_000, False),
        (1, 1, False),  # short windows are followed: the grace keeps the client's timeout >= 10 s
        (MAX, MAX, False),
        (MAX + 1, MAX, True),
        (3_600_000, MAX, True),  # an hour would stall a poll on a dead connection for an hour
        (10**20, MAX, True),  # too large for a socket timeout (OverflowError) if followed
        (10**400, MAX, True),
        (35_000.0, 35_000, False),  # a JSON number written with a fraction is a number too
        (0.7, 1, False),  # a positive fraction of a millisecond is a (tiny) window, not "absent"
        (-0.7, None, False),  # ... and a negative one rounds to 0: absent
        (0, None, False),  # only positive values count
        (None, None, False),  # absent
        (-5, None, True),
        (-(10**30), None, True),
        ("35000", None, True),
        ("soon", None, True),
        ("x" * 10_000, None, True),
        (True, None, True),
        (float("inf"), None, True),
        (float("nan"), None, True),
        ([35_000], None, True),
        ({"ms": 1}, None, True),
    ],
)
def test_long_poll_window_ms(value: Any, window: int | None, warns: bool) -> None:
    got, problem = P.long_poll_window_ms(value)
    assert got == window
    assert bool(problem) is warns
    if problem:
        assert "longpolling_timeout_ms" in problem and len(problem) < 200  # a huge value is not printed whole


def test_huge_values_are_shown_short_with_their_sign() -> None:
    assert "-1.00e+30 is negative" in (P.long_poll_window_ms(-(10**30))[1] or "")
    assert "1.00e+20 is more than" in (P.long_poll_window_ms(10**20)[1] or "")
    assert "-5 is negative" in (P.long_poll_window_ms(-5)[1] or "")


def test_poll_state_clamps_ignores_and_reports_once() -> None:
    state = P.PollState(longpolling_timeout_ms=10**20)
    assert state.longpolling_timeout_ms == MAX
    assert state.request_timeout() == MAX / 1000 + C.LONG_POLL_GRACE
    assert [e.kind for e in state.events] == ["window"]
    for value in (-5, 0, "soon", 10**20):
        state.follow_window(value)
    assert state.longpolling_timeout_ms == MAX
    assert [e.kind for e in state.events] == ["window"]  # once per stream, not once per page
    state.follow_window(20_000)
    assert state.longpolling_timeout_ms == 20_000 and len(state.events) == 1


def page(**envelope: Any) -> Reply:
    body = {
        "ret": 0,
        "msgs": [{"message_id": 2**63 + 1, "from_user_id": "u@im.wechat", "message_type": 1, "context_token": "c"}],
        "get_updates_buf": "next",
        **envelope,
    }
    return Reply(200, {}, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("value", "window"), [(10**20, MAX), (-5, 20_000), (0, 20_000), ("soon", 20_000), (40_000, 40_000)]
)
def test_poll_state_keeps_the_page_whatever_the_window(value: Any, window: int) -> None:
    state = P.PollState(longpolling_timeout_ms=20_000)
    result = state.receive(page(longpolling_timeout_ms=value))
    assert len(result) == 1 and state.cursor == "next"
    assert state.longpolling_timeout_ms == window


@pytest.mark.parametrize("value", ["soon", -5.5, [1], {"a": 1}, True])
def test_getupdates_model_keeps_the_page_when_the_window_is_wrongly_typed(value: Any) -> None:
    body = {"ret": 0, "msgs": [{"message_id": 7, "from_user_id": "u@im.wechat"}], "longpolling_timeout_ms": value}
    resp = parse_response("get_updates", json.dumps(body).encode())
    assert isinstance(resp, GetUpdatesResp)
    assert [msg.message_id for msg in resp.messages] == [7]
    assert resp.longpolling_timeout_ms is None and resp.extra["longpolling_timeout_ms"] == value
    assert resp.raw == body and resp.to_wire() == body  # nothing lost


def test_getupdates_model_types_a_whole_window_as_before() -> None:
    resp = GetUpdatesResp.from_wire({"ret": 0, "longpolling_timeout_ms": 10**20})
    assert resp.longpolling_timeout_ms == 10**20 and resp.extra == {}
