"""The simulator's whole world as one plain, thread-safe object: users, bots and tokens, QR codes, inbound
messages and cursors, context tokens, typing tickets, uploads and CDN objects, fault rules and a clock.

No HTTP lives here. :mod:`.app` turns each request into one call on :class:`SimState` and answers with the
dict it returns, so every rule is unit-testable without a server.

Theory of operation
-------------------
* Every public method takes ``self._lock`` (an RLock) and leaves the state consistent when it returns.
* Every mutation calls ``_changed(keys)``: it bumps ``mutations``, wakes Python threads blocked in
  :meth:`SimState.wait_for`, and calls the listeners registered for those keys. The HTTP layer registers a
  listener per held long poll (``("bot", bot_id)`` or ``("qr", qrcode)``) that wakes its asyncio task with
  ``loop.call_soon_threadsafe``; ``"*"`` listeners hear everything (clock moves, resets, close).
* With a state file, a mutation first journals what it changed (``_record``: an inbound message, an
  acknowledgement, a send...; :meth:`SimState.apply_record` replays it); one that records nothing makes
  ``_changed`` ask the journal (:mod:`.journal`) for a full snapshot instead.
* Long polls are split in two: a method answers at once when there is something to say, or returns ``None``
  with the key to wait on; with ``final=True`` it always answers (the "nothing happened" answer).
* Time-based changes (QR expiry, auto-confirm) are applied lazily whenever a QR code is looked at, against
  a clock that tests and teachers can move forward with :meth:`SimState.advance`. Long-poll *windows* run on
  real time; rules (24 h reply window, QR lifetime, rate limits) run on the simulated clock.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import hashlib
import json
import math
import os
import random
import secrets
import struct
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ..errors import UsageError
from ..protocol import constants as C
from ..protocol import crypto
from ..protocol.conformance import CDN_DOWNLOAD, CDN_UPLOAD, Difference, check_request
from ..protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH, ENDPOINTS
from ..protocol.models import UINT64_FIELDS
from ..protocol.redact import redact

#: Where the simulator serves its CDN, below its own base URL (the real CDN's path is ``/c2c`` too).
CDN_PREFIX = "/c2c"
#: Prefix of the control API and of the scan page.
CONTROL_PREFIX = "/_sim"
# CDN_UPLOAD and CDN_DOWNLOAD (imported above) name the two CDN routes in fault rules and the conformance view;
# the API endpoints use their names from ``ENDPOINTS``.
FAULT_TARGETS = frozenset(ENDPOINTS) | {CDN_UPLOAD, CDN_DOWNLOAD}

#: Host roles: the primary listener, and the second one that ``scaned_but_redirect`` points at.
PRIMARY = "primary"
REDIRECT = "redirect"

#: Ids start above 2**63: uint64 on the wire, past float64 precision (2**53) and past signed int64, so code
#: that squeezes them through a float or an int64 column shows its bug in the simulator, not in production.
DEFAULT_ID_FLOOR = 1 << 63

_TERMINAL_QR = frozenset(
    {C.QrStatus.EXPIRED, C.QrStatus.CONFIRMED, C.QrStatus.BINDED_REDIRECT, C.QrStatus.VERIFY_CODE_BLOCKED}
)
_MEDIA_ITEM_FIELDS = ("image_item", "voice_item", "file_item", "video_item")
_FAULT_KINDS = (
    "reset",
    "lost_response",
    "http_500",
    "http_429",
    "malformed_json",
    "stale_token",
    "http_502",
    "http_504",
    "http_400",
    "http_524",
    "not_json",
)
#: The item type of the extra item that ``unknown_fields`` adds (no protocol version defines it).
UNKNOWN_ITEM_TYPE = 99
#: Keys of uint64 ids that ``ids_as_strings`` writes as strings.
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


class SimError(UsageError):
    """The simulator's Python or control API was asked for something impossible (unknown QR code, no bot...)."""


def user_id_of(user: str) -> str:
    """A WeChat user id from a friendly name: ``"alice"`` → ``"alice@im.wechat"``; full ids pass through."""
    if not isinstance(user, str) or not user:
        raise SimError("a user is a non-empty string such as 'alice' or 'alice@im.wechat'")
    return user if "@" in user else f"{user}@im.wechat"


#: The longest stretch of simulated time a knob or an ``advance`` may name: ten years. A longer one cannot be
#: represented in milliseconds by everything that reads the clock (and no test needs it).
MAX_SIM_SECONDS = 10 * 365 * 86400.0
#: The default ``max_request_bytes``: the largest request body an iLink API route accepts.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
#: The largest request body a control route (``/_sim/...``) accepts: media sent in as base64 fit.
MAX_CONTROL_BODY_BYTES = 64 * 1024 * 1024
#: Slack over an upload's declared ciphertext size before the CDN stops reading (the check of the exact size
#: comes after, with its own message).
UPLOAD_SLACK_BYTES = 64 * 1024
#: The longest delay a fault rule may add to a request: ten minutes.
MAX_FAULT_DELAY_MS = 600_000
#: The most requests (or differing requests) the simulator keeps for inspection.
MAX_KEPT_REQUESTS = 1_000_000
#: The longest network latency the ``latency_ms`` knob may play: one minute.
MAX_LATENCY_MS = 60_000

# How each knob is checked: (kind, low, high, None allowed, what it means). Kinds: "bool"; "int" (whole
# numbers, never a bool); "num" (a finite int or float); "str" (non-empty); "json" (any JSON value, no NaN).
_KNOB_RULES: dict[str, tuple[str, float, float, bool, str]] = {
    "long_poll_timeout": ("num", 0.0, 3600.0, False, "seconds the server holds a long poll"),
    "qr_lifetime": ("num", 0.0, MAX_SIM_SECONDS, False, "seconds a QR code lives"),
    "auto_confirm": ("num", 0.0, MAX_SIM_SECONDS, True, "seconds after creation when a QR code is confirmed"),
    "default_user": ("str", 0, 0, False, "the id of the user who scans by default"),
    "max_wrong_verify_codes": ("int", 0, 1_000_000, False, "wrong verify codes before the login is blocked"),
    "page_size": ("int", 1, 100_000, False, "the most messages per getupdates page"),
    "sends_per_context_token": ("int", 0, 2**31, True, "sends allowed per context token"),
    "reply_window_seconds": ("num", 0.0, MAX_SIM_SECONDS, True, "seconds the bot may reply after a message"),
    "max_text_bytes": ("int", 0, 2**31, True, "the longest text in UTF-8 bytes"),
    "duplicate_rate": ("num", 0.0, 1.0, False, "a probability"),
    "rate_limit_sends": ("int", 0, 2**31, True, "sends per rate_limit_window"),
    "rate_limit_window": ("num", 0.0, MAX_SIM_SECONDS, False, "seconds of the rate limit's window"),
    "reported_long_poll_ms": ("json", 0, 0, True, "the longpolling_timeout_ms getupdates reports"),
    "seed": ("int", -(2**63), 2**63, True, "the seed of the random choices"),
    "id_floor": ("int", 0, C.UINT64_MAX, False, "the first uint64 id handed out"),
    "max_request_bytes": ("int", 1024, 2**40, False, "the largest API request body in bytes"),
    "record_requests": ("int", 0, MAX_KEPT_REQUESTS, False, "how many requests to keep (0: off)"),
    "conformance_log": ("int", 0, MAX_KEPT_REQUESTS, False, "how many differing requests to keep (0: off)"),
    "latency_ms": ("num", 0.0, MAX_LATENCY_MS, False, "milliseconds each API and CDN request waits"),
}


def _check_knob(name: str, value: Any) -> None:
    """Raise :class:`SimError` naming ``name`` unless ``value`` has the knob's type and range.

    A knob with no rule of its own is a switch (true or false) when its default is one; any other knob needs
    a rule in ``_KNOB_RULES`` (a test checks that every knob has one).
    """
    rule = _KNOB_RULES.get(name)
    if rule is None:
        default = _KNOB_DEFAULTS.get(name)
        if not isinstance(default, bool):
            return
        rule = ("bool", 0, 0, False, "a switch")
    kind, low, high, nullable, meaning = rule
    if value is None and nullable:
        return
    none = " or null" if nullable else ""
    if kind == "bool":
        if not isinstance(value, bool):
            raise SimError(f"{name} is true or false, got {value!r}")
    elif kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise SimError(f"{name} is a non-empty string ({meaning}), got {value!r}")
    elif kind == "json":
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise SimError(f"{name} is any JSON value ({meaning}; no NaN or infinity), got {value!r:.80}") from None
    else:
        whole = kind == "int"
        numeric = isinstance(value, int) if whole else isinstance(value, (int, float))
        finite = numeric and (isinstance(value, int) or math.isfinite(value))
        if isinstance(value, bool) or not finite or not low <= value <= high:
            what = "a whole number" if whole else "a finite number"
            span = f"{_plain(low)} to {_plain(high)}{none}"
            raise SimError(f"{name} is {what} from {span} ({meaning}), got {value!r:.80}")


def _plain(number: float) -> str:
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


@dataclass
class SimConfig:
    """Every knob of the simulator. Rules observed on the real server are on by default; each can be switched.

    Change them live with ``sim.configure(name=value)`` or ``POST /_sim/config``.
    """

    #: Seconds the server holds ``getupdates`` and ``get_qrcode_status`` (tests use short windows).
    long_poll_timeout: float = C.LONG_POLL_TIMEOUT
    #: Seconds a QR code lives before ``expired`` (simulated clock).
    qr_lifetime: float = C.QR_LIFETIME
    #: When set, the default user scans and confirms every new QR code this many seconds after it is created.
    auto_confirm: float | None = None
    #: The simulated WeChat user who scans when nobody else is named.
    default_user: str = "owner@im.wechat"
    #: Wrong verify codes before ``verify_code_blocked``.
    max_wrong_verify_codes: int = 3
    #: At most this many messages per ``getupdates`` page.
    page_size: int = 100
    #: A confirmed re-login by a bot's owner gives the bot a new token and makes the old one stale (-14).
    rotate_token_on_relogin: bool = True
    # --- rules of sendmessage (all on, as on the real server) ---
    #: ``sendmessage`` needs a context_token the user gave this bot (-2 otherwise).
    require_context_token: bool = True
    #: Sends allowed per context token (None: unlimited).
    sends_per_context_token: int | None = C.SENDS_PER_CONTEXT_TOKEN
    #: Seconds after the user's last message during which the bot may reply (None: forever).
    reply_window_seconds: float | None = C.REPLY_WINDOW_SECONDS
    #: Longest text, in UTF-8 bytes, summed over the text items of one message (None: unlimited).
    max_text_bytes: int | None = C.MAX_TEXT_BYTES
    #: ``to_user_id`` must be a user the simulator knows (-3 otherwise).
    check_to_user: bool = True
    #: A repeated ``client_id`` is not stored twice and gets the first send's ``message_id``. Off by default:
    #: whether the real server de-duplicates is not known, so a client that retries a send must not count on it.
    dedupe_client_id: bool = False
    #: ``getconfig`` answers -4 until the user has written to the bot.
    require_contact_for_config: bool = True
    #: ``sendtyping`` checks the ticket from ``getconfig``.
    check_typing_ticket: bool = True
    #: The CDN checks ciphertext size, decryptability, plaintext size and MD5 of uploads (400 otherwise).
    check_uploads: bool = True
    #: ``getuploadurl`` returns ``upload_full_url`` (newer servers); off: only ``upload_param``.
    upload_full_url: bool = True
    #: Inbound media carry ``media.full_url`` (newer servers); off: clients build the URL from the CDN base.
    inbound_full_url: bool = False
    #: Error messages say what went wrong and what to do; off: ``errmsg`` is empty as often on the real server.
    descriptive_errors: bool = True
    # --- opt-in misbehaviour of the real server ---
    #: Probability that an inbound message is delivered twice (at-least-once delivery).
    duplicate_rate: float = 0.0
    #: A duplicate carries a new ``message_id`` (otherwise the same one).
    duplicate_new_id: bool = False
    #: Sends per bot allowed within ``rate_limit_window`` seconds before "rate limited" (None: no limit).
    rate_limit_sends: int | None = None
    rate_limit_window: float = 480.0
    #: When not None, ``getupdates`` answers report this as ``longpolling_timeout_ms`` instead of the real
    #: window: any JSON value (``10**20``, ``-5``, ``"soon"``), to see how a client copes with odd values.
    #: Polls are still held for ``long_poll_timeout``.
    reported_long_poll_ms: Any = None
    # --- housekeeping ---
    #: Seed of the random choices (ids, faults, duplicates) for reproducible runs.
    seed: int | None = None
    #: First uint64 id handed out (message_id, msg_id, svr_id).
    id_floor: int = DEFAULT_ID_FLOOR
    #: The largest request body an iLink API route accepts, in bytes (HTTP 413 beyond it). The largest real
    #: request, a ``sendmessage`` of 16 KiB of text, is far below the default of 1 MiB. The control API
    #: accepts up to ``MAX_CONTROL_BODY_BYTES`` (inbound media travel there in base64); a CDN upload up to
    #: the ciphertext size its ``getuploadurl`` declared.
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    #: Keep the last N requests (endpoint, headers, body) in ``sim.requests`` for tests of clients (0: off).
    record_requests: int = 0
    #: Milliseconds every iLink API and CDN request waits (without blocking the server) before it is served,
    #: to play a real network's round trip on loopback; a long poll is held its window on top. The control
    #: API answers at once.
    latency_ms: float = 0.0
    #: Keep the last N requests that differ from what the official client sends (``sim.conformance()``);
    #: only the differences are kept, never headers or bodies (0: don't check).
    conformance_log: int = 1000
    # --- shapes newer servers send (opt-in, so clients can be tested against each) ---
    #: Inbound images and videos carry a real, downloadable, encrypted thumbnail (``thumb_media``,
    #: ``thumb_size``, ``thumb_width``, ``thumb_height``).
    inbound_thumbnails: bool = False
    #: Inbound messages carry a ``run_id`` (a UUID per message).
    send_run_id: bool = False
    #: ``message_id``, ``msg_id`` and ``svr_id`` of delivered messages, and ``message_id`` in the
    #: ``sendmessage`` answer, are JSON strings of digits instead of numbers.
    ids_as_strings: bool = False
    #: Every delivered message gets a field no client knows (``future_flag``), every item one too
    #: (``future_field``), and every message one more item of an unknown type (99, ``future_item``).
    unknown_fields: bool = False

    def __post_init__(self) -> None:
        # Every knob is checked here, so configure(), POST /_sim/config, --set and the constructor all refuse
        # a value the server could not run with (a string page size, a NaN window) before it is stored.
        for f in dataclasses.fields(self):
            _check_knob(f.name, getattr(self, f.name))

    def replace(self, **changes: Any) -> SimConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SimError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Each knob's default, read by :func:`_check_knob` (which switches count as true-or-false knobs).
_KNOB_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(SimConfig)}


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


def _outbox_json(entry: OutboxEntry) -> dict[str, Any]:
    """An outbox entry as the state file and the journal keep it (media plaintexts in base64)."""
    media = {str(i): base64.b64encode(d).decode("ascii") for i, d in entry.media.items()}
    return {**dataclasses.asdict(entry), "media": media}


def _outbox_entry(raw: dict[str, Any]) -> OutboxEntry:
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
        for kind in _FAULT_KINDS:
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


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour (the generated thumbnail of inbound images and videos)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, None for anything else."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Pixel size of the generated thumbnail.
THUMB_WIDTH, THUMB_HEIGHT = 120, 90
_THUMBNAIL = _png(THUMB_WIDTH, THUMB_HEIGHT, (42, 157, 143))


def _ids_as_strings(value: Any) -> Any:
    """A copy of a message with every ``message_id``, ``msg_id`` and ``svr_id`` number written as a string."""
    if isinstance(value, dict):
        return {
            k: str(v) if k in UINT64_FIELDS and isinstance(v, int) and not isinstance(v, bool) else _ids_as_strings(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_ids_as_strings(v) for v in value]
    return value


def _run_id(run_id: Any) -> dict[str, str]:
    if run_id is None:
        return {}
    if not isinstance(run_id, str) or not run_id:
        raise SimError(f"run_id is a non-empty string (the official client uses a UUID), got {run_id!r}")
    return {"run_id": run_id}


def _text_of(msg: dict[str, Any]) -> str | None:
    """The text of a message's first text item, or None."""
    for item in msg.get("item_list") or ():
        text_item = item.get("text_item") if isinstance(item, dict) else None
        if isinstance(text_item, dict) and isinstance(text_item.get("text"), str):
            return str(text_item["text"])
    return None


def partial_quote(text: str, excerpt: tuple[int, int] | list[int] | str) -> dict[str, Any]:
    """``ref_msg.partial_text`` for an excerpt of ``text``: ``excerpt`` is a ``(start, end)`` slice of it or a
    substring (its first occurrence).

    ``start``/``end`` are the excerpt's first and last characters; ``startindex``/``endindex`` say which
    occurrence of each, counted from the beginning of the whole text as ``indexOf`` finds them (the "global"
    reading of ``endindex``); ``quotemd5`` is the hex MD5 of the excerpt's UTF-8, which tells a client which
    reading was meant.

    >>> p = partial_quote("a cat and a hat", "a hat")
    >>> p["start"], p["startindex"], p["end"], p["endindex"]
    ('a', 3, 't', 1)
    """
    if isinstance(excerpt, str):
        if not excerpt:
            raise SimError("a partial quote is a non-empty part of the quoted text")
        begin = text.find(excerpt)
        if begin < 0:
            raise SimError(f"partial {excerpt!r} is not in the quoted text {text[:80]!r}")
        stop = begin + len(excerpt)
    elif (
        isinstance(excerpt, (tuple, list))
        and len(excerpt) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) for i in excerpt)
    ):
        begin, stop = excerpt
        if not 0 <= begin < stop <= len(text):
            raise SimError(
                f"partial ({begin}, {stop}) is not a non-empty slice of the quoted text "
                f"(0 <= start < end <= {len(text)})"
            )
    else:
        raise SimError(f"partial is (start, end), a slice of the quoted text, or a substring of it; got {excerpt!r}")
    first, last = text[begin], text[stop - 1]
    return {
        "start": first,
        "end": last,
        # One character never overlaps itself, so occurrences found one after another are simply counted.
        "startindex": text.count(first, 0, begin),
        "endindex": text.count(last, 0, stop - 1),
        "quotemd5": hashlib.md5(text[begin:stop].encode("utf-8", "surrogatepass")).hexdigest(),
    }


def _b64_param(nbytes: int = 47) -> str:
    """An opaque CDN parameter in standard base64, always with a ``+`` or ``/`` so clients must URL-encode it."""
    while True:
        value = base64.b64encode(os.urandom(nbytes)).decode("ascii")
        if "+" in value or "/" in value:
            return value


def _encode_cursor(nonce: str, pos: int) -> str:
    return base64.b64encode(f"{nonce}:{pos}".encode("ascii")).decode("ascii")


def _decode_cursor(cursor: str) -> tuple[str, int] | None:
    try:
        nonce, _, pos = base64.b64decode(cursor, validate=True).decode("ascii").partition(":")
        return nonce, int(pos)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


class SimState:
    """The simulator's world. Thread-safe; every method may be called from any thread.

    >>> state = SimState(SimConfig(long_poll_timeout=1))
    >>> login = state.login_bot("alice")
    >>> state.say("alice", "hi")["item_list"][0]["text_item"]["text"]
    'hi'
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._listeners: dict[Any, set[Callable[[], None]]] = {}
        self.config = config or SimConfig()
        #: What :meth:`reset` goes back to: the config this state started with.
        self.initial_config = self.config
        self.base_url = "http://127.0.0.1:0"
        self.cdn_base_url = self.base_url + CDN_PREFIX
        self.redirect_host = "127.0.0.1:0"
        self.closed = False
        #: Bumped on every change.
        self.mutations = 0
        #: Requests per endpoint name, counted by the HTTP layer.
        self.request_counts: Counter[str] = Counter()
        #: The write-ahead journal (a :class:`~openclaw_nb.sim.journal.StateJournal`) when the state is saved
        #: to a file: every change is recorded in it, under the lock, as it is made.
        self.journal: Any = None
        self._recorded = -1  # the value of ``mutations`` when the change being made journaled a record
        self._clear()

    # --- bookkeeping -------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._next_id = self.config.id_floor + self._rng.randrange(1 << 40)
        self._offset = 0.0
        self._users: dict[str, SimUser] = {}
        self._bots: dict[str, SimBot] = {}
        self._tokens: dict[str, str] = {}
        self._latest_bot: str | None = None
        self._qrcodes: dict[str, QrCode] = {}
        self._latest_qr: str | None = None
        self._planned: deque[QrScenario] = deque()
        self._default_scenario: QrScenario | None = None
        self._contexts: dict[str, ContextRecord] = {}
        self._last_inbound: dict[tuple[str, str], float] = {}
        self._tickets: dict[tuple[str, str], str] = {}
        self._sent: dict[tuple[str, str], int] = {}
        self._send_times: dict[str, deque[float]] = {}
        self._by_id: dict[int, dict[str, Any]] = {}
        self._outbox: list[OutboxEntry] = []
        self._typing: list[TypingEvent] = []
        self._notifications: list[Notification] = []
        self._uploads: dict[str, UploadSlot] = {}
        self._cdn: dict[str, CdnObject] = {}
        self._faults: list[FaultRule] = []
        self._fault_ids = 0
        self._requests: deque[dict[str, Any]] = deque(maxlen=max(self.config.record_requests, 1))
        self._conformance: deque[ConformanceEntry] = deque(maxlen=max(self.config.conformance_log, 1))
        self._checked = 0

    def _record(self, *record: Any) -> None:
        """Journal the change being made (JSON values only; :meth:`apply_record` replays it)."""
        if self.journal is not None:
            self.journal.record(list(record))
            self._recorded = self.mutations

    def _changed(self, *keys: Any) -> None:
        """Record a mutation and wake whoever waits on ``keys`` (and ``"*"`` listeners). A change that did not
        journal a record of its own asks the journal for a full snapshot."""
        if self.journal is not None and self._recorded != self.mutations:
            self.journal.record(["snapshot"])
        self.mutations += 1  # a record made before this change no longer counts for the next one
        self._cond.notify_all()
        for key in (*keys, "*"):
            for callback in tuple(self._listeners.get(key, ())):
                callback()

    def _wake_all(self) -> None:
        if self.journal is not None:
            self.journal.record(["snapshot"])
        self.mutations += 1
        self._cond.notify_all()
        for callbacks in tuple(self._listeners.values()):
            for callback in tuple(callbacks):
                callback()

    def listen(self, key: Any, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (under the lock, so it must not block) whenever ``key`` changes; returns the
        function that unregisters it. Keys: ``("bot", bot_id)``, ``("qr", qrcode)``, ``"*"`` for all."""
        with self._lock:
            self._listeners.setdefault(key, set()).add(callback)
            self._cond.notify_all()  # wait_for(lambda s: s.waiters(key)) is woken by this

        def unlisten() -> None:
            with self._lock:
                callbacks = self._listeners.get(key)
                if callbacks is not None:
                    callbacks.discard(callback)
                    if not callbacks:
                        del self._listeners[key]
                self._cond.notify_all()

        return unlisten

    def waiters(self, key: Any = None) -> int:
        """How many held long polls (listeners) wait on ``key``, or on anything when ``key`` is None.

        Lets a test know that a request is held before it makes the change that should wake it.
        """
        with self._lock:
            if key is None:
                return sum(len(v) for k, v in self._listeners.items() if k != "*")
            return len(self._listeners.get(key, ()))

    def wait_for(self, predicate: Callable[[SimState], Any], timeout: float | None = None) -> Any:
        """Block the calling thread until ``predicate(state)`` is truthy (re-checked after every change);
        return its value, or raise ``TimeoutError`` after ``timeout`` seconds.

        >>> state.wait_for(lambda s: s.outbox, timeout=5)  # doctest: +SKIP
        """
        with self._cond:
            result = self._cond.wait_for(lambda: predicate(self), timeout)
            if not result:
                raise TimeoutError(f"the simulator state did not reach the condition within {timeout} s")
            return result

    def close(self) -> None:
        """Wake every held long poll so it answers now (the server is shutting down)."""
        with self._lock:
            self.closed = True
            self._wake_all()

    def reset(self, config: SimConfig | None = None) -> None:
        """Forget everything (bots, users, messages, QR codes, faults, the clock) and start over with ``config``,
        or with the config this state started with (knobs changed since by :meth:`configure` are undone)."""
        with self._lock:
            self.config = config or self.initial_config
            self._clear()
            self._wake_all()

    def configure(self, **changes: Any) -> SimConfig:
        """Change config knobs live: ``state.configure(long_poll_timeout=0.5, duplicate_rate=1.0)``."""
        with self._lock:
            self.config = self.config.replace(**changes)
            if "record_requests" in changes:
                self._requests = deque(self._requests, maxlen=max(self.config.record_requests, 1))
            if self.config.conformance_log and "conformance_log" in changes:  # 0 stops checking, keeps the list
                self._conformance = deque(self._conformance, maxlen=self.config.conformance_log)
            self._wake_all()
            return self.config

    def set_urls(self, base_url: str, cdn_base_url: str, redirect_host: str) -> None:
        """Tell the state where it is served (the server knows once its sockets are bound)."""
        with self._lock:
            self.base_url = base_url.rstrip("/")
            self.cdn_base_url = cdn_base_url.rstrip("/")
            self.redirect_host = redirect_host

    def _err(self, code: int, message: str) -> dict[str, Any]:
        body: dict[str, Any] = {"ret": code, "errmsg": message if self.config.descriptive_errors else ""}
        if code == C.RET_STALE_TOKEN:
            body["errcode"] = code  # -14 is reported with errcode as well; clients check both
        return body

    def _stale(self) -> dict[str, Any]:
        return self._err(
            C.RET_STALE_TOKEN,
            "session timeout: the bot token is unknown, stale or was replaced by a newer login; log in again",
        )

    # --- clock and ids -----------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated wall-clock time in seconds (real time plus what :meth:`advance` added)."""
        return time.time() + self._offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> float:
        """Move the simulated clock forward (QR expiry, the 24 h reply window and rate limits follow it).

        >>> state.advance(hours=25)  # doctest: +SKIP
        """
        delta = 0.0
        units = (("seconds", seconds, 1), ("minutes", minutes, 60), ("hours", hours, 3600), ("days", days, 86400))
        for unit, amount, scale in units:
            try:
                value = float(amount) if not isinstance(amount, (bool, str)) else math.nan
            except (TypeError, ValueError, OverflowError):
                value = math.nan if not isinstance(amount, int) else math.inf
            if not math.isfinite(value):
                raise SimError(f"advance {unit} is a finite number of {unit}, got {amount!r:.80}")
            if value < 0:
                raise SimError(f"the simulated clock only moves forward: advance {unit} is >= 0, got {amount!r}")
            delta += value * scale
        with self._lock:
            if self._offset + delta > MAX_SIM_SECONDS:
                raise SimError(
                    f"advance moves the simulated clock at most {MAX_SIM_SECONDS / 86400:,.0f} days ahead of real "
                    f"time in all (it is {self._offset / 86400:,.1f} days ahead now); reset the simulator to start over"
                )
            self._offset += delta
            self._wake_all()
            return self.now()

    def _new_id(self) -> int:
        self._next_id += self._rng.randrange(1, 1 << 12)
        if self._next_id > C.UINT64_MAX:
            self._next_id = self.config.id_floor
        return self._next_id

    # --- users and bots ----------------------------------------------------------------------------

    def add_user(self, user: str, name: str | None = None) -> str:
        """Make a simulated WeChat user known (``"alice"`` → ``alice@im.wechat``); returns the user id."""
        with self._lock:
            return self._user(user, name).user_id

    def _user(self, user: str | None, name: str | None = None) -> SimUser:
        user_id = user_id_of(user or self.config.default_user)
        found = self._users.get(user_id)
        if found is None:
            found = SimUser(user_id, name or user_id.split("@", 1)[0], self.now_ms())
            self._users[user_id] = found
            self._record("user", dataclasses.asdict(found))
            self._changed()
        return found

    def _new_bot(self, owner_id: str) -> SimBot:
        bot = SimBot(
            bot_id=f"{secrets.token_hex(8)}@im.bot",
            owner_id=owner_id,
            token=self._new_token(),
            created_ms=self.now_ms(),
            nonce=secrets.token_hex(4),
        )
        self._bots[bot.bot_id] = bot
        self._tokens[bot.token] = bot.bot_id
        self._latest_bot = bot.bot_id
        return bot

    @staticmethod
    def _new_token() -> str:
        return secrets.token_hex(32)

    def _rotate(self, bot: SimBot) -> None:
        self._tokens.pop(bot.token, None)
        bot.token = self._new_token()
        self._tokens[bot.token] = bot.bot_id
        self._latest_bot = bot.bot_id
        # The held long polls of the old token must answer -14 now.
        self._changed(("bot", bot.bot_id))

    def _login_of(self, bot: SimBot) -> BotLogin:
        return BotLogin(bot.token, bot.bot_id, self.base_url, bot.owner_id)

    def login_bot(self, user_id: str | None = None) -> BotLogin:
        """Create a new bot owned by ``user_id`` (default: the config's default user) and return its
        credentials, without a QR login. For tests of everything that comes after login.

        >>> login = sim.login_bot("alice")  # doctest: +SKIP
        >>> login.bot_token, login.ilink_bot_id, login.baseurl  # doctest: +SKIP
        """
        with self._lock:
            owner = self._user(user_id)
            bot = self._new_bot(owner.user_id)
            self._changed(("bot", bot.bot_id))
            return self._login_of(bot)

    def revoke_token(self, bot_id: str | None = None) -> None:
        """Make a bot's token stale, as token rotation or a login elsewhere would: its next call gets -14."""
        with self._lock:
            bot = self._bot(bot_id)
            self._tokens.pop(bot.token, None)
            bot.token = ""
            self._changed(("bot", bot.bot_id))

    def _bot(self, bot_id: str | None) -> SimBot:
        if bot_id is None:
            if self._latest_bot is None:
                raise SimError("there is no bot yet: log one in (sim.login_bot() or a QR login) first")
            return self._bots[self._latest_bot]
        bot = self._bots.get(bot_id)
        if bot is None:
            raise SimError(f"unknown bot {bot_id!r}; known bots: {sorted(self._bots)}")
        return bot

    def bot_for_token(self, token: str | None) -> str | None:
        """The bot id a token belongs to, or None when the token is missing, unknown or stale."""
        if not token:
            return None
        return self._tokens.get(token)

    @property
    def bots(self) -> dict[str, SimBot]:
        """Copies of the bots, by id (the inbox lists are shared: treat them as read-only)."""
        with self._lock:
            return {k: copy.copy(v) for k, v in self._bots.items()}

    @property
    def users(self) -> dict[str, SimUser]:
        with self._lock:
            return {k: copy.copy(v) for k, v in self._users.items()}

    @property
    def latest_bot_id(self) -> str | None:
        return self._latest_bot

    # --- QR login ----------------------------------------------------------------------------------

    def set_qr_scenario(self, qrcode: str | None = None, *, count: int | None = None, **flags: Any) -> QrScenario:
        """Choose the path of a QR code.

        With ``qrcode``: that (existing) code. Without: new QR codes, the next ``count`` ones only, or all of
        them from now on when ``count`` is None. Flags: see :class:`QrScenario`.

        >>> sim.set_qr_scenario(verify_code="123456", count=1)  # doctest: +SKIP
        """
        scenario = QrScenario.build(**flags)
        with self._lock:
            if qrcode is not None:
                qr = self._qr(qrcode)
                qr.scenario = scenario
                self._changed(("qr", qr.qrcode))
            elif count is None:
                self._default_scenario = scenario
                self._planned.clear()
            else:
                if count < 1:
                    raise SimError("count is a positive number of QR codes")
                self._planned.extend(dataclasses.replace(scenario) for _ in range(count))
            self._changed()
            return scenario

    def clear_qr_scenarios(self) -> None:
        """New QR codes take the plain path again (wait → scaned → confirmed)."""
        with self._lock:
            self._default_scenario = None
            self._planned.clear()
            self._changed()

    def create_qrcode(self, local_tokens: Iterable[Any] | None = None) -> dict[str, Any]:
        """``get_bot_qrcode``: a fresh QR code and the URL of its scan page."""
        with self._lock:
            now = self.now()
            if self._planned:
                scenario = self._planned.popleft()
            elif self._default_scenario is not None:
                scenario = dataclasses.replace(self._default_scenario)
            else:
                scenario = QrScenario()
            tokens = [t for t in (local_tokens or []) if isinstance(t, str)][: C.MAX_LOCAL_TOKENS]
            qr = QrCode(secrets.token_hex(16), now, now + self.config.qr_lifetime, scenario, tokens)
            self._qrcodes[qr.qrcode] = qr
            self._latest_qr = qr.qrcode
            self._changed(("qr", qr.qrcode))
            return {"ret": 0, "qrcode": qr.qrcode, "qrcode_img_content": self.scan_url(qr.qrcode)}

    def scan_url(self, qrcode: str) -> str:
        return f"{self.base_url}{CONTROL_PREFIX}/scan/{qrcode}"

    def _qr(self, qrcode: str | None) -> QrCode:
        if qrcode is None:
            if self._latest_qr is None:
                raise SimError("no QR code has been fetched yet (get_bot_qrcode)")
            qrcode = self._latest_qr
        qr = self._qrcodes.get(qrcode)
        if qr is None:
            raise SimError(f"unknown QR code {qrcode!r}")
        self._refresh(qr)
        return qr

    def _bump(self, qr: QrCode, status: str) -> None:
        qr.status = status
        qr.version += 1
        self._changed(("qr", qr.qrcode))

    def _auto_delay(self, qr: QrCode) -> float | None:
        delay = qr.scenario.auto_confirm
        return self.config.auto_confirm if delay is None else delay

    def _refresh(self, qr: QrCode) -> None:
        """Apply the time-based changes that are due: auto-confirm (scan, then confirm), then expiry."""
        if qr.is_terminal:
            return
        now = self.now()
        delay = self._auto_delay(qr)
        if delay is not None:
            due = qr.created_at + delay
            if now >= due and due < qr.expires_at:
                if qr.status == C.QrStatus.WAIT:
                    self._scan(qr, qr.scenario.user_id)
                if qr.status == C.QrStatus.SCANNED:
                    self._confirm(qr)
        if not qr.is_terminal and now >= qr.expires_at:
            self._bump(qr, C.QrStatus.EXPIRED)

    def _next_due(self, qr: QrCode) -> float | None:
        """Seconds (simulated clock) until the next time-based change of this QR code, if any."""
        if qr.is_terminal:
            return None
        now = self.now()
        times = [qr.expires_at]
        delay = self._auto_delay(qr)
        if delay is not None and qr.status in (C.QrStatus.WAIT, C.QrStatus.SCANNED):
            times.append(qr.created_at + delay)
        return max(0.0, min(times) - now)

    def _scan(self, qr: QrCode, user: str | None) -> None:
        qr.user_id = self._user(user or qr.scenario.user_id).user_id
        self._bump(qr, C.QrStatus.NEED_VERIFY_CODE if qr.scenario.verify_code else C.QrStatus.SCANNED)

    def _confirm(self, qr: QrCode) -> None:
        assert qr.user_id is not None
        owned = [b for b in self._bots.values() if b.owner_id == qr.user_id]
        bound = next((b for b in owned if b.token and b.token in qr.local_tokens), None)
        if qr.scenario.binded or bound is not None:
            qr.bot_id = bound.bot_id if bound is not None else None
            self._bump(qr, C.QrStatus.BINDED_REDIRECT)
            return
        if owned and self.config.rotate_token_on_relogin:
            bot = owned[-1]
            self._rotate(bot)
        else:
            bot = self._new_bot(qr.user_id)
        qr.bot_id, qr.bot_token = bot.bot_id, bot.token
        self._bump(qr, C.QrStatus.CONFIRMED)
        self._changed(("bot", bot.bot_id))

    def scan(self, qrcode: str | None = None, user: str | None = None) -> str:
        """The user (default: the scenario's or the config's default user) scans the QR code (default: the
        latest). Returns the new status: ``scaned``, or ``need_verifycode`` when the scenario has a code."""
        with self._lock:
            qr = self._qr(qrcode)
            if qr.is_terminal:
                raise SimError(f"QR code {qr.qrcode} is already {qr.status}; fetch a new one")
            if qr.status != C.QrStatus.WAIT:
                raise SimError(f"QR code {qr.qrcode} was already scanned (status {qr.status})")
            self._scan(qr, user)
            return qr.status

    def confirm(self, qrcode: str | None = None, user: str | None = None) -> str:
        """The user confirms the login on the phone (scanning first if nobody has). Returns the new status,
        ``confirmed`` or ``binded_redirect``. Fails while a verify code is still missing."""
        with self._lock:
            qr = self._qr(qrcode)
            if qr.is_terminal:
                raise SimError(f"QR code {qr.qrcode} is already {qr.status}; fetch a new one")
            if qr.status == C.QrStatus.WAIT:
                self._scan(qr, user)
            if qr.status == C.QrStatus.NEED_VERIFY_CODE:
                raise SimError(
                    f"QR code {qr.qrcode} needs the verify code {qr.scenario.verify_code} first: the client sends "
                    "it as verify_code on get_qrcode_status"
                )
            self._confirm(qr)
            return qr.status

    def expire(self, qrcode: str | None = None) -> str:
        """Expire a QR code now (the client must fetch a new one)."""
        with self._lock:
            qr = self._qr(qrcode)
            if not qr.is_terminal:
                self._bump(qr, C.QrStatus.EXPIRED)
            return qr.status

    def submit_verify_code(self, qrcode: str, code: str) -> str:
        """What ``get_qrcode_status?verify_code=`` does: right code → ``scaned``; wrong → ``need_verifycode``
        again, and ``verify_code_blocked`` after ``max_wrong_verify_codes`` wrong ones."""
        with self._lock:
            qr = self._qr(qrcode)
            self._verify(qr, code)
            return qr.status

    def _verify(self, qr: QrCode, code: str) -> None:
        if qr.status != C.QrStatus.NEED_VERIFY_CODE:
            return  # a code nobody asked for is ignored
        if code.strip() == qr.scenario.verify_code:
            self._bump(qr, C.QrStatus.SCANNED)
            self._refresh(qr)  # auto-confirm may be waiting for exactly this
            return
        qr.wrong_codes += 1
        if qr.wrong_codes >= self.config.max_wrong_verify_codes:
            self._bump(qr, C.QrStatus.VERIFY_CODE_BLOCKED)
        else:
            self._bump(qr, C.QrStatus.NEED_VERIFY_CODE)  # same status, new version: answered at once

    def qr_status(
        self,
        qrcode: str | None,
        *,
        verify_code: str | None = None,
        role: str = PRIMARY,
        final: bool = False,
        seen: list[int | None] | None = None,
    ) -> tuple[dict[str, Any] | None, float | None]:
        """``get_qrcode_status`` as a long poll: ``(body, None)`` when there is news for this host (or
        ``final``), else ``(None, seconds until the next time-based change or None)`` and the caller waits on
        ``("qr", qrcode)``. An unknown QR code reads as ``expired``, so a client fetches a new one.

        ``seen`` is one held request's memory (a one-element list the caller keeps between checks): a fresh
        request answers at once with news never reported to this host; a held one answers as soon as the
        status moves past what it saw when it started waiting. So a poll the client already gave up on can't
        swallow an update that the client's next poll is waiting for."""
        with self._lock:
            if not qrcode:
                return self._err(C.RET_INVALID_ARGS, "get_qrcode_status needs the qrcode query parameter"), None
            qr = self._qrcodes.get(qrcode)
            if qr is None:
                return {"ret": 0, "status": C.QrStatus.EXPIRED}, None
            self._refresh(qr)
            if verify_code:
                if qr.status == C.QrStatus.NEED_VERIFY_CODE and qr.codes_held < qr.scenario.verify_late:
                    qr.codes_held += 1  # no verdict yet: the client must send the code again
                    return {"ret": 0, "status": C.QrStatus.WAIT}, None
                self._verify(qr, verify_code)
            if seen is not None and seen[0] is not None:
                news = qr.version != seen[0]
            else:
                news = qr.version != qr.reported.get(role, 0)
            if not (final or qr.is_terminal or news):
                if seen is not None and seen[0] is None:
                    seen[0] = qr.version
                return None, self._next_due(qr)
            qr.reported[role] = qr.version
            status = qr.status
            body: dict[str, Any] = {"ret": 0}
            if role == PRIMARY and qr.scenario.redirect and status not in (C.QrStatus.WAIT, C.QrStatus.EXPIRED):
                body["status"] = C.QrStatus.SCANNED_BUT_REDIRECT
                body["redirect_host"] = self.redirect_host
                return body, None
            body["status"] = status
            if status == C.QrStatus.CONFIRMED:
                assert qr.bot_id is not None and qr.bot_token is not None and qr.user_id is not None
                baseurl = qr.scenario.baseurl or self.base_url
                if baseurl == "redirect":
                    baseurl = self.base_url.split("://", 1)[0] + "://" + self.redirect_host
                body.update(ilink_bot_id=qr.bot_id, baseurl=baseurl, ilink_user_id=qr.user_id)
                if not qr.token_handed:
                    # The token goes out once: whoever polls this code later (a second client, a
                    # stranger who saw the QR) learns that it was confirmed, not the token.
                    body["bot_token"] = qr.bot_token
                for name in qr.scenario.omit or ():
                    body.pop(name, None)
                qr.token_handed = qr.token_handed or "bot_token" in body
            return body, None

    @property
    def qrcodes(self) -> dict[str, QrCode]:
        """Copies of all QR codes, by id, with time-based changes applied."""
        with self._lock:
            for qr in self._qrcodes.values():
                self._refresh(qr)
            return {k: copy.deepcopy(v) for k, v in self._qrcodes.items()}

    @property
    def latest_qrcode(self) -> str | None:
        return self._latest_qr

    # --- inbound messages (simulated users) --------------------------------------------------------

    def _item(self, item_type: int, payload_field: str, payload: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return {
            "type": int(item_type),
            "create_time_ms": now_ms,
            "update_time_ms": now_ms,
            "is_completed": True,
            "msg_id": self._new_id(),
            payload_field: payload,
        }

    def _find_message(self, quote: Any) -> dict[str, Any]:
        if isinstance(quote, OutboxEntry):
            quote = quote.message_id
        elif isinstance(quote, dict):
            quote = quote.get("message_id")
        if isinstance(quote, str) and quote.isdigit():
            quote = int(quote)  # as the control API and ids_as_strings write it
        msg = self._by_id.get(quote) if isinstance(quote, int) and not isinstance(quote, bool) else None
        if msg is None:
            raise SimError(f"cannot quote message {quote!r}: no message with that message_id")
        return msg

    def _ref_msg(self, quote: Any, partial: Any = None, id_only: bool = False) -> dict[str, Any]:
        """The ``ref_msg`` of a quote: the quoted message's first item and a title, or (``id_only``) just its
        ``svr_id``, as newer WeChat apps send; ``partial`` adds ``partial_text`` (see :func:`partial_quote`)."""
        quoted = self._find_message(quote)
        ref: dict[str, Any] = {}
        if not id_only:
            items = quoted.get("item_list") or [{}]
            first = {k: v for k, v in items[0].items() if k != "ref_msg"} if isinstance(items[0], dict) else {}
            title = ""
            text_item = first.get("text_item")
            if isinstance(text_item, dict) and isinstance(text_item.get("text"), str):
                title = text_item["text"][:64]
            ref.update(message_item=copy.deepcopy(first), title=title)
        ref["svr_id"] = quoted["message_id"]
        if partial is not None:
            text = _text_of(quoted)
            if text is None:
                raise SimError("a partial quote needs a quoted message with text (its first text item)")
            ref["partial_text"] = partial_quote(text, partial)
        return ref

    def _deliver(self, bot: SimBot, user: SimUser, items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        now = self.now()
        now_ms = int(now * 1000)
        context_token = base64.b64encode(os.urandom(24)).decode("ascii")
        message_id = self._new_id()
        if self.config.unknown_fields:
            items = [
                *items,
                self._item(UNKNOWN_ITEM_TYPE, "future_item", {"note": "an item type from the future"}, now_ms),
            ]
            for item in items:
                if isinstance(item, dict):
                    item.setdefault("future_field", "added by a newer server")
        msg: dict[str, Any] = {
            "seq": len(bot.inbox) + 1,
            "message_id": message_id,
            "from_user_id": user.user_id,
            "to_user_id": bot.bot_id,
            "client_id": f"wx:{now_ms}-{secrets.token_hex(4)}",
            "create_time_ms": now_ms,
            "update_time_ms": now_ms,
            "delete_time_ms": 0,
            "session_id": "",
            "group_id": "",
            "message_type": int(C.MessageType.USER),
            "message_state": int(C.MessageState.FINISH),
            "item_list": items,
            "context_token": context_token,
        }
        if self.config.send_run_id:
            msg["run_id"] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        if self.config.unknown_fields:
            msg["future_flag"] = 1
        msg.update(fields)
        msg["message_id"], msg["context_token"], msg["seq"] = message_id, context_token, len(bot.inbox) + 1
        self._contexts[context_token] = ContextRecord(context_token, bot.bot_id, user.user_id, now)
        self._last_inbound[(bot.bot_id, user.user_id)] = now
        self._by_id[message_id] = msg
        bot.inbox.append(msg)
        added = [msg]
        rate = self.config.duplicate_rate
        if rate and self._rng.random() < rate:
            if self.config.duplicate_new_id:
                dup = dict(msg, message_id=self._new_id())
                self._by_id[dup["message_id"]] = dup
            else:
                dup = msg
            bot.inbox.append(dup)
            added.append(dup)
        self._record(
            "deliver",
            bot.bot_id,
            added,
            dataclasses.asdict(self._contexts[context_token]),
            user.user_id,
            now,
            self._next_id,
        )
        self._changed(("bot", bot.bot_id))
        return msg

    def say(
        self,
        user: str | None,
        text: str,
        bot_id: str | None = None,
        *,
        quote: Any = None,
        partial: tuple[int, int] | str | None = None,
        id_only: bool = False,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """A simulated user (default: the bot's owner) writes ``text`` to a bot (default: the latest one).
        Returns the stored message.

        ``quote`` (a message, an outbox entry or a message_id) adds a ``ref_msg`` carrying the quoted
        message's first item (text, image...) and its ``svr_id``; ``id_only=True`` sends only the ``svr_id``,
        as newer WeChat apps do; ``partial`` quotes an excerpt of the quoted text, given as ``(start, end)``
        (a Python slice of it) or as a substring (its first occurrence), with ``ref_msg.partial_text``.
        ``run_id`` sets the message's ``run_id``.

        >>> sim.say("alice", "hello bot")  # doctest: +SKIP
        >>> sim.say("alice", "this part", quote=msg, partial="the middle")  # doctest: +SKIP
        """
        if quote is None and (partial is not None or id_only):
            raise SimError("partial and id_only describe a quote: pass quote= (a message, outbox entry or message_id)")
        with self._lock:
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            now_ms = self.now_ms()
            item = self._item(C.ItemType.TEXT, "text_item", {"text": str(text)}, now_ms)
            if quote is not None:
                item["ref_msg"] = self._ref_msg(quote, partial, bool(id_only))
            return copy.deepcopy(self._deliver(bot, sender, [item], **_run_id(run_id)))

    def tool_call(
        self,
        user: str | None,
        tool_name: str,
        bot_id: str | None = None,
        *,
        call_id: str | None = None,
        status: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """A tool-call item arrives: with ``status=None`` the call starts (type 11, ``tool_call_start_item``),
        otherwise it has ended (type 12, ``tool_call_result_item`` with that ``status``: the official client
        knows ``completed``, ``failed``, ``blocked`` and ``unknown``). ``call_id`` ties the two together
        (default: a fresh one). One item per message, as the official client sends them.

        >>> start = sim.tool_call("alice", "search")  # doctest: +SKIP
        >>> call_id = start["item_list"][0]["tool_call_start_item"]["tool_call_id"]  # doctest: +SKIP
        >>> sim.tool_call("alice", "search", call_id=call_id, status="completed")  # doctest: +SKIP
        """
        if not isinstance(tool_name, str) or not tool_name:
            raise SimError("a tool call needs tool_name, a non-empty string such as 'search'")
        if call_id is not None and not isinstance(call_id, str):
            raise SimError(f"call_id is a string (the tool_call_id), got {call_id!r}")
        if status is not None and not isinstance(status, str):
            raise SimError(
                f"status is a string such as 'completed' or 'failed' (None: the call starts), got {status!r}"
            )
        with self._lock:
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            payload = {"tool_name": tool_name, "tool_call_id": call_id or f"call_{secrets.token_hex(6)}"}
            if status is None:
                item = self._item(C.ItemType.TOOL_CALL_START, "tool_call_start_item", payload, self.now_ms())
                item["is_completed"] = False
            else:
                payload["status"] = status
                item = self._item(C.ItemType.TOOL_CALL_RESULT, "tool_call_result_item", payload, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item], **_run_id(run_id)))

    def _store_media(
        self, data: bytes, *, encrypt: bool = True, key: bytes | None = None
    ) -> tuple[str, bytes | None, int]:
        """Put media on the CDN as a user's phone would (with ``key``, or a new one); returns (download param,
        key, stored size)."""
        if key is None and encrypt:
            key = crypto.new_key()
        blob = crypto.encrypt(data, key) if key is not None else bytes(data)
        param = _b64_param()
        self._cdn[param] = CdnObject(blob, key, len(data), crypto.md5_hex(data))
        return param, key, len(blob)

    def _media(self, param: str, aes_key: str | None) -> dict[str, Any]:
        media: dict[str, Any] = {"encrypt_query_param": param}
        if aes_key is not None:
            media["aes_key"] = aes_key
        media["encrypt_type"] = int(C.EncryptType.PACKED)
        if self.config.inbound_full_url:
            media["full_url"] = self.download_url(param)
        return media

    def download_url(self, param: str) -> str:
        return f"{self.cdn_base_url}{CDN_DOWNLOAD_PATH}?encrypted_query_param={quote(param, safe='')}"

    def _thumb_data(self, thumb: Any) -> tuple[bytes, tuple[int, int] | None] | None:
        """The thumbnail to send and its size in pixels (when known): ``thumb`` bytes, True for a generated
        PNG, False for none, None to follow ``inbound_thumbnails``."""
        if thumb is None:
            thumb = self.config.inbound_thumbnails
        if thumb is False:
            return None
        if thumb is True:
            return _THUMBNAIL, (THUMB_WIDTH, THUMB_HEIGHT)
        if isinstance(thumb, (bytes, bytearray, memoryview)) and len(thumb):
            data = bytes(thumb)
            return data, _png_size(data)
        raise SimError(f"thumb is the thumbnail's bytes, True (a generated one) or False, got {type(thumb).__name__}")

    def _thumb_fields(
        self, thumb: tuple[bytes, tuple[int, int] | None] | None, key: bytes | None, aes_key: str | None
    ) -> dict[str, Any]:
        """``thumb_media`` (on the CDN, encrypted with the item's key), ``thumb_size`` (stored bytes) and the
        thumbnail's pixel size, for an inbound image or video."""
        if thumb is None:
            return {}
        data, pixels = thumb
        param, _key, size = self._store_media(data, encrypt=key is not None, key=key)
        fields: dict[str, Any] = {"thumb_media": self._media(param, aes_key), "thumb_size": size}
        if pixels is not None:
            fields["thumb_width"], fields["thumb_height"] = pixels
        return fields

    def send_image(
        self,
        user: str | None,
        data: bytes,
        bot_id: str | None = None,
        *,
        key_format: str = "both",
        thumb: bytes | bool | None = None,
    ) -> dict[str, Any]:
        """A user sends an image. ``key_format``: ``"both"`` (``image_item.aeskey`` hex and ``media.aes_key``
        base64 of the raw key, as seen on images), ``"hex"`` (aeskey only), ``"media"`` (aes_key only) or
        ``"none"`` (stored unencrypted, no key: images may arrive that way). ``thumb``: the thumbnail's bytes,
        True for a generated 120x90 PNG, False for none; None follows the ``inbound_thumbnails`` knob."""
        if key_format not in ("both", "hex", "media", "none"):
            raise SimError("key_format is one of 'both', 'hex', 'media', 'none'")
        with self._lock:
            thumbnail = self._thumb_data(thumb)
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            param, key, size = self._store_media(bytes(data), encrypt=key_format != "none")
            raw_b64 = crypto.key_to_raw_b64(key) if key is not None and key_format in ("both", "media") else None
            image: dict[str, Any] = {"media": self._media(param, raw_b64), "mid_size": size}
            image.update(self._thumb_fields(thumbnail, key, raw_b64))
            if key is not None and key_format in ("both", "hex"):
                image["aeskey"] = crypto.key_to_hex(key)
            item = self._item(C.ItemType.IMAGE, "image_item", image, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    def send_file(self, user: str | None, data: bytes, file_name: str, bot_id: str | None = None) -> dict[str, Any]:
        """A user sends a file (``media.aes_key`` = base64 of the hex key, ``len`` = plaintext size as a string)."""
        with self._lock:
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            data = bytes(data)
            param, key, _size = self._store_media(data)
            assert key is not None
            payload = {
                "media": self._media(param, crypto.key_to_message_aes_key(key)),
                "file_name": file_name,
                "md5": crypto.md5_hex(data),
                "len": str(len(data)),
            }
            item = self._item(C.ItemType.FILE, "file_item", payload, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    def send_voice(
        self,
        user: str | None,
        data: bytes,
        text: str | None = None,
        bot_id: str | None = None,
        *,
        playtime_ms: int = 1000,
        encode_type: int = C.VoiceEncodeType.SILK,
        sample_rate: int = 16000,
    ) -> dict[str, Any]:
        """A user sends a voice note (SILK by default); ``text`` is the server's speech-to-text, if any."""
        with self._lock:
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            param, key, _size = self._store_media(bytes(data))
            assert key is not None
            payload: dict[str, Any] = {
                "media": self._media(param, crypto.key_to_message_aes_key(key)),
                "encode_type": int(encode_type),
                "bits_per_sample": 16,
                "sample_rate": sample_rate,
                "playtime": playtime_ms,
            }
            if text is not None:
                payload["text"] = text
            item = self._item(C.ItemType.VOICE, "voice_item", payload, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    def send_video(
        self,
        user: str | None,
        data: bytes,
        bot_id: str | None = None,
        *,
        play_length: int = 1,
        thumb: bytes | bool | None = None,
    ) -> dict[str, Any]:
        """A user sends a video (``video_size`` = ciphertext size, ``video_md5`` of the plaintext). ``thumb``:
        as for :meth:`send_image` (the thumbnail is encrypted with the video's key)."""
        with self._lock:
            thumbnail = self._thumb_data(thumb)
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            data = bytes(data)
            param, key, size = self._store_media(data)
            assert key is not None
            aes_key = crypto.key_to_message_aes_key(key)
            payload = {
                "media": self._media(param, aes_key),
                "video_size": size,
                "play_length": play_length,
                "video_md5": crypto.md5_hex(data),
                **self._thumb_fields(thumbnail, key, aes_key),
            }
            item = self._item(C.ItemType.VIDEO, "video_item", payload, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    def inbound(self, msg: dict[str, Any], bot_id: str | None = None) -> dict[str, Any]:
        """Deliver a hand-made WeixinMessage from a user (``from_user_id`` required). The server's fields
        (``message_id``, ``seq``, ``context_token``, ``to_user_id``, times) are filled in; items without a
        ``msg_id`` get one. Unknown fields are kept."""
        if not isinstance(msg, dict):
            raise SimError("msg is a WeixinMessage object (a dict)")
        with self._lock:
            if bot_id is None and msg.get("to_user_id") in self._bots:
                bot_id = msg["to_user_id"]
            bot = self._bot(bot_id)
            sender = msg.get("from_user_id")
            if not isinstance(sender, str) or not sender:
                raise SimError("an inbound msg needs from_user_id (the simulated user who writes)")
            user = self._user(sender)
            now_ms = self.now_ms()
            items = copy.deepcopy(msg.get("item_list") or [])
            if not isinstance(items, list):
                raise SimError("item_list is a list of MessageItem objects")
            for item in items:
                if isinstance(item, dict):
                    item.setdefault("msg_id", self._new_id())
                    item.setdefault("create_time_ms", now_ms)
            fields = {k: copy.deepcopy(v) for k, v in msg.items() if k != "item_list"}
            fields["to_user_id"] = bot.bot_id
            fields["from_user_id"] = user.user_id
            fields.setdefault("create_time_ms", now_ms)
            fields.setdefault("update_time_ms", now_ms)
            fields.setdefault("message_type", int(C.MessageType.USER))
            return copy.deepcopy(self._deliver(bot, user, items, **fields))

    def inbox(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        """Everything delivered to a bot so far (duplicates included), in delivery order."""
        with self._lock:
            return copy.deepcopy(self._bot(bot_id).inbox)

    # --- getupdates --------------------------------------------------------------------------------

    def get_updates(
        self, token: str | None, body: dict[str, Any], *, final: bool = False
    ) -> tuple[dict[str, Any] | None, str | None]:
        """``getupdates``: ``(page, bot_id)`` when there are messages after the cursor (or ``final``), else
        ``(None, bot_id)`` and the caller waits on ``("bot", bot_id)``.

        Cursor semantics: a returned cursor points past the page it came with. Polling with a cursor
        acknowledges everything before it. ``""`` (or a cursor this bot did not issue) resumes after the last
        acknowledged message, so a fresh login does not replay history that was already consumed, while a
        page that was fetched but never acknowledged is delivered again (at-least-once). An older cursor of
        this bot also resumes there: the cursor only moves forward.
        """
        with self._lock:
            bot_id = self.bot_for_token(token)
            if bot_id is None:
                return self._stale(), None
            bot = self._bots[bot_id]
            cursor = body.get("get_updates_buf")
            if not cursor:
                cursor = body.get("sync_buf")  # deprecated alias
            cursor = cursor if isinstance(cursor, str) else ""
            decoded = _decode_cursor(cursor) if cursor else None
            valid = decoded is not None and decoded[0] == bot.nonce and 0 <= decoded[1] <= len(bot.inbox)
            if valid:
                assert decoded is not None
                pos = decoded[1]
                if pos > bot.acked:
                    bot.acked = pos
                    self._record("ack", bot.bot_id, pos)
                    self.mutations += 1
                # The cursor only moves forward: acknowledged messages can't be fetched again (docs/protocol.md).
                pos = max(pos, bot.acked)
            else:
                pos = bot.acked
            page = bot.inbox[pos : pos + self.config.page_size]
            if not page and not final:
                return None, bot_id
            # An empty page echoes the cursor it was asked with ("no messages, same cursor").
            unchanged = valid and decoded is not None and decoded[1] == pos
            next_cursor = cursor if unchanged and not page else _encode_cursor(bot.nonce, pos + len(page))
            if self.config.ids_as_strings:
                page = [_ids_as_strings(msg) for msg in page]
            return {
                "ret": 0,
                "msgs": page,
                "get_updates_buf": next_cursor,
                "longpolling_timeout_ms": (
                    int(self.config.long_poll_timeout * 1000)
                    if self.config.reported_long_poll_ms is None
                    else self.config.reported_long_poll_ms
                ),
            }, bot_id

    # --- sendmessage -------------------------------------------------------------------------------

    def send_message(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``sendmessage`` with the real server's rules (each switchable in :class:`SimConfig`)."""
        with self._lock:
            bot_id = self.bot_for_token(token)
            if bot_id is None:
                return self._stale()
            cfg = self.config
            msg = body.get("msg")
            if not isinstance(msg, dict):
                return self._err(C.RET_INVALID_ARGS, "sendmessage needs a msg object")
            to_user = msg.get("to_user_id")
            if not isinstance(to_user, str) or not to_user:
                return self._err(C.RET_INVALID_ARGS, "msg.to_user_id is missing (users look like ...@im.wechat)")
            if cfg.check_to_user and to_user not in self._users:
                return self._err(C.RET_INVALID_ARGS, f"unknown to_user_id {to_user!r}")
            items = msg.get("item_list")
            if not isinstance(items, list) or not items:
                return self._err(C.RET_INVALID_ARGS, "msg.item_list needs at least one item")
            client_id = msg.get("client_id")
            if cfg.dedupe_client_id and isinstance(client_id, str) and client_id:
                earlier = self._sent.get((bot_id, client_id))
                if earlier is not None:
                    return {"ret": 0, "message_id": str(earlier) if cfg.ids_as_strings else earlier}
            now = self.now()
            context_token = msg.get("context_token")
            record: ContextRecord | None = None
            if cfg.require_context_token:
                if not isinstance(context_token, str) or not context_token:
                    return self._err(
                        C.RET_SEND_REJECTED,
                        "context_token missing: echo the context_token of the user's latest message",
                    )
                record = self._contexts.get(context_token)
                if record is None or record.bot_id != bot_id or record.user_id != to_user:
                    return self._err(
                        C.RET_SEND_REJECTED,
                        "unknown context_token for this user: use the one from the user's latest message",
                    )
            elif isinstance(context_token, str):
                record = self._contexts.get(context_token)
            if cfg.reply_window_seconds is not None:
                last = self._last_inbound.get((bot_id, to_user))
                if last is None or now - last > cfg.reply_window_seconds:
                    return self._err(
                        C.RET_SEND_REJECTED,
                        "reply window closed: a bot can only reply within 24 h of the user's last message",
                    )
            limit = cfg.sends_per_context_token
            if record is not None and limit is not None and record.sends >= limit:
                return self._err(
                    C.RET_SEND_REJECTED,
                    f"context_token used up: at most {limit} sends per user message; wait for the user to write again",
                )
            if cfg.max_text_bytes is not None:
                size = 0
                for item in items:
                    text_item = item.get("text_item") if isinstance(item, dict) else None
                    if isinstance(text_item, dict) and isinstance(text_item.get("text"), str):
                        size += len(text_item["text"].encode("utf-8"))
                if size > cfg.max_text_bytes:
                    return self._err(
                        C.RET_SEND_REJECTED,
                        f"prepare failed: text is {size} bytes of UTF-8, more than {cfg.max_text_bytes}; "
                        "split long replies",
                    )
            if cfg.rate_limit_sends is not None:
                times = self._send_times.setdefault(bot_id, deque())
                while times and now - times[0] > cfg.rate_limit_window:
                    times.popleft()
                if len(times) >= cfg.rate_limit_sends:
                    return self._err(C.RET_SEND_REJECTED, "rate limited")
                times.append(now)
            if record is not None:
                record.sends += 1
            message_id = self._new_id()
            # The body was parsed for this request, so a shallow copy is enough to leave the caller's dict alone.
            stored = dict(msg)
            now_ms = int(now * 1000)
            stored["message_id"] = message_id
            stored["from_user_id"] = bot_id
            stored.setdefault("create_time_ms", now_ms)
            self._by_id[message_id] = stored
            if isinstance(client_id, str) and client_id:
                self._sent[(bot_id, client_id)] = message_id
            entry = OutboxEntry(
                bot_id,
                to_user,
                message_id,
                client_id if isinstance(client_id, str) else None,
                context_token if isinstance(context_token, str) else None,
                now_ms,
                stored,
            )
            self._open_media(entry)
            self._outbox.append(entry)
            if self.journal is not None:
                self._record(
                    "send",
                    _outbox_json(entry),
                    record.token if record is not None else None,
                    record.sends if record is not None else None,
                    self._next_id,
                )
            self._changed(("outbox", bot_id))
            return {"ret": 0, "message_id": str(message_id) if cfg.ids_as_strings else message_id}

    def _open_media(self, entry: OutboxEntry) -> None:
        """Decrypt each media item of a sent message as a phone would, noting what would go wrong."""
        for index, item in enumerate(entry.items):
            if not isinstance(item, dict):
                continue
            for name in _MEDIA_ITEM_FIELDS:
                payload = item.get(name)
                if isinstance(payload, dict):
                    self._open_item(entry, index, name, payload)

    def _open_item(self, entry: OutboxEntry, index: int, name: str, payload: dict[str, Any]) -> None:
        media = payload.get("media")
        if not isinstance(media, dict):
            entry.problems.append(f"item {index}: {name} has no media")
            return
        param = media.get("encrypt_query_param")
        if not isinstance(param, str) and isinstance(media.get("full_url"), str):
            found = parse_qs(urlsplit(media["full_url"]).query).get("encrypted_query_param")
            param = found[0] if found else None
        obj = self._cdn.get(param) if isinstance(param, str) else None
        if obj is None:
            entry.problems.append(f"item {index}: media.encrypt_query_param is not a download param of this CDN")
            return
        key: bytes | None = None
        aes_key = media.get("aes_key")
        if name == "image_item" and isinstance(payload.get("aeskey"), str):
            try:
                key = crypto.parse_hex_key(payload["aeskey"])
            except crypto.KeyFormatError as exc:
                entry.problems.append(f"item {index}: image_item.aeskey: {exc}")
        if key is None and isinstance(aes_key, str):
            try:
                key = crypto.parse_media_aes_key(aes_key)
            except crypto.KeyFormatError as exc:
                entry.problems.append(f"item {index}: media.aes_key: {exc}")
                return
            if len(base64.b64decode(aes_key)) == crypto.KEY_BYTES:
                entry.problems.append(
                    f"item {index}: media.aes_key is base64 of the raw key; phones show a grey box. "
                    "Send base64 of the 32-character hex string"
                )
        if key is None:
            entry.problems.append(f"item {index}: no AES key for the media")
            return
        try:
            entry.media[index] = crypto.decrypt(obj.data, key)
        except ValueError:
            entry.problems.append(f"item {index}: the message's AES key does not decrypt the uploaded media")
            return
        if name == "file_item" and payload.get("len") not in (None, str(len(entry.media[index]))):
            entry.problems.append(f"item {index}: file_item.len should be {len(entry.media[index])} (as a string)")

    @property
    def outbox(self) -> list[OutboxEntry]:
        """What bots sent, oldest first (copies of the list; entries are shared, treat them as read-only)."""
        with self._lock:
            return list(self._outbox)

    # --- typing and session lifecycle --------------------------------------------------------------

    def get_config(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``getconfig``: a typing ticket per (bot, user); -4 before the user's first message."""
        with self._lock:
            bot_id = self.bot_for_token(token)
            if bot_id is None:
                return self._stale()
            user = body.get("ilink_user_id")
            if not isinstance(user, str) or not user:
                return self._err(C.RET_INVALID_ARGS, "getconfig needs ilink_user_id")
            if self.config.require_contact_for_config and (bot_id, user) not in self._last_inbound:
                return self._err(C.RET_NOT_YET_CONTACTED, "the user has not written to this bot yet: no typing ticket")
            ticket = self._tickets.get((bot_id, user))
            if ticket is None:
                ticket = base64.b64encode(os.urandom(32)).decode("ascii")
                self._tickets[(bot_id, user)] = ticket
                self._record("ticket", bot_id, user, ticket)
                self._changed()
            return {"ret": 0, "typing_ticket": ticket}

    def send_typing(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``sendtyping``: checks the ticket from ``getconfig`` and the status (1 typing, 2 cancel)."""
        with self._lock:
            bot_id = self.bot_for_token(token)
            if bot_id is None:
                return self._stale()
            user = body.get("ilink_user_id")
            status = body.get("status")
            if not isinstance(user, str) or not user:
                return self._err(C.RET_INVALID_ARGS, "sendtyping needs ilink_user_id")
            if status not in (C.TypingStatus.TYPING, C.TypingStatus.CANCEL) or isinstance(status, bool):
                return self._err(C.RET_INVALID_ARGS, "sendtyping status is 1 (typing) or 2 (cancel)")
            if self.config.check_typing_ticket:
                ticket = self._tickets.get((bot_id, user))
                if ticket is None or body.get("typing_ticket") != ticket:
                    return self._err(C.RET_SEND_REJECTED, "invalid typing_ticket: get one from getconfig for this user")
            self._typing.append(TypingEvent(bot_id, user, int(status), self.now_ms()))
            self._record("typing", dataclasses.asdict(self._typing[-1]))
            self._changed(("typing", bot_id))
            return {"ret": 0}

    def notify(self, token: str | None, kind: str) -> dict[str, Any]:
        """``msg/notifystart`` (kind ``start``) and ``msg/notifystop`` (``stop``): recorded."""
        with self._lock:
            bot_id = self.bot_for_token(token)
            if bot_id is None:
                return self._stale()
            self._notifications.append(Notification(bot_id, kind, self.now_ms()))
            self._record("notify", dataclasses.asdict(self._notifications[-1]))
            self._changed(("notify", bot_id))
            return {"ret": 0}

    @property
    def typing_events(self) -> list[TypingEvent]:
        with self._lock:
            return list(self._typing)

    @property
    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    # --- uploads and the CDN -----------------------------------------------------------------------

    def get_upload_url(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``getuploadurl``: registers the upload (filekey, sizes, md5, key) and returns its opaque param."""
        with self._lock:
            bot_id = self.bot_for_token(token)
            if bot_id is None:
                return self._stale()

            def bad(message: str) -> dict[str, Any]:
                return self._err(C.RET_INVALID_ARGS, message)

            filekey, media_type = body.get("filekey"), body.get("media_type")
            rawsize, filesize, md5 = body.get("rawsize"), body.get("filesize"), body.get("rawfilemd5")
            if not isinstance(filekey, str) or not filekey:
                return bad("getuploadurl needs filekey (16 random bytes as hex)")
            if (
                isinstance(media_type, bool)
                or not isinstance(media_type, int)
                or media_type not in {int(t) for t in C.UploadMediaType}
            ):
                return bad("media_type is 1 image, 2 video, 3 file or 4 voice")
            if not isinstance(rawsize, int) or isinstance(rawsize, bool) or rawsize < 0:
                return bad("rawsize is the plaintext size in bytes")
            if not isinstance(filesize, int) or isinstance(filesize, bool):
                return bad("filesize is the ciphertext size in bytes")
            if self.config.check_uploads and filesize != crypto.padded_size(rawsize):
                return bad(f"filesize should be {crypto.padded_size(rawsize)} for rawsize {rawsize} (AES/PKCS#7)")
            if not isinstance(md5, str) or len(md5) != 32:
                return bad("rawfilemd5 is the hex MD5 of the plaintext")
            try:
                key = crypto.parse_hex_key(body.get("aeskey") or "")
            except (crypto.KeyFormatError, TypeError):
                return bad("aeskey is the 16-byte AES key as 32 hex characters")
            to_user = body.get("to_user_id")
            slot = UploadSlot(
                _b64_param(),
                bot_id,
                filekey,
                media_type,
                to_user if isinstance(to_user, str) else None,
                rawsize,
                md5.lower(),
                filesize,
                key,
            )
            self._uploads[slot.param] = slot
            answer: dict[str, Any] = {"ret": 0, "upload_param": slot.param}
            thumb_raw, thumb_size = body.get("thumb_rawsize"), body.get("thumb_filesize")
            if body.get("no_need_thumb") is False and isinstance(thumb_raw, int) and isinstance(thumb_size, int):
                thumb = dataclasses.replace(
                    slot,
                    param=_b64_param(),
                    rawsize=thumb_raw,
                    filesize=thumb_size,
                    rawfilemd5=str(body.get("thumb_rawfilemd5") or "").lower(),
                )
                self._uploads[thumb.param] = thumb
                answer["thumb_upload_param"] = thumb.param
            if self.config.upload_full_url:
                answer["upload_full_url"] = self.upload_url(slot.param, filekey)
            self._changed()
            return answer

    def upload_url(self, param: str, filekey: str) -> str:
        return (
            f"{self.cdn_base_url}{CDN_UPLOAD_PATH}?encrypted_query_param={quote(param, safe='')}"
            f"&filekey={quote(filekey, safe='')}"
        )

    def cdn_upload(self, param: str | None, filekey: str | None, data: bytes) -> tuple[int, str]:
        """The CDN's upload: ``(200, download_param)`` or ``(4xx, error message)`` for ``x-error-message``."""
        with self._lock:
            slot = self._uploads.get(param or "")
            if slot is None:
                return 400, "unknown encrypted_query_param: call getuploadurl first"
            if filekey is not None and filekey != slot.filekey:
                return 400, "filekey does not match the one registered with getuploadurl"
            if self.config.check_uploads:
                if len(data) != slot.filesize:
                    return 400, f"ciphertext is {len(data)} bytes but filesize {slot.filesize} was registered"
                try:
                    plain = crypto.decrypt(data, slot.aeskey)
                except ValueError:
                    return 400, "cannot decrypt the upload with the registered aeskey (AES-128-ECB, PKCS#7)"
                if len(plain) != slot.rawsize:
                    return 400, f"plaintext is {len(plain)} bytes but rawsize {slot.rawsize} was registered"
                if crypto.md5_hex(plain) != slot.rawfilemd5:
                    return 400, "md5 mismatch: rawfilemd5 is not the MD5 of the uploaded plaintext"
            if slot.download_param is None:
                slot.download_param = _b64_param()
            self._cdn[slot.download_param] = CdnObject(
                bytes(data), slot.aeskey, slot.rawsize, slot.rawfilemd5, slot.filekey
            )
            self._changed()
            return 200, slot.download_param

    def upload_limit(self, param: str | None) -> int:
        """The most bytes the CDN reads for an upload to ``param``: the ciphertext size its ``getuploadurl``
        declared (plus a little slack), or ``max_request_bytes`` when the param is unknown (then the upload is
        refused anyway)."""
        with self._lock:
            slot = self._uploads.get(param or "")
            size = slot.filesize if slot is not None else None
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                return size + UPLOAD_SLACK_BYTES
            return self.config.max_request_bytes

    def cdn_download(self, param: str | None) -> bytes | None:
        """The CDN's download: the stored ciphertext, or None when the param is unknown."""
        with self._lock:
            obj = self._cdn.get(param or "")
            return obj.data if obj is not None else None

    # --- faults ------------------------------------------------------------------------------------

    def add_fault(self, **knobs: Any) -> FaultRule:
        """Add a fault rule (see :class:`FaultRule`).

        >>> state.add_fault(http_500=1.0, count=2, endpoints=["get_updates"])  # doctest: +SKIP
        """
        rule = FaultRule.build(**knobs)
        with self._lock:
            self._fault_ids += 1
            rule.id = self._fault_ids
            self._faults.append(rule)
            self._changed()
            return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._changed()

    @property
    def faults(self) -> list[FaultRule]:
        with self._lock:
            return [dataclasses.replace(r) for r in self._faults]

    @property
    def has_faults(self) -> bool:
        return bool(self._faults)

    def draw_fault(self, endpoint: str | None) -> FaultDecision | None:
        """Decide what happens to one request for ``endpoint`` (None: control API, never faulted)."""
        if endpoint is None or not self._faults:
            return None
        with self._lock:
            decision = FaultDecision()
            for rule in list(self._faults):
                if rule.endpoints is not None and endpoint not in rule.endpoints:
                    continue
                fired = bool(rule.delay_ms)
                decision.delay += rule.delay_ms / 1000.0
                if decision.kind is None:  # the first rule that picks a misbehaviour wins
                    for kind in _FAULT_KINDS:
                        rate = getattr(rule, kind)
                        if rate and (rate >= 1.0 or self._rng.random() < rate):
                            decision.kind = kind
                            decision.retry_after = rule.retry_after
                            decision.status = rule.http_4xx_status
                            fired = True
                            break
                if fired and rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._faults.remove(rule)
            return decision if decision.delay or decision.kind else None

    # --- request log -------------------------------------------------------------------------------

    def record_request(self, entry: dict[str, Any]) -> None:
        if self.config.record_requests:
            with self._lock:
                self._requests.append(entry)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The last ``record_requests`` requests: endpoint, method, query, headers, JSON body."""
        with self._lock:
            return list(self._requests) if self.config.record_requests else []

    # --- conformance -------------------------------------------------------------------------------

    def check_conformance(
        self,
        endpoint: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Iterable[str],
        body: Any = None,
    ) -> list[Difference]:
        """Compare one received request with what the official client sends for ``endpoint`` (see
        :mod:`openclaw_nb.protocol.conformance`) and keep the differences, if any, in :meth:`conformance`.
        ``body``: the parsed JSON body, None when none was read, anything else when it is not a JSON object."""
        if not self.config.conformance_log:
            return []
        differences = check_request(endpoint, method, headers, query, body)
        with self._lock:
            self._checked += 1
            if differences:
                entry = ConformanceEntry(self._checked, self.now_ms(), endpoint, method.upper(), path, differences)
                self._conformance.append(entry)
        return differences

    def conformance(self) -> list[ConformanceEntry]:
        """The last ``conformance_log`` requests that differ from what the official client sends, oldest
        first: missing or extra iLink headers, body keys the official request has not (or has), a method it
        does not use. Key names only, never values.

        >>> [e.texts for e in sim.conformance()]  # doctest: +SKIP
        [['header AuthorizationType is missing: the official client sends it']]
        """
        with self._lock:
            return list(self._conformance)

    @property
    def conformance_checked(self) -> int:
        """How many requests were compared with the official client's since the last reset."""
        return self._checked

    def clear_conformance(self) -> None:
        """Forget the differences seen so far (the count of checked requests starts again too)."""
        with self._lock:
            self._conformance.clear()
            self._checked = 0

    # --- views -------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything a person or a test in another process wants to see, JSON-ready; secrets redacted."""
        with self._lock:
            for qr in self._qrcodes.values():
                self._refresh(qr)
            pending = [qr for qr in self._qrcodes.values() if not qr.is_terminal]
            return {
                "base_url": self.base_url,
                "cdn_base_url": self.cdn_base_url,
                "redirect_host": self.redirect_host,
                "now_ms": self.now_ms(),
                "clock_offset_seconds": self._offset,
                "config": self.config.to_json(),
                "bots": [
                    {
                        "bot_id": b.bot_id,
                        "owner_id": b.owner_id,
                        "bot_token": redact(b.token) if b.token else "",
                        "created_ms": b.created_ms,
                        "delivered": len(b.inbox),
                        "acknowledged": b.acked,
                        "latest": b.bot_id == self._latest_bot,
                    }
                    for b in self._bots.values()
                ],
                "users": [dataclasses.asdict(u) for u in self._users.values()],
                "qrcodes": [self._qr_json(qr) for qr in pending],
                "all_qrcodes": len(self._qrcodes),
                "outbox_size": len(self._outbox),
                "typing": [dataclasses.asdict(t) for t in self._typing[-100:]],
                "notifications": [dataclasses.asdict(n) for n in self._notifications[-100:]],
                "faults": [r.to_json() for r in self._faults],
                "request_counts": dict(self.request_counts),
                "nonconforming_requests": len(self._conformance),
            }

    def _qr_json(self, qr: QrCode) -> dict[str, Any]:
        return {
            "qrcode": qr.qrcode,
            "status": qr.status,
            "scenario": qr.scenario.to_json(),
            "user_id": qr.user_id,
            "wrong_codes": qr.wrong_codes,
            "created_ms": int(qr.created_at * 1000),
            "expires_ms": int(qr.expires_at * 1000),
            "scan_url": self.scan_url(qr.qrcode),
            "ilink_bot_id": qr.bot_id,
        }

    def qr_json(self, qrcode: str) -> dict[str, Any]:
        with self._lock:
            return self._qr_json(self._qr(qrcode))

    # --- persistence -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The durable part of the state (bots, tokens, users, messages, cursors, context tokens, tickets,
        outbox, CDN objects, the clock): what ``--state PATH`` saves. QR codes and faults are not kept."""

        def b64(data: bytes | None) -> str | None:
            return None if data is None else base64.b64encode(data).decode("ascii")

        with self._lock:
            return {
                "format": 1,
                "clock_offset": self._offset,
                "next_id": self._next_id,
                "latest_bot": self._latest_bot,
                "users": [dataclasses.asdict(u) for u in self._users.values()],
                "bots": [dataclasses.asdict(b) for b in self._bots.values()],
                "contexts": [dataclasses.asdict(r) for r in self._contexts.values()],
                "last_inbound": [[b, u, t] for (b, u), t in self._last_inbound.items()],
                "tickets": [[b, u, t] for (b, u), t in self._tickets.items()],
                "sent": [[b, c, m] for (b, c), m in self._sent.items()],
                "outbox": [_outbox_json(e) for e in self._outbox],
                "typing": [dataclasses.asdict(t) for t in self._typing],
                "notifications": [dataclasses.asdict(n) for n in self._notifications],
                "cdn": {
                    p: {
                        "data": b64(o.data),
                        "key": b64(o.key),
                        "rawsize": o.rawsize,
                        "md5": o.md5,
                        "filekey": o.filekey,
                    }
                    for p, o in self._cdn.items()
                },
            }

    def load_json(self, data: dict[str, Any]) -> None:
        """Replace the durable state with what :meth:`to_json` produced."""
        if data.get("format") != 1:
            raise SimError("not a simulator state file (format 1)")

        def unb64(text: str | None) -> bytes | None:
            return None if text is None else base64.b64decode(text)

        with self._lock:
            self._clear()
            self._offset = float(data.get("clock_offset", 0.0))
            self._next_id = int(data.get("next_id", self._next_id))
            self._users = {u["user_id"]: SimUser(**u) for u in data.get("users", [])}
            self._bots = {b["bot_id"]: SimBot(**b) for b in data.get("bots", [])}
            self._tokens = {b.token: b.bot_id for b in self._bots.values() if b.token}
            latest = data.get("latest_bot")
            self._latest_bot = latest if latest in self._bots else None
            self._contexts = {r["token"]: ContextRecord(**r) for r in data.get("contexts", [])}
            self._last_inbound = {(b, u): float(t) for b, u, t in data.get("last_inbound", [])}
            self._tickets = {(b, u): t for b, u, t in data.get("tickets", [])}
            self._sent = {(b, c): int(m) for b, c, m in data.get("sent", [])}
            for bot in self._bots.values():
                for msg in bot.inbox:
                    self._by_id[msg["message_id"]] = msg
            for raw in data.get("outbox", []):
                entry = _outbox_entry(raw)
                self._outbox.append(entry)
                self._by_id[entry.message_id] = entry.msg
            self._typing = [TypingEvent(**t) for t in data.get("typing", [])]
            self._notifications = [Notification(**n) for n in data.get("notifications", [])]
            for param, obj in data.get("cdn", {}).items():
                self._cdn[param] = CdnObject(
                    unb64(obj["data"]) or b"", unb64(obj.get("key")), obj["rawsize"], obj["md5"], obj.get("filekey", "")
                )
            self._wake_all()

    def apply_record(self, record: list[Any]) -> None:
        """Replay one journal record (see :meth:`_record`), as the change it stands for made it. Under the lock."""
        kind, args = record[0], record[1:]
        if kind == "deliver":
            bot_id, added, context, user_id, now, next_id = args
            bot = self._bots[bot_id]
            for msg in added:
                bot.inbox.append(msg)
                self._by_id[msg["message_id"]] = msg
            self._contexts[context["token"]] = ContextRecord(**context)
            self._last_inbound[(bot_id, user_id)] = float(now)
            self._next_id = max(self._next_id, int(next_id))
        elif kind == "ack":
            bot = self._bots[args[0]]
            bot.acked = max(bot.acked, int(args[1]))
        elif kind == "user":
            user = SimUser(**args[0])
            self._users[user.user_id] = user
        elif kind == "send":
            raw, token, sends, next_id = args
            entry = _outbox_entry(raw)
            self._outbox.append(entry)
            self._by_id[entry.message_id] = entry.msg
            if entry.client_id:
                self._sent[(entry.bot_id, entry.client_id)] = entry.message_id
            if token is not None and token in self._contexts:
                self._contexts[token].sends = int(sends)
            self._next_id = max(self._next_id, int(next_id))
        elif kind == "ticket":
            self._tickets[(args[0], args[1])] = args[2]
        elif kind == "typing":
            self._typing.append(TypingEvent(**args[0]))
        elif kind == "notify":
            self._notifications.append(Notification(**args[0]))
        else:
            raise SimError(f"unknown simulator journal record {kind!r}")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` atomically and readable by its owner only (it holds the simulated tokens)."""
        from ..store import atomic_write_bytes

        data = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(Path(os.fspath(path)), data)

    def load(self, path: str | os.PathLike[str]) -> None:
        with open(path, "rb") as fh:
            self.load_json(json.loads(fh.read()))
