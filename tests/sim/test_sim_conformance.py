"""The conformance view: every request the simulator receives is compared with what the official client sends
for that endpoint (one table, ``openclaw_nb.protocol.conformance``). Our own client's full session shows no
difference; each deliberately wrong request, sent with raw httpx over 127.0.0.1, shows exactly its own."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
from simhelpers import IDENTITY, call, sim_config, text_msg

from openclaw_nb import AsyncClient, Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.protocol.conformance import OFFICIAL_REQUESTS, check_request
from openclaw_nb.protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH, ENDPOINTS, build_request
from openclaw_nb.protocol.headers import ClientIdentity
from openclaw_nb.sim import SimState, Simulator
from openclaw_nb.sim.state import FAULT_TARGETS

#: A payload with the keys the official client sends, per endpoint (``base_info`` is added by build_request).
PAYLOADS: dict[str, dict[str, Any]] = {
    "get_bot_qrcode": {"local_token_list": []},
    "get_updates": {"get_updates_buf": ""},
    "send_message": text_msg("bob@im.wechat", "ctx", client_id="openclaw-nb:1-abcdef01"),
    "get_upload_url": {
        "filekey": "00" * 16,
        "media_type": 3,
        "to_user_id": "bob@im.wechat",
        "rawsize": 1,
        "rawfilemd5": "0" * 32,
        "filesize": 16,
        "no_need_thumb": True,
        "aeskey": "11" * 16,
    },
    "get_config": {"ilink_user_id": "bob@im.wechat", "context_token": "ctx"},
    "send_typing": {"ilink_user_id": "bob@im.wechat", "typing_ticket": "t", "status": 1},
    "notify_start": {},
    "notify_stop": {},
}


def found(differences: Any) -> set[tuple[str, str]]:
    return {(d.where, d.name) for d in differences}


# --- the table, without a server ---------------------------------------------------------------------------


def test_the_table_covers_every_endpoint_and_both_cdn_transfers() -> None:
    assert set(OFFICIAL_REQUESTS) == set(FAULT_TARGETS) == set(ENDPOINTS) | {"cdn_upload", "cdn_download"}
    for name, ep in ENDPOINTS.items():
        assert OFFICIAL_REQUESTS[name].method == ep.method


@pytest.mark.parametrize("route_tag", [None, "tag-1"])
@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_requests_built_by_the_protocol_core_match_the_official_ones(name: str, route_tag: str | None) -> None:
    identity = ClientIdentity(route_tag=route_tag)
    params = {"qrcode": "q", "verify_code": "123456"} if name == "get_qrcode_status" else None
    spec = build_request(name, PAYLOADS.get(name), identity=identity, token="tok", params=params)
    assert check_request(name, spec.method, spec.headers, spec.params, spec.body) == []


def test_the_cdn_transfers_as_the_official_client_makes_them() -> None:
    upload_query = ["encrypted_query_param", "filekey"]
    assert check_request("cdn_upload", "POST", {"Content-Type": "application/octet-stream"}, upload_query) == []
    assert check_request("cdn_download", "GET", {"Accept": "*/*"}, ["encrypted_query_param"]) == []
    with pytest.raises(KeyError, match="cdn_upload"):
        check_request("cdn_uplod", "POST", {}, [])


def test_differences_name_keys_and_never_values() -> None:
    secret = "a-very-secret-token-value"
    spec = build_request("get_bot_qrcode", {"local_token_list": [secret]}, identity=IDENTITY, token=None)
    headers = {
        **spec.headers,
        "Authorization": f"Bearer {secret}",
        C.H_UIN: base64.b64encode(b"\x01\x02\x03\x04").decode(),
    }
    body = {**(spec.body or {}), "base_info": {"channel_version": secret}, secret: 1}
    differences = check_request("get_bot_qrcode", "POST", headers, ["bot_type", secret], body)
    assert found(differences) == {
        ("header", "Authorization"),
        ("header", C.H_UIN),
        ("body", "base_info"),
        ("body", secret),  # an unknown key's name is shown: it is a name, not a value
        ("query", secret),
    }
    shown = json.dumps([d.to_json() for d in differences if d.name != secret])
    assert secret not in shown and "AQIDBA" not in shown
    texts = {d.name: d.text for d in differences}
    assert "no bearer token on the QR fetch" in texts["Authorization"]
    assert "no base_info on the QR fetch" in texts["base_info"]
    assert "decimal string" in texts[C.H_UIN]


# --- our own client, over HTTP -------------------------------------------------------------------------------


def test_a_full_session_of_our_client_shows_no_difference(sim: Simulator) -> None:
    with Client(None, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url) as client:
        qr = client.get_bot_qrcode()
        assert client.get_qrcode_status(qr.qrcode).status == C.QrStatus.WAIT
        sim.confirm(qr.qrcode, "alice")
        status = client.get_qrcode_status(qr.qrcode)
        assert status.status == C.QrStatus.CONFIRMED and status.bot_token
        client.use_credentials(status.bot_token, base_url=status.baseurl, bot_id=status.ilink_bot_id)
        # a second QR fetch, now holding a token: still no bearer token and no base_info
        client.get_bot_qrcode([status.bot_token])
        client.notify_start()
        sim.say("bob", "hi bot")
        assert len(client.get_updates().messages) == 1
        client.send_text("bob@im.wechat", "hello bob")
        ticket = client.get_config("bob@im.wechat").typing_ticket
        client.send_typing("bob@im.wechat", ticket)
        client.send_file(b"a,b\n1,2\n", "bob@im.wechat", name="data.csv")
        client.send_image(b"\x89PNG\r\n\x1a\n" + bytes(300), "bob@im.wechat", name="plot.png")
        client.send_typing("bob@im.wechat", ticket, C.TypingStatus.CANCEL)
        image = sim.send_image("bob", b"\x89PNG from bob")["item_list"][0]["image_item"]
        client.cdn_download(image["media"]["encrypt_query_param"])
        client.notify_stop()
    counts = sim.state.request_counts
    assert set(counts) == set(FAULT_TARGETS)  # every endpoint and both CDN transfers were used
    assert sim.state.conformance_checked == sum(counts.values())
    assert [(e.endpoint, e.texts) for e in sim.conformance()] == []
    assert "unlike the official" not in repr(sim)


def test_the_lifecycle_requests_of_streams_and_typing_show_no_difference(sim: Simulator) -> None:
    # notifystart/notifystop as updates() and stream() send them by themselves (both drivers), and the sendtyping
    # keepalives of typing_indicator: the same keys as the official client's, and its identity values.
    sim.configure(record_requests=200)
    login = sim.login_bot("alice")

    def typed(s: SimState) -> int:
        return sum(e.status == C.TypingStatus.TYPING for e in s.typing_events)

    with Client(login.bot_token, base_url=sim.base_url, bot_id=login.bot_id, record=False) as client:
        sim.say("bob", "hi bot", bot_id=login.bot_id)
        for _msg in client.updates(persist=False):
            break
        with client.typing_indicator("bob@im.wechat", keepalive=0.02):
            sim.wait_for(lambda s: typed(s) >= 3)
        feed = client.stream(persist=False)
        sim.say("bob", "again", bot_id=login.bot_id)
        feed.wait_rows(1)
        feed.stop()
        feed.wait(10)

    async def async_session() -> None:
        async with AsyncClient(login.bot_token, base_url=sim.base_url, bot_id=login.bot_id, record=False) as aclient:
            async for _msg in aclient.updates(persist=False):
                break
            async with aclient.typing_indicator("bob@im.wechat", keepalive=0.02):
                await asyncio.to_thread(sim.wait_for, lambda s: typed(s) >= 6)

    sim.say("bob", "async", bot_id=login.bot_id)
    asyncio.run(async_session())
    assert [n.kind for n in sim.notifications] == ["start", "stop"] * 3
    seen = [r["endpoint"] for r in sim.requests]  # this test's requests only (recorded since configure)
    assert seen.count("notify_start") == seen.count("notify_stop") == 3 and seen.count("send_typing") >= 8
    assert [(e.endpoint, e.texts) for e in sim.conformance()] == []
    lifecycle = [r for r in sim.requests if r["endpoint"] in ("notify_start", "notify_stop", "send_typing")]
    for r in lifecycle:
        assert r["headers"][C.H_CLIENT_VERSION.lower()] == "132105"
        assert r["body"]["base_info"]["channel_version"] == "2.4.9"
        assert r["body"]["base_info"]["bot_agent"].startswith("openclaw-nb/")


# --- deliberately wrong requests, over HTTP --------------------------------------------------------------------


def official(
    sim: Simulator,
    name: str,
    token: str | None,
    *,
    drop: tuple[str, ...] = (),
    headers: Mapping[str, str] | None = None,
    body: Callable[[dict[str, Any]], Any] | None = None,
    method: str | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Request:
    """The official request for ``name``, changed in one way: headers dropped or added, the body edited, another
    method, other query parameters."""
    query = {"qrcode": "q"} if name == "get_qrcode_status" else None
    spec = build_request(name, PAYLOADS.get(name), identity=IDENTITY, token=token, params=query)
    sent = {k: v for k, v in spec.headers.items() if k not in drop}
    sent.update(headers or {})
    content = spec.content
    if body is not None:
        edited = body(json.loads(spec.content or b"{}"))
        content = edited if isinstance(edited, bytes) else json.dumps(edited).encode()
    return httpx.Request(
        method or spec.method,
        sim.base_url + spec.path,
        params=params if params is not None else spec.params,
        headers=sent,
        content=content,
    )


def _edit(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(body: dict[str, Any]) -> dict[str, Any]:
        for path, value in changes.items():
            target = body
            *parents, key = path.split("__")
            for parent in parents:
                target = target[parent]
            if value is None:
                del target[key]
            else:
                target[key] = value
        return body

    return edit


SEED_UIN = base64.b64encode(os.urandom(4)).decode()  # the seed article's way: base64 of 4 raw bytes
WRONG: dict[str, tuple[str, dict[str, Any], set[tuple[str, str]]]] = {
    "no AuthorizationType": ("get_updates", {"drop": (C.H_AUTHORIZATION_TYPE,)}, {("header", "AuthorizationType")}),
    "no X-WECHAT-UIN": ("send_message", {"drop": (C.H_UIN,)}, {("header", C.H_UIN)}),
    "no app id and version": (
        "get_config",
        {"drop": (C.H_APP_ID, C.H_CLIENT_VERSION)},
        {("header", C.H_APP_ID), ("header", C.H_CLIENT_VERSION)},
    ),
    "UIN of raw bytes": ("notify_start", {"headers": {C.H_UIN: SEED_UIN + "!"}}, {("header", C.H_UIN)}),
    "wrong AuthorizationType": (
        "notify_stop",
        {"headers": {C.H_AUTHORIZATION_TYPE: "bearer"}},
        {("header", "AuthorizationType")},
    ),
    "no Authorization after login": ("send_typing", {"drop": (C.H_AUTHORIZATION,)}, {("header", "Authorization")}),
    "Authorization on the QR fetch": (
        "get_bot_qrcode",
        {"headers": {"Authorization": "Bearer TOKEN"}},
        {("header", "Authorization")},
    ),
    "base_info on the QR fetch": (
        "get_bot_qrcode",
        {"body": _edit(base_info={"channel_version": "1.0.0", "bot_agent": "x/1"})},
        {("body", "base_info")},
    ),
    "no bot_type on the QR fetch": ("get_bot_qrcode", {"params": {}}, {("query", "bot_type")}),
    "GET for the QR fetch": (
        "get_bot_qrcode",
        {"method": "GET", "drop": ("Content-Type", C.H_AUTHORIZATION_TYPE, C.H_UIN), "body": lambda b: b""},
        {
            ("method", "GET"),
            ("header", "Content-Type"),
            ("header", C.H_AUTHORIZATION_TYPE),
            ("header", C.H_UIN),
            ("body", "local_token_list"),
        },
    ),
    "POST for the QR status": ("get_qrcode_status", {"method": "POST"}, {("method", "POST")}),
    "UIN on the QR status": ("get_qrcode_status", {"headers": {C.H_UIN: "MTIz"}}, {("header", C.H_UIN)}),
    "the seed article's chat_id": ("send_message", {"body": _edit(chat_id="bob")}, {("body", "chat_id")}),
    "chat_id inside msg": ("send_message", {"body": _edit(msg__chat_id="bob")}, {("body", "msg.chat_id")}),
    "no client_id in msg": ("send_message", {"body": _edit(msg__client_id=None)}, {("body", "msg.client_id")}),
    "no ilink_user_id": ("get_config", {"body": _edit(ilink_user_id=None)}, {("body", "ilink_user_id")}),
    "no base_info": ("get_updates", {"body": _edit(base_info=None)}, {("body", "base_info")}),
    "no bot_agent": ("get_upload_url", {"body": _edit(base_info__bot_agent=None)}, {("body", "base_info.bot_agent")}),
    "base_info not an object": ("notify_start", {"body": _edit(base_info="1.0")}, {("body", "base_info")}),
    "body not an object": ("get_updates", {"body": lambda b: b"[1, 2]"}, {("body", "")}),
    "text/plain body": ("notify_stop", {"headers": {"Content-Type": "text/plain"}}, {("header", "Content-Type")}),
    "seed article's timeout": ("get_updates", {"params": {"timeout": "30"}}, {("query", "timeout")}),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_each_wrong_request_is_reported_with_exactly_its_differences(
    sim: Simulator, http: httpx.Client, case: str
) -> None:
    name, change, expected = WRONG[case]
    assert sim.config.record_requests == 0  # the view works without the request log
    login = sim.login_bot("alice")
    token = None if name in ("get_bot_qrcode", "get_qrcode_status") else login.bot_token
    response = http.send(official(sim, name, token, **change))
    assert response.status_code == 200  # the server is lenient: it answers, and notes the difference
    (entry,) = sim.conformance()
    assert (entry.endpoint, entry.method) == (name, change.get("method", ENDPOINTS[name].method))
    assert found(entry.differences) == expected
    assert entry.index == 1 and entry.path == ENDPOINTS[name].path
    assert all(d.text for d in entry.differences)
    assert login.bot_token not in json.dumps([d.to_json() for d in entry.differences])


def test_cdn_put_and_ilink_headers_on_the_cdn_are_reported(sim: Simulator, http: httpx.Client) -> None:
    put = http.put(
        sim.cdn_base_url + CDN_UPLOAD_PATH,
        params={"encrypted_query_param": "p", "filekey": "k"},
        content=b"cipher",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 405
    login = sim.login_bot("alice")
    param = sim.send_image("bob", b"\x89PNG")["item_list"][0]["image_item"]["media"]["encrypt_query_param"]
    leaky = http.get(
        sim.cdn_base_url + CDN_DOWNLOAD_PATH,
        params={"encrypted_query_param": param},
        headers={"Authorization": f"Bearer {login.bot_token}", C.H_APP_ID: "bot"},
    )
    assert leaky.status_code == 200
    chunked = http.post(sim.cdn_base_url + CDN_UPLOAD_PATH, params={"encrypted_query_param": "p"}, content=b"x")
    assert chunked.status_code == 400
    put_entry, leaky_entry, post_entry = sim.conformance()
    assert found(put_entry.differences) == {("method", "PUT")}
    assert found(leaky_entry.differences) == {("header", "Authorization"), ("header", C.H_APP_ID)}
    assert "no iLink headers to the CDN" in leaky_entry.texts[0]
    assert found(post_entry.differences) == {("header", "Content-Type"), ("query", "filekey")}
    shown = http.get("/_sim/conformance").text
    assert login.bot_token not in shown and param not in shown and "encrypted_query_param=" not in shown


def test_the_control_route_lists_and_clears(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    call(http, "notify_start", token=login.bot_token)  # conforms: counted, not listed
    http.post("/ilink/bot/msg/notifystart", json={}, headers={"Authorization": f"Bearer {login.bot_token}"})
    view = http.get("/_sim/conformance").json()
    assert view["checked"] == 2
    (entry,) = view["conformance"]
    assert entry["index"] == 2 and entry["endpoint"] == "notify_start" and entry["method"] == "POST"
    assert entry["path"] == "/ilink/bot/msg/notifystart" and isinstance(entry["time_ms"], int)
    assert {"where": "body", "name": "base_info", "text": entry["differences"][-1]["text"]} in entry["differences"]
    assert all(set(d) == {"where", "name", "text"} for d in entry["differences"])
    assert http.get("/_sim/state").json()["nonconforming_requests"] == 1
    assert "1 request(s) unlike the official client's" in repr(sim)
    assert http.delete("/_sim/conformance").json() == {"checked": 0, "conformance": []}
    assert sim.conformance() == []


def test_the_log_is_bounded_and_can_be_switched_off(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(conformance_log=3)
    for number in range(5):
        http.post("/ilink/bot/msg/notifystop", json={"n": number})
    assert [e.index for e in sim.conformance()] == [3, 4, 5]  # the newest three
    sim.configure(conformance_log=0)
    http.post("/ilink/bot/msg/notifystop", json={})
    assert sim.state.conformance_checked == 5 and len(sim.conformance()) == 3
    sim.reset(sim_config())
    assert sim.conformance() == [] and sim.state.conformance_checked == 0


def test_state_checks_without_a_server() -> None:
    state = SimState(sim_config())
    spec = build_request("notify_start", None, identity=IDENTITY, token="t")
    assert state.check_conformance("notify_start", "POST", spec.path, spec.headers, [], spec.body) == []
    wrong = state.check_conformance("notify_start", "POST", spec.path, {}, [], {"base_info": {}})
    assert wrong and [e.texts for e in state.conformance()] == [[d.text for d in wrong]]
    key = crypto.new_key()
    assert key.hex() not in repr(state.conformance())
