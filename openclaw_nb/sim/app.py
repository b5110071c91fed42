"""The simulator's HTTP face: Starlette routes that translate iLink requests, CDN transfers and the control
API (``/_sim/...``) into calls on :class:`~openclaw_nb.sim.state.SimState`, plus a pure-ASGI fault injector.

Nothing here decides a protocol rule; it parses, calls the state, waits for its wake-ups and serialises.
Long polls wait on an ``asyncio.Event`` that the state sets from any thread via ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import hmac
import html
import json
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..protocol import constants as C
from ..protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH, ENDPOINTS
from ..protocol.redact import redact_headers
from .phone import (
    ACCESS_KEY,
    ADMIN,
    CLASS,
    MAX_UPLOAD_BYTES,
    OPEN,
    PHONE_PREFIX,
    CodeGuesses,
    PhoneSettings,
    client_of,
    code_form_response,
    code_matches,
    cross_site_refusal,
    is_page,
    is_phone_path,
    phone_routes,
    presented_code,
    scan_page,
    too_many_guesses,
)
from .state import (
    CDN_DOWNLOAD,
    CDN_PREFIX,
    CDN_UPLOAD,
    CONTROL_PREFIX,
    MAX_CONTROL_BODY_BYTES,
    PRIMARY,
    REDIRECT,
    SimError,
    SimState,
)

# One encoder for every answer: json.dumps with keyword arguments builds a new encoder per call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_JSON = "application/json"

Handler = Callable[[Request], Awaitable[Response]]


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        body = _encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        # Half of a surrogate pair (say("\ud83d")) has no UTF-8 form: send it escaped, as JSON allows.
        body = _encode_ascii(obj).encode("ascii")
    return Response(body, status_code=status, headers=headers, media_type=_JSON)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if not value:
        return None
    return value[7:].strip() if value[:7].lower() == "bearer " else value.strip()


async def _body(request: Request) -> dict[str, Any] | None:
    """The JSON object of a request body; ``{}`` for an empty body; None when it is not a JSON object."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


#: Stands for a request body that is not a JSON object, in conformance checks.
_NOT_AN_OBJECT = "not a JSON object"


def _not_an_object(endpoint: str) -> Response:
    return _json({"ret": C.RET_INVALID_ARGS, "errmsg": f"{endpoint}: the request body is not a JSON object"})


async def _long_poll(
    state: SimState,
    key: Any,
    poll: Callable[[bool], tuple[dict[str, Any] | None, float | None]],
    window: float,
) -> dict[str, Any]:
    """Hold until ``poll(False)`` has an answer or ``window`` seconds pass, then answer ``poll(True)``.

    ``poll`` returns ``(answer, None)`` or ``(None, seconds until a time-based change or None)``. The listener
    is registered before the re-check, so a change between the check and the wait is never lost.
    """
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed: the server is gone, nobody is waiting any more
            pass

    unlisten = state.listen(key, wake)
    deadline = loop.time() + window
    try:
        while True:
            event.clear()
            answer, due = poll(False)
            if answer is not None:
                return answer
            remaining = deadline - loop.time()
            if remaining <= 0 or state.closed:
                break
            timer = loop.call_later(remaining if due is None else min(remaining, due + 0.001), event.set)
            try:
                await event.wait()
            finally:
                timer.cancel()
    finally:
        unlisten()
    answer, _ = poll(True)
    assert answer is not None
    return answer


# --- fault injection -------------------------------------------------------------------------------

#: The header (or, for the scan page opened in a browser, the query parameter) carrying the admin token.
ADMIN_HEADER = "x-admin-token"
ADMIN_QUERY = "admin_token"
_ADMIN_HEADER_BYTES = ADMIN_HEADER.encode()


def admin_token_of(scope: Scope) -> str:
    """The admin token a request presents: its ``X-Admin-Token`` header, else its ``admin_token`` query
    parameter, else ``""``."""
    for name, value in scope.get("headers", ()):
        if name == _ADMIN_HEADER_BYTES:
            return str(value.decode("latin-1"))
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if key == ADMIN_QUERY:
            return unquote_plus(value)
    return ""


def admin_allowed(presented: str, expected: str) -> bool:
    """Whether ``presented`` is the admin token, compared in constant time (no timing hint of a prefix)."""
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


_ADMIN_REFUSED = (
    b'{"error":"the control API (/_sim/...) needs the admin token the simulator printed at start: send it in the '
    b'X-Admin-Token header (or ?admin_token= for the scan page); set your own with --admin-token"}'
)
_CLASS_REFUSED = (
    b'{"error":"the phone pages need the class code the teacher shows: type it on the join page (/_sim/phone/) '
    b'or add ?code=CODE to the link; the admin token (X-Admin-Token header) works too"}'
)


_PATH_NAMES: dict[str, str] = {ep.path: ep.name for ep in ENDPOINTS.values()}
_PATH_NAMES[CDN_PREFIX + CDN_UPLOAD_PATH] = CDN_UPLOAD
_PATH_NAMES[CDN_PREFIX + CDN_DOWNLOAD_PATH] = CDN_DOWNLOAD
#: What a malformed-JSON fault answers: a page cut off mid-value (valid HTTP, invalid JSON).
_MALFORMED = b'{"ret":0,"msgs":[{"seq":1,"message_id":'
#: What a ``not_json`` fault answers with HTTP 200: an error page from something in front of the API.
_NOT_JSON = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\n<body><h1>Service Unavailable</h1>"
    b"<p>The server is temporarily unable to service your request (simulated).</p></body></html>\n"
)
#: What an ``http_524`` fault answers: Cloudflare's page for an origin that took too long.
_CLOUDFLARE_524 = (
    b"<!DOCTYPE html>\n<html><head><title>ilinkai.weixin.qq.com | 524: A timeout occurred</title></head>\n"
    b"<body><h1>A timeout occurred</h1><p>Error code 524 (simulated)</p><p>The origin web server timed out "
    b"responding to this request.</p><p>Cloudflare Ray ID: 8f0000000000000a</p></body></html>\n"
)
_HTML = "text/html; charset=utf-8"
_CDN_NAMES = frozenset({CDN_UPLOAD, CDN_DOWNLOAD})
_CDN_UPLOAD_PATH = CDN_PREFIX + CDN_UPLOAD_PATH
#: Methods whose request body is read (within its route's limit) before anything else looks at it.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _respond(send: Send, status: int, body: bytes, content_type: str, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reset(receive: Receive, send: Send) -> None:
    """Drop the connection without an answer, with a TCP RST when the socket lets us set SO_LINGER 0.

    uvicorn's ``send`` is a bound method of its request cycle, which holds the transport. Aborting it and
    then waiting for ``http.disconnect`` makes uvicorn finish the request silently (no 500, no error log);
    httpx sees a transport error (ReadError / RemoteProtocolError). Other servers get a truncated answer.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, AttributeError, TypeError):
            pass  # a plain close still makes the client fail
    transport.abort()
    while (await receive())["type"] != "http.disconnect":
        pass


def _content_length(scope: Scope) -> int | None:
    """The request's declared ``Content-Length``, or None (absent, chunked, or not a number)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _read_within(receive: Receive, limit: int) -> tuple[bytes, Message | None] | None:
    """The whole request body when it is at most ``limit`` bytes (None when longer: reading stops there), and
    the ``http.disconnect`` that ended it early, if one did."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, ended: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` in one message, then defers to the server's own (which reports
    the disconnect a held long poll and a reset wait for)."""
    pending: list[Message] = [ended or {"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _too_large(kind: str, limit: int) -> tuple[bytes, str, list[tuple[bytes, bytes]]]:
    """A 413's body, content type and extra headers: JSON on API and control routes, text plus
    ``x-error-message`` on the CDN (as its other refusals)."""
    how = {
        "api": "raise it with the simulator's max_request_bytes knob",
        "control": "send big media in several requests",
        "cdn": "upload exactly the ciphertext size declared to getuploadurl",
        "phone": "a phone page sends photos and files up to that size: pick a smaller one",
    }[kind]
    message = f"request body over the simulator's limit of {limit:,} bytes for this route: {how}"
    if kind == "cdn":
        return message.encode(), "text/plain; charset=utf-8", [(C.H_ERROR_MESSAGE.encode(), message.encode())]
    key = "errmsg" if kind == "api" else "error"
    return _encode({"errcode": 413, key: message} if kind == "api" else {key: message}).encode(), _JSON, []


async def _discard(message: Any) -> None:
    """An ASGI ``send`` that drops what it is given (the lost answer of a ``lost_response`` fault)."""


class SimApp:
    """The outermost ASGI layer: applies the state's fault rules, then serves the iLink and CDN routes by an
    exact-path lookup, and hands everything else (control API, scan page, 404/405) to Starlette.

    The lookup matters for speed: Starlette's router tries each route's regex in turn and wraps every call in
    two exception-handling layers; the API paths are fixed strings, and their handlers never raise on client
    input. Costs one attribute check per request when no fault rule is set. The control API is never faulted.

    With ``admin_token`` set, every control route (``/_sim/...``) answers 401 unless the request presents it
    (see :func:`admin_token_of`); the iLink and CDN routes are unaffected. With ``require_class_code`` too, the
    phone pages, the scan page and its scan/confirm calls also let in the class code (``?code=`` or the cookie
    a right code sets); the rest of the control API stays the admin's. How a request got in is written into its
    scope (``ACCESS_KEY``) for the phone routes' per-user key check.
    """

    def __init__(
        self,
        app: ASGIApp,
        state: SimState,
        routes: list[Route],
        admin_token: str | None = None,
        *,
        class_code: str | None = None,
        require_class_code: bool = False,
        guesses: CodeGuesses | None = None,
    ) -> None:
        self.app = app
        #: Wrong class codes per address (shared with the code form's route).
        self.guesses = guesses or CodeGuesses()
        self.state = state
        self.admin_token = admin_token or None
        self.class_code = class_code or None
        self.require_class_code = bool(require_class_code and self.class_code)
        self.fast: dict[str, tuple[frozenset[str], Handler]] = {
            r.path: (frozenset(r.methods or ()), r.endpoint) for r in routes
        }
        self._date: tuple[int, bytes] = (-1, b"")

    def date_header(self) -> bytes:
        """The HTTP ``Date`` of an answer sent now, on the *simulated* clock (``sim.advance`` moves it).

        Real servers send a ``Date`` with every answer; clients read the server's clock from it (e.g. to say
        how long ago a message was, in the server's time). Formatted once per simulated second.
        """
        second = int(self.state.now())
        cached = self._date
        if cached[0] != second:
            cached = self._date = (second, email.utils.formatdate(second, usegmt=True).encode("ascii"))
        return cached[1]

    def _dated(self, send: Send) -> Send:
        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"date", self.date_header())]
            await send(message)

        return dated

    def _access(self, scope: Scope) -> str | int | None:
        """How a control or phone request is let in (``OPEN``, ``ADMIN`` or ``CLASS``), or None: refused, or the
        seconds its address must wait after too many wrong class codes. Each secret is compared in constant
        time, once."""
        if self.admin_token is None and not self.require_class_code:
            return OPEN
        if self.admin_token is not None and admin_allowed(admin_token_of(scope), self.admin_token):
            return ADMIN
        if self.require_class_code and self.class_code and is_phone_path(scope["path"]):
            if scope["path"] == PHONE_PREFIX + "/code":
                return OPEN  # where the code is typed; it compares the code itself (and counts wrong ones)
            presented = presented_code(scope)
            if not presented:
                return None
            client = client_of(scope)
            wait = self.guesses.retry_after(client)
            if wait is not None:
                return wait  # too many wrong codes from this address: not even checked
            if code_matches(presented, self.class_code):
                return CLASS
            self.guesses.failed(client)
        return None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP 401: the class-code form for a phone page opened in a browser, else JSON saying what is missing."""
        path = scope["path"]
        if self.require_class_code and is_phone_path(path):
            if is_page(scope["method"], path):
                await code_form_response()(scope, receive, send)
            else:
                await _respond(send, 401, _CLASS_REFUSED, _JSON, [])
            return
        await _respond(send, 401, _ADMIN_REFUSED, _JSON, [])

    def _body_limit(self, scope: Scope) -> tuple[str, int]:
        """Which size rule a request body falls under and its limit in bytes (a control request without the
        admin token got its 401 before any of its body was read)."""
        path = scope["path"]
        if _is_control(path):
            if is_phone_path(path) and path.startswith(PHONE_PREFIX):
                return "phone", MAX_UPLOAD_BYTES
            return "control", max(MAX_CONTROL_BODY_BYTES, self.state.config.max_request_bytes)
        if path == _CDN_UPLOAD_PATH:
            query = scope.get("query_string", b"").decode("latin-1")
            param = parse_qs(query).get("encrypted_query_param", [None])[0]
            return "cdn", self.state.upload_limit(param)
        return "api", self.state.config.max_request_bytes

    async def _limit_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Read a request body within its route's limit and return a ``receive`` that replays it, or answer
        HTTP 413 and return None. A declared ``Content-Length`` over the limit is refused unread; a body
        without one (chunked) is read up to the limit and no further."""
        kind, limit = self._body_limit(scope)
        declared = _content_length(scope)
        read = None if declared is not None and declared > limit else await _read_within(receive, limit)
        if read is None:
            body, content_type, extra = _too_large(kind, limit)
            await _respond(send, 413, body, content_type, [*extra, (b"connection", b"close")])
            return None
        return _replay(read[0], read[1], receive)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_send, send = send, self._dated(send)
            if _is_control(scope["path"]):
                # A web page of another site may not drive the simulator through its visitor's browser (the
                # control API is open on loopback without an admin token): its POSTs carry an Origin or
                # Sec-Fetch-Site that gives it away. Python, curl and the simulator's own pages send neither or
                # their own origin.
                if scope["method"] in _BODY_METHODS and (refusal := cross_site_refusal(scope)) is not None:
                    if not is_phone_path(scope["path"]):
                        refusal = (
                            "a page of another website sent this request to the simulator's control API; "
                            "call it from Python, curl or the simulator's own pages"
                        )
                    await _respond(send, 403, json.dumps({"error": refusal}).encode(), _JSON, [])
                    return
                access = self._access(scope)
                if access is None:
                    await self._refuse(scope, receive, send)
                    return
                if isinstance(access, int):
                    await too_many_guesses(access)(scope, receive, send)
                    return
                scope[ACCESS_KEY] = access
            if scope["method"] in _BODY_METHODS:
                limited = await self._limit_body(scope, receive, send)
                if limited is None:
                    return
                receive = limited
            latency = self.state.config.latency_ms
            if latency and scope["path"] in _PATH_NAMES:
                await asyncio.sleep(latency / 1000)  # the network's round trip: other requests are served meanwhile
            if self.state.has_faults and await self._fault(scope, receive, send, raw_send):
                return
            fast = self.fast.get(scope["path"])
            if fast is not None and scope["method"] in fast[0]:
                try:
                    response = await fast[1](Request(scope, receive))
                except ClientDisconnect:
                    return  # the client gave up (a cancelled long poll): nobody to answer, nothing to log
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _fault(self, scope: Scope, receive: Receive, send: Send, raw_send: Send) -> bool:
        """Apply a fault to this request; True when it was answered (or dropped) here. ``raw_send`` is the
        server's own ``send`` (a connection reset reaches the transport through it)."""
        name = _PATH_NAMES.get(scope["path"])
        decision = self.state.draw_fault(name)
        if decision is None:
            return False
        if decision.delay:
            await asyncio.sleep(decision.delay)
        kind = decision.kind
        if kind is None:
            return False
        if kind == "reset":
            await _reset(receive, raw_send)
        elif kind == "lost_response":
            fast = self.fast.get(scope["path"])
            if fast is not None:
                await fast[1](Request(scope, receive))  # done, but the answer never leaves
            else:
                await self.app(scope, receive, _discard)
            await _reset(receive, raw_send)
        elif kind == "http_500":
            await _respond(send, 500, b"Internal Server Error", "text/plain; charset=utf-8", [])
        elif kind == "http_429":
            too_many = _encode({"errmsg": "too many requests (simulated)"}).encode()
            await _respond(send, 429, too_many, _JSON, [(b"retry-after", str(decision.retry_after).encode())])
        elif kind == "malformed_json":
            await _respond(send, 200, _MALFORMED, _JSON, [])
        elif kind == "http_502":
            await _respond(send, 502, b"Bad Gateway", "text/plain; charset=utf-8", [])
        elif kind == "http_504":
            await _respond(send, 504, b"Gateway Timeout", "text/plain; charset=utf-8", [])
        elif kind == "http_400":
            message = f"client error {decision.status} (simulated)"
            if name in _CDN_NAMES:  # the CDN says what is wrong in x-error-message
                extra = [(C.H_ERROR_MESSAGE.encode(), message.encode())]
                await _respond(send, decision.status, message.encode(), "text/plain; charset=utf-8", extra)
            else:
                body = _encode({"errcode": decision.status, "errmsg": message}).encode()
                await _respond(send, decision.status, body, _JSON, [])
        elif kind == "http_524":
            await _respond(send, 524, _CLOUDFLARE_524, _HTML, [])
        elif kind == "not_json":
            await _respond(send, 200, _NOT_JSON, _HTML, [])
        else:  # stale_token
            stale = _encode({"ret": C.RET_STALE_TOKEN, "errcode": C.RET_STALE_TOKEN, "errmsg": "session timeout"})
            await _respond(send, 200, stale.encode(), _JSON, [])
        return True


# --- the application -------------------------------------------------------------------------------


def _is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def create_app(
    state: SimState,
    *,
    redirect_port: int | None = None,
    admin_token: str | None = None,
    class_code: str | None = None,
    require_class_code: bool = False,
    phone: PhoneSettings | None = None,
) -> ASGIApp:
    """The simulator's ASGI app over ``state``. Requests arriving on ``redirect_port`` are served as the
    second host that ``scaned_but_redirect`` points at; everything else as the primary host. With
    ``admin_token``, the control API answers only requests that present it. ``class_code`` turns the phone
    pages' per-user keys on (``phone`` holds their secret); ``require_class_code`` makes the phone pages ask
    for the code (or the admin token) as well."""
    settings = phone or PhoneSettings(class_code)
    if require_class_code and class_code and admin_token is None:
        admin_token = secrets.token_urlsafe(24)  # the rest of the control API stays closed: nobody has this one

    def role(request: Request) -> str:
        server = request.scope.get("server")
        return REDIRECT if redirect_port and server and server[1] == redirect_port else PRIMARY

    def conform(request: Request, name: str, body: Any) -> None:
        """Compare the request with the official client's (``conformance_log``); ``body``: see check_conformance."""
        if state.config.conformance_log:
            query = request.query_params.keys()
            state.check_conformance(name, request.method, request.scope["path"], request.headers, query, body)

    def record(request: Request, name: str, body: Any, json_body: bool = True) -> None:
        """Keep the request (``record_requests``) and check its conformance. ``body`` is what :func:`_body`
        read (None: not a JSON object); ``json_body=False``: the request has no JSON body."""
        conform(request, name, (_NOT_AN_OBJECT if body is None else body) if json_body else None)
        if state.config.record_requests:
            state.record_request(
                {
                    "endpoint": name,
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "headers": dict(request.headers),
                    "body": body,
                    "host_role": role(request),
                }
            )

    # --- iLink endpoints ---

    async def get_bot_qrcode(request: Request) -> Response:
        state.request_counts["get_bot_qrcode"] += 1
        # Older clients fetch by GET without a body; current ones POST {"local_token_list": [...]}.
        body = await _body(request) if request.method == "POST" else {}
        record(request, "get_bot_qrcode", body)
        tokens = (body or {}).get("local_token_list")
        return _json(state.create_qrcode(tokens if isinstance(tokens, list) else None))

    async def get_qrcode_status(request: Request) -> Response:
        state.request_counts["get_qrcode_status"] += 1
        record(request, "get_qrcode_status", None, json_body=False)
        params = request.query_params
        qrcode = params.get("qrcode")
        verify = [params.get("verify_code") or None]
        host = role(request)
        seen: list[int | None] = [None]  # this request's view of the QR's version (see SimState.qr_status)

        def poll(final: bool) -> tuple[dict[str, Any] | None, float | None]:
            code, verify[0] = verify[0], None  # a verify code is applied once, not on every re-check
            return state.qr_status(qrcode, verify_code=code, role=host, final=final, seen=seen)

        answer, _due = poll(False)
        if answer is None:
            answer = await _long_poll(state, ("qr", qrcode), poll, state.config.long_poll_timeout)
        return _json(answer)

    async def get_updates(request: Request) -> Response:
        state.request_counts["get_updates"] += 1
        body = await _body(request)
        record(request, "get_updates", body)
        if body is None:
            return _not_an_object("getupdates")
        token = _bearer(request)
        answer, bot_id = state.get_updates(token, body)
        if answer is None:

            def poll(final: bool) -> tuple[dict[str, Any] | None, float | None]:
                return state.get_updates(token, body, final=final)[0], None

            answer = await _long_poll(state, ("bot", bot_id), poll, state.config.long_poll_timeout)
        return _json(answer)

    def simple(name: str, call: Callable[[str | None, dict[str, Any]], dict[str, Any]]) -> Handler:
        async def handler(request: Request) -> Response:
            state.request_counts[name] += 1
            body = await _body(request)
            record(request, name, body)
            if body is None:
                return _not_an_object(ENDPOINTS[name].path.rsplit("/", 1)[-1])
            return _json(call(_bearer(request), body))

        return handler

    # --- CDN ---

    async def cdn_upload(request: Request) -> Response:
        state.request_counts[CDN_UPLOAD] += 1
        conform(request, CDN_UPLOAD, None)
        if request.method != "POST":
            message = "the CDN takes uploads by POST (the official client never uses PUT): POST the ciphertext"
            return Response(
                message.encode(),
                status_code=405,
                headers={C.H_ERROR_MESSAGE: message, "Allow": "POST"},
                media_type="text/plain",
            )
        data = await request.body()
        params = request.query_params
        status, value = state.cdn_upload(params.get("encrypted_query_param"), params.get("filekey"), data)
        if status == 200:
            return Response(b"", headers={C.H_ENCRYPTED_PARAM: value})
        return Response(
            value.encode("utf-8"), status_code=status, headers={C.H_ERROR_MESSAGE: value}, media_type="text/plain"
        )

    async def cdn_download(request: Request) -> Response:
        state.request_counts[CDN_DOWNLOAD] += 1
        conform(request, CDN_DOWNLOAD, None)
        data = state.cdn_download(request.query_params.get("encrypted_query_param"))
        if data is None:
            message = "unknown encrypted_query_param"
            return Response(
                message.encode(), status_code=404, headers={C.H_ERROR_MESSAGE: message}, media_type="text/plain"
            )
        return Response(data, media_type="application/octet-stream")

    # --- control API ---

    def control(fn: Callable[[Request, dict[str, Any]], Any]) -> Handler:
        """JSON in, JSON out; SimError becomes HTTP 400 with {"error": message}."""

        async def handler(request: Request) -> Response:
            body = await _body(request) if request.method in ("POST", "PUT") else {}
            if body is None:
                return _json({"error": "the request body is not a JSON object"}, 400)
            try:
                result = fn(request, body)
            except SimError as exc:
                return _json({"error": str(exc)}, 400)
            except (TypeError, ValueError) as exc:
                return _json({"error": f"bad arguments: {exc}"}, 400)
            return _json(result)

        return handler

    def path_qr(request: Request) -> str:
        return str(request.path_params["qrcode"])

    def ctl_state(request: Request, body: dict[str, Any]) -> Any:
        return state.snapshot()

    def ctl_reset(request: Request, body: dict[str, Any]) -> Any:
        state.reset()
        if body:
            state.configure(**body)
        return {"ok": True, "config": state.config.to_json()}

    def ctl_config(request: Request, body: dict[str, Any]) -> Any:
        if body:
            state.configure(**body)
        return state.config.to_json()

    def ctl_login(request: Request, body: dict[str, Any]) -> Any:
        return state.login_bot(body.get("user_id")).to_json()

    def ctl_revoke(request: Request, body: dict[str, Any]) -> Any:
        state.revoke_token(str(request.path_params["bot_id"]))
        return {"ok": True}

    def ctl_scenario(request: Request, body: dict[str, Any]) -> Any:
        flags = dict(body)
        qrcode = request.path_params.get("qrcode") or flags.pop("qrcode", None)
        count = flags.pop("count", None)
        return state.set_qr_scenario(qrcode, count=count, **flags).to_json()

    def ctl_clear_scenario(request: Request, body: dict[str, Any]) -> Any:
        state.clear_qr_scenarios()
        return {"ok": True}

    def ctl_qr(request: Request, body: dict[str, Any]) -> Any:
        return state.qr_json(path_qr(request))

    def ctl_scan(request: Request, body: dict[str, Any]) -> Any:
        state.scan(path_qr(request), body.get("user_id"))
        return state.qr_json(path_qr(request))

    def ctl_confirm(request: Request, body: dict[str, Any]) -> Any:
        state.confirm(path_qr(request), body.get("user_id"))
        return state.qr_json(path_qr(request))

    def ctl_expire(request: Request, body: dict[str, Any]) -> Any:
        state.expire(path_qr(request))
        return state.qr_json(path_qr(request))

    def ctl_inbound(request: Request, body: dict[str, Any]) -> Any:
        bot_id = body.get("bot_id")
        if isinstance(body.get("msg"), dict):
            return state.inbound(body["msg"], bot_id)
        user = body.get("from_user_id")
        kind = body.get("kind", "text")
        if kind == "text":
            if not isinstance(body.get("text"), str):
                raise SimError("inbound needs text (or kind + data_b64, or msg)")
            partial = body.get("partial")
            return state.say(
                user,
                body["text"],
                bot_id,
                quote=body.get("quote"),
                partial=tuple(partial) if isinstance(partial, list) else partial,
                id_only=_flag(body, "id_only"),
                run_id=body.get("run_id"),
            )
        if kind == "tool_call":
            return state.tool_call(
                user,
                body.get("tool_name", ""),  # tool_call explains a missing or odd name
                bot_id,
                call_id=body.get("tool_call_id"),
                status=body.get("status"),
                run_id=body.get("run_id"),
            )
        data = _b64(body, "data_b64")
        if kind == "image":
            thumb = _thumb(body)
            return state.send_image(user, data, bot_id, key_format=body.get("key_format", "both"), thumb=thumb)
        if kind == "file":
            return state.send_file(user, data, str(body.get("file_name") or "file.bin"), bot_id)
        if kind == "voice":
            return state.send_voice(user, data, body.get("text"), bot_id)
        if kind == "video":
            return state.send_video(user, data, bot_id, thumb=_thumb(body))
        raise SimError("kind is one of text, tool_call, image, file, voice, video")

    def ctl_conformance(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "DELETE":
            state.clear_conformance()
        return {
            "checked": state.conformance_checked,
            "conformance": [entry.to_json() for entry in state.conformance()],
        }

    def ctl_outbox(request: Request, body: dict[str, Any]) -> Any:
        params = request.query_params
        bot_id = params.get("bot_id")
        with_data = params.get("data") in ("1", "true", "yes")
        since = int(params.get("since") or 0)
        entries = [e for e in state.outbox[since:] if bot_id is None or e.bot_id == bot_id]
        return {"outbox": [e.to_json(with_data) for e in entries]}

    def ctl_faults(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            rule = state.add_fault(**body)
            return {"rule": rule.to_json(), "rules": [r.to_json() for r in state.faults]}
        if request.method == "DELETE":
            state.clear_faults()
        return {"rules": [r.to_json() for r in state.faults]}

    def ctl_advance(request: Request, body: dict[str, Any]) -> Any:
        allowed = {"seconds", "minutes", "hours", "days"}
        unknown = set(body) - allowed
        if unknown:
            raise SimError(f"advance takes {sorted(allowed)}, not {sorted(unknown)}")
        kwargs = dict(body)  # the state checks each amount (a finite number >= 0) and names the bad one
        state.advance(kwargs.pop("seconds", 0.0), **kwargs)
        return {"now_ms": state.now_ms()}

    def ctl_requests(request: Request, body: dict[str, Any]) -> Any:
        # Bearer tokens (and the CDN's parameter header) never leave the simulator whole, admin or not.
        return {"requests": [_redacted_request(entry) for entry in state.requests]}

    async def scan(request: Request) -> Response:
        try:
            info = state.qr_json(path_qr(request))
        except SimError as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc))}</p>", status_code=404)
        # Class access reaches scan and confirm but not expire (the admin's): the page offers what works.
        return scan_page(info, state.config.default_user, expire=request.scope.get(ACCESS_KEY) != CLASS)

    api = [
        Route(ENDPOINTS["get_bot_qrcode"].path, get_bot_qrcode, methods=["GET", "POST"]),
        Route(ENDPOINTS["get_qrcode_status"].path, get_qrcode_status, methods=["GET", "POST"]),
        Route(ENDPOINTS["get_updates"].path, get_updates, methods=["POST"]),
        Route(ENDPOINTS["send_message"].path, simple("send_message", state.send_message), methods=["POST"]),
        Route(ENDPOINTS["get_upload_url"].path, simple("get_upload_url", state.get_upload_url), methods=["POST"]),
        Route(ENDPOINTS["get_config"].path, simple("get_config", state.get_config), methods=["POST"]),
        Route(ENDPOINTS["send_typing"].path, simple("send_typing", state.send_typing), methods=["POST"]),
        Route(
            ENDPOINTS["notify_start"].path,
            simple("notify_start", lambda token, _body: state.notify(token, "start")),
            methods=["POST"],
        ),
        Route(
            ENDPOINTS["notify_stop"].path,
            simple("notify_stop", lambda token, _body: state.notify(token, "stop")),
            methods=["POST"],
        ),
        Route(CDN_PREFIX + CDN_UPLOAD_PATH, cdn_upload, methods=["POST", "PUT"]),
        Route(CDN_PREFIX + CDN_DOWNLOAD_PATH, cdn_download, methods=["GET"]),
    ]
    p = CONTROL_PREFIX
    controls = [
        Route(f"{p}/state", control(ctl_state), methods=["GET"]),
        Route(f"{p}/reset", control(ctl_reset), methods=["POST"]),
        Route(f"{p}/config", control(ctl_config), methods=["GET", "POST"]),
        Route(f"{p}/bots", control(ctl_login), methods=["POST"]),
        Route(f"{p}/bots/{{bot_id}}/revoke", control(ctl_revoke), methods=["POST"]),
        Route(f"{p}/qr_scenario", control(ctl_scenario), methods=["POST"]),
        Route(f"{p}/qr_scenario", control(ctl_clear_scenario), methods=["DELETE"]),
        Route(f"{p}/qrcodes/{{qrcode}}", control(ctl_qr), methods=["GET"]),
        Route(f"{p}/qrcodes/{{qrcode}}/scan", control(ctl_scan), methods=["POST"]),
        Route(f"{p}/qrcodes/{{qrcode}}/confirm", control(ctl_confirm), methods=["POST"]),
        Route(f"{p}/qrcodes/{{qrcode}}/expire", control(ctl_expire), methods=["POST"]),
        Route(f"{p}/qrcodes/{{qrcode}}/scenario", control(ctl_scenario), methods=["POST"]),
        Route(f"{p}/inbound", control(ctl_inbound), methods=["POST"]),
        Route(f"{p}/outbox", control(ctl_outbox), methods=["GET"]),
        Route(f"{p}/faults", control(ctl_faults), methods=["GET", "POST", "DELETE"]),
        Route(f"{p}/advance", control(ctl_advance), methods=["POST"]),
        Route(f"{p}/requests", control(ctl_requests), methods=["GET"]),
        Route(f"{p}/conformance", control(ctl_conformance), methods=["GET", "DELETE"]),
        Route(f"{p}/scan/{{qrcode}}", scan, methods=["GET"]),
        *phone_routes(state, settings),
    ]
    return SimApp(
        Starlette(routes=api + controls),
        state,
        api,
        admin_token,
        class_code=settings.class_code,
        require_class_code=require_class_code,
        guesses=settings.guesses,
    )


def _redacted_request(entry: dict[str, Any]) -> dict[str, Any]:
    headers = entry.get("headers")
    if not isinstance(headers, dict):
        return entry
    return {**entry, "headers": dict(redact_headers(headers.items()))}


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise SimError(f"{name} is true or false, got {value!r}")
    return value


def _b64(body: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(body.get(name) or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise SimError(f"{name} is the media's bytes in base64") from None


def _thumb(body: dict[str, Any]) -> bytes | bool | None:
    """An inbound image's or video's thumbnail: ``thumb_b64`` (its bytes), else ``thumb`` (true: a generated
    one, false: none), else None (the ``inbound_thumbnails`` knob decides)."""
    if body.get("thumb_b64"):
        return _b64(body, "thumb_b64")
    thumb = body.get("thumb")
    if thumb is not None and not isinstance(thumb, bool):
        raise SimError(f"thumb is true (a generated thumbnail) or false; send bytes as thumb_b64, got {thumb!r}")
    return thumb
