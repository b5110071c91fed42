"""The plain records the simulator keeps: QR codes and their scenarios, users, bots, context tokens, uploads and
CDN objects, what bots sent, typing events, fault rules and conformance entries. Reprs never show a secret whole.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..protocol import constants as C
from ..protocol.conformance import Difference
from ..protocol.redact import redact
from .config import FAULT_KINDS, FAULT_TARGETS, MAX_FAULT_DELAY_MS, SimError, user_id_of

_TERMINAL_QR = frozenset(
    {C.QrStatus.EXPIRED, C.QrStatus.CONFIRMED, C.QrStatus.BINDED_REDIRECT, C.QrStatus.VERIFY_CODE_BLOCKED}
)
#: Fields of a ``confirmed`` answer that ``QrScenario.omit`` may leave out.
_CONFIRMED_FIELDS = ("bot_token", "ilink_bot_id", "baseurl", "ilink_user_id")


def _secret(value: Any) -> str:
    """A secret as reprs show it: the standard ``<redacted xxxx…(n)>`` form (empty or None as they are)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).hex()
    return redact(value) if value else repr(value)


def _size(data: bytes | None) -> str:
    return "None" if data is None else f"<{len(data):,} bytes>"


def _repr(obj: Any, **shown: str) -> str:
    """A dataclass's repr with some fields shown as given (secrets redacted, big values summarised)."""
    parts = [
        f"{f.name}={shown[f.name] if f.name in shown else repr(getattr(obj, f.name))}"
        for f in dataclasses.fields(obj)
        if f.repr
    ]
    return f"{type(obj).__name__}({', '.join(parts)})"


@dataclass
class QrScenario:
    """Which path a QR code takes after it is scanned.

    ``verify_code``: digits the phone shows and the client must send back (``need_verifycode``);
    ``redirect``: the primary host answers ``scaned_but_redirect`` once scanned, the second host carries on;
    ``binded``: confirming answers ``binded_redirect`` (also happens by itself when ``local_token_list``
    holds a token of a bot the scanning user owns); ``user_id``: who scans by default; ``auto_confirm``:
    seconds after creation when that user scans and confirms (overrides the config); ``verify_late``: the
    first N status polls that carry a verify code are answered ``wait``, without a verdict (a check that
    answers late), so only a client that sends the code again with every poll gets to ``scaned``.

    What the ``confirmed`` answer carries: ``baseurl``, the API base the client must use from then on (default:
    the primary host; ``"redirect"``: the second host's base URL; any other string as is); ``omit``, fields
    left out of it (any of ``bot_token``, ``ilink_bot_id``, ``baseurl``, ``ilink_user_id``), to play a server
    that answers ``confirmed`` without, say, an ``ilink_bot_id``.
    """

    verify_code: str | None = None
    redirect: bool = False
    binded: bool = False
    user_id: str | None = None
    auto_confirm: float | None = None
    baseurl: str | None = None
    omit: list[str] | None = None
    verify_late: int = 0

    @classmethod
    def build(cls, **flags: Any) -> QrScenario:
        """Accept ``verify_code=True`` for six random digits, and friendly user names."""
        unknown = set(flags) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SimError(f"unknown QR scenario flag(s): {', '.join(sorted(unknown))}")
        code = flags.get("verify_code")
        if code is True:
            flags["verify_code"] = f"{secrets.randbelow(10**6):06d}"
        elif code is False or code == "":
            flags["verify_code"] = None
        elif code is not None:
            flags["verify_code"] = str(code)
        if flags.get("user_id"):
            flags["user_id"] = user_id_of(flags["user_id"])
        omit = flags.get("omit")
        if omit is not None:
            omit = [omit] if isinstance(omit, str) else omit
            if not isinstance(omit, (list, tuple)) or any(f not in _CONFIRMED_FIELDS for f in omit):
                fields = ", ".join(_CONFIRMED_FIELDS)
                raise SimError(f"omit is a list of fields of the confirmed answer ({fields}), got {omit!r}")
            flags["omit"] = list(omit)
        baseurl = flags.get("baseurl")
        if baseurl is not None and (not isinstance(baseurl, str) or not baseurl):
            raise SimError(f"baseurl is a URL or 'redirect' (the second host), got {baseurl!r}")
        late = flags.get("verify_late", 0)
        if isinstance(late, bool) or not isinstance(late, int) or late < 0:
            raise SimError(f"verify_late counts polls with a verify code that get no verdict (int >= 0), got {late!r}")
        return cls(**flags)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class QrCode:
    """One login QR code. ``status`` is the server-side truth; what a host shows may differ (redirect)."""

    qrcode: str
    created_at: float
    expires_at: float
    scenario: QrScenario
    local_tokens: list[str] = field(default_factory=list)
    status: str = C.QrStatus.WAIT
    user_id: str | None = None
    wrong_codes: int = 0
    #: Polls with a verify code answered ``wait`` without a verdict so far (``QrScenario.verify_late``).
    codes_held: int = 0
    version: int = 0
    #: The version each host role last answered with: a long poll answers at once when this is behind.
    reported: dict[str, int] = field(default_factory=dict)
    bot_id: str | None = None
    bot_token: str | None = None
    #: Whether a ``confirmed`` answer has carried the bot token: it is handed out once, later polls answer
    #: ``confirmed`` without it.
    token_handed: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL_QR

    def __repr__(self) -> str:
        # The bot token (and the client's recent tokens) are never shown whole.
        return _repr(
            self, bot_token=_secret(self.bot_token), local_tokens=repr([_secret(t) for t in self.local_tokens])
        )


@dataclass
class SimUser:
    user_id: str
    name: str
    created_ms: int


@dataclass
class SimBot:
    bot_id: str
    owner_id: str
    token: str
    created_ms: int
    #: Part of every cursor, so a cursor from another bot or another simulator run is recognised as foreign.
    nonce: str
    #: Inbound messages in delivery order; position p (1-based) is what a cursor points past.
    inbox: list[dict[str, Any]] = field(default_factory=list)
    #: Positions up to here were acknowledged by a poll carrying a later cursor; ``""`` resumes after them.
    acked: int = 0

    def __repr__(self) -> str:
        # The token is redacted; the inbox (whose messages carry context tokens) is summarised.
        return _repr(self, token=_secret(self.token), inbox=f"<{len(self.inbox)} message(s)>")


@dataclass
class ContextRecord:
    token: str
    bot_id: str
    user_id: str
    issued_at: float
    sends: int = 0

    def __repr__(self) -> str:
        return _repr(self, token=_secret(self.token))


@dataclass
class UploadSlot:
    """What ``getuploadurl`` registered; the CDN upload is checked against it."""

    param: str
    bot_id: str
    filekey: str
    media_type: int
    to_user_id: str | None
    rawsize: int
    rawfilemd5: str
    filesize: int
    aeskey: bytes
    download_param: str | None = None

    def __repr__(self) -> str:
        # The upload and download parameters and the AES key are what a thief would need: redacted.
        return _repr(
            self, param=_secret(self.param), aeskey=_secret(self.aeskey), download_param=_secret(self.download_param)
        )


@dataclass
class CdnObject:
    """A stored ciphertext (or plaintext, for unencrypted images) and what is known about it."""

    data: bytes
    key: bytes | None
    rawsize: int
    md5: str
    filekey: str = ""

    def __repr__(self) -> str:
        return _repr(self, data=_size(self.data), key=_secret(self.key))


@dataclass
class OutboxEntry:
    """One message a bot sent: the stored wire dict, plus each media item's decrypted plaintext by item index."""

    bot_id: str
    to_user_id: str
    message_id: int
    client_id: str | None
    context_token: str | None = field(repr=False)
    time_ms: int
    msg: dict[str, Any] = field(repr=False)
    media: dict[int, bytes] = field(default_factory=dict)
    #: What a phone would show wrongly (e.g. ``aes_key`` as base64 of the raw key shows a grey box).
    problems: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # ``context_token`` and ``msg`` (which carries it, and media keys) are left out; media as sizes.
        media = ", ".join(f"{i}: {_size(blob)}" for i, blob in self.media.items())
        return _repr(self, media="{" + media + "}")

    @property
    def items(self) -> list[dict[str, Any]]:
        items = self.msg.get("item_list")
        return items if isinstance(items, list) else []

    @property
    def text(self) -> str:
        """The text items joined by newlines."""
        parts = []
        for item in self.items:
            text_item = item.get("text_item") if isinstance(item, dict) else None
            if isinstance(text_item, dict) and isinstance(text_item.get("text"), str):
                parts.append(text_item["text"])
        return "\n".join(parts)

    @property
    def item_types(self) -> list[int | None]:
        return [item.get("type") if isinstance(item, dict) else None for item in self.items]

    @property
    def data(self) -> bytes | None:
        """The plaintext of the first media item, if any."""
        return self.media[min(self.media)] if self.media else None

    def to_json(self, with_data: bool = False) -> dict[str, Any]:
        media = []
        for index, blob in sorted(self.media.items()):
            entry: dict[str, Any] = {"index": index, "size": len(blob), "md5": hashlib.md5(blob).hexdigest()}
            if with_data:
                entry["data_b64"] = base64.b64encode(blob).decode("ascii")
            media.append(entry)
        return {
            "bot_id": self.bot_id,
            "to_user_id": self.to_user_id,
            "message_id": self.message_id,
            "client_id": self.client_id,
            "time_ms": self.time_ms,
            "text": self.text,
            "msg": self.msg,
            "media": media,
            "problems": self.problems,
        }


def outbox_json(entry: OutboxEntry) -> dict[str, Any]:
    """An outbox entry as the state file and the journal keep it (media plaintexts in base64)."""
    media = {str(i): base64.b64encode(d).decode("ascii") for i, d in entry.media.items()}
    return {**dataclasses.asdict(entry), "media": media}


def outbox_entry(raw: dict[str, Any]) -> OutboxEntry:
    fields = dict(raw)
    media = {int(i): base64.b64decode(d) if d else b"" for i, d in (fields.pop("media", None) or {}).items()}
    return OutboxEntry(**fields, media=media)


@dataclass
class TypingEvent:
    bot_id: str
    user_id: str
    status: int
    time_ms: int


@dataclass
class Notification:
    bot_id: str
    kind: str  # "start" or "stop"
    time_ms: int


@dataclass
class BotLogin:
    """Credentials as a ``confirmed`` QR status carries them."""

    bot_token: str
    ilink_bot_id: str
    baseurl: str
    ilink_user_id: str

    @property
    def bot_id(self) -> str:
        return self.ilink_bot_id

    def __repr__(self) -> str:
        return (
            f"BotLogin(ilink_bot_id={self.ilink_bot_id!r}, ilink_user_id={self.ilink_user_id!r}, "
            f"baseurl={self.baseurl!r}, bot_token={redact(self.bot_token)})"
        )

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass
class FaultRule:
    """Transport trouble for matching requests. Rates are probabilities 0..1 (``True`` means 1); ``count``
    drops the rule after it has fired N times (with rate 1: exactly the next N matching requests);
    ``endpoints`` are endpoint names (``get_updates``, ``send_message``... or ``cdn_upload``/``cdn_download``),
    None for all. When several rules match, delays add up and the first rule that picks a misbehaviour wins.
    The control API is never faulted.
    """

    delay_ms: float = 0.0
    http_500: float = 0.0
    http_429: float = 0.0
    retry_after: int = 1
    reset: float = 0.0
    #: The request is processed (a send is stored), then the connection drops before the answer: the case
    #: that makes a client retry something the server already did.
    lost_response: float = 0.0
    malformed_json: float = 0.0
    stale_token: float = 0.0
    #: Gateway errors (Bad Gateway / Gateway Timeout with a plain-text body, as a proxy in front of the API
    #: answers): clients read them as ``wait`` on QR status polls and retry them elsewhere.
    http_502: float = 0.0
    http_504: float = 0.0
    #: A client error, HTTP ``http_4xx_status`` (default 400): a JSON body with ``errmsg`` on API routes,
    #: plain text and ``x-error-message`` on the CDN (where a 4xx means "don't retry").
    http_400: float = 0.0
    http_4xx_status: int = 400
    #: Cloudflare's 524 ("a timeout occurred") with its HTML page as the body.
    http_524: float = 0.0
    #: HTTP 200 whose body is an HTML error page instead of JSON.
    not_json: float = 0.0
    count: int | None = None
    endpoints: list[str] | None = None
    id: int = 0

    @classmethod
    def build(cls, **knobs: Any) -> FaultRule:
        unknown = set(knobs) - {f.name for f in dataclasses.fields(cls)} | ({"id"} & set(knobs))
        if unknown:
            raise SimError(f"unknown fault knob(s): {', '.join(sorted(unknown))}")
        for kind in FAULT_KINDS:
            value = knobs.get(kind)
            if value is True:
                knobs[kind] = 1.0
            elif value is None or value is False:
                knobs.pop(kind, None)
            elif not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise SimError(f"fault {kind} is a probability between 0 and 1, got {value!r}")
            else:
                knobs[kind] = float(value)
        delay = knobs.get("delay_ms", 0.0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_FAULT_DELAY_MS:
            raise SimError(f"fault delay_ms is milliseconds from 0 to {MAX_FAULT_DELAY_MS:,}, got {delay!r:.80}")
        retry_after = knobs.get("retry_after", 1)
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or not 0 <= retry_after <= 86400:
            raise SimError(
                "fault retry_after is the whole seconds a 429 asks the client to wait, 0 to 86,400, "
                f"got {retry_after!r:.80}"
            )
        endpoints = knobs.get("endpoints")
        if endpoints is not None:
            if isinstance(endpoints, str):
                endpoints = [endpoints]
            if not isinstance(endpoints, (list, tuple)) or not all(isinstance(e, str) for e in endpoints):
                raise SimError(
                    f"fault endpoints is a list of endpoint names such as ['get_updates'], got {endpoints!r:.80}"
                )
            bad = [e for e in endpoints if e not in FAULT_TARGETS]
            if bad:
                raise SimError(f"unknown endpoint(s) {bad}; use one of {sorted(FAULT_TARGETS)}")
            knobs["endpoints"] = list(endpoints)
        count = knobs.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise SimError("fault count is a positive integer (the next N matching requests)")
        status = knobs.get("http_4xx_status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 499:
            raise SimError(f"http_4xx_status is the HTTP status of an http_400 fault, 400 to 499, got {status!r}")
        return cls(**knobs)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FaultDecision:
    """What the HTTP layer must do to one request: wait ``delay`` seconds, then misbehave as ``kind`` (or not)."""

    delay: float = 0.0
    kind: str | None = None
    retry_after: int = 1
    #: The status of an ``http_400`` fault.
    status: int = 400


@dataclass
class ConformanceEntry:
    """One received request that differs from what the official client sends: its number among the requests
    checked since the last reset, when (simulated clock), the endpoint, method and path (no query: it may hold
    CDN parameters), and the differences, which name keys and never show values."""

    index: int
    time_ms: int
    endpoint: str
    method: str
    path: str
    differences: list[Difference]

    @property
    def texts(self) -> list[str]:
        """The differences as sentences."""
        return [d.text for d in self.differences]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time_ms": self.time_ms,
            "endpoint": self.endpoint,
            "method": self.method,
            "path": self.path,
            "differences": [d.to_json() for d in self.differences],
        }
