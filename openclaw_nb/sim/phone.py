"""Phone pages: a person in a browser plays a simulated WeChat user, writing to the bot and seeing its replies
live. Plain HTML, CSS and JavaScript from this module (no build step, nothing fetched from elsewhere); every
call the pages make is relative to their own address, so they work behind jupyter-server-proxy too.

Routes (all under ``/_sim/phone``; ``{user}`` is a short name such as ``alice`` or a full ``...@im.wechat``):

- ``GET /_sim/phone/`` the picker: pick a user (open mode) or create one (a name field); asks for the class
  code first when one is required.
- ``POST /_sim/phone/code`` ``{"code"}``: a right class code sets the ``openclaw_nb_class`` cookie.
- ``POST /_sim/phone/join`` ``{"name"}``: makes the user; answers ``{"user_id", "link"}`` (``link`` is relative
  to the picker: ``alice?k=KEY``).
- ``GET /_sim/phone/{user}`` the chat page; ``GET .../events`` its server-sent events; ``POST .../send``
  ``{"text", "quote"?}``; ``POST .../upload?kind=image|file&name=NAME`` with the raw bytes as the body;
  ``GET .../media/{message_id}/{index}`` a message's media, decrypted.

With a class code set, each user's routes need that user's key (``?k=``, HMAC of the user id and a random nonce of
its user record with a secret of this server run, so a reset ends every link): only the picker that created the
user, and the teacher (``sim.phone_url(user)``), hand it out. POSTs want ``application/json`` (uploads the
``X-Phone: 1`` header) and no cross-site origin. Nothing here ever shows a bot token, context token, typing
ticket, AES key or CDN parameter.

Stable DOM hooks (``data-testid``) for browser tests:

- picker: ``class-code``, ``join-code`` (code form); ``name``, ``create`` (new user); ``user-link`` (each
  existing user, open mode); ``error``.
- chat page: ``phone`` (the page), ``peer`` (the bot's id), ``me`` (this user's name), ``status``
  (``connected`` / ``reconnecting…``), ``messages`` (the list), ``bubble`` (one message row, with
  ``data-dir="in"`` for the bot's, ``"out"`` for this user's, and ``data-message-id``), inside it
  ``bubble-in`` / ``bubble-out`` (the bubble; click it for the menu), ``bubble-text``, ``bubble-image``
  (an ``img``), ``bubble-file`` (a download link), ``bubble-voice``, ``bubble-video``, ``bubble-note``,
  ``bubble-quote`` (what the message quotes; class ``partial`` for an excerpt); ``bubble-menu`` with
  ``quote``; ``quote-preview`` with ``quote-cancel`` (the quote the next message carries); ``typing`` (shown
  while the bot types: sendtyping 1, hidden on 2 or after 10 s without one); ``composer`` (the text box),
  ``send``, ``attach`` (the file input: a photo is sent as an image, anything else as a file); ``error``.
- scan page: ``qr-status``, ``verify-digits``, ``scan-user``, ``scan``, ``confirm``, ``expire`` (not with class
  access, which cannot expire a code), ``error``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import html
import json
import math
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Scope

from ..protocol import constants as C
from ..protocol import crypto
from .state import CONTROL_PREFIX, SimError, SimState, user_id_of

PHONE_PREFIX = CONTROL_PREFIX + "/phone"
#: The largest photo or file a phone page may upload (and the largest body any phone route reads).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: Seconds the typing indicator stays without a new ``sendtyping`` 1 (the official client re-sends every 5 s).
TYPING_TIMEOUT = 10.0
#: Messages a page gets when it connects (the latest ones); later ones arrive live.
HISTORY_LIMIT = 500
#: Seconds between SSE comments that keep an idle stream (and any proxy in between) open.
HEARTBEAT = 15.0
#: The cookie a right class code sets (path ``/``: behind a proxy the pages' prefix is not known here).
CLASS_COOKIE = "openclaw_nb_class"
#: The class-code query parameter, for a link that carries it.
CLASS_QUERY = "code"
#: Letters and digits nobody confuses (no 0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LENGTH = 6
#: The shortest class code a teacher may choose.
CODE_MIN = 6
#: Wrong class codes an address may send within GUESS_WINDOW seconds before it must wait.
GUESS_LIMIT = 10
GUESS_WINDOW = 60.0
#: The header the pages' scripts send with every POST (an upload's raw body has no JSON type to show for it).
PAGE_HEADER = "X-Phone"
#: Names the picker would confuse with its own routes.
_RESERVED = frozenset({"code", "join"})
_NAME_MAX = 32
_FILE_NAME_MAX = 128

#: What SimApp writes into the scope: how a request was let in.
ACCESS_KEY = "openclaw_nb.access"
OPEN, ADMIN, CLASS = "open", "admin", "class"

_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


# --- class codes and per-user keys -----------------------------------------------------------------------


def new_class_code() -> str:
    """A fresh class code: 6 characters of an alphabet without look-alikes (``K7QMXR``)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """A typed code as compared: upper case, spaces and dashes dropped (``k7q-mxr`` is ``K7QMXR``)."""
    return "".join(ch for ch in text.upper() if ch not in " -_\t")


def check_class_code(code: Any) -> str:
    """A class code chosen by the teacher, normalised; SimError names the rule when it breaks it."""
    rule = f"class_code is {CODE_MIN} to 32 letters or digits (or True for a random {CODE_LENGTH}-character one)"
    if not isinstance(code, str) or not CODE_MIN <= len(normalize_code(code)) <= 32:
        raise SimError(rule)
    value = normalize_code(code)
    if not value.isascii() or not value.isalnum():
        raise SimError(rule)
    return value


class CodeGuesses:
    """Wrong class codes per client address: after ``limit`` within ``window`` seconds, that address is told to
    wait (HTTP 429 with ``Retry-After``) instead of having its codes checked, so a code cannot be guessed by
    trying them all. Behind a proxy every request comes from the proxy: the last ``X-Forwarded-For`` address a
    loopback peer names is used then."""

    def __init__(self, limit: int = GUESS_LIMIT, window: float = GUESS_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failed: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failed.get(client, ()) if now - t < self.window]
        if times:
            self._failed[client] = times
        else:
            self._failed.pop(client, None)
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before its next code is checked, or None: it may try now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, client: str) -> None:
        """Count a wrong code from ``client``."""
        now = time.monotonic()
        with self._lock:
            self._recent(client, now)
            self._failed.setdefault(client, []).append(now)
            if len(self._failed) > 10_000:  # many addresses: forget the oldest rather than grow without end
                del self._failed[next(iter(self._failed))]


def client_of(scope: Scope) -> str:
    """The address a request comes from, as :class:`CodeGuesses` counts it."""
    peer = scope.get("client")
    host = str(peer[0]) if peer else ""
    if host in ("127.0.0.1", "::1", ""):
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
                return last or host
    return host


def too_many_guesses(wait: int) -> Response:
    """HTTP 429 for an address that typed too many wrong class codes."""
    body = _encode({"error": f"too many wrong class codes from here: wait {wait} s, then type the code again"})
    return Response(body.encode(), status_code=429, media_type="application/json", headers={"Retry-After": str(wait)})


def code_matches(presented: str, expected: str) -> bool:
    """Whether a typed class code is the class code, compared in constant time."""
    return hmac.compare_digest(
        normalize_code(presented).encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def user_key(secret: bytes, user_id: str) -> str:
    """The per-user key of a phone page link: HMAC-SHA256 of the user id, 22 URL-safe characters."""
    digest = hmac.new(secret, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:22]


def presented_code(scope: Scope) -> str:
    """The class code a request presents: ``?code=``, else the cookie, else ``""``."""
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name == CLASS_QUERY:
            return unquote_plus(value)
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            for cookie in value.decode("latin-1").split(";"):
                key, _, val = cookie.strip().partition("=")
                if key == CLASS_COOKIE:
                    return unquote_plus(val)
    return ""


def is_phone_path(path: str) -> bool:
    """Routes the class code opens: the phone pages, the scan page and its scan and confirm buttons."""
    if path == PHONE_PREFIX or path.startswith(PHONE_PREFIX + "/") or path.startswith(CONTROL_PREFIX + "/scan/"):
        return True
    parts = path.split("/")
    return len(parts) == 5 and parts[2] == "qrcodes" and parts[4] in ("scan", "confirm")


def _authority(value: str) -> str:
    """A host[:port] as compared: lower case, a default port dropped."""
    value = value.strip().lower()
    for default in (":80", ":443"):
        if value.endswith(default):
            return value[: -len(default)]
    return value


def cross_site_refusal(scope: Scope) -> str | None:
    """Why a request that changes something must be refused as coming from another site, or None. Browsers say
    where a request comes from: ``Sec-Fetch-Site: cross-site``, or an ``Origin`` whose host differs from the
    ``Host`` the request was sent to (or the ``X-Forwarded-Host`` of a proxy in between). Clients other than
    browsers send neither and pass. The Host itself is not checked: proxies forward requests under their own."""
    headers = {name: value.decode("latin-1") for name, value in scope.get("headers", ()) if name in _ORIGIN_HEADERS}
    if headers.get(b"sec-fetch-site", "").strip().lower() == "cross-site":
        return "another website sent this request (Sec-Fetch-Site: cross-site): use the phone page itself"
    origin = headers.get(b"origin")
    if origin is None:
        return None
    own = {_authority(headers.get(b"host", ""))}
    if b"x-forwarded-host" in headers:
        own.add(_authority(headers[b"x-forwarded-host"].split(",", 1)[0]))
    sent_from = _authority(origin.split("://", 1)[1]) if "://" in origin else ""
    if not sent_from or sent_from not in own:
        return "a page of another origin sent this request (its Origin header differs): use the phone page itself"
    return None


_ORIGIN_HEADERS = frozenset({b"sec-fetch-site", b"origin", b"host", b"x-forwarded-host"})


def is_page(method: str, path: str) -> bool:
    """An HTML page a person opens (answered with the class-code form when the code is missing)."""
    if method not in ("GET", "HEAD"):
        return False
    if path.startswith(CONTROL_PREFIX + "/scan/") or path in (PHONE_PREFIX, PHONE_PREFIX + "/"):
        return True
    rest = path[len(PHONE_PREFIX) + 1 :] if path.startswith(PHONE_PREFIX + "/") else ""
    return bool(rest) and "/" not in rest.rstrip("/")


@dataclass
class PhoneSettings:
    """What the phone routes need to know about access: the class code (None: open), the key secret, and a
    random nonce per user record, so a user made again after a reset gets a new key (the old link stops)."""

    class_code: str | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _nonces: dict[str, tuple[object, str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    guesses: CodeGuesses = field(default_factory=CodeGuesses, repr=False)

    def key(self, user_id: str, record: object) -> str:
        """The key of ``user_id`` as the user record ``record`` (the state's ``SimUser``): a record that
        replaced an earlier one under the same id (a reset, then the same name) gets a fresh nonce."""
        with self._lock:
            known = self._nonces.get(user_id)
            if known is None or known[0] is not record:
                known = self._nonces[user_id] = (record, secrets.token_urlsafe(16))
        return user_key(self.secret, f"{user_id}\n{known[1]}")

    def forget(self) -> None:
        """Drop every user's nonce (the simulator was reset): no earlier link opens a page again."""
        with self._lock:
            self._nonces.clear()

    def link(self, user_id: str, record: object) -> str:
        """The chat page's path for ``user_id`` (user record ``record``), with its key when a class code is set."""
        name = user_id.split("@", 1)[0] if user_id.endswith("@im.wechat") else user_id
        path = f"{PHONE_PREFIX}/{url_quote(name, safe='')}"
        return f"{path}?k={self.key(user_id, record)}" if self.class_code else path


# --- page data: messages as the phone shows them, never a secret ---------------------------------------------


def _sniff_image(data: bytes) -> str | None:
    """The type of a raster photo a browser shows safely (never SVG or HTML), from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _quote_json(ref: dict[str, Any]) -> dict[str, Any]:
    text = ref.get("title") if isinstance(ref.get("title"), str) else ""
    item = ref.get("message_item")
    if not text and isinstance(item, dict):
        text_item = item.get("text_item")
        if isinstance(text_item, dict) and isinstance(text_item.get("text"), str):
            text = text_item["text"]
        elif item.get("image_item") is not None:
            text = "[photo]"
        elif isinstance(item.get("file_item"), dict):
            text = f"[file] {item['file_item'].get('file_name') or ''}".strip()
    return {"text": str(text)[:200] or "a message", "partial": isinstance(ref.get("partial_text"), dict)}


def _message_json(
    msg: dict[str, Any], direction: str, available: Callable[[int, dict[str, Any]], bool]
) -> dict[str, Any]:
    """One message for the page: its items as text, media links (``media/{id}/{index}``) and notes."""
    message_id = str(msg.get("message_id"))
    items: list[dict[str, Any]] = []
    quoted: dict[str, Any] | None = None
    for index, item in enumerate(msg.get("item_list") or ()):
        if not isinstance(item, dict):
            continue
        ref = item.get("ref_msg")
        if quoted is None and isinstance(ref, dict):
            quoted = _quote_json(ref)
        src = f"media/{message_id}/{index}"
        text_item = item.get("text_item")
        if isinstance(text_item, dict):
            items.append({"kind": "text", "text": str(text_item.get("text", ""))})
        elif isinstance(item.get("image_item"), dict):
            image = {"kind": "image", "src": src}
            items.append(image if available(index, item) else _note("[a photo that cannot be opened]"))
        elif isinstance(item.get("file_item"), dict):
            file_item = item["file_item"]
            entry: dict[str, Any] = {"kind": "file", "name": str(file_item.get("file_name") or "file")[:200]}
            size = file_item.get("len")
            if isinstance(size, (int, str)) and str(size).isdigit():
                entry["size"] = int(size)
            if available(index, item):
                entry["src"] = src
            items.append(entry)
        elif isinstance(item.get("voice_item"), dict):
            transcript = item["voice_item"].get("text")
            voice = {"kind": "voice", "text": transcript if isinstance(transcript, str) else ""}
            items.append({**voice, "src": src} if available(index, item) else voice)
        elif isinstance(item.get("video_item"), dict):
            video = {"kind": "video", "src": src}
            items.append(video if available(index, item) else _note("[a video that cannot be opened]"))
        elif isinstance(item.get("tool_call_start_item"), dict) or isinstance(item.get("tool_call_result_item"), dict):
            payload = item.get("tool_call_start_item") or item.get("tool_call_result_item") or {}
            items.append(_note(f"[tool call {payload.get('tool_name', '')!s:.60} {payload.get('status', '')!s:.20}]"))
        else:
            items.append(_note(f"[an item of type {item.get('type')!s:.20}]"))
    time_ms = msg.get("create_time_ms")
    return {
        "id": message_id,
        "dir": direction,
        "time_ms": time_ms if isinstance(time_ms, int) else 0,
        "items": items,
        "quote": quoted,
    }


def _note(text: str) -> dict[str, Any]:
    return {"kind": "note", "text": text}


def _media_param(item: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for name in ("image_item", "file_item", "voice_item", "video_item"):
        payload = item.get(name)
        if isinstance(payload, dict) and isinstance(payload.get("media"), dict):
            param = payload["media"].get("encrypt_query_param")
            if isinstance(param, str):
                return param, payload
    return None


def _sse(event: str, data: Any) -> str:
    """One server-sent event; ``<``, ``>`` and ``&`` escaped in the JSON, so even a raw view of the stream holds
    no markup (JSON.parse gives the same strings back)."""
    text = _encode(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"event: {event}\ndata: {text}\n\n"


@dataclass
class _Cursor:
    """How far one event stream has read the state's lists (the lists themselves: a reset makes new ones)."""

    bot: Any = None
    outbox: Any = None
    typing: Any = None
    inbox_pos: int = 0
    outbox_pos: int = 0
    typing_pos: int = 0
    seen: set[Any] = field(default_factory=set)


def _catch_up(state: SimState, user_id: str, cur: _Cursor, record: object = None) -> list[str] | None:
    """The events a stream owes its page since ``cur``: a ``hello`` (then the history) when the bot changed or
    the state was reset, new messages in either direction, and the typing indicator. None when ``record`` is
    no longer the user's record (a reset): the stream ends rather than show a new user's messages."""
    out: list[str] = []
    with state._lock:
        if record is not None and state._users.get(user_id) is not record:
            return None
        bot_id = state._latest_bot
        bot = state._bots.get(bot_id) if bot_id is not None else None
        fresh = cur.bot is not bot or cur.outbox is not state._outbox or cur.typing is not state._typing
        if fresh or cur.inbox_pos > len(bot.inbox if bot else ()):
            cur.bot, cur.outbox, cur.typing = bot, state._outbox, state._typing
            cur.inbox_pos = cur.outbox_pos = cur.typing_pos = 0
            cur.seen = set()
            user = state._users.get(user_id)
            name = user.name if user is not None else user_id.split("@", 1)[0]
            out.append(_sse("hello", {"user": user_id, "name": name, "bot": bot_id}))
            fresh = True
        if bot is None:
            return out
        cdn = state._cdn
        found: list[tuple[int, int, dict[str, Any]]] = []
        for msg in bot.inbox[cur.inbox_pos :]:
            if msg.get("from_user_id") != user_id or msg.get("message_id") in cur.seen:
                continue
            cur.seen.add(msg.get("message_id"))

            def stored(_index: int, item: dict[str, Any]) -> bool:
                media = _media_param(item)
                return media is not None and media[0] in cdn

            found.append((_time(msg), len(found), _message_json(msg, "out", stored)))
        cur.inbox_pos = len(bot.inbox)
        for entry in state._outbox[cur.outbox_pos :]:
            if entry.bot_id != bot.bot_id or entry.to_user_id != user_id:
                continue
            found.append((entry.time_ms, len(found), _message_json(entry.msg, "in", _opened(entry.media))))
        cur.outbox_pos = len(state._outbox)
        last = None
        for event in state._typing[cur.typing_pos :]:
            if event.bot_id == bot.bot_id and event.user_id == user_id:
                last = event
        cur.typing_pos = len(state._typing)
        now_ms = state.now_ms()
    if fresh:
        found.sort(key=lambda row: (row[0], row[1]))
        found = found[-HISTORY_LIMIT:]
    out.extend(_sse("msg", row[2]) for row in found)
    if last is not None:
        on = last.status == C.TypingStatus.TYPING and (not fresh or now_ms - last.time_ms < TYPING_TIMEOUT * 1000)
        if on or not fresh:
            out.append(_sse("typing", {"on": on, "timeout_ms": int(TYPING_TIMEOUT * 1000)}))
    return out


def _opened(media: dict[int, bytes]) -> Callable[[int, dict[str, Any]], bool]:
    """Whether a sent message's item was decrypted (with the key its sendmessage carried)."""
    return lambda index, _item: index in media


def _time(msg: dict[str, Any]) -> int:
    value = msg.get("create_time_ms")
    return value if isinstance(value, int) else 0


# --- routes ----------------------------------------------------------------------------------------------


def _error(message: str, status: int) -> Response:
    return Response(_encode({"error": message}).encode(), status_code=status, media_type="application/json")


def _ok(data: Any) -> Response:
    return Response(_encode(data).encode(), media_type="application/json")


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _check_name(name: Any) -> str:
    """A picker name: ASCII letters, digits, ``_ . -`` only (no look-alike letters of other scripts)."""
    if not isinstance(name, str) or not name.strip():
        raise SimError("type a name for your WeChat user (letters, digits, _ . -; up to 32)")
    name = name.strip()
    if len(name) > _NAME_MAX or not set(name) <= _NAME_CHARS or name.lower() in _RESERVED or name in (".", ".."):
        raise SimError(
            f"{name[:40]!r} is not a name here: use up to 32 letters a-z, digits, _ . or - "
            "(plain ASCII: no accents or letters of other alphabets; not 'code' or 'join')"
        )
    return name


def _check_file_name(raw: str | None) -> str:
    """An uploaded file's name as the bot will see it: SimError for one a browser would never send."""
    name = (raw or "file").strip()
    bad = (
        name in (".", "..")
        or any(ch in "/\\" for ch in name)
        or any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name)
    )
    if bad:
        raise SimError(
            f"the file name {name[:60]!r} is refused: send a plain file name such as photo.png "
            "(not . or .., without / or \\ or control characters)"
        )
    return name[:_FILE_NAME_MAX] or "file"


def phone_routes(state: SimState, settings: PhoneSettings) -> list[Route]:
    """The phone pages and their JSON/SSE routes over ``state`` (see the module docstring)."""

    def access(request: Request) -> str:
        return str(request.scope.get(ACCESS_KEY, OPEN))

    def user_of(request: Request, create: bool = False) -> tuple[str, object | None]:
        """The user of a ``{user}`` route and its record, after the key check (``_Refused`` 404/403). In class
        mode a user must exist and the key must be its current one; otherwise ``create`` makes the user."""
        raw = str(request.path_params["user"])
        try:
            user_id = user_id_of(raw)
        except SimError as exc:
            raise _Refused(404, str(exc)) from None
        keyed = bool(settings.class_code) and access(request) != ADMIN
        with state._lock:
            record = state._users.get(user_id)
            if record is None and create and not keyed:
                state.add_user(user_id)
                record = state._users.get(user_id)
        if keyed:
            presented = request.query_params.get("k") or request.headers.get("x-phone-key") or ""
            # A user that does not exist has no key: compare with a random one, so the answer takes as long.
            expected = settings.key(user_id, record) if record is not None else secrets.token_urlsafe(16)
            if not hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode()) or not record:
                raise _Refused(
                    403,
                    "this link is not (or no longer) the one for this user: open the link you got when you joined "
                    "(it ends in ?k=...; a reset of the simulator ends every link), or join again under a new name",
                )
        return user_id, record

    def known_user(request: Request) -> str:
        return user_of(request)[0]

    def guarded(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            try:
                result: Response = await fn(request)
            except _Refused as exc:
                if is_page(request.method, request.url.path):
                    nonce = secrets.token_urlsafe(12)
                    page = _message_page(exc.message, nonce)
                    return HTMLResponse(page, status_code=exc.status, headers=_page_headers(nonce))
                return _error(exc.message, exc.status)
            except SimError as exc:
                return _error(str(exc), 400)
            return result

        return handler

    async def picker(request: Request) -> Response:
        with state._lock:
            users = [] if settings.class_code else [(u.user_id, u.name) for u in state._users.values()]
        links = [(name, settings.link(user_id, None)[len(PHONE_PREFIX) + 1 :]) for user_id, name in users]
        nonce = secrets.token_urlsafe(12)
        return HTMLResponse(_picker_page(links, bool(settings.class_code), nonce), headers=_page_headers(nonce))

    async def enter_code(request: Request) -> Response:
        body = await _json_body(request)
        code = body.get("code")
        if not settings.class_code:
            return _ok({"ok": True, "needed": False})
        client = client_of(request.scope)
        wait = settings.guesses.retry_after(client)
        if wait is not None:
            return too_many_guesses(wait)
        if not isinstance(code, str) or not code_matches(code, settings.class_code):
            settings.guesses.failed(client)
            return _error("that is not the class code: check the code your teacher shows and type it again", 401)
        response = _ok({"ok": True})
        response.set_cookie(CLASS_COOKIE, settings.class_code, path="/", httponly=True, samesite="strict")
        return response

    async def join(request: Request) -> Response:
        body = await _json_body(request)
        name = _check_name(body.get("name"))
        user_id = user_id_of(name)
        with state._lock:
            taken = user_id in state._users
            if taken and settings.class_code and access(request) != ADMIN:
                raise SimError(f"{name!r} is taken: pick another name (or open the link you got for it)")
            folded = name.lower()
            like = [
                u.user_id.split("@", 1)[0]
                for u in state._users.values()
                if u.user_id != user_id and folded in (u.name.lower(), u.user_id.split("@", 1)[0].lower())
            ]
            if like:  # Alice next to alice: two people would take each other's messages for their own
                raise SimError(f"{name!r} is too like {like[0]!r}, who is here already: pick another name")
            state.add_user(name, name)
            record = state._users.get(user_id)
        return _ok({"user_id": user_id, "link": settings.link(user_id, record)[len(PHONE_PREFIX) + 1 :]})

    async def page(request: Request) -> Response:
        user_id, record = user_of(request, create=True)
        if record is None:
            raise _Refused(404, "no such user here: join from the picker page")
        with state._lock:
            name = getattr(record, "name", user_id)
        nonce = secrets.token_urlsafe(12)
        return HTMLResponse(_chat_page(user_id, name, nonce), headers=_page_headers(nonce))

    async def send(request: Request) -> Response:
        user_id = known_user(request)
        body = await _json_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise SimError("send needs text: type a message first")
        limit = state.config.max_text_bytes or C.MAX_TEXT_BYTES
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise _Refused(413, f"the message is {size:,} bytes of UTF-8; a WeChat text holds {limit:,}: shorten it")
        quote = body.get("quote")
        if quote is not None:
            quote = _own_message(state, user_id, quote)
        msg = state.say(user_id, text, quote=quote)
        return _ok({"ok": True, "id": str(msg["message_id"])})

    async def upload(request: Request) -> Response:
        user_id = known_user(request)
        if request.headers.get(PAGE_HEADER) != "1":
            raise _Refused(
                403, f"an upload needs the header {PAGE_HEADER}: 1 (the phone page sends it; other websites cannot)"
            )
        data = await request.body()
        if not data:
            raise SimError("the upload is empty: choose a photo or a file")
        if len(data) > MAX_UPLOAD_BYTES:
            raise _Refused(413, _too_big(len(data)))
        name = _check_file_name(request.query_params.get("name"))
        kind = request.query_params.get("kind") or "auto"
        if kind not in ("auto", "image", "file"):
            raise SimError("kind is image or file")
        if kind != "file" and _sniff_image(data) is not None:
            msg = state.send_image(user_id, data)
        else:
            msg = state.send_file(user_id, data, name)
        return _ok({"ok": True, "id": str(msg["message_id"])})

    async def media(request: Request) -> Response:
        user_id = known_user(request)
        try:
            message_id = int(request.path_params["message_id"])
            index = int(request.path_params["index"])
        except ValueError:
            raise _Refused(404, "no such media") from None
        found = _media_of(state, user_id, message_id, index)
        if found is None:
            raise _Refused(404, "no such media in this conversation")
        data, file_name = found
        kind = _sniff_image(data)
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        }
        if kind is None:
            safe = url_quote(file_name or "file", safe="")
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{safe}"
        return Response(data, media_type=kind or "application/octet-stream", headers=headers)

    async def events(request: Request) -> Response:
        user_id, record = user_of(request, create=True)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def on_change() -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop is closed: the server is gone
                pass

        async def stream() -> Any:
            unlisten = state.listen("*", on_change)
            cursor = _Cursor()
            try:
                yield ": openclaw-nb phone stream\n\n"
                while True:
                    wake.clear()
                    chunks = _catch_up(state, user_id, cursor, record)
                    if chunks is None:  # a reset: the page connects again and is checked anew
                        yield _sse("bye", {"reason": "the simulator was reset", "again": True})
                        return
                    for chunk in chunks:
                        yield chunk
                    if state.closed:
                        yield _sse("bye", {"reason": "the simulator stopped"})
                        return
                    try:
                        await asyncio.wait_for(wake.wait(), HEARTBEAT)
                    except TimeoutError:
                        yield ": ping\n\n"
            finally:
                unlisten()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    p = PHONE_PREFIX
    return [
        Route(f"{p}/", guarded(picker), methods=["GET"]),
        Route(f"{p}/code", guarded(enter_code), methods=["POST"]),
        Route(f"{p}/join", guarded(join), methods=["POST"]),
        Route(f"{p}/{{user}}", guarded(page), methods=["GET"]),
        Route(f"{p}/{{user}}/events", guarded(events), methods=["GET"]),
        Route(f"{p}/{{user}}/send", guarded(send), methods=["POST"]),
        Route(f"{p}/{{user}}/upload", guarded(upload), methods=["POST"]),
        Route(f"{p}/{{user}}/media/{{message_id}}/{{index}}", guarded(media), methods=["GET"]),
    ]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _too_big(size: int) -> str:
    most = MAX_UPLOAD_BYTES // (1024 * 1024)
    return f"the upload is {size:,} bytes; a phone page sends up to {most} MiB: pick a smaller photo or file"


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object a POST carries, sent as ``application/json`` (a type no other website can send here
    without the browser asking first)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise _Refused(415, "send the body as JSON with the header Content-Type: application/json")
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise SimError("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise SimError("the request body is not a JSON object")
    return data


def _own_message(state: SimState, user_id: str, quote: Any) -> int:
    """The message id a phone quotes, checked to be in this user's conversation (no peeking at others')."""
    try:
        message_id = int(quote)
    except (TypeError, ValueError):
        raise SimError("quote is the id of a message in this conversation") from None
    with state._lock:
        msg = state._by_id.get(message_id)
        mine = msg is not None and user_id in (msg.get("from_user_id"), msg.get("to_user_id"))
    if not mine:
        raise SimError("quote is the id of a message in this conversation")
    return message_id


def _media_of(state: SimState, user_id: str, message_id: int, index: int) -> tuple[bytes, str] | None:
    """A message's media item decrypted, when the message is in ``user_id``'s conversation: the plaintext the
    bot uploaded (as decrypted with the key in its sendmessage), or what the user sent."""
    with state._lock:
        msg = state._by_id.get(message_id)
        if msg is None:
            return None
        items = msg.get("item_list") or []
        if not 0 <= index < len(items) or not isinstance(items[index], dict):
            return None
        found = _media_param(items[index])
        file_name = ""
        if found is not None and isinstance(found[1].get("file_name"), str):
            file_name = found[1]["file_name"]
        if msg.get("to_user_id") == user_id:
            for entry in reversed(state._outbox):
                if entry.message_id == message_id:
                    data = entry.media.get(index)
                    return (data, file_name) if data is not None else None
            return None
        if msg.get("from_user_id") != user_id or found is None:
            return None
        stored = state._cdn.get(found[0])
        if stored is None:
            return None
        blob, key = stored.data, stored.key
    try:
        return (crypto.decrypt(blob, key) if key is not None else blob), file_name
    except ValueError:
        return None


# --- HTML ------------------------------------------------------------------------------------------------


@functools.cache
def _asset(name: str) -> str:
    """A file of ``phone_assets/`` (the pages' CSS and scripts), read once."""
    return (resources.files(__package__) / "phone_assets" / name).read_text(encoding="utf-8")


def _page_headers(nonce: str) -> dict[str, str]:
    """No script or style runs unless it carries this answer's nonce: an injected ``<script>`` would not run
    even if some text slipped through unescaped."""
    allowed = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {allowed}; style-src {allowed}; img-src 'self' blob: data:; "
            "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _doc(title: str, nonce: str, body: str, script: str = "", data: dict[str, str] | None = None) -> str:
    """A whole page: ``body`` (escaped by its maker), the shared CSS, and ``script`` (an asset name) after the
    shared helpers; ``data`` become ``data-*`` attributes of ``<body>`` (how a script gets its settings)."""
    attrs = "".join(f' data-{name}="{html.escape(value, quote=True)}"' for name, value in (data or {}).items())
    scripts = f'<script nonce="{nonce}">{_asset("common.js")}\n{_asset(script)}</script>' if script else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><style nonce="{nonce}">{_asset("phone.css")}</style></head>\n'
        f"<body{attrs}>\n{body}\n{scripts}\n</body></html>"
    )


def _message_page(message: str, nonce: str) -> str:
    body = (
        '<div class="phone"><header><div class="title">Simulated WeChat</div></header><div class="card">'
        f'<p data-testid="error" id="error">{html.escape(message)}</p></div></div>'
    )
    return _doc("Simulated WeChat", nonce, body)


def code_form_response() -> Response:
    """HTTP 401 for a page opened without the class code: a form to type it, then the same page again."""
    nonce = secrets.token_urlsafe(12)
    body = """<div class="phone"><header><div class="title">Simulated WeChat</div>
<div class="sub">a class runs this simulator</div></header>
<form class="card" id="form"><label>Class code<input id="code" data-testid="class-code" autocomplete="off"
 autocapitalize="characters" maxlength="40" placeholder="the code your teacher shows"></label>
<button class="primary" data-testid="join-code" type="submit">Join</button>
<p class="error" id="error" data-testid="error" role="alert"></p></form></div>"""
    page = _doc("Simulated WeChat: class code", nonce, body, "code.js")
    return HTMLResponse(page, status_code=401, headers=_page_headers(nonce))


def _picker_page(links: list[tuple[str, str]], class_mode: bool, nonce: str) -> str:
    items = "".join(
        f'<li><a data-testid="user-link" data-link="{html.escape(link, quote=True)}" href="#">'
        f"{html.escape(name)}</a></li>"
        for name, link in links
    )
    existing = f'<div class="card"><b>Play an existing user</b><ul>{items}</ul></div>' if items else ""
    hint = (
        "Pick a name nobody in the class has: the page you get is yours (keep its link to come back)."
        if class_mode
        else "A new simulated WeChat user writes to the bot from this page."
    )
    body = f"""<div class="phone"><header><div class="title">Simulated WeChat</div>
<div class="sub">play a WeChat user talking to the bot</div></header>
{existing}
<form class="card" id="form"><b>New user</b><p class="muted">{hint}</p>
<input id="name" data-testid="name" maxlength="{_NAME_MAX}" autocomplete="off" placeholder="your name, e.g. alice">
<button class="primary" data-testid="create" type="submit">Start chatting</button>
<p class="error" id="error" data-testid="error" role="alert"></p></form></div>"""
    return _doc("Simulated WeChat", nonce, body, "picker.js")


def _chat_page(user_id: str, name: str, nonce: str) -> str:
    body = f"""<div class="phone" data-testid="phone" data-user="{html.escape(user_id, quote=True)}">
<header><div class="title" id="peer" data-testid="peer">the bot</div>
<div class="sub"><span data-testid="me">{html.escape(name)}</span> &middot;
<span id="status" data-testid="status">connecting…</span></div></header>
<main id="list" data-testid="messages"></main>
<div id="typing" class="typing" data-testid="typing" hidden>the bot is typing…</div>
<div id="menu" class="menu" data-testid="bubble-menu" hidden>
<button id="quote" data-testid="quote" type="button">Quote</button></div>
<div id="quoting" class="quoting" data-testid="quote-preview" hidden><span id="quoting-text"></span>
<button id="unquote" data-testid="quote-cancel" type="button" title="no quote">&times;</button></div>
<p id="error" class="error" data-testid="error" role="alert"></p>
<form id="form" class="bar"><label class="attach" title="send a photo or a file">+<input id="attach"
 data-testid="attach" type="file"></label>
<textarea id="composer" data-testid="composer" rows="1" placeholder="Message"></textarea>
<button class="primary" id="send" data-testid="send" type="submit">Send</button></form></div>"""
    return _doc(f"{name}: simulated WeChat", nonce, body, "chat.js", {"max-upload": str(MAX_UPLOAD_BYTES)})


def scan_page(info: dict[str, Any], default_user: str, expire: bool = True) -> Response:
    """The page behind ``qrcode_img_content``: the phone's side of the QR login (scan, confirm, and the verify
    digits to type into the client), in the phone pages' look. Never shows the bot token. ``expire``: whether
    it has the Expire button (not for someone let in by the class code, who may not expire a code)."""
    qrcode = str(info["qrcode"])
    code = info["scenario"].get("verify_code")
    scanned = info["status"] not in (C.QrStatus.WAIT, C.QrStatus.EXPIRED)
    if code and scanned:
        digits = (
            "<p>The phone shows these digits; type them where your client asks for the verify code:</p>"
            f'<div class="digits" data-testid="verify-digits">{html.escape(str(code))}</div>'
        )
    elif code:
        digits = '<p class="muted">This login needs a verify code: the digits appear here after you scan.</p>'
    else:
        digits = ""
    user = html.escape(str(info.get("user_id") or default_user), quote=True)
    nonce = secrets.token_urlsafe(12)
    expire_button = (
        '<button class="plain" id="expire" data-testid="expire" type="button">Expire</button>' if expire else ""
    )
    body = f"""<div class="phone"><header><div class="title">Simulated WeChat login</div>
<div class="sub">QR code <code>{html.escape(qrcode)}</code></div></header>
<div class="card"><p>Status: <b id="status" data-testid="qr-status">{html.escape(str(info["status"]))}</b></p>
{digits}
<label>WeChat user<input id="user" data-testid="scan-user" value="{user}" maxlength="80"></label>
<p><button class="primary" id="scan" data-testid="scan" type="button">Scan</button>
<button class="primary" id="confirm" data-testid="confirm" type="button">Confirm login</button>
{expire_button}</p>
<p class="error" id="error" data-testid="error" role="alert"></p>
<p class="muted">The bot token is never shown here: your client receives it from get_qrcode_status once you
confirm.</p></div></div>"""
    page = _doc("Simulated WeChat scan", nonce, body, "scan.js", {"qrcode": qrcode})
    return HTMLResponse(page, headers=_page_headers(nonce))
