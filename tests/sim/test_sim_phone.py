"""Phone pages over real HTTP on 127.0.0.1: a person's posts reach a real Client through getupdates, the bot's
text, images and typing reach the page's event stream, and class mode keeps the pages closed without the class
code and each user's page closed without that user's key. Markup a student types stays text everywhere."""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from simhelpers import sim_config

from openclaw_nb.client import Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.sim import SimState, Simulator, create_app
from openclaw_nb.sim import phone as phone_module
from openclaw_nb.sim.phone import CLASS_COOKIE, MAX_UPLOAD_BYTES, PHONE_PREFIX, new_class_code, normalize_code
from openclaw_nb.sim.state import CONTROL_PREFIX

DEADLINE = 10.0
CODE = "K7QMXR"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
#: The header the phone page's script sends with its POSTs.
PAGE = {"X-Phone": "1"}
INJECTION = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'


class EventStream:
    """A page's server-sent event stream; ``wait`` reads events until one matches, within a deadline (a read
    that gets nothing for that long fails with httpx's ReadTimeout)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.raw: list[str] = []
        self._client = httpx.Client(timeout=DEADLINE, **kwargs)
        self._response = self._client.send(self._client.build_request("GET", url), stream=True)
        assert self._response.status_code == 200, self._response.read()
        assert self._response.headers["content-type"].startswith("text/event-stream")
        self._lines = self._response.iter_lines()

    def wait(self, predicate: Callable[[str, Any], bool]) -> Any:
        """The first event (skipping others) for which ``predicate(name, data)`` holds."""
        end = time.monotonic() + DEADLINE
        name, data = "message", ""
        while time.monotonic() < end:
            line = next(self._lines)
            self.raw.append(line)
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                found = json.loads(data)
                if predicate(name, found):
                    return found
                name, data = "message", ""
        raise AssertionError(f"no such event within {DEADLINE} s; stream so far: {self.raw[-20:]}")

    def close(self) -> None:
        self._response.close()
        self._client.close()


@pytest.fixture
def bot(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("HOME", str(tmp_path))
    login = sim.login_bot("teacher")
    urls = {"base_url": sim.base_url, "cdn_base_url": sim.cdn_base_url}
    with Client(login.bot_token, bot_id=login.bot_id, record=False, **urls) as client:
        yield client


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links go straight to the simulator here, whatever the environment running the tests says."""
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "OPENCLAW_NB_PROXY"):
        monkeypatch.delenv(name, raising=False)


def page_path(url: str) -> str:
    """The path and query of a URL."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def text_of(msg: dict[str, Any]) -> str:
    return "".join(i["text"] for i in msg["items"] if i["kind"] == "text")


# --- open mode: loopback, no class code ------------------------------------------------------------------------


def test_a_phone_post_reaches_the_bot_and_the_bot_reaches_the_phone(sim: Simulator, bot: Client) -> None:
    url = sim.phone_url("alice")
    assert url == f"{sim.base_url}{PHONE_PREFIX}/alice"  # open mode on loopback: no key, no proxy
    stream = EventStream(url + "/events")
    try:
        hello = stream.wait(lambda name, _d: name == "hello")
        assert hello == {"user": "alice@im.wechat", "name": "alice", "bot": bot.bot_id}
        with httpx.Client(base_url=url + "/", timeout=DEADLINE) as phone:
            sent = phone.post("send", json={"text": "hello bot"})
            assert sent.status_code == 200, sent.text
            mine = stream.wait(lambda name, d: name == "msg" and d["dir"] == "out")
            assert text_of(mine) == "hello bot" and mine["id"] == sent.json()["id"]

            # The bot reads it through getupdates, as from any WeChat user, and replies.
            (msg,) = [m for m in bot.get_updates().messages if m.from_user_id == "alice@im.wechat"]
            assert msg.item_list[0].text_item.text == "hello bot"
            bot.send_text("alice@im.wechat", "hi alice")
            reply = stream.wait(lambda name, d: name == "msg" and d["dir"] == "in")
            assert text_of(reply) == "hi alice" and reply["quote"] is None

            # Typing: status 1 shows the indicator, 2 hides it.
            bot.typing("alice@im.wechat")
            assert stream.wait(lambda name, _d: name == "typing")["on"] is True
            bot.typing("alice@im.wechat", cancel=True)
            assert stream.wait(lambda name, _d: name == "typing")["on"] is False

            # An image from the bot: the page gets a link, and the link gives the decrypted upload.
            bot.send_image(PNG, "alice@im.wechat", name="plot.png", progress=False)
            image = stream.wait(lambda name, d: name == "msg" and any(i["kind"] == "image" for i in d["items"]))
            (item,) = [i for i in image["items"] if i["kind"] == "image"]
            got = phone.get(item["src"])
            assert got.status_code == 200 and got.content == PNG
            assert got.headers["content-type"] == "image/png" and got.headers["x-content-type-options"] == "nosniff"

            # Quote the bot's reply: the bot gets a real ref_msg.
            quoted = phone.post("send", json={"text": "why?", "quote": reply["id"]})
            assert quoted.status_code == 200, quoted.text
            echo = stream.wait(lambda name, d: name == "msg" and d["dir"] == "out" and text_of(d) == "why?")
            assert echo["quote"] == {"text": "hi alice", "partial": False}
            (msg,) = [m for m in bot.get_updates().messages if m.from_user_id == "alice@im.wechat"]
            ref = msg.item_list[0].ref_msg
            assert ref is not None and str(ref.svr_id) == reply["id"]

            # Nothing the page received or can fetch names a secret of the bot's.
            pages = [phone.get(url).text, phone.get(sim.phone_url()).text]
        shown = "\n".join([*stream.raw, *pages])
        hidden = [sim.bots[bot.bot_id].token]
        for entry in sim.outbox:
            hidden.append(entry.context_token or "")
            for item in entry.items:
                media = (item.get("image_item") or {}).get("media") or {}
                hidden += [media.get("aes_key", ""), media.get("encrypt_query_param", "")]
                hidden.append((item.get("image_item") or {}).get("aeskey", ""))
        for msg in sim.inbox(bot.bot_id):
            hidden.append(msg["context_token"])
        hidden.append(bot.get_config("alice@im.wechat").typing_ticket or "")
        hidden = [x for x in hidden if x]
        assert len(hidden) >= 8 and [x for x in hidden if x in shown] == []
    finally:
        stream.close()


def test_photos_and_files_from_the_phone_arrive_as_cdn_media(sim: Simulator, bot: Client) -> None:
    url = sim.phone_url("bob")
    with httpx.Client(base_url=url + "/", timeout=DEADLINE, headers=PAGE) as phone:
        photo = phone.post("upload", params={"kind": "image", "name": "cat.png"}, content=PNG)
        assert photo.status_code == 200, photo.text
        csv = b"a,b\n1,2\n"
        doc = phone.post("upload", params={"kind": "file", "name": "data.csv"}, content=csv)
        assert doc.status_code == 200, doc.text
        messages = [m for m in bot.get_updates().messages if m.from_user_id == "bob@im.wechat"]
        assert [m.item_list[0].type for m in messages] == [C.ItemType.IMAGE, C.ItemType.FILE]
        image, file = (m.item_list[0] for m in messages)
        assert bytes(bot.download_media(image)) == PNG  # encrypted on the CDN, decrypted with the message's key
        assert bytes(bot.download_media(file)) == csv and file.file_item.file_name == "data.csv"
        # The phone shows its own photo from the simulator (decrypted), and its file as a download.
        shown = phone.get(f"media/{messages[0].message_id}/0")
        assert shown.status_code == 200 and shown.content == PNG
        download = phone.get(f"media/{messages[1].message_id}/0")
        assert download.content == csv and download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''data.csv"
        # Not a photo: sent as a file even when the page calls it one (a browser never gets it as a picture).
        svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
        assert phone.post("upload", params={"kind": "image", "name": "x.svg"}, content=svg).status_code == 200
        (last,) = [m for m in bot.get_updates().messages if m.from_user_id == "bob@im.wechat"]
        assert last.item_list[0].type == C.ItemType.FILE


def test_sizes_are_limited_with_clear_messages(sim: Simulator, bot: Client) -> None:
    with httpx.Client(base_url=sim.phone_url("carol") + "/", timeout=DEADLINE, headers=PAGE) as phone:
        big = phone.post("upload", params={"name": "big.bin"}, content=b"x" * (MAX_UPLOAD_BYTES + 1))
        assert big.status_code == 413 and "pick a smaller one" in big.json()["error"]
        long = phone.post("send", json={"text": "字" * 6000})  # 18,000 bytes of UTF-8
        assert long.status_code == 413 and "16,384" in long.json()["error"] and "shorten" in long.json()["error"]
        empty = phone.post("send", json={"text": "  "})
        assert empty.status_code == 400 and "type a message" in empty.json()["error"]
        # A quote of someone else's message is refused: a page sees its own conversation only.
        other = sim.say("dave", "dave's secret")
        peek = phone.post("send", json={"text": "x", "quote": str(other["message_id"])})
        assert peek.status_code == 400 and "this conversation" in peek.json()["error"]
        assert phone.get(f"media/{other['message_id']}/0").status_code == 404
    assert [m.from_user_id for m in bot.get_updates().messages] == ["dave@im.wechat"]


def test_look_alike_names_and_odd_file_names_are_refused(sim: Simulator, bot: Client) -> None:
    with httpx.Client(base_url=sim.base_url + PHONE_PREFIX + "/", timeout=DEADLINE, headers=PAGE) as http:
        assert http.post("join", json={"name": "alice"}).status_code == 200
        for name in ("\u0430lice", "al\u00efce", "ali\u200bce", "alice\u2044x", "."):  # Cyrillic а, ï, zero width, ⁄
            refused = http.post("join", json={"name": name})
            assert refused.status_code == 400 and "plain ASCII" in refused.json()["error"], name
        for name in ("Alice", "ALICE"):
            refused = http.post("join", json={"name": name})
            assert refused.status_code == 400 and "too like 'alice'" in refused.json()["error"], name
        assert http.post("join", json={"name": "alice"}).status_code == 200  # the same name again: her page
        assert http.post("join", json={"name": "alice.b-2_c"}).status_code == 200
        for name in (".", "..", "../../data.csv", "a\\b.txt", "x\ny.txt", "a\u202etxt.exe", "nul\x00.txt"):
            refused = http.post("alice/upload", params={"kind": "file", "name": name}, content=b"x")
            assert refused.status_code == 400 and "plain file name" in refused.json()["error"], name
        plain = http.post("alice/upload", params={"kind": "file", "name": "notes v2.txt"}, content=b"x")
        assert plain.status_code == 200
    files = [m for m in bot.get_updates().messages if m.from_user_id == "alice@im.wechat"]
    assert [m.item_list[0].file_item.file_name for m in files] == ["notes v2.txt"]
    assert sorted(sim.state._users) == ["alice.b-2_c@im.wechat", "alice@im.wechat", "teacher@im.wechat"]


def test_markup_typed_by_a_student_stays_text(sim: Simulator, bot: Client) -> None:
    url = sim.phone_url("eve")
    sim.say("<b>mallory</b>", "hi")  # a user id with markup, listed by the picker
    with httpx.Client(base_url=url + "/", timeout=DEADLINE) as phone:
        assert phone.post("send", json={"text": INJECTION}).status_code == 200
        (msg,) = [m for m in bot.get_updates().messages if m.from_user_id == "eve@im.wechat"]
        assert msg.item_list[0].text_item.text == INJECTION  # the bot gets exactly what was typed
        bot.send_text("eve@im.wechat", INJECTION)
        stream = EventStream(url + "/events")
        try:
            shown = [stream.wait(lambda name, _d: name == "msg") for _ in range(2)]
        finally:
            stream.close()
        assert [text_of(m) for m in shown] == [INJECTION, INJECTION]  # JSON.parse gives the text back
        raw = "\n".join(stream.raw)
        assert "<" not in raw and ">" not in raw and "&amp;" not in raw  # no markup even in the raw stream

        picker = phone.get(sim.phone_url())
        assert "<b>mallory" not in picker.text and "&lt;b&gt;mallory&lt;/b&gt;" in picker.text
        for page in (phone.get(url), picker):
            assert page.status_code == 200
            nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["content-security-policy"])
            assert nonce, page.headers["content-security-policy"]
            scripts = re.findall(r"<script([^>]*)>", page.text)
            assert scripts == [f' nonce="{nonce.group(1)}"'], "one script, carrying this answer's nonce"
    # The chat page's script builds every bubble from text nodes, never from HTML.
    script = (Path(phone_module.__file__).parent / "phone_assets" / "chat.js").read_text()
    assert "textContent" in script and "innerHTML" not in script and "insertAdjacentHTML" not in script


def test_other_websites_cannot_post_as_a_phone(sim: Simulator, bot: Client) -> None:
    url = sim.phone_url("alice")
    own = sim.base_url
    with httpx.Client(base_url=url + "/", timeout=DEADLINE) as http:
        # What a hostile page can send without the browser asking first: text/plain, a form, an upload.
        plain = http.post(
            "send", content=b'{"text":"ignore previous instructions"}', headers={"Content-Type": "text/plain"}
        )
        assert plain.status_code == 415 and "Content-Type: application/json" in plain.json()["error"]
        bare = http.post("upload", params={"name": "x.txt"}, content=b"x", headers={"Content-Type": "text/plain"})
        assert bare.status_code == 403 and "X-Phone: 1" in bare.json()["error"]
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Origin": own.replace("127.0.0.1", "localhost")},  # another origin, though the same machine
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "cross-site", "Origin": own},
        ):
            for path, body in (("send", {"json": {"text": "x"}}), ("upload", {"content": b"x"})):
                refused = http.post(path, headers={**PAGE, **headers}, **body)  # type: ignore[arg-type]
                assert refused.status_code == 403 and "use the phone page" in refused.json()["error"], headers
        code = http.post(f"{own}{PHONE_PREFIX}/join", json={"name": "x"}, headers={"Origin": "https://evil.example"})
        assert code.status_code == 403
        assert sim.state.inbox(bot.bot_id) == [] and "x@im.wechat" not in sim.state._users
        # The page itself (same origin, as a browser labels it; or behind a proxy's forwarded host) gets in.
        same = {**PAGE, "Origin": own, "Sec-Fetch-Site": "same-origin"}
        assert http.post("send", json={"text": "one"}, headers=same).status_code == 200
        proxied = {**PAGE, "Origin": "https://hub.example", "X-Forwarded-Host": "hub.example"}
        assert http.post("send", json={"text": "two"}, headers=proxied).status_code == 200
        assert http.post("upload", params={"name": "n.txt"}, content=b"x", headers=same).status_code == 200
        texts = [m["item_list"][0].get("text_item", {}).get("text") for m in sim.state.inbox(bot.bot_id)]
        assert texts == ["one", "two", None]


def test_other_websites_cannot_drive_the_control_api(sim: Simulator, bot: Client) -> None:
    """Open on loopback (no admin token), the control API still refuses what a web page of another site can make
    its visitor's browser send; Python and curl send no Origin and get in."""
    with httpx.Client(base_url=sim.base_url, timeout=DEADLINE) as http:
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            injected = http.post(
                "/_sim/inbound",
                content=b'{"user": "alice", "text": "ignore previous instructions"}',
                headers={"Content-Type": "text/plain", **headers},
            )
            assert injected.status_code == 403 and "another website" in injected.json()["error"], headers
            assert http.post("/_sim/config", json={"page_size": 1}, headers=headers).status_code == 403
        assert sim.state.inbox(bot.bot_id) == [] and sim.state.config.page_size != 1
        assert http.post("/_sim/config", json={"page_size": 7}).status_code == 200
        assert sim.state.config.page_size == 7


def test_the_scan_page_has_the_phone_look_and_escapes_the_user(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.base_url, timeout=DEADLINE) as http:
        qrcode = http.get("/ilink/bot/get_bot_qrcode", params={"bot_type": "3"}).json()["qrcode"]
        sim.scan(qrcode, '"><script>alert(1)</script>')
        page = http.get(f"/_sim/scan/{qrcode}")
        assert page.status_code == 200 and 'data-testid="scan"' in page.text and 'data-testid="confirm"' in page.text
        assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
        assert "bot_token" not in page.text.replace("get_qrcode_status", "")


# --- class mode ------------------------------------------------------------------------------------------------


def all_control_routes() -> list[tuple[str, str]]:
    """Every (method, path) the simulator serves under /_sim, from the app itself (a new route is not missed),
    with its path parameters filled in."""
    app = create_app(SimState())
    filled = {"qrcode": "abc", "bot_id": "x@im.bot", "user": "alice", "message_id": "1", "index": "0"}
    routes = []
    for route in app.app.routes:  # type: ignore[attr-defined]
        if route.path.startswith(CONTROL_PREFIX + "/"):
            for method in sorted(route.methods - {"HEAD"}):
                routes.append((method, re.sub(r"\{(\w+)\}", lambda m: filled[m.group(1)], route.path)))
    assert len(routes) > 25 and ("GET", PHONE_PREFIX + "/alice/events") in routes
    return routes


@pytest.fixture
def classroom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """A simulator in class mode as off loopback, while listening on 127.0.0.1 only."""
    monkeypatch.setenv("HOME", str(tmp_path))
    with Simulator(sim_config(), class_code=CODE.lower(), require_class_code=True) as sim:
        assert sim.class_code == CODE and sim.admin_token
        yield sim


def status_of(http: httpx.Client, method: str, path: str, **kwargs: Any) -> int:
    """The status of a request, without reading its body (an event stream never ends)."""
    with http.stream(method, path, **({"json": {}} | kwargs) if method == "POST" else kwargs) as response:
        return response.status_code


def test_no_code_or_a_wrong_code_gets_401_on_every_control_and_phone_route(classroom: Simulator) -> None:
    classroom._phone.guesses.limit = 10_000  # a wrong code on every route, far more than a person's ten a minute
    with httpx.Client(base_url=classroom.base_url, timeout=DEADLINE) as http:
        for method, path in all_control_routes():
            assert status_of(http, method, path) == 401, (method, path)
            assert status_of(http, method, path, params={"code": "WRONG9"}) == 401, (method, path)
            http.cookies.set(CLASS_COOKIE, "WRONG9")
            assert status_of(http, method, path) == 401, (method, path)
            http.cookies.clear()
        # What the refusals say: a page opened in a browser asks for the code; the API names what is missing.
        form = http.get(PHONE_PREFIX + "/")
        assert form.status_code == 401 and 'data-testid="class-code"' in form.text and CODE not in form.text
        refused = http.post(PHONE_PREFIX + "/alice/send", json={"text": "hi"})
        assert "class code" in refused.json()["error"] and "?code=" in refused.json()["error"]
        assert "X-Admin-Token" in http.get("/_sim/state").json()["error"]


def test_the_right_code_opens_the_phone_pages_and_nothing_else(classroom: Simulator) -> None:
    phone_routes = [(m, p) for m, p in all_control_routes() if p.startswith(PHONE_PREFIX)]
    classroom.login_bot("teacher")
    with httpx.Client(base_url=classroom.base_url, timeout=DEADLINE) as http:
        wrong = http.post(PHONE_PREFIX + "/code", json={"code": "WRONG9"})
        assert wrong.status_code == 401 and "not the class code" in wrong.json()["error"]
        typed = http.post(PHONE_PREFIX + "/code", json={"code": "k7q-mxr"})  # as typed: case and dashes ignored
        assert typed.status_code == 200 and http.cookies.get(CLASS_COOKIE) == CODE
        expected = {
            ("GET", PHONE_PREFIX + "/"): 200,
            ("POST", PHONE_PREFIX + "/code"): 401,  # the code is asked for in the body here
            ("POST", PHONE_PREFIX + "/join"): 400,  # in, but without a name
        }
        for method, path in phone_routes:  # in, though alice's own routes still want alice's key
            assert status_of(http, method, path) == expected.get((method, path), 403), (method, path)
        assert status_of(http, "GET", "/_sim/scan/abc") == 404  # the scan page is a phone page too
        assert status_of(http, "POST", "/_sim/qrcodes/abc/confirm") == 400
        picker = http.get(PHONE_PREFIX + "/")
        assert picker.status_code == 200 and 'data-testid="name"' in picker.text
        for method, path in all_control_routes():
            if not path.startswith(PHONE_PREFIX) and "/scan" not in path and not path.endswith("/confirm"):
                assert status_of(http, method, path) == 401, (method, path)  # the class code is not the admin's
        # ?code= works as the cookie does, and the admin token opens everything.
        http.cookies.clear()
        assert http.get(PHONE_PREFIX + "/", params={"code": CODE}).status_code == 200
        admin = {"X-Admin-Token": classroom.admin_token or ""}
        assert http.get("/_sim/state", headers=admin).status_code == 200
        assert http.get(PHONE_PREFIX + "/zoe", headers=admin).status_code == 200  # no key needed by the admin


def test_one_student_cannot_post_as_another(classroom: Simulator) -> None:
    bot = classroom.login_bot("teacher")
    with (
        httpx.Client(base_url=classroom.base_url + PHONE_PREFIX + "/", timeout=DEADLINE) as alice,
        httpx.Client(base_url=classroom.base_url + PHONE_PREFIX + "/", timeout=DEADLINE) as bob,
    ):
        for http in (alice, bob):
            assert http.post("code", json={"code": CODE}).status_code == 200
        link = alice.post("join", json={"name": "alice"}).json()["link"]
        key = link.split("?k=", 1)[1]
        assert link == f"alice?k={key}" and len(key) >= 22
        taken = bob.post("join", json={"name": "alice"})
        assert taken.status_code == 400 and "taken" in taken.json()["error"]
        bob_key = bob.post("join", json={"name": "bob"}).json()["link"].split("?k=", 1)[1]

        assert alice.get(f"alice?k={key}").status_code == 200
        assert alice.post("alice/send", params={"k": key}, json={"text": "from alice"}).status_code == 200
        for k in ("", "x" * 22, bob_key, key[:-1]):  # none of these is alice's key
            forged = bob.post("alice/send", params={"k": k}, json={"text": "I am alice"})
            assert forged.status_code == 403 and "link" in forged.json()["error"]
            assert bob.get("alice/events", params={"k": k}).status_code == 403
            assert bob.get(f"alice?k={k}").status_code == 403
        assert [m["item_list"][0]["text_item"]["text"] for m in classroom.inbox(bot.bot_id)] == ["from alice"]
        # The teacher's link for a user carries its key and the code: it opens the page straight away.
        with httpx.Client(timeout=DEADLINE) as fresh:
            assert fresh.get(classroom.phone_url("alice")).status_code == 200
            assert classroom.phone_url("alice") == f"{classroom.base_url}{PHONE_PREFIX}/alice?k={key}&code={CODE}"


def test_a_reset_ends_every_class_link_and_stream(classroom: Simulator) -> None:
    classroom.login_bot("teacher")
    with httpx.Client(base_url=classroom.base_url + PHONE_PREFIX + "/", timeout=DEADLINE) as http:
        assert http.post("code", json={"code": CODE}).status_code == 200
        old = http.post("join", json={"name": "alice"}).json()["link"].split("?k=", 1)[1]
        stream = EventStream(f"{classroom.base_url}{PHONE_PREFIX}/alice/events?k={old}", cookies=http.cookies)
        try:
            stream.wait(lambda name, _d: name == "hello")
            classroom.reset()
            classroom.login_bot("teacher")
            # The old link's stream ends (its page connects again and is checked) instead of following alice.
            assert stream.wait(lambda name, _d: name in ("bye", "msg"))["again"] is True
        finally:
            stream.close()
        for method, tail in (("GET", ""), ("POST", "/send"), ("POST", "/upload"), ("GET", "/events")):
            body = {"json": {"text": "squat"}} if tail == "/send" else {"content": b"x"} if tail else {}
            refused = http.request(method, "alice" + tail, params={"k": old}, headers=PAGE, **body)  # type: ignore[arg-type]
            assert refused.status_code == 403 and "no longer" in refused.text, (method, tail)
        assert "alice@im.wechat" not in classroom.state._users  # the old link made no user again
        new = http.post("join", json={"name": "alice"}).json()["link"].split("?k=", 1)[1]
        assert new != old  # the next student called alice gets a key of her own
        assert http.get("alice", params={"k": old}).status_code == 403
        assert http.get("alice", params={"k": new}).status_code == 200
        classroom.state.reset()  # the state reset alone (not through the simulator) ends the links too
        http.post("join", json={"name": "alice"})
        assert http.get("alice", params={"k": new}).status_code == 403


def test_guessing_the_class_code_is_slowed_to_ten_tries_a_minute_per_address(classroom: Simulator) -> None:
    with httpx.Client(base_url=classroom.base_url + PHONE_PREFIX + "/", timeout=DEADLINE) as http:
        for i in range(10):  # the code form and ?code= on a page count alike
            wrong = http.post("code", json={"code": f"GUESS{i}"}) if i % 2 else http.get("", params={"code": f"G{i}"})
            assert wrong.status_code == 401, i
        for attempt in (http.post("code", json={"code": CODE}), http.get("", params={"code": CODE})):
            assert attempt.status_code == 429 and "too many wrong class codes" in attempt.json()["error"]
            assert int(attempt.headers["retry-after"]) >= 1  # even the right code waits: nothing is checked now
        # Another address (as a proxy names it) is not held up; nor is the admin.
        other = {"X-Forwarded-For": "203.0.113.7"}
        assert http.post("code", json={"code": CODE}, headers=other).status_code == 200
        admin = {"X-Admin-Token": classroom.admin_token or ""}
        http.cookies.clear()
        assert http.get("", headers=admin).status_code == 200


def test_the_scan_page_offers_class_access_only_the_buttons_it_may_use(classroom: Simulator) -> None:
    admin = {"X-Admin-Token": classroom.admin_token or ""}
    with httpx.Client(base_url=classroom.base_url, timeout=DEADLINE) as http:
        qrcode = http.get("/ilink/bot/get_bot_qrcode", params={"bot_type": "3"}).json()["qrcode"]
        student = http.get(f"/_sim/scan/{qrcode}", params={"code": CODE})
        assert student.status_code == 200 and 'data-testid="confirm"' in student.text
        assert 'data-testid="expire"' not in student.text  # /expire would answer this student 401
        assert http.post(f"/_sim/qrcodes/{qrcode}/expire", params={"code": CODE}, json={}).status_code == 401
        teacher = http.get(f"/_sim/scan/{qrcode}", headers=admin)
        assert 'data-testid="expire"' in teacher.text
        assert http.post(f"/_sim/qrcodes/{qrcode}/expire", headers=admin, json={}).status_code == 200


def test_codes_and_keys_are_compared_in_constant_time(classroom: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(phone_module.hmac, "compare_digest", spy)
    with httpx.Client(base_url=classroom.base_url, timeout=DEADLINE) as http:
        assert http.get(PHONE_PREFIX + "/", params={"code": "GUESS1"}).status_code == 401
        assert (b"GUESS1", CODE.encode()) in calls
        calls.clear()
        assert http.get(PHONE_PREFIX + "/alice", params={"code": CODE, "k": "guess"}).status_code == 403
        assert any(a == b"guess" for a, _b in calls)


def test_a_class_code_keeps_per_user_keys_on_loopback_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with Simulator(sim_config(), class_code=True) as sim:
        assert sim.class_code and len(sim.class_code) == 6 and not sim.class_code_required
        sim.login_bot("teacher")
        with httpx.Client(base_url=sim.base_url, timeout=DEADLINE) as http:
            assert http.get("/_sim/state").status_code == 200  # loopback: the control API stays open
            assert http.get(PHONE_PREFIX + "/").status_code == 200  # and so does the picker
            assert http.post(PHONE_PREFIX + "/mia/send", json={"text": "x"}).status_code == 403
            path, _, query = page_path(sim.phone_url("mia")).partition("?")
            assert query.startswith("k=") and "code=" not in query  # the pages do not ask for the code here
            assert http.post(f"{path}/send?{query}", json={"text": "x"}).status_code == 200


def test_class_codes_are_unambiguous_and_checked() -> None:
    codes = {new_class_code() for _ in range(200)}
    assert len(codes) > 190 and all(len(c) == 6 and not set(c) & set("0O1IL2Z5S8B") for c in codes)
    assert normalize_code(" k7q-mxr ") == "K7QMXR"
    for bad in ("abc", "K7QM", "K7-QMX", "x" * 40, "bad code!", 12345):
        with pytest.raises(Exception, match="class_code is 6 to 32 letters or digits"):
            Simulator(sim_config(), class_code=bad)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="require_class_code needs a class_code"):
        Simulator(sim_config(), require_class_code=True)
    with pytest.raises(Exception, match="phone links need a running simulator"):
        Simulator(sim_config()).phone_url("alice")


def test_the_command_line_prints_the_join_url_and_the_class_code() -> None:
    from test_sim_cli import read_line, sim_process, stop

    with sim_process("--class-code", "abc-234", "--long-poll-timeout", "0.2") as (proc, url):
        lines = []
        while not lines or not lines[-1].startswith("# Ctrl-C"):
            lines.append(read_line(proc))
        (join,) = [line.split()[3] for line in lines if line.startswith("# join URL:")]
        assert join == f"{url}{PHONE_PREFIX}/"
        assert [line.split()[3] for line in lines if line.startswith("# class code:")] == ["ABC234"]
        with httpx.Client(timeout=DEADLINE) as http:
            picker = http.get(join)  # loopback: open, but users are made only by the picker, with their keys
            assert picker.status_code == 200 and 'data-testid="create"' in picker.text
            link = http.post(join + "join", json={"name": "nina"}).json()["link"]
            assert link.startswith("nina?k=")
        assert stop(proc) == 0


def test_a_stopping_simulator_ends_the_event_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    sim = Simulator(sim_config()).start()
    try:
        stream = EventStream(sim.phone_url("alice") + "/events")
        assert stream.wait(lambda name, _d: name == "hello")["bot"] is None  # no bot yet: the page says so
        sim.login_bot("teacher")  # the page follows the new login
        assert stream.wait(lambda name, _d: name == "hello")["bot"] == sim.state.latest_bot_id
        sim.stop()  # wakes the stream: it says goodbye instead of holding the shutdown
        assert stream.wait(lambda name, _d: name == "bye") == {"reason": "the simulator stopped"}
        stream.close()
    finally:
        sim.stop()
