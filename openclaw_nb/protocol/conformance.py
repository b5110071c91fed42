"""What the official client sends on each endpoint (method, iLink headers, query and body keys), as one table,
and :func:`check_request`, which lists how a received request differs from it.

The simulator's conformance view runs every request through it. No I/O; a difference names keys, never their
values (headers and bodies carry bot tokens, context tokens and AES keys).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import constants as C
from .endpoints import ENDPOINTS

#: Names of the two CDN transfers in the table (the simulator's fault rules use the same names).
CDN_UPLOAD = "cdn_upload"
CDN_DOWNLOAD = "cdn_download"

#: The headers the protocol defines; any other header (Accept, User-Agent, Host...) is the HTTP library's
#: business and is not compared. ``Content-Type`` is checked against each request's expected type.
PROTOCOL_HEADERS: tuple[str, ...] = (
    C.H_AUTHORIZATION_TYPE,
    C.H_AUTHORIZATION,
    C.H_UIN,
    C.H_APP_ID,
    C.H_CLIENT_VERSION,
    C.H_ROUTE_TAG,
)
_LOWER = tuple((name, name.lower()) for name in PROTOCOL_HEADERS)


@dataclass(frozen=True)
class Keys:
    """Keys the official client always sends (``required``) and the ones it sends only sometimes."""

    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()

    @classmethod
    def of(cls, required: Iterable[str] = (), optional: Iterable[str] = ()) -> Keys:
        return cls(frozenset(required), frozenset(optional))


@dataclass(frozen=True)
class OfficialRequest:
    """One endpoint's request as the official client (``@tencent-weixin/openclaw-weixin`` 2.4.9) sends it."""

    name: str
    method: str
    headers: Keys
    query: Keys
    #: Top-level keys of the JSON body; None when the request has no JSON body (a GET, the CDN's ciphertext).
    body: Keys | None
    #: Keys of the objects inside the body (``base_info``, ``msg``), by the body key that holds them.
    nested: Mapping[str, Keys] = field(default_factory=dict)
    content_type: str | None = None
    #: Why a key is left out on this endpoint, for keys a client might send out of habit (e.g. ``base_info``).
    absent: Mapping[str, str] = field(default_factory=dict)


_BASE_INFO = Keys.of(("channel_version", "bot_agent"))
_APP = (C.H_APP_ID, C.H_CLIENT_VERSION)
_POST = (C.H_AUTHORIZATION_TYPE, C.H_UIN, *_APP)
_AUTH_POST = Keys.of((*_POST, C.H_AUTHORIZATION), (C.H_ROUTE_TAG,))
_JSON = "application/json"
_NO_TOKEN = "the official client sends no bearer token on the QR fetch, even when it holds one"


def _api(name: str, required: Iterable[str], optional: Iterable[str] = (), **nested: Keys) -> OfficialRequest:
    """An authenticated POST with a JSON body that carries ``base_info``."""
    return OfficialRequest(
        name,
        "POST",
        _AUTH_POST,
        Keys(),
        Keys.of((*required, "base_info"), optional),
        {"base_info": _BASE_INFO, **nested},
        _JSON,
    )


#: The official request of every endpoint, by endpoint name (``ENDPOINTS``) plus the two CDN transfers.
OFFICIAL_REQUESTS: dict[str, OfficialRequest] = {
    r.name: r
    for r in (
        OfficialRequest(
            "get_bot_qrcode",
            "POST",
            Keys.of(_POST, (C.H_ROUTE_TAG,)),
            Keys.of(("bot_type",)),
            Keys.of(("local_token_list",)),
            content_type=_JSON,
            absent={
                "base_info": "the official client sends no base_info on the QR fetch",
                C.H_AUTHORIZATION: _NO_TOKEN,
            },
        ),
        OfficialRequest(
            "get_qrcode_status",
            "GET",
            Keys.of(_APP, (C.H_ROUTE_TAG,)),
            Keys.of(("qrcode",), ("verify_code",)),
            None,
        ),
        _api("get_updates", ("get_updates_buf",)),
        _api(
            "send_message",
            ("msg",),
            msg=Keys.of(
                ("from_user_id", "to_user_id", "client_id", "message_type", "message_state", "item_list"),
                ("context_token", "run_id"),
            ),
        ),
        _api(
            "get_upload_url",
            ("filekey", "media_type", "to_user_id", "rawsize", "rawfilemd5", "filesize", "no_need_thumb", "aeskey"),
            ("thumb_rawsize", "thumb_rawfilemd5", "thumb_filesize"),
        ),
        _api("get_config", ("ilink_user_id",), ("context_token",)),
        _api("send_typing", ("ilink_user_id", "typing_ticket", "status")),
        _api("notify_start", ()),
        _api("notify_stop", ()),
        OfficialRequest(
            CDN_UPLOAD,
            "POST",
            Keys(),
            Keys.of(("encrypted_query_param", "filekey")),
            None,
            content_type="application/octet-stream",
        ),
        OfficialRequest(CDN_DOWNLOAD, "GET", Keys(), Keys.of(("encrypted_query_param",)), None),
    )
}
assert set(OFFICIAL_REQUESTS) == set(ENDPOINTS) | {CDN_UPLOAD, CDN_DOWNLOAD}


@dataclass(frozen=True)
class Difference:
    """One way a request differs from the official one: ``where`` (``method``, ``header``, ``query``, ``body``),
    the key's ``name`` (dotted for nested body keys, e.g. ``msg.run_id``) and a sentence saying what is wrong."""

    where: str
    name: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "name": self.name, "text": self.text}


def _uin_ok(value: str) -> bool:
    try:
        digits = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        return False
    return digits.isdigit() and int(digits) < 1 << 32


def _header_value_problem(name: str, value: str) -> str | None:
    if name == C.H_AUTHORIZATION_TYPE and value != C.AUTHORIZATION_TYPE:
        return f"header {name} is not {C.AUTHORIZATION_TYPE!r}"
    if name == C.H_AUTHORIZATION and (value[:7].lower() != "bearer " or not value[7:].strip()):
        return f"header {name} is not 'Bearer <bot_token>'"
    if name == C.H_UIN and not _uin_ok(value):
        return f"header {name} is not base64 of the decimal string of a random uint32"
    if name == C.H_CLIENT_VERSION and not (value.isdigit() and int(value) < 1 << 32):
        return f"header {name} is not the packed version as a decimal number (1.0.11 -> 65547)"
    return None


def _check_headers(spec: OfficialRequest, headers: Mapping[str, str], out: list[Difference]) -> None:
    sent = {k.lower(): v for k, v in headers.items()}
    cdn = spec.name in (CDN_UPLOAD, CDN_DOWNLOAD)
    for name, lower in _LOWER:
        value = sent.get(lower)
        if value is None:
            if name == C.H_AUTHORIZATION and name in spec.headers.required:
                why = "the official client sends 'Bearer <bot_token>' on every call after login"
                out.append(Difference("header", name, f"header {name} is missing: {why}"))
            elif name in spec.headers.required:
                out.append(Difference("header", name, f"header {name} is missing: the official client sends it"))
            continue
        if name not in spec.headers.required and name not in spec.headers.optional:
            if name in spec.absent:
                why = spec.absent[name]
            elif cdn:
                why = "the official client sends no iLink headers to the CDN"
            else:
                why = f"the official client does not send it on {spec.name}"
            out.append(Difference("header", name, f"header {name} is sent, but {why}"))
            continue
        problem = _header_value_problem(name, value)
        if problem:
            out.append(Difference("header", name, problem))
    if spec.content_type is not None:
        content_type = sent.get("content-type")
        if content_type is None:
            out.append(Difference("header", "Content-Type", f"header Content-Type is missing ({spec.content_type})"))
        elif content_type.split(";", 1)[0].strip().lower() != spec.content_type:
            out.append(Difference("header", "Content-Type", f"header Content-Type is not {spec.content_type}"))


def _check_keys(spec: OfficialRequest, keys: Keys, got: Mapping[str, Any], prefix: str, out: list[Difference]) -> None:
    missing = keys.required - got.keys()
    extra = got.keys() - keys.required - keys.optional
    if not (missing or extra):
        return
    for name in sorted(missing):
        out.append(
            Difference("body", prefix + name, f"body key {prefix + name} is missing: the official client sends it")
        )
    for name in sorted(extra):
        why = spec.absent.get(prefix + name) or f"it is not in the official {spec.name} request"
        out.append(Difference("body", prefix + name, f"body key {prefix + name} is sent, but {why}"))


def check_request(
    name: str, method: str, headers: Mapping[str, str], query: Iterable[str], body: Any = None
) -> list[Difference]:
    """How a request to endpoint ``name`` differs from what the official client sends (empty: it matches).

    ``query`` holds the query parameter names; ``body`` is the parsed JSON body (a dict), None when no JSON
    body was read (a GET, a CDN transfer), or anything else for a body that is not a JSON object.

    >>> check_request("notify_start", "POST", {"Content-Type": "application/json"}, [], {})[0].text
    'header AuthorizationType is missing: the official client sends it'
    """
    spec = OFFICIAL_REQUESTS.get(name)
    if spec is None:
        raise KeyError(f"no official request is known for {name!r}; known: {sorted(OFFICIAL_REQUESTS)}")
    out: list[Difference] = []
    if method.upper() != spec.method:
        out.append(
            Difference("method", method.upper(), f"method {method.upper()}: the official client uses {spec.method}")
        )
    _check_headers(spec, headers, out)
    query_names = set(query)
    if query_names or spec.query.required:
        for key in sorted(spec.query.required - query_names):
            out.append(Difference("query", key, f"query parameter {key} is missing: the official client sends it"))
        for key in sorted(query_names - spec.query.required - spec.query.optional):
            out.append(Difference("query", key, f"query parameter {key} is not in the official {spec.name} request"))
    if spec.body is None:
        return out
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        out.append(Difference("body", "", "the body is not a JSON object"))
        return out
    _check_keys(spec, spec.body, body, "", out)
    for key, keys in spec.nested.items():
        inner = body.get(key)
        if inner is None:
            continue  # reported as missing (or allowed) above
        if not isinstance(inner, Mapping):
            out.append(Difference("body", key, f"body key {key} is not a JSON object"))
            continue
        _check_keys(spec, keys, inner, key + ".", out)
    return out
