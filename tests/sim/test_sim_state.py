"""SimState without a server: every QR branch, cursor semantics, each sendmessage rule, typing, uploads and
the CDN checks, user media with real encryption, faults, persistence and the wake-up plumbing."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest
from simhelpers import sim_config, text_msg

from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.sim import SimError, SimState
from openclaw_nb.sim.state import PRIMARY, REDIRECT

S = C.QrStatus


def status(state: SimState, qrcode: str, **kwargs: Any) -> dict[str, Any] | None:
    return state.qr_status(qrcode, **kwargs)[0]


def new_qr(state: SimState, tokens: list[str] | None = None) -> str:
    answer = state.create_qrcode(tokens)
    assert answer["qrcode_img_content"] == f"http://sim.test/_sim/scan/{answer['qrcode']}"
    return str(answer["qrcode"])


def first_message(state: SimState, token: str) -> dict[str, Any]:
    page, _ = state.get_updates(token, {"get_updates_buf": ""}, final=True)
    assert page is not None
    return dict(page["msgs"][-1])


# --- QR login ------------------------------------------------------------------------------------------


def test_plain_qr_login_reports_each_status_once(state: SimState) -> None:
    qr = new_qr(state)
    body, due = state.qr_status(qr)
    assert body is None and due is not None and 0 < due <= state.config.qr_lifetime  # nothing new yet: held
    assert status(state, qr, final=True) == {"ret": 0, "status": S.WAIT}
    assert state.scan(qr, "bob") == S.SCANNED
    assert status(state, qr) == {"ret": 0, "status": S.SCANNED}
    assert status(state, qr) is None  # already reported: held until the next change
    assert state.confirm(qr) == S.CONFIRMED
    body = status(state, qr)
    assert body is not None and body["status"] == S.CONFIRMED
    assert body["ilink_bot_id"].endswith("@im.bot")
    assert body["ilink_user_id"] == "bob@im.wechat"
    assert body["baseurl"] == "http://sim.test"
    page, _ = state.get_updates(body["bot_token"], {}, final=True)
    assert page is not None and page["ret"] == 0
    # Terminal statuses answer at once, every time; the bot token goes out only with the first answer.
    again = {k: v for k, v in body.items() if k != "bot_token"}
    assert status(state, qr) == again
    assert status(state, qr, final=True) == again


def test_verify_code_wrong_then_right(state: SimState) -> None:
    state.set_qr_scenario(verify_code="123456", count=1)
    qr = new_qr(state)
    assert state.scan(qr, "bob") == S.NEED_VERIFY_CODE
    assert status(state, qr) == {"ret": 0, "status": S.NEED_VERIFY_CODE}
    with pytest.raises(SimError, match="123456"):
        state.confirm(qr)
    # A wrong code: a second need_verifycode, answered at once.
    assert status(state, qr, verify_code="000000") == {"ret": 0, "status": S.NEED_VERIFY_CODE}
    assert status(state, qr, verify_code="123456") == {"ret": 0, "status": S.SCANNED}
    state.confirm(qr)
    assert status(state, qr)["status"] == S.CONFIRMED  # type: ignore[index]
    # count=1: the next QR code takes the plain path again.
    qr2 = new_qr(state)
    assert state.scan(qr2, "bob") == S.SCANNED


def test_too_many_wrong_codes_block(state: SimState) -> None:
    state.configure(max_wrong_verify_codes=3)
    qr = new_qr(state)
    state.set_qr_scenario(qr, verify_code=True)  # random digits, set on an existing QR code
    code = state.qrcodes[qr].scenario.verify_code
    assert code is not None and len(code) == 6 and code.isdigit()
    state.scan(qr)
    wrong = "x" + code[1:]
    assert status(state, qr, verify_code=wrong)["status"] == S.NEED_VERIFY_CODE  # type: ignore[index]
    assert status(state, qr, verify_code=wrong)["status"] == S.NEED_VERIFY_CODE  # type: ignore[index]
    assert status(state, qr, verify_code=wrong)["status"] == S.VERIFY_CODE_BLOCKED  # type: ignore[index]
    # The right code is too late now.
    assert status(state, qr, verify_code=code)["status"] == S.VERIFY_CODE_BLOCKED  # type: ignore[index]


def test_qr_expires_with_the_clock_and_by_force(state: SimState) -> None:
    state.configure(qr_lifetime=60)
    qr = new_qr(state)
    state.advance(seconds=59)
    assert status(state, qr) is None
    state.advance(seconds=2)
    assert status(state, qr) == {"ret": 0, "status": S.EXPIRED}
    with pytest.raises(SimError, match="expired"):
        state.scan(qr)
    other = new_qr(state)
    state.scan(other)
    assert state.expire(other) == S.EXPIRED
    assert status(state, other)["status"] == S.EXPIRED  # type: ignore[index]
    # An unknown QR code reads as expired, so a client fetches a new one.
    assert status(state, "no-such-qr") == {"ret": 0, "status": S.EXPIRED}
    assert status(state, "")["ret"] == C.RET_INVALID_ARGS  # type: ignore[index]


def test_redirect_moves_polling_to_the_second_host(state: SimState) -> None:
    state.set_qr_scenario(redirect=True)
    qr = new_qr(state)
    # Pending: pollable on both hosts.
    assert status(state, qr, role=PRIMARY, final=True)["status"] == S.WAIT  # type: ignore[index]
    assert status(state, qr, role=REDIRECT, final=True)["status"] == S.WAIT  # type: ignore[index]
    state.scan(qr, "bob")
    assert status(state, qr, role=PRIMARY) == {
        "ret": 0,
        "status": S.SCANNED_BUT_REDIRECT,
        "redirect_host": "127.0.0.1:9",
    }
    # The second host has not answered since the scan: it reports the real status at once.
    assert status(state, qr, role=REDIRECT) == {"ret": 0, "status": S.SCANNED}
    state.confirm(qr)
    assert status(state, qr, role=REDIRECT)["status"] == S.CONFIRMED  # type: ignore[index]
    assert status(state, qr, role=PRIMARY)["status"] == S.SCANNED_BUT_REDIRECT  # type: ignore[index]


def test_binded_redirect_when_the_owner_sends_a_bound_token(state: SimState) -> None:
    qr = new_qr(state)
    state.confirm(qr, "bob")
    first = status(state, qr)
    assert first is not None
    token = first["bot_token"]
    again = new_qr(state, [token, "someone-else"])
    assert state.confirm(again, "bob") == S.BINDED_REDIRECT
    body = status(state, again)
    assert body == {"ret": 0, "status": S.BINDED_REDIRECT}  # no new credentials
    page, _ = state.get_updates(token, {}, final=True)
    assert page is not None and page["ret"] == 0  # the existing token stays valid
    # Another user scanning the same code list does not bind to bob's bot.
    third = new_qr(state, [token])
    assert state.confirm(third, "carol") == S.CONFIRMED


def test_binded_redirect_by_scenario(state: SimState) -> None:
    state.set_qr_scenario(binded=True, count=1)
    qr = new_qr(state)
    assert state.confirm(qr, "bob") == S.BINDED_REDIRECT


def test_relogin_rotates_the_token(state: SimState) -> None:
    qr = new_qr(state)
    state.confirm(qr, "bob")
    old = status(state, qr)
    qr2 = new_qr(state)
    state.confirm(qr2, "bob")
    new = status(state, qr2)
    assert old is not None and new is not None
    assert new["ilink_bot_id"] == old["ilink_bot_id"] and new["bot_token"] != old["bot_token"]
    stale, _ = state.get_updates(old["bot_token"], {}, final=True)
    assert stale is not None and stale["ret"] == C.RET_STALE_TOKEN and stale["errcode"] == C.RET_STALE_TOKEN


def test_auto_confirm_after_n_seconds(state: SimState) -> None:
    state.configure(auto_confirm=5.0)
    qr = new_qr(state)
    body, due = state.qr_status(qr)
    assert body is None and due is not None and 0 < due <= 5
    state.advance(seconds=6)
    body = status(state, qr)
    assert body is not None and body["status"] == S.CONFIRMED
    assert body["ilink_user_id"] == state.config.default_user


def test_auto_confirm_waits_for_the_verify_code(state: SimState) -> None:
    state.configure(auto_confirm=0.0)
    state.set_qr_scenario(verify_code="4711")
    qr = new_qr(state)
    assert status(state, qr)["status"] == S.NEED_VERIFY_CODE  # type: ignore[index]
    assert status(state, qr, verify_code="4711")["status"] == S.CONFIRMED  # type: ignore[index]


def test_unknown_scenario_flag_is_refused(state: SimState) -> None:
    with pytest.raises(SimError, match="bogus"):
        state.set_qr_scenario(bogus=True)


# --- getupdates -------------------------------------------------------------------------------------------


def test_getupdates_needs_a_valid_token(state: SimState) -> None:
    for token in (None, "", "nope"):
        page, bot = state.get_updates(token, {})
        assert bot is None and page is not None
        assert page["ret"] == C.RET_STALE_TOKEN and page["errmsg"]


def test_cursor_pages_and_acknowledgement(state: SimState) -> None:
    login = state.login_bot("alice")
    token = login.bot_token
    page, bot = state.get_updates(token, {"get_updates_buf": ""})
    assert page is None and bot == login.ilink_bot_id  # nothing yet: held
    empty, _ = state.get_updates(token, {"get_updates_buf": ""}, final=True)
    assert empty is not None and empty["msgs"] == [] and empty["get_updates_buf"]
    assert empty["longpolling_timeout_ms"] == 300
    state.say("alice", "one")
    state.say("alice", "two")
    page, _ = state.get_updates(token, {"get_updates_buf": ""})
    assert page is not None and [m["item_list"][0]["text_item"]["text"] for m in page["msgs"]] == ["one", "two"]
    cursor = page["get_updates_buf"]
    assert "one" not in base64.b64decode(cursor).decode()  # opaque, not the content
    # Same cursor, nothing new: held; at the end of the window, the same cursor comes back.
    assert state.get_updates(token, {"get_updates_buf": cursor})[0] is None
    end, _ = state.get_updates(token, {"get_updates_buf": cursor}, final=True)
    assert end is not None and end["msgs"] == [] and end["get_updates_buf"] == cursor
    # Polling with the cursor acknowledged the page: "" resumes after it (a fresh login replays nothing).
    state.say("alice", "three")
    again, _ = state.get_updates(token, {"get_updates_buf": ""})
    assert again is not None and [m["item_list"][0]["text_item"]["text"] for m in again["msgs"]] == ["three"]
    # sync_buf is the deprecated alias.
    alias, _ = state.get_updates(token, {"sync_buf": again["get_updates_buf"]}, final=True)
    assert alias is not None and alias["msgs"] == []


def test_unacknowledged_page_is_delivered_again(state: SimState) -> None:
    token = state.login_bot("alice").bot_token
    state.say("alice", "one")
    first, _ = state.get_updates(token, {"get_updates_buf": ""})
    # The client lost the cursor (crash before persisting it) and starts over with "".
    second, _ = state.get_updates(token, {"get_updates_buf": ""})
    assert first is not None and second is not None
    assert second["msgs"] == first["msgs"]


def test_an_old_cursor_never_fetches_acknowledged_messages(state: SimState) -> None:
    token = state.login_bot("alice").bot_token
    state.say("alice", "one")
    first, _ = state.get_updates(token, {"get_updates_buf": ""})
    assert first is not None
    old_cursor = first["get_updates_buf"]
    state.say("alice", "two")
    second, _ = state.get_updates(token, {"get_updates_buf": old_cursor})
    assert second is not None
    # polling with the newer cursor acknowledges "two"
    state.get_updates(token, {"get_updates_buf": second["get_updates_buf"]}, final=True)
    # a client that restored a stale cursor (say, an old .sync.json) gets nothing twice: the cursor only
    # moves forward on the real server
    replay, _ = state.get_updates(token, {"get_updates_buf": old_cursor}, final=True)
    assert replay is not None and replay["msgs"] == []


def test_foreign_or_garbage_cursor_counts_as_empty(state: SimState) -> None:
    alice = state.login_bot("alice")
    bob = state.login_bot("bob")
    state.say("alice", "for alice", alice.ilink_bot_id)
    state.say("bob", "for bob", bob.ilink_bot_id)
    alice_page, _ = state.get_updates(alice.bot_token, {"get_updates_buf": ""})
    assert alice_page is not None
    for cursor in (alice_page["get_updates_buf"], "%%%not base64", base64.b64encode(b"x:y").decode()):
        page, _ = state.get_updates(bob.bot_token, {"get_updates_buf": cursor})
        assert page is not None and page["msgs"][0]["item_list"][0]["text_item"]["text"] == "for bob"


def test_page_size_is_capped(state: SimState) -> None:
    state.configure(page_size=3)
    token = state.login_bot("alice").bot_token
    for i in range(5):
        state.say("alice", f"m{i}")
    first, _ = state.get_updates(token, {"get_updates_buf": ""})
    assert first is not None and len(first["msgs"]) == 3
    rest, _ = state.get_updates(token, {"get_updates_buf": first["get_updates_buf"]})
    assert rest is not None and [m["seq"] for m in rest["msgs"]] == [4, 5]


def test_relogin_resumes_without_replaying(state: SimState) -> None:
    qr = new_qr(state)
    state.confirm(qr, "bob")
    token = status(state, qr)["bot_token"]  # type: ignore[index]
    state.say("bob", "old")
    page, _ = state.get_updates(token, {"get_updates_buf": ""})
    assert page is not None
    state.get_updates(token, {"get_updates_buf": page["get_updates_buf"]}, final=True)  # acknowledges "old"
    qr2 = new_qr(state)
    state.confirm(qr2, "bob")
    new_token = status(state, qr2)["bot_token"]  # type: ignore[index]
    state.say("bob", "new")
    page, _ = state.get_updates(new_token, {"get_updates_buf": ""})
    assert page is not None and [m["item_list"][0]["text_item"]["text"] for m in page["msgs"]] == ["new"]


def test_inbound_message_shape_and_big_ids(state: SimState) -> None:
    login = state.login_bot("alice")
    msg = state.say("alice", "hello")
    assert msg["from_user_id"] == "alice@im.wechat" and msg["to_user_id"] == login.ilink_bot_id
    assert msg["message_type"] == C.MessageType.USER and msg["message_state"] == C.MessageState.FINISH
    assert msg["message_id"] > 2**53 and msg["item_list"][0]["msg_id"] > 2**53
    assert msg["message_id"] < 2**64
    assert msg["context_token"] and base64.b64decode(msg["context_token"])
    other = state.say("alice", "again")
    assert other["context_token"] != msg["context_token"]  # a fresh context token per message
    assert other["message_id"] != msg["message_id"]


def test_duplicate_delivery_knobs(state: SimState) -> None:
    token = state.login_bot("alice").bot_token
    state.configure(duplicate_rate=1.0)
    state.say("alice", "twice")
    page, _ = state.get_updates(token, {})
    assert page is not None and len(page["msgs"]) == 2
    assert page["msgs"][0]["message_id"] == page["msgs"][1]["message_id"]
    state.configure(duplicate_new_id=True)
    state.say("alice", "twice, new id")
    page, _ = state.get_updates(token, {"get_updates_buf": page["get_updates_buf"]})
    assert page is not None and len(page["msgs"]) == 2
    a, b = page["msgs"]
    assert a["message_id"] != b["message_id"] and a["context_token"] == b["context_token"]


# --- sendmessage rules --------------------------------------------------------------------------------------


@pytest.fixture
def chat(state: SimState) -> tuple[SimState, str, str]:
    """A bot whose owner alice has written once: (state, token, alice's context token)."""
    token = state.login_bot("alice").bot_token
    state.say("alice", "hi bot")
    return state, token, first_message(state, token)["context_token"]


def test_send_ok_is_stored_with_a_big_message_id(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    answer = state.send_message(token, text_msg("alice@im.wechat", ctx, "hello alice", "c1"))
    assert answer["ret"] == 0 and answer["message_id"] > 2**53
    (entry,) = state.outbox
    assert entry.text == "hello alice" and entry.message_id == answer["message_id"]
    assert entry.msg["from_user_id"].endswith("@im.bot") and entry.client_id == "c1"


def test_send_requires_the_users_context_token(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    missing = state.send_message(token, text_msg("alice@im.wechat", None))
    assert missing["ret"] == C.RET_SEND_REJECTED and "context_token" in missing["errmsg"]
    unknown = state.send_message(token, text_msg("alice@im.wechat", "bm9wZQ=="))
    assert unknown["ret"] == C.RET_SEND_REJECTED
    state.add_user("bob")
    wrong_user = state.send_message(token, text_msg("bob@im.wechat", ctx))
    assert wrong_user["ret"] == C.RET_SEND_REJECTED
    assert state.outbox == []
    state.configure(require_context_token=False)
    assert state.send_message(token, text_msg("alice@im.wechat", None))["ret"] == 0


def test_unknown_user_and_bad_arguments_are_minus_3(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    assert state.send_message(token, text_msg("nobody@im.wechat", ctx))["ret"] == C.RET_INVALID_ARGS
    assert state.send_message(token, {})["ret"] == C.RET_INVALID_ARGS
    assert state.send_message(token, {"msg": {"to_user_id": "alice@im.wechat"}})["ret"] == C.RET_INVALID_ARGS
    assert state.send_message("stale", text_msg("alice@im.wechat", ctx))["ret"] == C.RET_STALE_TOKEN


def test_ten_sends_per_context_token(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    for i in range(C.SENDS_PER_CONTEXT_TOKEN):
        assert state.send_message(token, text_msg("alice@im.wechat", ctx, f"n{i}"))["ret"] == 0
    eleventh = state.send_message(token, text_msg("alice@im.wechat", ctx, "one too many"))
    assert eleventh["ret"] == C.RET_SEND_REJECTED and "10" in eleventh["errmsg"]
    # A new message from the user brings a new token with a new quota.
    state.say("alice", "more please")
    fresh = state.inbox()[-1]["context_token"]
    assert state.send_message(token, text_msg("alice@im.wechat", fresh))["ret"] == 0


def test_reply_window_closes_after_24_hours(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    state.advance(hours=23)
    assert state.send_message(token, text_msg("alice@im.wechat", ctx))["ret"] == 0
    state.advance(hours=2)
    late = state.send_message(token, text_msg("alice@im.wechat", ctx))
    assert late["ret"] == C.RET_SEND_REJECTED and "24 h" in late["errmsg"]
    state.configure(reply_window_seconds=None)
    assert state.send_message(token, text_msg("alice@im.wechat", ctx))["ret"] == 0


def test_text_over_16_kib_fails(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    limit = C.MAX_TEXT_BYTES
    assert state.send_message(token, text_msg("alice@im.wechat", ctx, "a" * limit))["ret"] == 0
    # Counted in UTF-8 bytes: 6000 three-byte characters are 18000 bytes.
    long = state.send_message(token, text_msg("alice@im.wechat", ctx, "汉" * 6000))
    assert long["ret"] == C.RET_SEND_REJECTED and "prepare failed" in long["errmsg"]


def test_repeated_client_id_is_deduplicated(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    assert state.config.dedupe_client_id is False  # opt-in: not known of the real server
    state.configure(dedupe_client_id=True)
    first = state.send_message(token, text_msg("alice@im.wechat", ctx, "once", "same-id"))
    again = state.send_message(token, text_msg("alice@im.wechat", ctx, "once", "same-id"))
    assert first == again and len(state.outbox) == 1
    state.configure(dedupe_client_id=False)
    third = state.send_message(token, text_msg("alice@im.wechat", ctx, "once", "same-id"))
    assert third["message_id"] != first["message_id"] and len(state.outbox) == 2


def test_rate_limit_is_opt_in(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    state.configure(rate_limit_sends=2, rate_limit_window=60)
    assert state.send_message(token, text_msg("alice@im.wechat", ctx))["ret"] == 0
    assert state.send_message(token, text_msg("alice@im.wechat", ctx))["ret"] == 0
    limited = state.send_message(token, text_msg("alice@im.wechat", ctx))
    assert limited == {"ret": C.RET_SEND_REJECTED, "errmsg": "rate limited"}
    state.advance(seconds=61)
    assert state.send_message(token, text_msg("alice@im.wechat", ctx))["ret"] == 0


def test_terse_errors_like_the_real_server(chat: tuple[SimState, str, str]) -> None:
    state, token, _ctx = chat
    state.configure(descriptive_errors=False)
    assert state.send_message(token, text_msg("alice@im.wechat", None)) == {"ret": C.RET_SEND_REJECTED, "errmsg": ""}


def test_quotes_carry_ref_msg(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    original = state.inbox()[0]
    quoted = state.say("alice", "see above", quote=original)
    ref = quoted["item_list"][0]["ref_msg"]
    assert ref["svr_id"] == original["message_id"] and ref["title"] == "hi bot"
    assert ref["message_item"]["text_item"]["text"] == "hi bot"
    sent = state.send_message(token, text_msg("alice@im.wechat", ctx, "bot says"))
    reply = state.say("alice", "quoting the bot", quote=sent["message_id"])
    assert reply["item_list"][0]["ref_msg"]["svr_id"] == sent["message_id"]
    with pytest.raises(SimError, match="quote"):
        state.say("alice", "x", quote=12345)


# --- typing and lifecycle -----------------------------------------------------------------------------------


def test_getconfig_and_sendtyping(state: SimState) -> None:
    token = state.login_bot("alice").bot_token
    before = state.get_config(token, {"ilink_user_id": "alice@im.wechat"})
    assert before["ret"] == C.RET_NOT_YET_CONTACTED
    state.say("alice", "hi")
    ticket = state.get_config(token, {"ilink_user_id": "alice@im.wechat"})["typing_ticket"]
    assert base64.b64decode(ticket)
    assert state.get_config(token, {"ilink_user_id": "alice@im.wechat"})["typing_ticket"] == ticket
    body = {"ilink_user_id": "alice@im.wechat", "typing_ticket": ticket, "status": 1}
    assert state.send_typing(token, body) == {"ret": 0}
    assert state.send_typing(token, {**body, "status": 2}) == {"ret": 0}
    assert state.send_typing(token, {**body, "typing_ticket": "wrong"})["ret"] == C.RET_SEND_REJECTED
    assert state.send_typing(token, {**body, "status": 3})["ret"] == C.RET_INVALID_ARGS
    assert state.send_typing("stale", body)["ret"] == C.RET_STALE_TOKEN
    assert [(e.user_id, e.status) for e in state.typing_events] == [("alice@im.wechat", 1), ("alice@im.wechat", 2)]


def test_notify_start_and_stop_are_recorded(state: SimState) -> None:
    login = state.login_bot()
    assert state.notify(login.bot_token, "start") == {"ret": 0}
    assert state.notify(login.bot_token, "stop") == {"ret": 0}
    assert state.notify("stale", "stop")["ret"] == C.RET_STALE_TOKEN
    assert [(n.bot_id, n.kind) for n in state.notifications] == [
        (login.ilink_bot_id, "start"),
        (login.ilink_bot_id, "stop"),
    ]


def test_revoked_token_is_stale(state: SimState) -> None:
    login = state.login_bot()
    state.revoke_token(login.ilink_bot_id)
    assert state.notify(login.bot_token, "start")["ret"] == C.RET_STALE_TOKEN


# --- uploads and the CDN ------------------------------------------------------------------------------------


def upload_request(data: bytes, key: bytes, **overrides: Any) -> dict[str, Any]:
    body = {
        "filekey": crypto.new_filekey(),
        "media_type": int(C.UploadMediaType.IMAGE),
        "to_user_id": "alice@im.wechat",
        "rawsize": len(data),
        "rawfilemd5": crypto.md5_hex(data),
        "filesize": crypto.padded_size(len(data)),
        "no_need_thumb": True,
        "aeskey": crypto.key_to_hex(key),
    }
    body.update(overrides)
    return body


def test_upload_round_trip_and_outbound_media(chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    data, key = b"\x89PNG fake image" * 100, crypto.new_key()
    req = upload_request(data, key)
    answer = state.get_upload_url(token, req)
    param = answer["upload_param"]
    assert "+" in param or "/" in param  # clients must URL-encode it
    assert answer["upload_full_url"] == state.upload_url(param, req["filekey"])
    status_code, download = state.cdn_upload(param, req["filekey"], crypto.encrypt(data, key))
    assert status_code == 200
    assert crypto.decrypt(state.cdn_download(download) or b"", key) == data
    item = {
        "type": 2,
        "image_item": {
            "media": {
                "encrypt_query_param": download,
                "aes_key": crypto.key_to_message_aes_key(key),
                "encrypt_type": 1,
            },
            "mid_size": crypto.padded_size(len(data)),
        },
    }
    sent = state.send_message(
        token, {"msg": {"to_user_id": "alice@im.wechat", "context_token": ctx, "item_list": [item]}}
    )
    assert sent["ret"] == 0
    entry = state.outbox[-1]
    assert entry.media == {0: data} and entry.data == data and entry.problems == []
    # The same image with aes_key as base64 of the raw key: accepted, but phones would show a grey box.
    item["image_item"]["media"]["aes_key"] = crypto.key_to_raw_b64(key)
    state.send_message(token, {"msg": {"to_user_id": "alice@im.wechat", "context_token": ctx, "item_list": [item]}})
    assert state.outbox[-1].media == {0: data}
    assert "grey box" in state.outbox[-1].problems[0]
    # A key that does not fit the upload.
    item["image_item"]["media"]["aes_key"] = crypto.key_to_message_aes_key(crypto.new_key())
    state.send_message(token, {"msg": {"to_user_id": "alice@im.wechat", "context_token": ctx, "item_list": [item]}})
    assert state.outbox[-1].media == {} and "does not decrypt" in state.outbox[-1].problems[0]


def test_upload_checks(chat: tuple[SimState, str, str]) -> None:
    state, token, _ctx = chat
    data, key = b"file contents", crypto.new_key()
    req = upload_request(data, key)
    assert state.get_upload_url(token, {**req, "filekey": None})["ret"] == C.RET_INVALID_ARGS
    assert state.get_upload_url(token, {**req, "filesize": len(data)})["ret"] == C.RET_INVALID_ARGS
    assert state.get_upload_url(token, {**req, "aeskey": "zz"})["ret"] == C.RET_INVALID_ARGS
    assert state.get_upload_url(token, {**req, "media_type": 9})["ret"] == C.RET_INVALID_ARGS
    assert state.get_upload_url("stale", req)["ret"] == C.RET_STALE_TOKEN
    param = state.get_upload_url(token, req)["upload_param"]
    cipher = crypto.encrypt(data, key)
    assert state.cdn_upload("unknown", req["filekey"], cipher)[0] == 400
    assert state.cdn_upload(param, "other-filekey", cipher)[0] == 400
    code, message = state.cdn_upload(param, req["filekey"], cipher + b"\0" * 16)
    assert code == 400 and "filesize" in message
    code, message = state.cdn_upload(param, req["filekey"], crypto.encrypt(b"other content", key))
    assert code == 400 and "md5" in message
    code, message = state.cdn_upload(param, req["filekey"], crypto.encrypt(data, crypto.new_key()))
    assert code == 400
    # Retrying the same upload gives the same download param.
    ok1, dl1 = state.cdn_upload(param, req["filekey"], cipher)
    ok2, dl2 = state.cdn_upload(param, req["filekey"], cipher)
    assert ok1 == ok2 == 200 and dl1 == dl2
    assert state.cdn_download("nope") is None


def test_upload_without_full_url_and_with_thumb(chat: tuple[SimState, str, str]) -> None:
    state, token, _ctx = chat
    state.configure(upload_full_url=False)
    data, key = b"video bytes", crypto.new_key()
    req = upload_request(
        data,
        key,
        media_type=2,
        no_need_thumb=False,
        thumb_rawsize=3,
        thumb_rawfilemd5=crypto.md5_hex(b"abc"),
        thumb_filesize=16,
    )
    answer = state.get_upload_url(token, req)
    assert "upload_full_url" not in answer and answer["thumb_upload_param"] != answer["upload_param"]
    assert state.cdn_upload(answer["thumb_upload_param"], req["filekey"], crypto.encrypt(b"abc", key))[0] == 200


def test_user_media_is_really_encrypted(state: SimState) -> None:
    state.login_bot("alice")
    image = state.send_image("alice", b"image bytes")["item_list"][0]["image_item"]
    cipher = state.cdn_download(image["media"]["encrypt_query_param"])
    assert cipher is not None and cipher != b"image bytes" and image["mid_size"] == len(cipher)
    assert crypto.decrypt(cipher, crypto.parse_hex_key(image["aeskey"])) == b"image bytes"
    assert crypto.decrypt(cipher, crypto.parse_media_aes_key(image["media"]["aes_key"])) == b"image bytes"
    assert len(base64.b64decode(image["media"]["aes_key"])) == 16  # raw key, as seen on images
    hex_only = state.send_image("alice", b"x", key_format="hex")["item_list"][0]["image_item"]
    assert "aes_key" not in hex_only["media"] and "aeskey" in hex_only
    plain = state.send_image("alice", b"plain", key_format="none")["item_list"][0]["image_item"]
    assert "aeskey" not in plain and state.cdn_download(plain["media"]["encrypt_query_param"]) == b"plain"

    file_item = state.send_file("alice", b"%PDF-1.7", "a.pdf")["item_list"][0]["file_item"]
    assert (
        file_item["file_name"] == "a.pdf"
        and file_item["len"] == "8"
        and file_item["md5"] == crypto.md5_hex(b"%PDF-1.7")
    )
    assert len(base64.b64decode(file_item["media"]["aes_key"])) == 32  # base64 of the hex string
    key = crypto.parse_media_aes_key(file_item["media"]["aes_key"])
    assert crypto.decrypt(state.cdn_download(file_item["media"]["encrypt_query_param"]) or b"", key) == b"%PDF-1.7"

    voice = state.send_voice("alice", b"#!SILK_V3", text="hello")["item_list"][0]
    assert voice["type"] == C.ItemType.VOICE and voice["voice_item"]["text"] == "hello"
    assert voice["voice_item"]["encode_type"] == C.VoiceEncodeType.SILK
    video = state.send_video("alice", b"\x00\x00\x00\x18ftypmp4")["item_list"][0]["video_item"]
    assert video["video_size"] == crypto.padded_size(12) and "full_url" not in video["media"]
    state.configure(inbound_full_url=True)
    media = state.send_video("alice", b"v")["item_list"][0]["video_item"]["media"]
    assert media["full_url"] == state.download_url(media["encrypt_query_param"])


def test_inbound_accepts_a_hand_made_message(state: SimState) -> None:
    login = state.login_bot("alice")
    msg = state.inbound(
        {
            "from_user_id": "carol",
            "item_list": [{"type": 11, "tool_call_start_item": {"tool_name": "t", "tool_call_id": "1"}}],
            "future_field": {"kept": True},
            "message_id": 1,
        }
    )
    assert msg["from_user_id"] == "carol@im.wechat" and msg["to_user_id"] == login.ilink_bot_id
    assert msg["future_field"] == {"kept": True} and msg["message_id"] > 2**53
    assert msg["item_list"][0]["msg_id"] > 2**53
    with pytest.raises(SimError):
        state.inbound({"text": "no sender"})


def test_no_bot_yet_is_a_clear_error(state: SimState) -> None:
    with pytest.raises(SimError, match="login_bot"):
        state.say("alice", "hi")


# --- faults -------------------------------------------------------------------------------------------------


def test_fault_rules_count_and_endpoints(state: SimState) -> None:
    rule = state.add_fault(http_500=True, count=2, endpoints=["get_updates"])
    assert rule.http_500 == 1.0 and rule.id == 1
    assert state.draw_fault("send_message") is None
    assert state.draw_fault(None) is None  # the control API
    first, second = state.draw_fault("get_updates"), state.draw_fault("get_updates")
    assert first is not None and first.kind == "http_500" and second is not None and second.kind == "http_500"
    assert state.draw_fault("get_updates") is None and state.faults == []


def test_fault_rates_are_probabilities(state: SimState) -> None:
    state.add_fault(http_429=0.5, retry_after=7)
    kinds = [state.draw_fault("send_message") for _ in range(400)]
    hits = [d for d in kinds if d is not None]
    assert 100 < len(hits) < 300 and all(d.kind == "http_429" and d.retry_after == 7 for d in hits)
    state.clear_faults()
    state.add_fault(delay_ms=50)
    decision = state.draw_fault("send_message")
    assert decision is not None and decision.kind is None and decision.delay == pytest.approx(0.05)


@pytest.mark.parametrize(
    "knobs",
    [{"http_500": 2}, {"endpoints": ["nope"]}, {"count": 0}, {"explode": 1.0}, {"id": 3}],
)
def test_bad_fault_knobs_are_refused(state: SimState, knobs: dict[str, Any]) -> None:
    with pytest.raises(SimError):
        state.add_fault(**knobs)


# --- persistence and plumbing -------------------------------------------------------------------------------


def test_state_survives_a_json_round_trip(tmp_path: Any, chat: tuple[SimState, str, str]) -> None:
    state, token, ctx = chat
    state.send_message(token, text_msg("alice@im.wechat", ctx, "before restart", "c-1"))
    state.send_file("alice", b"payload", "p.txt")
    state.advance(hours=1)
    path = tmp_path / "sim.json"
    state.save(path)
    assert not list(tmp_path.glob("*.tmp"))
    restored = SimState(sim_config())
    restored.load(path)
    # Big ints survive exactly (Python's json), the token still works, the cursor state carries on.
    assert restored.outbox[0].message_id == state.outbox[0].message_id > 2**53
    page, _ = restored.get_updates(token, {"get_updates_buf": ""})
    assert page is not None and page["msgs"][-1]["item_list"][0]["type"] == C.ItemType.FILE
    restored.configure(dedupe_client_id=True)  # opt-in knob: the ids it remembers are part of the state
    again = restored.send_message(token, text_msg("alice@im.wechat", ctx, "before restart", "c-1"))
    assert again["message_id"] == state.outbox[0].message_id  # dedupe survived
    assert restored.send_message(token, text_msg("alice@im.wechat", ctx, "after"))["ret"] == 0
    assert restored.now() - state.now() == pytest.approx(0, abs=5)
    param = page["msgs"][-1]["item_list"][0]["file_item"]["media"]["encrypt_query_param"]
    assert restored.cdn_download(param) == state.cdn_download(param)
    assert json.loads(path.read_text())["format"] == 1
    with pytest.raises(SimError):
        restored.load_json({"format": 99})


def test_listeners_and_wait_for_see_changes_from_other_threads(state: SimState) -> None:
    login = state.login_bot("alice")
    calls: list[str] = []
    unlisten = state.listen(("bot", login.ilink_bot_id), lambda: calls.append("woken"))
    assert state.waiters(("bot", login.ilink_bot_id)) == 1
    state.say("alice", "wake up")
    assert calls == ["woken"]
    unlisten()
    state.say("alice", "nobody listens")
    assert calls == ["woken"] and state.waiters() == 0

    worker = threading.Thread(target=lambda: state.say("alice", "from a thread"))
    worker.start()
    found = state.wait_for(
        lambda s: [m for m in s.inbox() if m["item_list"][0]["text_item"]["text"] == "from a thread"], 10
    )
    assert found
    worker.join()
    with pytest.raises(TimeoutError):
        state.wait_for(lambda s: False, timeout=0.01)


def test_reset_and_configure(state: SimState) -> None:
    state.login_bot("alice")
    state.configure(auto_confirm=0.0)
    state.advance(hours=1)
    state.reset()
    assert state.bots == {} and state.latest_bot_id is None
    # Back to the config the state started with, and to real time.
    assert state.config == sim_config() and state.config.auto_confirm is None
    assert abs(state.snapshot()["clock_offset_seconds"]) == 0
    with pytest.raises(SimError, match="nonsense"):
        state.configure(nonsense=1)
    snap = state.snapshot()
    assert snap["base_url"] == "http://sim.test" and snap["bots"] == []
