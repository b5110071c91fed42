"""The one table of iLink endpoints: path, method, default timeout, request and response models.

The client builds requests from it, the simulator routes by it, and the docs list it. ``build_request``
turns a payload into a :class:`RequestSpec` (no I/O); :mod:`.codec` turns the answer into a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import constants as C
from . import models as m
from .headers import ClientIdentity
from .redact import redact_headers, redact_json


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    method: str
    timeout: float
    request_model: type[m.WireModel] | None
    response_model: type[m.ApiResponse]
    #: Long polls: a client-side timeout is a normal, empty answer, not an error.
    long_poll: bool = False
    #: Fixed query parameters (``bot_type=3`` on the QR fetch).
    query: Mapping[str, str] = field(default_factory=dict)
    #: False for the QR fetch: the official client sends it with no ``Authorization`` and no ``base_info``,
    #: even when it holds a token.
    authenticated: bool = True
    doc: str = ""


def _ep(*args: Any, **kwargs: Any) -> Endpoint:
    ep = Endpoint(*args, **kwargs)
    return ep


ENDPOINT_LIST: tuple[Endpoint, ...] = (
    _ep(
        "get_bot_qrcode",
        "/ilink/bot/get_bot_qrcode",
        "POST",
        C.SEND_TIMEOUT,
        m.GetBotQrcodeReq,
        m.QrCodeResp,
        query={"bot_type": str(C.BOT_TYPE)},
        authenticated=False,
        doc="Fetch a login QR code (send up to 10 recent local tokens).",
    ),
    _ep(
        "get_qrcode_status",
        "/ilink/bot/get_qrcode_status",
        "GET",
        C.LONG_POLL_TIMEOUT,
        None,
        m.QrStatusResp,
        long_poll=True,
        doc="Long-poll the status of a QR code (wait, scaned, confirmed, ...).",
    ),
    _ep(
        "get_updates",
        "/ilink/bot/getupdates",
        "POST",
        C.LONG_POLL_TIMEOUT,
        m.GetUpdatesReq,
        m.GetUpdatesResp,
        long_poll=True,
        doc="Long-poll for inbound messages with the opaque cursor get_updates_buf.",
    ),
    _ep(
        "send_message",
        "/ilink/bot/sendmessage",
        "POST",
        C.SEND_TIMEOUT,
        m.SendMessageReq,
        m.SendMessageResp,
        doc="Send one message item to a user, echoing the user's latest context_token.",
    ),
    _ep(
        "get_upload_url",
        "/ilink/bot/getuploadurl",
        "POST",
        C.SEND_TIMEOUT,
        m.GetUploadUrlReq,
        m.GetUploadUrlResp,
        doc="Register an encrypted upload and get the CDN upload parameter.",
    ),
    _ep(
        "get_config",
        "/ilink/bot/getconfig",
        "POST",
        C.CONFIG_TIMEOUT,
        m.GetConfigReq,
        m.GetConfigResp,
        doc="Get a user's typing_ticket (needs the user's context_token).",
    ),
    _ep(
        "send_typing",
        "/ilink/bot/sendtyping",
        "POST",
        C.CONFIG_TIMEOUT,
        m.SendTypingReq,
        m.SendTypingResp,
        doc="Show (status 1) or cancel (status 2) the typing indicator.",
    ),
    _ep(
        "notify_start",
        "/ilink/bot/msg/notifystart",
        "POST",
        C.CONFIG_TIMEOUT,
        m.NotifyReq,
        m.NotifyResp,
        doc="Tell the server this client starts serving the account.",
    ),
    _ep(
        "notify_stop",
        "/ilink/bot/msg/notifystop",
        "POST",
        C.CONFIG_TIMEOUT,
        m.NotifyReq,
        m.NotifyResp,
        doc="Tell the server this client stops serving the account.",
    ),
)

ENDPOINTS: dict[str, Endpoint] = {ep.name: ep for ep in ENDPOINT_LIST}
ENDPOINTS_BY_PATH: dict[str, Endpoint] = {ep.path: ep for ep in ENDPOINT_LIST}

# The CDN is not JSON: ciphertext goes up, ciphertext comes down.
CDN_UPLOAD_PATH = "/upload"
CDN_DOWNLOAD_PATH = "/download"
CDN_UPLOAD_TIMEOUT = 60.0
CDN_DOWNLOAD_TIMEOUT = 60.0


@dataclass(frozen=True)
class RequestSpec:
    """A request ready for any HTTP library: everything but the host."""

    endpoint: Endpoint
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None
    timeout: float
    #: The JSON body before encoding (None for GET).
    body: dict[str, Any] | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.content) if self.content else None

    def __repr__(self) -> str:
        # The bearer token and body secrets are never shown whole.
        body = redact_json(self.body) if self.body is not None else None
        return (
            f"RequestSpec({self.method} {self.path}, params={self.params!r}, "
            f"headers={dict(redact_headers(self.headers.items()))!r}, body={body!r}, timeout={self.timeout})"
        )


def encode_json(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, ints kept exact (no float round trip)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_request(
    endpoint: Endpoint | str,
    payload: m.WireModel | Mapping[str, Any] | None,
    *,
    identity: ClientIdentity,
    token: str | None,
    params: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Turn a payload into headers, query and JSON bytes for ``endpoint``: ``base_info`` and the bearer token
    are added to the POST bodies and headers of authenticated endpoints (every one but the QR fetch)."""
    ep = ENDPOINTS[endpoint] if isinstance(endpoint, str) else endpoint
    query = dict(ep.query)
    if params:
        query.update(params)
    if ep.method == "GET":
        return RequestSpec(
            ep, "GET", ep.path, query, identity.get_headers(), None, ep.timeout if timeout is None else timeout
        )
    body: dict[str, Any]
    if payload is None:
        body = {}
    elif isinstance(payload, m.WireModel):
        body = payload.to_wire()
    else:
        body = dict(payload)
    if ep.authenticated:
        body["base_info"] = identity.base_info()
    return RequestSpec(
        ep,
        "POST",
        ep.path,
        query,
        identity.post_headers(token if ep.authenticated else None),
        encode_json(body),
        ep.timeout if timeout is None else timeout,
        body,
    )


def markdown_table() -> str:
    """The endpoint table as Markdown; the README's copy is checked against it by a test."""
    lines = [
        "| method | path | client method | timeout | what it does |",
        "|---|---|---|---|---|",
    ]
    for ep in ENDPOINT_LIST:
        query = "?" + "&".join(f"{k}={v}" for k, v in ep.query.items()) if ep.query else ""
        wait = f"{ep.timeout:g} s"
        if ep.long_poll:
            wait = f"long poll: server holds ~{ep.timeout:g} s, client waits {C.LONG_POLL_GRACE:g} s longer"
        lines.append(f"| {ep.method} | `{ep.path}{query}` | `{ep.name}` | {wait} | {ep.doc} |")
    return "\n".join(lines)
