"""The simulator's knobs and limits: :class:`SimConfig` and the rule that checks each knob, the constants the
routes share (URL prefixes, host roles, size limits), and :class:`SimError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..protocol import constants as C
from ..protocol.conformance import CDN_DOWNLOAD, CDN_UPLOAD
from ..protocol.endpoints import ENDPOINTS

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
#: The misbehaviours a fault rule can pick, in the order it tries them.
FAULT_KINDS = (
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
