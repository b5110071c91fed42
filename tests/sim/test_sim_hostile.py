"""Hostile input to the simulator: every knob is checked (type, range, finite) wherever it comes in, a bad one is
a 400 that names it, request bodies have a size limit (HTTP 413), and after any of it the server keeps serving."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from simhelpers import call
from test_sim_http import register_upload

from openclaw_nb import cli
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.protocol.endpoints import CDN_UPLOAD_PATH
from openclaw_nb.sim import SimConfig, SimError, SimState, Simulator
from openclaw_nb.sim import state as S

#: A value each kind of knob must refuse, and what the issue reported breaking the server.
BAD_VALUES: list[Any] = ["abc", math.nan, math.inf, -math.inf, 1e308, -1, [1], {"a": 1}]


def bad_values_for(name: str) -> list[Any]:
    """The values of BAD_VALUES that ``name`` must refuse (``-1``, for one, is fine where any JSON value is)."""
    rule = S._KNOB_RULES.get(name)
    if rule is None:
        return [*BAD_VALUES, 1, None]  # a switch takes true or false only
    kind, low, high, nullable, _ = rule
    if kind == "json":
        return [math.nan, math.inf, object()]
    if kind == "str":
        return [v for v in BAD_VALUES if not isinstance(v, str)] + ["", "  ", None]
    values = [v for v in BAD_VALUES if not (isinstance(v, (int, float)) and low <= v <= high)]
    values.append(True)  # a bool is not a number of anything
    if not nullable:
        values.append(None)
    return values


KNOB_CASES = [(f.name, v) for f in dataclasses.fields(SimConfig) for v in bad_values_for(f.name)]


def assert_still_serving(sim: Simulator, http: httpx.Client) -> None:
    """The routes a bad knob used to break: a poll, a send, the control API."""
    login = sim.login_bot("alice")
    ctx = sim.say("alice", "hi")["context_token"]
    page = call(http, "get_updates", {"get_updates_buf": ""}, token=login.bot_token)
    assert page["ret"] == 0 and [m["context_token"] for m in page["msgs"]] == [ctx]
    msg = {
        "to_user_id": "alice@im.wechat",
        "context_token": ctx,
        "item_list": [{"type": 1, "text_item": {"text": "ok"}}],
    }
    assert call(http, "send_message", {"msg": msg}, token=login.bot_token)["ret"] == 0
    assert http.get("/_sim/state").status_code == 200


def test_every_knob_has_a_rule_or_is_a_switch() -> None:
    for f in dataclasses.fields(SimConfig):
        assert f.name in S._KNOB_RULES or isinstance(f.default, bool), (
            f"SimConfig.{f.name} has no rule in sim/config.py _KNOB_RULES: add one so a bad value is refused"
        )
    SimConfig()  # the defaults pass their own rules


@pytest.mark.parametrize(("name", "value"), KNOB_CASES, ids=[f"{n}={v!r}" for n, v in KNOB_CASES])
def test_a_bad_knob_is_refused_and_named(name: str, value: Any) -> None:
    state = SimState()
    before = state.config
    with pytest.raises(SimError, match=name):
        state.configure(**{name: value})
    assert state.config is before
    with pytest.raises(SimError, match=name):
        SimConfig(**{name: value})


@pytest.mark.parametrize(
    "knobs",
    [
        {"page_size": "abc"},
        {"long_poll_timeout": 1e308},
        {"sends_per_context_token": "ten"},
        {"qr_lifetime": "NaN"},
        {"rate_limit_window": -5},
        {"id_floor": 2**70},
    ],
)
def test_bad_config_over_http_is_a_400_naming_the_knob(
    sim: Simulator, http: httpx.Client, knobs: dict[str, Any]
) -> None:
    before = http.get("/_sim/config").json()
    response = http.post("/_sim/config", json=knobs)
    assert response.status_code == 400
    assert next(iter(knobs)) in response.json()["error"]
    assert http.get("/_sim/config").json() == before
    # reset with knobs goes through the same check
    assert http.post("/_sim/reset", json=knobs).status_code == 400
    assert_still_serving(sim, http)


@pytest.mark.parametrize(
    "body",
    [
        {"seconds": "nan"},
        {"seconds": "NaN"},
        {"days": 1e308},
        {"hours": -1},
        {"minutes": "ten"},
        {"seconds": [1]},
        {"seconds": True},
        {"days": 10**400},
    ],
)
def test_bad_advance_is_a_400_and_the_clock_stays(sim: Simulator, http: httpx.Client, body: dict[str, Any]) -> None:
    before = sim.state.now_ms()
    response = http.post("/_sim/advance", json=body)
    assert response.status_code == 400
    assert next(iter(body)) in response.json()["error"]
    assert 0 <= sim.state.now_ms() - before < 60_000  # not moved by the refused call
    assert_still_serving(sim, http)


def test_advance_stops_at_ten_years_in_all(sim: Simulator, http: httpx.Client) -> None:
    assert http.post("/_sim/advance", json={"days": 3000}).status_code == 200
    refused = http.post("/_sim/advance", json={"days": 1000})
    assert refused.status_code == 400 and "reset" in refused.json()["error"]
    assert_still_serving(sim, http)


@pytest.mark.parametrize(
    ("knobs", "named"),
    [
        ({"delay_ms": "abc"}, "delay_ms"),
        ({"delay_ms": 1e308}, "delay_ms"),
        ({"delay_ms": -1}, "delay_ms"),
        ({"http_500": "nan"}, "http_500"),
        ({"http_500": 2}, "http_500"),
        ({"retry_after": 1e308, "http_429": 1}, "retry_after"),
        ({"retry_after": "soon", "http_429": 1}, "retry_after"),
        ({"count": True, "http_500": 1}, "count"),
        ({"count": 0.5, "http_500": 1}, "count"),
        ({"endpoints": {"get_updates": 1}, "http_500": 1}, "endpoints"),
        ({"endpoints": [["get_updates"]], "http_500": 1}, "endpoints"),
        ({"endpoints": 7, "http_500": 1}, "endpoints"),
        ({"http_4xx_status": 200, "http_400": 1}, "http_4xx_status"),
    ],
)
def test_bad_fault_rule_is_a_400_naming_the_knob(
    sim: Simulator, http: httpx.Client, knobs: dict[str, Any], named: str
) -> None:
    response = http.post("/_sim/faults", json=knobs)
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert http.get("/_sim/faults").json()["rules"] == []
    assert_still_serving(sim, http)


def test_cli_set_refuses_a_bad_knob(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sim", "--set", "long_poll_timeout=NaN"]) == 2
    assert "long_poll_timeout" in capsys.readouterr().err
    assert cli.main(["sim", "--set", "page_size=abc"]) == 2
    assert "page_size" in capsys.readouterr().err


# --- request body size ---------------------------------------------------------------------------------


@pytest.fixture
def small_bodies(sim: Simulator) -> Iterator[int]:
    limit = 64 * 1024
    sim.configure(max_request_bytes=limit)
    yield limit


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length): the limit must hold while reading, not only on the header."""
    yield b'{"get_updates_buf":"'
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}'


def test_api_body_over_the_limit_is_a_413(sim: Simulator, http: httpx.Client, small_bodies: int) -> None:
    login = sim.login_bot("alice")
    headers = {"Authorization": f"Bearer {login.bot_token}", "AuthorizationType": "ilink_bot_token"}
    path = "/ilink/bot/getupdates"
    big = b'{"get_updates_buf":"' + b"a" * (small_bodies + 1) + b'"}'
    declared = http.post(path, content=big, headers=headers)
    assert declared.status_code == 413
    assert f"{small_bodies:,} bytes" in declared.json()["errmsg"] and "max_request_bytes" in declared.json()["errmsg"]
    chunked = http.post(path, content=_chunks(small_bodies * 4), headers=headers)
    assert chunked.status_code == 413 and "max_request_bytes" in chunked.json()["errmsg"]
    # just under the limit is served
    fits = b'{"get_updates_buf":"","pad":"' + b"a" * (small_bodies - 100) + b'"}'
    assert http.post(path, content=fits, headers=headers).status_code == 200
    assert_still_serving(sim, http)


def test_default_limit_is_well_above_a_real_request(sim: Simulator, http: httpx.Client) -> None:
    assert sim.state.config.max_request_bytes >= 32 * C.MAX_TEXT_BYTES
    login = sim.login_bot("alice")
    ctx = sim.say("alice", "hi")["context_token"]
    text = "汉" * (C.MAX_TEXT_BYTES // 3)  # the longest text the server takes, in 3-byte characters
    msg = {
        "to_user_id": "alice@im.wechat",
        "context_token": ctx,
        "item_list": [{"type": 1, "text_item": {"text": text}}],
    }
    assert call(http, "send_message", {"msg": msg}, token=login.bot_token)["ret"] == 0


def test_control_body_over_its_limit_is_a_413(sim: Simulator, http: httpx.Client) -> None:
    huge = b'{"text":"' + b"a" * (S.MAX_CONTROL_BODY_BYTES + 1) + b'"}'
    response = http.post("/_sim/inbound", content=huge)
    assert response.status_code == 413 and "limit" in response.json()["error"]
    assert_still_serving(sim, http)


def test_cdn_upload_is_capped_by_its_declared_size(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    data, key = b"x" * 1000, crypto.new_key()
    up = register_upload(http, login.bot_token, data, key)
    url = f"{sim.cdn_base_url}{CDN_UPLOAD_PATH}"
    params = {"encrypted_query_param": up["upload_param"], "filekey": up["filekey"]}
    oversized = crypto.encrypt(data, key) + b"\0" * (S.UPLOAD_SLACK_BYTES + 16)
    refused = http.post(url, params=params, content=oversized)
    assert refused.status_code == 413 and "getuploadurl" in refused.headers[C.H_ERROR_MESSAGE]
    streamed = http.post(url, params=params, content=iter([oversized[:1000], oversized[1000:]]))
    assert streamed.status_code == 413
    # the right upload still goes through afterwards
    good = http.post(url, params=params, content=crypto.encrypt(data, key))
    assert good.status_code == 200 and good.headers[C.H_ENCRYPTED_PARAM]


def test_max_request_bytes_is_checked(sim: Simulator) -> None:
    for bad in (0, 10, "1MB", math.inf, 2**41):
        with pytest.raises(SimError, match="max_request_bytes"):
            sim.configure(max_request_bytes=bad)
