"""Fuzz of the simulator's HTTP face: hypothesis sends odd bodies (wrong types, huge and non-finite numbers, long
strings, deep nesting, bytes that are not JSON) to every iLink and control route, and odd paths (traversal,
encoded dots, NUL) to the server. None may answer 500, nothing outside the simulator may be read, and after each
request the server still serves a poll, a send and its control API. The client's parsers are fuzzed in
tests/protocol/test_lenient_fuzz.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simhelpers import IDENTITY, call, sim_config

from openclaw_nb.protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH, ENDPOINTS, build_request
from openclaw_nb.sim import SimConfig, Simulator
from openclaw_nb.sim.state import FaultRule

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

#: Numbers that broke servers before: non-finite, huge, negative, fractional where counts go.
NUMBERS = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 10**30, -(2**63), 2**64, -1, 0.5]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    NUMBERS,
    st.text(max_size=40),
    st.sampled_from(["", "nan", "NaN", "Infinity", "1e308", "../../etc/passwd", "\x00", "\ud83d", "a" * 5000]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

#: The names each route's body may hold, so fuzzed bodies reach past "unknown key" checks.
CONFIG_KEYS = sorted(SimConfig.__dataclass_fields__)
FAULT_KEYS = sorted(set(FaultRule.__dataclass_fields__) - {"id"})
INBOUND_KEYS = [
    *("bot_id", "msg", "from_user_id", "text", "kind", "quote", "partial", "id_only", "run_id", "tool_name"),
    *("tool_call_id", "status", "data_b64", "thumb", "thumb_b64", "file_name", "key_format"),
]
QR_KEYS = ["qrcode", "count", "verify_code", "redirect", "binded", "user_id", "auto_confirm", "baseurl", "omit"]
API_KEYS = [
    *("get_updates_buf", "base_info", "msg", "to_user_id", "context_token", "item_list", "client_id", "filekey"),
    *("media_type", "rawsize", "rawfilemd5", "filesize", "aeskey", "no_need_thumb", "typing_ticket", "status"),
    *("ilink_user_id", "local_token_list", "bot_type", "thumb_rawsize", "thumb_filesize", "thumb_rawfilemd5"),
]


def bodies(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies of known names (an unknown one makes most routes refuse the whole body before looking further),
    now and then with an unknown one too."""
    known = st.dictionaries(st.sampled_from(keys), VALUES, min_size=1, max_size=3)
    return known | st.dictionaries(st.sampled_from(keys) | st.text(max_size=10), VALUES, max_size=4)


#: Every route that takes a JSON body, with the names its body may hold: the iLink API and the control API.
API_ROUTES = [(ep.path, ep.method, API_KEYS) for ep in ENDPOINTS.values()]
CONTROL_ROUTES = [
    ("/_sim/config", "POST", CONFIG_KEYS),
    ("/_sim/faults", "POST", FAULT_KEYS),
    ("/_sim/advance", "POST", ["seconds", "minutes", "hours", "days"]),
    ("/_sim/reset", "POST", CONFIG_KEYS),
    ("/_sim/bots", "POST", ["user_id"]),
    ("/_sim/inbound", "POST", INBOUND_KEYS),
    ("/_sim/qr_scenario", "POST", QR_KEYS),
    ("/_sim/qrcodes/{qr}/scan", "POST", ["user_id"]),
    ("/_sim/qrcodes/{qr}/confirm", "POST", ["user_id"]),
    ("/_sim/qrcodes/{qr}/scenario", "POST", QR_KEYS),
    ("/_sim/qrcodes/{qr}/expire", "POST", []),
]
ROUTE_AND_BODY = {
    "api": st.sampled_from(API_ROUTES).flatmap(lambda r: st.tuples(st.just(r[:2]), bodies(r[2]))),
    "control": st.sampled_from(CONTROL_ROUTES).flatmap(lambda r: st.tuples(st.just(r[:2]), bodies(r[2] or ["x"]))),
}


@pytest.fixture
def live(sim: Simulator) -> Iterator[tuple[Simulator, httpx.Client]]:
    with httpx.Client(base_url=sim.base_url, timeout=30) as http:
        yield sim, http


def fresh(sim: Simulator) -> tuple[str, str]:
    """A clean simulator with one bot, one user message and one QR code; returns (bot token, QR code)."""
    sim.reset(sim_config())
    token = sim.login_bot("alice").bot_token
    sim.say("alice", "hi")
    return token, str(sim.state.create_qrcode()["qrcode"])


def assert_serving(sim: Simulator, http: httpx.Client) -> None:
    """After whatever came before: every route still answers without a 500 in the state the request left (a
    valid knob may change an answer, never break it), and a clean state answers a poll, a send and the control
    API as usual."""
    sim.clear_faults()  # a valid fault rule faults routes on purpose
    sim.state.configure(long_poll_timeout=0.3, latency_ms=0)  # a valid long window or latency: only slower
    token = sim.login_bot("bob").bot_token
    ctx = sim.say("bob", "a message keeps the poll short")["context_token"]
    poll = call_raw(http, "get_updates", {"get_updates_buf": ""}, token)
    check(poll, "get_updates afterwards")
    msg = {"to_user_id": "bob@im.wechat", "context_token": ctx, "item_list": [{"type": 1, "text_item": {"text": "y"}}]}
    check(call_raw(http, "send_message", {"msg": msg}, token), "send_message afterwards")
    check(call_raw(http, "get_config", {"ilink_user_id": "bob@im.wechat", "context_token": ctx}, token), "get_config")
    for path in ("/_sim/state", "/_sim/config", "/_sim/outbox", "/_sim/faults", "/_sim/requests"):
        check(http.get(path), f"GET {path} afterwards")
    check(http.post("/_sim/advance", json={"seconds": 1}), "advance afterwards")
    sim.reset(sim_config())
    login = sim.login_bot("alice")
    ctx = sim.say("alice", "still there?")["context_token"]
    page = call(http, "get_updates", {"get_updates_buf": ""}, token=login.bot_token)
    assert page["ret"] == 0 and len(page["msgs"]) == 1
    msg = {
        "to_user_id": "alice@im.wechat",
        "context_token": ctx,
        "item_list": [{"type": 1, "text_item": {"text": "y"}}],
    }
    assert call(http, "send_message", {"msg": msg}, token=login.bot_token)["ret"] == 0
    assert http.get("/_sim/state").status_code == 200


def call_raw(http: httpx.Client, endpoint: str, payload: dict[str, Any], token: str) -> httpx.Response:
    spec = build_request(endpoint, payload, identity=IDENTITY, token=token)
    return http.request(spec.method, spec.path, params=spec.params, headers=spec.headers, content=spec.content)


def encode(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def check(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what} answered {response.status_code}: {response.text[:300]}"


@FUZZ
@given(case=ROUTE_AND_BODY["api"], with_token=st.booleans())
def test_api_routes_never_answer_500(
    live: tuple[Simulator, httpx.Client], case: tuple[tuple[str, str], dict[str, Any]], with_token: bool
) -> None:
    sim, http = live
    route, body = case
    token, _ = fresh(sim)
    headers = {"Content-Type": "application/json"}
    if with_token:
        headers["Authorization"] = f"Bearer {token}"
    path, method = route
    check(http.request(method, path, content=encode(body), headers=headers), f"{method} {path} {body!r:.200}")
    assert_serving(sim, http)


@FUZZ
@given(case=ROUTE_AND_BODY["control"])
def test_control_routes_never_answer_500(
    live: tuple[Simulator, httpx.Client], case: tuple[tuple[str, str], dict[str, Any]]
) -> None:
    sim, http = live
    route, body = case
    _, qr = fresh(sim)
    path, method = route
    path = path.replace("{qr}", qr)
    response = http.request(method, path, content=encode(body), headers={"Content-Type": "application/json"})
    check(response, f"{method} {path} {body!r:.200}")
    sim.clear_faults()  # a valid rule may fault every route on purpose; the check is that none broke it
    assert_serving(sim, http)


@settings(FUZZ, max_examples=300)
@given(
    route=st.sampled_from(CONTROL_ROUTES[:4]).map(lambda r: (r[0], r[2])),
    data=st.data(),
)
def test_knobs_one_at_a_time(live: tuple[Simulator, httpx.Client], route: tuple[str, list[str]], data: Any) -> None:
    """The knob routes (config, faults, advance, reset) with one known name and one odd value each: the cases
    that used to leave every route answering 500."""
    sim, http = live
    fresh(sim)
    path, keys = route
    body = {data.draw(st.sampled_from(keys)): data.draw(SCALARS)}
    check(http.post(path, content=encode(body), headers={"Content-Type": "application/json"}), f"{path} {body!r:.200}")
    assert_serving(sim, http)


RAW = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"[" * 100_000, b'{"a":' * 50_000, b"\xff\xfe", b"null", b"1e999999", b'"x"', b"NaN"]),
)


@FUZZ
@given(route=st.sampled_from([r[:2] for r in API_ROUTES + CONTROL_ROUTES]), raw=RAW)
def test_bodies_that_are_not_json_objects(
    live: tuple[Simulator, httpx.Client], route: tuple[str, str], raw: bytes
) -> None:
    sim, http = live
    token, qr = fresh(sim)
    path, method = route
    path = path.replace("{qr}", qr)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    check(http.request(method, path, content=raw, headers=headers), f"{method} {path} {raw[:60]!r}")
    assert_serving(sim, http)


SEGMENTS = st.sampled_from(
    [
        "..",
        "%2e%2e",
        "%2E%2E%2F",
        "..%2f",
        "%00",
        "etc",
        "passwd",
        "_sim",
        "c2c",
        "qrcodes",
        "scan",
        "ilink",
        "bot",
        "download",
        "upload",
        "state",
        "~",
        "%252e%252e",
        "//",
        "\\..\\",
        "x" * 300,
    ]
)
QUERY = st.dictionaries(
    st.sampled_from(["encrypted_query_param", "filekey", "qrcode", "since", "bot_id", "data", "admin_token"]),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "-1", "1e308", "nan", "%00", "", "9" * 40, "..%2f.."]),
    max_size=3,
)


@FUZZ
@given(segments=st.lists(SEGMENTS, min_size=1, max_size=6), query=QUERY, method=st.sampled_from(["GET", "POST"]))
def test_paths_and_queries_never_reach_outside(
    live: tuple[Simulator, httpx.Client], segments: list[str], query: dict[str, str], method: str
) -> None:
    sim, http = live
    fresh(sim)
    url = sim.base_url + "/" + "/".join(segments)
    response = http.request(method, httpx.URL(url, params=query), content=b"{}" if method == "POST" else None)
    check(response, f"{method} {url} {query}")
    assert b"root:" not in response.content  # /etc/passwd, had a route served files
    assert_serving(sim, http)


@pytest.mark.parametrize("path", [CDN_UPLOAD_PATH, CDN_DOWNLOAD_PATH])
def test_cdn_routes_with_odd_parameters(live: tuple[Simulator, httpx.Client], path: str) -> None:
    sim, http = live
    fresh(sim)
    url = sim.cdn_base_url + path
    for value in ["../../etc/passwd", "", "nan", "\x00", "a" * 10_000, "%2e%2e%2f"]:
        params = {"encrypted_query_param": value, "filekey": value}
        response = (
            http.post(url, params=params, content=b"x" * 17) if "upload" in path else http.get(url, params=params)
        )
        check(response, f"{path} {value[:40]!r}")
        assert 400 <= response.status_code < 500
    assert_serving(sim, http)
