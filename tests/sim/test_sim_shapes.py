"""Every shape real traffic has, each opt-in: partial and ID-only quotes, quotes of images and of the bot's own
messages, tool-call items, thumbnails, voice transcripts, ``full_url``, ``run_id``, ids as strings, unknown
fields; the new fault kinds and the CDN's refusal of PUT. Checked on the wire JSON (raw httpx over 127.0.0.1)
or on the state's answers, never through the client's typed models."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import struct
from typing import Any

import httpx
import pytest
from simhelpers import call, sim_config, text_msg

from openclaw_nb import cli
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH
from openclaw_nb.sim import FaultRule, SimConfig, SimError, SimState, Simulator
from openclaw_nb.sim.state import THUMB_HEIGHT, THUMB_WIDTH, UNKNOWN_ITEM_TYPE, partial_quote

# --- the official client's reading of partial_text, written from its described behaviour -----------------------


def _units(text: str) -> tuple[int, ...]:
    """A string as JavaScript sees it: UTF-16 code units (indexOf and slice count these)."""
    raw = text.encode("utf-16-le", "surrogatepass")
    return struct.unpack(f"<{len(raw) // 2}H", raw)


def _index_of(text: tuple[int, ...], value: tuple[int, ...], start: int) -> int:
    for i in range(max(start, 0), len(text) - len(value) + 1):
        if text[i : i + len(value)] == value:
            return i
    return -1


def _nth(text: tuple[int, ...], value: tuple[int, ...], occurrence: Any, start: int = 0) -> int:
    """Position of occurrence number ``occurrence`` (0-based) of ``value``, searching on after each match."""
    if not value or not isinstance(occurrence, int) or occurrence < 0:
        return -1
    position = start
    for current in range(occurrence + 1):
        position = _index_of(text, value, position)
        if position < 0:
            return -1
        if current < occurrence:
            position += len(value)
    return position


def resolve_partial(full: str, partial: dict[str, Any]) -> str | None:
    """The excerpt a client following the official plugin finds: the "global" and the "relative" reading of
    ``endindex``; ``quotemd5`` picks between them (without it the global one wins)."""
    text, first, last = _units(full), _units(partial["start"]), _units(partial["end"])
    candidates: list[str] = []
    for mode in ("global", "relative"):
        begin = _nth(text, first, partial["startindex"])
        if begin < 0:
            continue
        after = 0 if mode == "global" else begin + len(first)
        end = _nth(text, last, partial["endindex"], after)
        if end < begin:
            continue
        units = text[begin : end + len(last)]
        found = struct.pack(f"<{len(units)}H", *units).decode("utf-16-le", "surrogatepass")
        if found not in candidates:
            candidates.append(found)
    md5 = partial.get("quotemd5")
    if not md5:
        return candidates[0] if candidates else None
    return next((c for c in candidates if hashlib.md5(c.encode("utf-8")).hexdigest() == md5.lower()), None)


def test_partial_quotes_resolve_to_the_intended_excerpt_as_the_official_client_reads_them() -> None:
    rng = random.Random(13)
    pieces = ["a", "b", "ab", " ", "é", "文", "😀", "👍🏽", "\n"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        begin = rng.randrange(len(text))
        stop = rng.randint(begin + 1, len(text))
        partial = partial_quote(text, (begin, stop))
        assert isinstance(partial["start"], str) and isinstance(partial["end"], str)
        assert isinstance(partial["startindex"], int) and isinstance(partial["endindex"], int)
        assert resolve_partial(text, partial) == text[begin:stop], (text, begin, stop, partial)
        # the global reading alone finds it too (a client that ignores quotemd5)
        assert resolve_partial(text, {**partial, "quotemd5": ""}) == text[begin:stop]


def test_partial_quote_fields_for_a_known_text() -> None:
    text = "a cat and a hat and a bat"
    partial = partial_quote(text, "a hat")
    # 'a' before "a hat": a, c[a]t, [a]nd -> occurrence 3; 't' of "hat" follows the one of "cat" -> 1
    assert partial == {
        "start": "a",
        "end": "t",
        "startindex": 3,
        "endindex": 1,
        "quotemd5": hashlib.md5(b"a hat").hexdigest(),
    }
    assert partial_quote(text, (10, 15)) == partial
    assert partial_quote("xx", (1, 2)) == {
        "start": "x",
        "end": "x",
        "startindex": 1,
        "endindex": 1,
        "quotemd5": hashlib.md5(b"x").hexdigest(),
    }


@pytest.mark.parametrize(
    ("excerpt", "message"),
    [
        ("dog", "not in the quoted text"),
        ("", "non-empty"),
        ((3, 3), "non-empty slice"),
        ((0, 99), "non-empty slice"),
        ((-1, 2), "non-empty slice"),
        ((True, 2), "(start, end)"),
        ([1], "(start, end)"),
        (5, "(start, end)"),
    ],
)
def test_bad_partial_quotes_are_explained(excerpt: Any, message: str) -> None:
    with pytest.raises(SimError, match=re.escape(message)):
        partial_quote("a cat", excerpt)


def test_say_with_partial_and_id_only_quotes(state: SimState) -> None:
    state.login_bot("alice")
    first = state.say("bob", "the quick brown fox")
    partial = state.say("bob", "which fox?", quote=first, partial="brown fox")
    ref = partial["item_list"][0]["ref_msg"]
    assert ref["svr_id"] == first["message_id"] and ref["message_item"]["text_item"]["text"] == "the quick brown fox"
    assert resolve_partial("the quick brown fox", ref["partial_text"]) == "brown fox"
    only_id = state.say("bob", "this one", quote=first["message_id"], id_only=True)
    assert only_id["item_list"][0]["ref_msg"] == {"svr_id": first["message_id"]}  # no message_item, no title
    both = state.say("bob", "and this", quote=first, id_only=True, partial=(4, 9))
    assert set(both["item_list"][0]["ref_msg"]) == {"svr_id", "partial_text"}
    assert resolve_partial("the quick brown fox", both["item_list"][0]["ref_msg"]["partial_text"]) == "quick"
    with pytest.raises(SimError, match="pass quote="):
        state.say("bob", "no quote", partial="fox")
    with pytest.raises(SimError, match="pass quote="):
        state.say("bob", "no quote", id_only=True)
    image = state.send_image("bob", b"\x89PNG image")
    with pytest.raises(SimError, match="needs a quoted message with text"):
        state.say("bob", "part of a picture?", quote=image, partial="PNG")


def test_quoting_an_image_and_the_bots_own_message(state: SimState) -> None:
    login = state.login_bot("alice")
    image = state.send_image("bob", b"\x89PNG image")
    quoted = state.say("bob", "look at this", quote=image)
    ref = quoted["item_list"][0]["ref_msg"]
    assert ref["message_item"]["type"] == C.ItemType.IMAGE and ref["title"] == ""
    assert ref["message_item"]["image_item"] == image["item_list"][0]["image_item"]
    sent = state.send_message(login.bot_token, text_msg("bob@im.wechat", quoted["context_token"], "it is a cat"))
    assert sent["ret"] == 0
    entry = state.outbox[-1]
    for quote in (entry, sent["message_id"], str(sent["message_id"])):
        reply = state.say("bob", "really?", quote=quote, partial="a cat")
        ref = reply["item_list"][0]["ref_msg"]
        assert ref["svr_id"] == sent["message_id"] and ref["title"] == "it is a cat"
        assert resolve_partial("it is a cat", ref["partial_text"]) == "a cat"
    assert state.say("bob", "that", quote=entry, id_only=True)["item_list"][0]["ref_msg"] == {
        "svr_id": sent["message_id"]
    }
    with pytest.raises(SimError, match="no message with that message_id"):
        state.say("bob", "?", quote=12345)


def test_tool_call_items(state: SimState) -> None:
    state.login_bot("alice")
    start = state.tool_call("bob", "search", run_id="run-1")
    item = start["item_list"][0]
    assert item["type"] == C.ItemType.TOOL_CALL_START == 11 and item["is_completed"] is False
    assert item["tool_call_start_item"]["tool_name"] == "search" and start["run_id"] == "run-1"
    call_id = item["tool_call_start_item"]["tool_call_id"]
    assert isinstance(call_id, str) and call_id
    end = state.tool_call("bob", "search", call_id=call_id, status="failed")
    item = end["item_list"][0]
    assert item["type"] == C.ItemType.TOOL_CALL_RESULT == 12 and item["is_completed"] is True
    assert item["tool_call_result_item"] == {"tool_name": "search", "tool_call_id": call_id, "status": "failed"}
    assert "run_id" not in end  # send_run_id is off by default
    for bad, message in (({"tool_name": ""}, "tool_name"), ({"status": 1}, "status"), ({"call_id": 7}, "call_id")):
        kwargs: dict[str, Any] = {"tool_name": "search", **bad}
        name = kwargs.pop("tool_name")
        with pytest.raises(SimError, match=message):
            state.tool_call("bob", name, **kwargs)
    with pytest.raises(SimError, match="run_id"):
        state.say("bob", "hi", run_id="")


def test_run_id_knob(state: SimState) -> None:
    state.login_bot("alice")
    assert "run_id" not in state.say("bob", "plain")
    state.configure(send_run_id=True)
    first, second = state.say("bob", "one"), state.send_file("bob", b"doc", "d.txt")
    for msg in (first, second):
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", msg["run_id"])
    assert first["run_id"] != second["run_id"]
    assert state.say("bob", "mine", run_id="r-7")["run_id"] == "r-7"


def test_unknown_fields_knob(state: SimState) -> None:
    login = state.login_bot("alice")
    plain = state.say("bob", "plain")
    assert "future_flag" not in plain and len(plain["item_list"]) == 1
    state.configure(unknown_fields=True)
    state.say("bob", "from the future")
    state.send_image("bob", b"\x89PNG")
    page, _ = state.get_updates(login.bot_token, {"get_updates_buf": ""})
    future = page["msgs"][1:]
    assert len(future) == 2
    for msg in future:
        assert msg["future_flag"] == 1
        assert [item["type"] for item in msg["item_list"]][-1] == UNKNOWN_ITEM_TYPE
        assert all("future_field" in item for item in msg["item_list"])
        assert msg["item_list"][-1]["future_item"] and msg["item_list"][-1]["msg_id"] > 2**63


def test_knobs_are_validated_everywhere(state: SimState, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ids_as_strings", "unknown_fields", "send_run_id", "inbound_thumbnails"):
        with pytest.raises(SimError, match=f"{name} is true or false"):
            state.configure(**{name: "yes"})
        assert getattr(state.configure(**{name: True}), name) is True
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(SimError, match="conformance_log"):
            state.configure(conformance_log=bad)
    with pytest.raises(SimError, match="ids_as_strings"):
        SimConfig(ids_as_strings=1)  # type: ignore[arg-type]
    assert cli.main(["sim", "--set", "unknown_fields=maybe"]) == 2
    assert "unknown_fields is true or false" in capsys.readouterr().err
    assert cli.main(["sim", "--set", "conformance_log=-3"]) == 2
    assert "conformance_log" in capsys.readouterr().err


def test_knobs_over_the_control_api(sim: Simulator, http: httpx.Client) -> None:
    knobs = {"ids_as_strings": True, "unknown_fields": True, "send_run_id": True, "inbound_thumbnails": True}
    config = http.post("/_sim/config", json={**knobs, "conformance_log": 5}).json()
    assert {k: config[k] for k in knobs} == knobs and config["conformance_log"] == 5
    bad = http.post("/_sim/config", json={"ids_as_strings": "yes"})
    assert bad.status_code == 400 and "ids_as_strings is true or false" in bad.json()["error"]
    assert http.get("/_sim/config").json()["ids_as_strings"] is True
    defaults = SimConfig()
    assert not (defaults.ids_as_strings or defaults.unknown_fields or defaults.send_run_id)
    assert not defaults.inbound_thumbnails and defaults.conformance_log > 0


# --- over HTTP: the wire JSON ----------------------------------------------------------------------------------


def raw_updates(http: httpx.Client, token: str) -> tuple[str, dict[str, Any]]:
    """One getupdates, as text and as JSON."""
    response = http.post(
        "/ilink/bot/getupdates", json={"get_updates_buf": ""}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return response.text, response.json()


def test_ids_as_strings_on_the_wire(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    first = sim.say("bob", "numbers")
    text, page = raw_updates(http, login.bot_token)
    assert f'"message_id":{first["message_id"]}' in text  # a bare JSON number by default
    sent = call(http, "send_message", text_msg("bob@im.wechat", first["context_token"], "ok"), token=login.bot_token)
    assert isinstance(sent["message_id"], int)
    sim.configure(ids_as_strings=True)
    quoted = sim.say("bob", "strings", quote=first)
    _, page = raw_updates(http, login.bot_token)
    msg = next(m for m in page["msgs"] if m["seq"] == quoted["seq"])
    item = msg["item_list"][0]
    for value in (
        msg["message_id"],
        item["msg_id"],
        item["ref_msg"]["svr_id"],
        item["ref_msg"]["message_item"]["msg_id"],
    ):
        assert isinstance(value, str) and value.isdigit() and int(value) > 2**63
    assert int(msg["message_id"]) == quoted["message_id"]  # exact, no float on the way
    assert isinstance(msg["seq"], int) and isinstance(msg["create_time_ms"], int)  # only ids change
    again = call(http, "send_message", text_msg("bob@im.wechat", quoted["context_token"], "ok"), token=login.bot_token)
    assert isinstance(again["message_id"], str) and int(again["message_id"]) == sim.outbox[-1].message_id
    # the stored messages keep their numbers: quoting by the string id works
    assert sim.say("bob", "re", quote=msg["message_id"])["item_list"][0]["ref_msg"]["svr_id"] == quoted["message_id"]


def test_inbound_shapes_through_the_control_api(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    first = http.post("/_sim/inbound", json={"from_user_id": "bob", "text": "one two three two"}).json()
    body = {"from_user_id": "bob", "text": "re", "quote": first["message_id"], "partial": [4, 13], "run_id": "r1"}
    partial = http.post("/_sim/inbound", json=body).json()
    assert resolve_partial("one two three two", partial["item_list"][0]["ref_msg"]["partial_text"]) == "two three"
    assert partial["run_id"] == "r1"
    by_text = {"from_user_id": "bob", "text": "re", "quote": str(first["message_id"]), "partial": "three two"}
    ref = http.post("/_sim/inbound", json={**by_text, "id_only": True}).json()["item_list"][0]["ref_msg"]
    assert set(ref) == {"svr_id", "partial_text"} and resolve_partial("one two three two", ref["partial_text"])
    bad = http.post("/_sim/inbound", json={**by_text, "id_only": "yes"})
    assert bad.status_code == 400 and "id_only is true or false" in bad.json()["error"]
    bad = http.post("/_sim/inbound", json={**by_text, "partial": "four"})
    assert bad.status_code == 400 and "not in the quoted text" in bad.json()["error"]
    tool = {"from_user_id": "bob", "kind": "tool_call", "tool_name": "calc", "tool_call_id": "c1"}
    start = http.post("/_sim/inbound", json=tool).json()["item_list"][0]
    assert start["type"] == 11 and start["tool_call_start_item"] == {"tool_name": "calc", "tool_call_id": "c1"}
    end = http.post("/_sim/inbound", json={**tool, "status": "completed"}).json()["item_list"][0]
    assert end["type"] == 12 and end["tool_call_result_item"]["status"] == "completed"
    nameless = http.post("/_sim/inbound", json={"from_user_id": "bob", "kind": "tool_call"})
    assert nameless.status_code == 400 and "tool_name" in nameless.json()["error"]
    png = base64.b64encode(b"\x89PNG picture").decode()
    image = http.post("/_sim/inbound", json={"from_user_id": "bob", "kind": "image", "data_b64": png, "thumb": True})
    assert image.json()["item_list"][0]["image_item"]["thumb_width"] == THUMB_WIDTH
    own = base64.b64encode(b"a tiny thumbnail").decode()
    video = {"from_user_id": "bob", "kind": "video", "data_b64": png, "thumb_b64": own}
    video_item = http.post("/_sim/inbound", json=video).json()["item_list"][0]["video_item"]
    assert "thumb_media" in video_item and "thumb_width" not in video_item  # not a PNG: no pixel size
    bad = http.post("/_sim/inbound", json={**video, "thumb_b64": None, "thumb": "big"})
    assert bad.status_code == 400 and "thumb is true" in bad.json()["error"]
    voice = {"from_user_id": "bob", "kind": "voice", "data_b64": png, "text": "hello there"}
    assert http.post("/_sim/inbound", json=voice).json()["item_list"][0]["voice_item"]["text"] == "hello there"
    _, page = raw_updates(http, login.bot_token)
    assert [m["item_list"][0]["type"] for m in page["msgs"]] == [1, 1, 1, 11, 12, 2, 5, 3]


def download(http: httpx.Client, sim: Simulator, media: dict[str, Any]) -> bytes:
    """The ciphertext behind a CDNMedia, fetched by its parameter and, when present, by its full_url (the
    two must agree)."""
    by_param = http.get(
        sim.cdn_base_url + CDN_DOWNLOAD_PATH, params={"encrypted_query_param": media["encrypt_query_param"]}
    )
    assert by_param.status_code == 200
    if "full_url" in media:
        assert media["full_url"].startswith(sim.cdn_base_url + CDN_DOWNLOAD_PATH)
        by_url = http.get(media["full_url"])
        assert by_url.status_code == 200 and by_url.content == by_param.content
    return by_param.content


def test_thumbnails_are_real_encrypted_downloads(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.send_image("bob", b"\x89PNG big picture")
    sim.send_video("bob", b"video frames")
    _, page = raw_updates(http, login.bot_token)
    fields = {k for m in page["msgs"] for k in m["item_list"][0][_payload(m)]}
    assert not {k for k in fields if k.startswith("thumb")}  # off by default
    sim.configure(inbound_thumbnails=True)
    sim.send_image("bob", b"\x89PNG big picture")
    sim.send_video("bob", b"video frames")
    own = bytes(crypto.encrypt(b"x" * 40, crypto.new_key()))  # any bytes will do as a thumbnail
    sim.send_image("bob", b"\x89PNG", thumb=own, key_format="hex")
    sim.send_image("bob", b"\x89PNG no thumb", thumb=False)
    sim.send_image("bob", b"\x89PNG plain", key_format="none")
    _, page = raw_updates(http, login.bot_token)
    image, video, custom, none, plain = (m["item_list"][0] for m in page["msgs"][2:])  # "" cursor: from the start
    key = crypto.parse_hex_key(image["image_item"]["aeskey"])
    for payload, item_key in ((image["image_item"], key), (video["video_item"], None)):
        if item_key is None:
            item_key = crypto.parse_media_aes_key(payload["media"]["aes_key"])
        assert payload["thumb_media"]["aes_key"] == payload["media"]["aes_key"]  # one key per item
        blob = download(http, sim, payload["thumb_media"])
        assert payload["thumb_size"] == len(blob)
        thumb = crypto.decrypt(blob, item_key)
        assert thumb[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", thumb[16:24]) == (THUMB_WIDTH, THUMB_HEIGHT)
        assert (payload["thumb_width"], payload["thumb_height"]) == (THUMB_WIDTH, THUMB_HEIGHT)
    custom_item = custom["image_item"]
    assert "aes_key" not in custom_item["thumb_media"]  # key_format="hex": only image_item.aeskey
    blob = download(http, sim, custom_item["thumb_media"])
    assert crypto.decrypt(blob, crypto.parse_hex_key(custom_item["aeskey"])) == own
    assert "thumb_width" not in custom_item
    assert "thumb_media" not in none["image_item"]
    assert download(http, sim, plain["image_item"]["thumb_media"])[:4] == b"\x89PNG"  # unencrypted, as the image
    with pytest.raises(SimError, match="thumb is"):
        sim.send_image("bob", b"\x89PNG", thumb="small")  # type: ignore[arg-type]


def _payload(msg: dict[str, Any]) -> str:
    return next(k for k in msg["item_list"][0] if k.endswith("_item"))


def test_full_url_on_every_inbound_media_and_thumbnail(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.configure(inbound_full_url=True, inbound_thumbnails=True)
    sim.send_image("bob", b"\x89PNG picture")
    sim.send_file("bob", b"a document", "d.txt")
    sim.send_voice("bob", b"#!SILK_V3 voice", "what I said")
    sim.send_video("bob", b"video frames")
    _, page = raw_updates(http, login.bot_token)
    medias = []
    for msg in page["msgs"]:
        payload = msg["item_list"][0][_payload(msg)]
        medias.append(payload["media"])
        if "thumb_media" in payload:
            medias.append(payload["thumb_media"])
    assert len(medias) == 6  # four media, two thumbnails
    for media in medias:
        assert "full_url" in media
        download(http, sim, media)
    assert page["msgs"][2]["item_list"][0]["voice_item"]["text"] == "what I said"


# --- faults --------------------------------------------------------------------------------------------------


def test_fault_http_4xx_json_on_the_api_text_on_the_cdn(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.add_fault(http_400=1.0, count=1, endpoints=["send_message"])
    bad = http.post("/ilink/bot/sendmessage", json={}, headers={"Authorization": f"Bearer {login.bot_token}"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/json")
    assert bad.json()["errcode"] == 400 and "client error 400" in bad.json()["errmsg"]
    http.post("/_sim/faults", json={"http_400": 1, "http_4xx_status": 403, "count": 1, "endpoints": ["cdn_upload"]})
    cdn = http.post(sim.cdn_base_url + CDN_UPLOAD_PATH, params={"encrypted_query_param": "p", "filekey": "k"})
    assert cdn.status_code == 403 and cdn.headers[C.H_ERROR_MESSAGE] == "client error 403 (simulated)"
    assert cdn.headers["content-type"].startswith("text/plain") and cdn.text == "client error 403 (simulated)"
    assert call(http, "notify_start", token=login.bot_token) == {"ret": 0}  # both rules are used up
    for status in (399, 500, True, "400"):
        with pytest.raises(SimError, match="http_4xx_status"):
            FaultRule.build(http_400=1.0, http_4xx_status=status)


def test_fault_cloudflare_524_and_a_200_that_is_not_json(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    sim.add_fault(http_524=1.0, count=1, endpoints=["get_qrcode_status"])
    timeout = http.get("/ilink/bot/get_qrcode_status", params={"qrcode": "any"})
    assert timeout.status_code == 524 and timeout.headers["content-type"].startswith("text/html")
    assert "524: A timeout occurred" in timeout.text
    sim.add_fault(not_json=1.0, count=2, endpoints=["get_updates", "cdn_download"])
    page = http.post("/ilink/bot/getupdates", json={}, headers={"Authorization": f"Bearer {login.bot_token}"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<!DOCTYPE html>")
    with pytest.raises(json.JSONDecodeError):
        page.json()
    cdn = http.get(sim.cdn_base_url + CDN_DOWNLOAD_PATH, params={"encrypted_query_param": "x"})
    assert cdn.status_code == 200 and cdn.text.startswith("<!DOCTYPE html>")
    assert sim.faults == []
    assert http.get("/ilink/bot/get_qrcode_status", params={"qrcode": "any"}).json()["status"] == "expired"


def test_cdn_refuses_put_uploads(sim: Simulator, http: httpx.Client) -> None:
    login = sim.login_bot("alice")
    data, key = b"picture", crypto.new_key()
    filekey = crypto.new_filekey()
    upload = call(
        http,
        "get_upload_url",
        {
            "filekey": filekey,
            "media_type": 1,
            "to_user_id": "alice@im.wechat",
            "rawsize": len(data),
            "rawfilemd5": crypto.md5_hex(data),
            "filesize": crypto.padded_size(len(data)),
            "no_need_thumb": True,
            "aeskey": crypto.key_to_hex(key),
        },
        token=login.bot_token,
    )
    cipher = crypto.encrypt(data, key)
    put = http.put(upload["upload_full_url"], content=cipher, headers={"Content-Type": "application/octet-stream"})
    assert put.status_code == 405 and put.headers["allow"] == "POST"
    assert "POST" in put.headers[C.H_ERROR_MESSAGE] and "PUT" in put.text
    assert C.H_ENCRYPTED_PARAM not in put.headers
    post = http.post(upload["upload_full_url"], content=cipher, headers={"Content-Type": "application/octet-stream"})
    assert post.status_code == 200 and post.headers[C.H_ENCRYPTED_PARAM]


def test_new_fault_kinds_are_in_the_state_config(state: SimState) -> None:
    rule = state.add_fault(http_524=True, not_json=0.5, http_400=0.25, http_4xx_status=404)
    assert (rule.http_524, rule.not_json, rule.http_400, rule.http_4xx_status) == (1.0, 0.5, 0.25, 404)
    with pytest.raises(SimError, match="probability"):
        state.add_fault(not_json=2)


def test_default_shapes_are_unchanged() -> None:
    """Nothing new appears unless asked for: the defaults still send the shapes clients were written for."""
    state = SimState(sim_config())
    login = state.login_bot("alice")
    said = state.say("bob", "hi")
    image = state.send_image("bob", b"\x89PNG")
    assert set(said) == {
        "seq",
        "message_id",
        "from_user_id",
        "to_user_id",
        "client_id",
        "create_time_ms",
        "update_time_ms",
        "delete_time_ms",
        "session_id",
        "group_id",
        "message_type",
        "message_state",
        "item_list",
        "context_token",
    }
    assert set(image["item_list"][0]["image_item"]) == {"media", "mid_size", "aeskey"}
    assert set(image["item_list"][0]["image_item"]["media"]) == {"encrypt_query_param", "aes_key", "encrypt_type"}
    sent = state.send_message(login.bot_token, text_msg("bob@im.wechat", said["context_token"]))
    assert isinstance(sent["message_id"], int)
