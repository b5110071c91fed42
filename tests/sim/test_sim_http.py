"""The simulator over real HTTP on 127.0.0.1, with plain httpx: every endpoint, every QR status, long-poll
wake-ups across threads, the CDN, the control API, faults and the server's lifecycle."""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from simhelpers import HOLD, LONG_POLL, SHORT_POLL, Background, call, sim_config, text_msg

from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.protocol.endpoints import CDN_UPLOAD_PATH, ENDPOINTS
from openclaw_nb.sim import Simulator, SimulatorWarning
from openclaw_nb.sim import server as server_module
from openclaw_nb.sim.journal import StateJournal
from openclaw_nb.sim.state import SimState

S = C.QrStatus
QR_STATUS = ENDPOINTS["get_qrcode_status"].path


def fetch_qr(http: httpx.Client, tokens: list[str] | None = None) -> str:
    answer = call(http, "get_bot_qrcode", {"local_token_list": tokens or []})
    return str(answer["qrcode"])


def qr_status(http: httpx.Client, qrcode: str, base_url: str | None = None, **params: str) -> dict[str, Any]:
    return call(http, "get_qrcode_status", params={"qrcode": qrcode, **params}, base_url=base_url)


def held_qr_status(sim: Simulator, http: httpx.Client, qrcode: str, **params: str) -> Background:
    """Start a QR status poll in a thread and return once the server holds it."""
    poll = Background(lambda: qr_status(http, qrcode, **params))
    sim.wait_for(lambda s: s.waiters(("qr", qrcode)) or poll.done.is_set(), LONG_POLL)
    return poll


# --- QR login over HTTP -------------------------------------------------------------------------------------


def test_get_bot_qrcode_post_get_and_lenient(sim: Simulator, http: httpx.Client) -> None:
    answer = call(http, "get_bot_qrcode", {"local_token_list": ["t1"], "unknown_field": 1})
    assert set(answer) >= {"qrcode", "qrcode_img_content"}
    assert answer["qrcode_img_content"] == f"{sim.base_url}/_sim/scan/{answer['qrcode']}"
    assert sim.qrcodes[answer["qrcode"]].local_tokens == ["t1"]
    # Older clients: GET, no body, no iLink headers, no bot_type.
    old = http.get("/ilink/bot/get_bot_qrcode")
    assert old.status_code == 200 and old.json()["qrcode"] != answer["qrcode"]
    bare = http.post("/ilink/bot/get_bot_qrcode?bot_type=3", headers={"Accept": "*/*"})
    assert bare.status_code == 200 and bare.json()["qrcode"]


def test_qr_statuses_wait_scaned_confirmed(sim: Simulator, http: httpx.Client) -> None:
    qrcode = fetch_qr(http)
    # Nothing happens: at the end of the (short) window the answer is wait.
    assert qr_status(http, qrcode) == {"ret": 0, "status": S.WAIT}
    sim.configure(long_poll_timeout=HOLD)
    poll = held_qr_status(sim, http, qrcode)
    sim.scan(qrcode, "bob")  # wakes the held poll
    assert poll.get() == {"ret": 0, "status": S.SCANNED}
    poll = held_qr_status(sim, http, qrcode)
    sim.confirm(qrcode)
    confirmed = poll.get()
    assert confirmed["status"] == S.CONFIRMED and confirmed["baseurl"] == sim.base_url
    assert confirmed["ilink_user_id"] == "bob@im.wechat" and confirmed["ilink_bot_id"].endswith("@im.bot")
    assert call(http, "notify_start", token=confirmed["bot_token"]) == {"ret": 0}


def test_qr_verify_code_and_block(sim: Simulator, http: httpx.Client) -> None:
    sim.set_qr_scenario(verify_code="123456")
    qrcode = fetch_qr(http)
    sim.scan(qrcode)
    assert qr_status(http, qrcode)["status"] == S.NEED_VERIFY_CODE
    assert qr_status(http, qrcode, verify_code="111111")["status"] == S.NEED_VERIFY_CODE
    assert qr_status(http, qrcode, verify_code="123456")["status"] == S.SCANNED
    sim.confirm(qrcode)
    assert qr_status(http, qrcode)["status"] == S.CONFIRMED

    blocked = fetch_qr(http)
    sim.scan(blocked)
    for _ in range(sim.config.max_wrong_verify_codes - 1):
        assert qr_status(http, blocked, verify_code="0")["status"] == S.NEED_VERIFY_CODE
    assert qr_status(http, blocked, verify_code="0")["status"] == S.VERIFY_CODE_BLOCKED


def test_qr_expired_by_clock_and_by_control_api(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(qr_lifetime=30)
    qrcode = fetch_qr(http)
    assert http.post("/_sim/advance", json={"seconds": 31}).json()["now_ms"] > 0
    assert qr_status(http, qrcode)["status"] == S.EXPIRED
    other = fetch_qr(http)
    assert http.post(f"/_sim/qrcodes/{other}/expire").json()["status"] == S.EXPIRED
    assert qr_status(http, other)["status"] == S.EXPIRED


def test_qr_expires_by_itself_during_a_held_poll(sim: Simulator, http: httpx.Client) -> None:
    # A real-time expiry: the held poll answers when the lifetime runs out, before its window ends.
    sim.configure(qr_lifetime=0.2, long_poll_timeout=HOLD)
    qrcode = fetch_qr(http)
    assert qr_status(http, qrcode)["status"] == S.EXPIRED


def test_qr_redirect_to_the_second_host(sim: Simulator, http: httpx.Client) -> None:
    sim.set_qr_scenario(redirect=True, count=1)
    qrcode = fetch_qr(http)
    second = "http://" + sim.redirect_host
    assert second == sim.redirect_base_url
    # The pending status can be polled on both hosts.
    assert qr_status(http, qrcode)["status"] == S.WAIT
    assert qr_status(http, qrcode, base_url=second)["status"] == S.WAIT
    sim.scan(qrcode, "bob")
    redirect = qr_status(http, qrcode)
    assert redirect == {"ret": 0, "status": S.SCANNED_BUT_REDIRECT, "redirect_host": sim.redirect_host}
    assert redirect["redirect_host"] == f"127.0.0.1:{sim.redirect_port}"
    assert qr_status(http, qrcode, base_url=second)["status"] == S.SCANNED
    sim.confirm(qrcode)
    confirmed = qr_status(http, qrcode, base_url=second)
    assert confirmed["status"] == S.CONFIRMED and confirmed["baseurl"] == sim.base_url


def test_qr_binded_redirect_over_http(sim: Simulator, http: httpx.Client) -> None:
    qrcode = fetch_qr(http)
    sim.confirm(qrcode, "bob")
    token = qr_status(http, qrcode)["bot_token"]
    again = fetch_qr(http, [token])
    http.post(f"/_sim/qrcodes/{again}/scan", json={"user_id": "bob"}).raise_for_status()
    http.post(f"/_sim/qrcodes/{again}/confirm").raise_for_status()
    assert qr_status(http, again) == {"ret": 0, "status": S.BINDED_REDIRECT}


def test_auto_confirm(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(auto_confirm=0.0)
    qrcode = fetch_qr(http)
    answer = qr_status(http, qrcode)
    assert answer["status"] == S.CONFIRMED and answer["ilink_user_id"] == sim.config.default_user


def test_scan_page_shows_buttons_and_digits(sim: Simulator, http: httpx.Client) -> None:
    sim.set_qr_scenario(verify_code="424242")
    qrcode = fetch_qr(http)
    url = sim.qrcodes[qrcode]
    page = http.get(f"/_sim/scan/{url.qrcode}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Scan" in page.text and "Confirm" in page.text and "424242" not in page.text
    sim.scan(qrcode)
    assert "424242" in http.get(f"/_sim/scan/{qrcode}").text
    assert http.get("/_sim/scan/unknown").status_code == 404


# --- getupdates ---------------------------------------------------------------------------------------------


def test_getupdates_long_poll_is_woken_by_a_message(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(long_poll_timeout=HOLD)
    login = sim.login_bot("alice")
    poll = Background(lambda: call(http, "get_updates", {"get_updates_buf": ""}, token=login.bot_token))
    sim.wait_for(lambda s: s.waiters(("bot", login.ilink_bot_id)), LONG_POLL)
    assert not poll.done.is_set()  # held: there was nothing to say
    said = sim.say("alice", "wake up")  # from this (another) thread
    page = poll.get()
    # The window (HOLD) outlasts the client's timeout: an answer at all means the message woke the poll.
    assert [m["message_id"] for m in page["msgs"]] == [said["message_id"]]
    assert page["longpolling_timeout_ms"] == int(HOLD * 1000)


def test_getupdates_window_end_returns_the_same_cursor(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.say("alice", "one")
    page = call(http, "get_updates", {"get_updates_buf": ""}, token=login.bot_token)
    cursor = page["get_updates_buf"]
    empty = call(http, "get_updates", {"get_updates_buf": cursor}, token=login.bot_token)
    assert empty == {"ret": 0, "msgs": [], "get_updates_buf": cursor, "longpolling_timeout_ms": int(SHORT_POLL * 1000)}


def test_several_concurrent_long_polls(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(long_poll_timeout=HOLD)
    logins = [sim.login_bot(f"user{i}") for i in range(4)]
    polls = []
    for login in logins + logins[:1]:  # two polls on the first bot
        polls.append(Background(lambda t=login.bot_token: call(http, "get_updates", {}, token=t)))
    sim.wait_for(lambda s: s.waiters() >= len(polls), LONG_POLL)
    for i, login in enumerate(logins):
        sim.say(f"user{i}", f"to bot {i}", login.ilink_bot_id)
    texts = [[m["item_list"][0]["text_item"]["text"] for m in p.get()["msgs"]] for p in polls]
    assert texts == [["to bot 0"], ["to bot 1"], ["to bot 2"], ["to bot 3"], ["to bot 0"]]


def test_stale_token_is_minus_14(sim: Simulator, http: httpx.Client) -> None:
    for token in (None, "not-a-token"):
        answer = call(http, "get_updates", {"get_updates_buf": ""}, token=token)
        assert answer["ret"] == C.RET_STALE_TOKEN and answer["errcode"] == C.RET_STALE_TOKEN
    # A held poll whose token is replaced by a new login answers -14 at once.
    sim.configure(long_poll_timeout=HOLD)
    login = sim.login_bot("bob")
    poll = Background(lambda: call(http, "get_updates", {}, token=login.bot_token))
    sim.wait_for(lambda s: s.waiters(("bot", login.ilink_bot_id)), LONG_POLL)
    http.post(f"/_sim/bots/{login.ilink_bot_id}/revoke").raise_for_status()
    assert poll.get()["ret"] == C.RET_STALE_TOKEN


def test_lenient_requests_are_accepted(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.say("alice", "hi")
    # No iLink headers, no base_info, an unknown field, a lowercase bearer.
    bare = http.post(
        "/ilink/bot/getupdates",
        content=json.dumps({"get_updates_buf": "", "whatever": [1]}),
        headers={"authorization": f"bearer {login.bot_token}"},
    )
    assert bare.status_code == 200 and len(bare.json()["msgs"]) == 1
    broken = http.post("/ilink/bot/sendmessage", content=b"{not json", headers={"Authorization": "Bearer x"})
    assert broken.status_code == 200 and broken.json()["ret"] == C.RET_INVALID_ARGS


def test_big_ids_round_trip_exactly(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    said = sim.say("alice", "hi")
    raw = http.post(
        "/ilink/bot/getupdates", json={"get_updates_buf": ""}, headers={"Authorization": f"Bearer {login.bot_token}"}
    ).content
    assert str(said["message_id"]).encode() in raw  # a bare JSON number, all digits
    msg = json.loads(raw)["msgs"][0]
    assert msg["message_id"] == said["message_id"] > 2**53
    sent = call(http, "send_message", text_msg("alice@im.wechat", msg["context_token"], "reply"), token=login.bot_token)
    assert sent["ret"] == 0 and sent["message_id"] == sim.outbox[0].message_id > 2**53


# --- sendmessage, typing, notify ----------------------------------------------------------------------------


def test_sendmessage_rules_over_http(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    token = login.bot_token
    ctx = sim.say("alice", "hi")["context_token"]
    sim.configure(dedupe_client_id=True)  # opt-in: not known of the real server
    ok = call(http, "send_message", text_msg("alice@im.wechat", ctx, "hello", "cid-1"), token=token)
    assert ok["ret"] == 0
    assert call(http, "send_message", text_msg("alice@im.wechat", ctx, "hello", "cid-1"), token=token) == ok
    assert call(http, "send_message", text_msg("alice@im.wechat", None), token=token)["ret"] == C.RET_SEND_REJECTED
    assert call(http, "send_message", text_msg("ghost@im.wechat", ctx), token=token)["ret"] == C.RET_INVALID_ARGS
    http.post("/_sim/advance", json={"hours": 25}).raise_for_status()
    assert call(http, "send_message", text_msg("alice@im.wechat", ctx), token=token)["ret"] == C.RET_SEND_REJECTED
    (entry,) = sim.outbox
    assert entry.text == "hello" and entry.msg["context_token"] == ctx
    # What the official client sends arrived intact (base_info stays in the body, not in msg).
    assert entry.msg["message_type"] == C.MessageType.BOT


def test_typing_and_notify_over_http(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    token = login.bot_token
    early = call(http, "get_config", {"ilink_user_id": "alice@im.wechat"}, token=token)
    assert early["ret"] == C.RET_NOT_YET_CONTACTED
    ctx = sim.say("alice", "hi")["context_token"]
    ticket = call(http, "get_config", {"ilink_user_id": "alice@im.wechat", "context_token": ctx}, token=token)[
        "typing_ticket"
    ]
    typing = {"ilink_user_id": "alice@im.wechat", "typing_ticket": ticket, "status": 1}
    assert call(http, "send_typing", typing, token=token) == {"ret": 0}
    assert call(http, "send_typing", {**typing, "typing_ticket": "bad"}, token=token)["ret"] == C.RET_SEND_REJECTED
    assert call(http, "notify_start", token=token) == {"ret": 0}
    assert call(http, "notify_stop", token=token) == {"ret": 0}
    assert [e.status for e in sim.typing_events] == [1]
    assert [n.kind for n in sim.notifications] == ["start", "stop"]
    state = http.get("/_sim/state").json()
    assert state["typing"][0]["status"] == 1 and state["notifications"][1]["kind"] == "stop"


# --- CDN ----------------------------------------------------------------------------------------------------


def register_upload(http: httpx.Client, token: str, data: bytes, key: bytes, **overrides: Any) -> dict[str, Any]:
    body = {
        "filekey": crypto.new_filekey(),
        "media_type": int(C.UploadMediaType.FILE),
        "to_user_id": "alice@im.wechat",
        "rawsize": len(data),
        "rawfilemd5": crypto.md5_hex(data),
        "filesize": crypto.padded_size(len(data)),
        "no_need_thumb": True,
        "aeskey": crypto.key_to_hex(key),
        **overrides,
    }
    answer = call(http, "get_upload_url", body, token=token)
    assert answer["ret"] == 0, answer
    return {**answer, "filekey": body["filekey"]}


def test_cdn_upload_round_trip_via_full_url(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    ctx = sim.say("alice", "send me the report")["context_token"]
    data, key = b"quarterly report\n" * 1000, crypto.new_key()
    up = register_upload(http, login.bot_token, data, key)
    full_url = up["upload_full_url"]
    assert full_url.startswith(sim.cdn_base_url + CDN_UPLOAD_PATH)
    assert parse_qs(urlsplit(full_url).query)["encrypted_query_param"] == [up["upload_param"]]
    response = http.post(
        full_url, content=crypto.encrypt(data, key), headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200
    download_param = response.headers[C.H_ENCRYPTED_PARAM]
    got = http.get(f"{sim.cdn_base_url}/download", params={"encrypted_query_param": download_param})
    assert got.status_code == 200 and crypto.decrypt(got.content, key) == data
    item = {
        "type": 4,
        "file_item": {
            "media": {
                "encrypt_query_param": download_param,
                "aes_key": crypto.key_to_message_aes_key(key),
                "encrypt_type": 1,
            },
            "file_name": "report.txt",
            "len": str(len(data)),
        },
    }
    sent = call(
        http,
        "send_message",
        {"msg": {"to_user_id": "alice@im.wechat", "context_token": ctx, "item_list": [item]}},
        token=login.bot_token,
    )
    assert sent["ret"] == 0
    entry = sim.outbox[-1]
    assert entry.media[0] == data and entry.problems == []
    listed = http.get("/_sim/outbox", params={"data": "1"}).json()["outbox"][-1]
    assert base64.b64decode(listed["media"][0]["data_b64"]) == data
    assert listed["media"][0]["md5"] == crypto.md5_hex(data)


def test_cdn_upload_with_built_url_and_checks(sim: Simulator, http: httpx.Client) -> None:
    sim.configure(upload_full_url=False)
    login = sim.login_bot("alice")
    data, key = b"image bytes", crypto.new_key()
    up = register_upload(http, login.bot_token, data, key, rawfilemd5=crypto.md5_hex(b"something else"))
    assert "upload_full_url" not in up
    # The official client's fallback URL, with both parameters URL-encoded by httpx.
    params = {"encrypted_query_param": up["upload_param"], "filekey": up["filekey"]}
    url = f"{sim.cdn_base_url}{CDN_UPLOAD_PATH}"
    mismatch = http.post(url, params=params, content=crypto.encrypt(data, key))
    assert mismatch.status_code == 400 and "md5" in mismatch.headers[C.H_ERROR_MESSAGE]
    good = register_upload(http, login.bot_token, data, key)
    params = {"encrypted_query_param": good["upload_param"], "filekey": good["filekey"]}
    short = http.post(url, params=params, content=crypto.encrypt(data, key)[:-16])
    assert short.status_code == 400 and short.headers[C.H_ERROR_MESSAGE]
    ok = http.post(url, params=params, content=crypto.encrypt(data, key))
    assert ok.status_code == 200 and ok.headers[C.H_ENCRYPTED_PARAM]
    missing = http.get(f"{sim.cdn_base_url}/download", params={"encrypted_query_param": "nope"})
    assert missing.status_code == 404 and missing.headers[C.H_ERROR_MESSAGE]


def test_inbound_image_download_and_decrypt(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.send_image("alice", b"\x89PNG pixels")
    msg = call(http, "get_updates", {}, token=login.bot_token)["msgs"][0]
    image = msg["item_list"][0]["image_item"]
    got = http.get(
        f"{sim.cdn_base_url}/download", params={"encrypted_query_param": image["media"]["encrypt_query_param"]}
    )
    assert crypto.decrypt(got.content, crypto.parse_hex_key(image["aeskey"])) == b"\x89PNG pixels"


# --- control API --------------------------------------------------------------------------------------------


def test_control_state_login_inbound_outbox(sim: Simulator, http: httpx.Client) -> None:
    login = http.post("/_sim/bots", json={"user_id": "alice"}).json()
    assert set(login) == {"bot_token", "ilink_bot_id", "baseurl", "ilink_user_id"}
    state = http.get("/_sim/state").json()
    assert state["base_url"] == sim.base_url and state["cdn_base_url"] == sim.cdn_base_url
    assert state["redirect_host"] == sim.redirect_host
    assert state["bots"][0]["bot_id"] == login["ilink_bot_id"]
    assert login["bot_token"] not in json.dumps(state)  # tokens are redacted
    assert state["bots"][0]["bot_token"].startswith("<redacted")
    assert state["users"][0]["user_id"] == "alice@im.wechat"
    stored = http.post("/_sim/inbound", json={"from_user_id": "alice", "text": "hi"}).json()
    assert stored["item_list"][0]["text_item"]["text"] == "hi" and stored["message_id"] > 2**53
    quoted = http.post("/_sim/inbound", json={"from_user_id": "alice", "text": "re", "quote": stored["message_id"]})
    assert quoted.json()["item_list"][0]["ref_msg"]["svr_id"] == stored["message_id"]
    custom = http.post(
        "/_sim/inbound",
        json={"bot_id": login["ilink_bot_id"], "msg": {"from_user_id": "bob", "item_list": [{"type": 1}]}},
    ).json()
    assert custom["from_user_id"] == "bob@im.wechat"
    media = http.post(
        "/_sim/inbound",
        json={"from_user_id": "alice", "kind": "file", "data_b64": base64.b64encode(b"doc").decode(), "file_name": "d"},
    ).json()
    assert media["item_list"][0]["file_item"]["len"] == "3"
    call(http, "send_message", text_msg("alice@im.wechat", stored["context_token"], "answer"), token=login["bot_token"])
    other = sim.login_bot("carol")
    outbox = http.get("/_sim/outbox", params={"bot_id": login["ilink_bot_id"]}).json()["outbox"]
    assert [e["text"] for e in outbox] == ["answer"]
    assert http.get("/_sim/outbox", params={"bot_id": other.ilink_bot_id}).json()["outbox"] == []
    assert http.post("/_sim/inbound", json={"from_user_id": "alice"}).status_code == 400


def test_control_qr_scenarios_and_errors(sim: Simulator, http: httpx.Client) -> None:
    assert http.post("/_sim/qr_scenario", json={"verify_code": "777", "count": 1}).json()["verify_code"] == "777"
    qrcode = fetch_qr(http)
    assert http.get(f"/_sim/qrcodes/{qrcode}").json()["scenario"]["verify_code"] == "777"
    assert fetch_qr(http) != qrcode and sim.qrcodes[sim.latest_qrcode or ""].scenario.verify_code is None
    http.post(f"/_sim/qrcodes/{qrcode}/scenario", json={"redirect": True}).raise_for_status()
    assert sim.qrcodes[qrcode].scenario.redirect
    assert http.post("/_sim/qr_scenario", json={"binded": True}).status_code == 200
    assert http.delete("/_sim/qr_scenario").json() == {"ok": True}
    bad = http.post("/_sim/qr_scenario", json={"teleport": True})
    assert bad.status_code == 400 and "teleport" in bad.json()["error"]
    assert http.post("/_sim/qrcodes/nope/scan", json={}).status_code == 400
    assert http.post("/_sim/advance", json={"weeks": 1}).status_code == 400
    assert http.post("/_sim/faults", content=b"[1]").status_code == 400
    pending = http.get("/_sim/state").json()["qrcodes"]
    assert {q["qrcode"] for q in pending} >= {qrcode}


def test_control_config_reset_and_request_log(sim: Simulator, http: httpx.Client) -> None:
    assert http.post("/_sim/config", json={"record_requests": 10}).json()["record_requests"] == 10
    assert sim.config.record_requests == 10
    login = sim.login_bot("alice")
    call(http, "notify_start", token=login.bot_token)
    (logged,) = http.get("/_sim/requests").json()["requests"]
    assert logged["endpoint"] == "notify_start" and logged["headers"]["ilink-app-id"] == C.DEFAULT_APP_ID
    assert logged["body"]["base_info"]["bot_agent"]
    assert http.post("/_sim/config", json={"no_such_knob": 1}).status_code == 400
    reset = http.post("/_sim/reset", json={"long_poll_timeout": SHORT_POLL}).json()
    assert reset["ok"] is True and sim.bots == {}
    # Knobs changed since the start are undone; the body's knobs apply on top.
    assert reset["config"]["record_requests"] == 0 and reset["config"]["long_poll_timeout"] == SHORT_POLL


# --- faults -------------------------------------------------------------------------------------------------


def test_fault_http_500_and_429(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    http.post("/_sim/faults", json={"http_500": 1.0, "count": 1, "endpoints": ["get_updates"]}).raise_for_status()
    http.post("/_sim/faults", json={"http_429": True, "retry_after": 9, "count": 1}).raise_for_status()
    headers = {"Authorization": f"Bearer {login.bot_token}"}
    first = http.post("/ilink/bot/getupdates", json={}, headers=headers)
    assert first.status_code == 500  # the first rule that fires wins
    second = http.post("/ilink/bot/sendmessage", json={}, headers=headers)
    assert second.status_code == 429 and second.headers["retry-after"] == "9"
    assert http.post("/ilink/bot/msg/notifystart", json={}, headers=headers).status_code == 200
    assert http.get("/_sim/faults").json()["rules"] == []


def test_fault_connection_reset_is_a_transport_error(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.add_fault(reset=1.0, count=1)
    with pytest.raises(httpx.TransportError):
        call(http, "get_updates", {}, token=login.bot_token)
    assert call(http, "notify_start", token=login.bot_token) == {"ret": 0}  # the client reconnects


def test_fault_malformed_json_and_forced_stale_token(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.add_fault(malformed_json=1.0, count=1)
    broken = http.post("/ilink/bot/getupdates", json={}, headers={"Authorization": f"Bearer {login.bot_token}"})
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    sim.add_fault(stale_token=1.0, endpoints=["send_message"])
    assert call(http, "send_message", {}, token=login.bot_token)["ret"] == C.RET_STALE_TOKEN
    assert call(http, "notify_start", token=login.bot_token) == {"ret": 0}
    # The control API is never faulted, so a test can always clean up.
    assert http.delete("/_sim/faults").json() == {"rules": []}
    assert call(http, "send_message", {}, token=login.bot_token)["ret"] == C.RET_INVALID_ARGS


def test_date_header_is_on_the_simulated_clock(sim: Simulator, http: httpx.Client) -> None:
    # Real servers send Date; the simulator sends its own clock's time there, so a client that reads the
    # server's clock from it (e.g. "25 h since the user's last message") sees what sim.advance did.
    from email.utils import parsedate_to_datetime

    login = sim.login_bot("alice")

    def server_clock(response: httpx.Response) -> float:
        (date,) = response.headers.get_list("date")  # exactly one: uvicorn's own (real-time) Date is off
        return parsedate_to_datetime(date).timestamp()

    spec_path = ENDPOINTS["notify_start"].path
    before = sim.now()
    first = server_clock(http.post(spec_path, json={}, headers={"Authorization": f"Bearer {login.bot_token}"}))
    assert abs(first - before) < 60
    sim.advance(hours=25)
    later = sim.now()
    for response in (
        http.post(spec_path, json={}, headers={"Authorization": f"Bearer {login.bot_token}"}),
        http.get("/_sim/state"),  # the control API too
        http.get("/no/such/path"),  # and a 404
    ):
        assert abs(server_clock(response) - later) < 60
        assert server_clock(response) - first >= 25 * 3600 - 60
    sim.add_fault(http_500=1.0, count=1, endpoints=["notify_stop"])
    faulted = http.post(ENDPOINTS["notify_stop"].path, json={})
    assert faulted.status_code == 500 and abs(server_clock(faulted) - later) < 60


def test_fault_delay_still_answers(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.add_fault(delay_ms=20, count=1)
    assert call(http, "notify_stop", token=login.bot_token) == {"ret": 0}


# --- lifecycle ----------------------------------------------------------------------------------------------


def test_start_stop_and_stop_answers_held_polls() -> None:
    sim = Simulator(sim_config(long_poll_timeout=HOLD))
    assert not sim.running
    sim.start()
    try:
        assert sim.running and sim.port != sim.redirect_port
        login = sim.login_bot("alice")
        with httpx.Client(base_url=sim.base_url, timeout=LONG_POLL + 5) as client:
            poll = Background(lambda: call(client, "get_updates", {}, token=login.bot_token))
            sim.wait_for(lambda s: s.waiters(("bot", login.ilink_bot_id)), LONG_POLL)
            sim.stop()
            # Stopping does not wait out the window: the held poll answers "nothing new" at once.
            assert poll.get()["msgs"] == []
        assert not sim.running
        with pytest.raises(httpx.TransportError):
            httpx.get(sim.base_url + "/_sim/state", timeout=5)
    finally:
        sim.stop()


def loopback_binds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the simulator bind 127.0.0.1 whatever host it is given; return the hosts it asked for.

    No test may listen beyond the loopback interface: that would expose an unauthenticated simulator to the
    network for a moment, and fails in sandboxes that only allow loopback.
    """
    asked: list[str] = []
    real_bind = server_module._bind

    def bind(host: str, port: int) -> Any:
        asked.append(host)
        return real_bind("127.0.0.1", port)

    monkeypatch.setattr(server_module, "_bind", bind)
    return asked


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "sim.example"])
def test_non_loopback_host_warns(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    asked = loopback_binds(monkeypatch)
    sim = Simulator(sim_config(), host=host)
    with pytest.warns(SimulatorWarning, match=f"listens on {host}, beyond this machine's loopback interface"):
        sim.start()
    try:
        assert asked == [host, host]  # the API + CDN port and the redirect host's port
        wildcard = host in ("0.0.0.0", "::")
        assert sim.base_url.startswith("http://127.0.0.1:" if wildcard else f"http://{host}:")
        local = f"http://127.0.0.1:{sim.port}"
        # Off loopback the control API asks for the admin token made at start.
        refused = httpx.get(local + "/_sim/state", timeout=LONG_POLL)
        assert refused.status_code == 401 and "X-Admin-Token" in refused.json()["error"]
        assert sim.admin_token
        headers = {"X-Admin-Token": sim.admin_token}
        assert httpx.get(local + "/_sim/state", headers=headers, timeout=LONG_POLL).status_code == 200
    finally:
        sim.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2"])
def test_loopback_host_does_not_warn(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    asked = loopback_binds(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SimulatorWarning)
        with Simulator(sim_config(), host=host) as sim:
            assert asked == [host, host] and sim.base_url == f"http://{host}:{sim.port}"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert server_module._is_loopback(host) is loopback


def test_state_path_autosaves_and_reloads(tmp_path: Any) -> None:
    path = tmp_path / "state.json"
    with Simulator(sim_config(), state_path=path, compact_interval=3600) as sim:
        login = sim.login_bot("alice")
        sim.say("alice", "persist me")
        sim.wait_saved(LONG_POLL)  # on disk while the simulator runs: the state file plus its journal
        copy = SimState(sim_config())
        StateJournal(copy, path).load()
        assert copy.inbox(login.bot_id)[0]["item_list"][0]["text_item"]["text"] == "persist me"
        sim.save()  # folds the journal into the state file
        saved = json.loads(path.read_text())
        assert saved["bots"][0]["inbox"][0]["item_list"][0]["text_item"]["text"] == "persist me"
    with Simulator(sim_config(), state_path=path) as again, httpx.Client(base_url=again.base_url) as client:
        page = call(client, "get_updates", {}, token=login.bot_token)
        assert page["msgs"][0]["item_list"][0]["text_item"]["text"] == "persist me"
