"""Every fixed fact of the iLink wire protocol in one place: hosts, header names, codes, enums, limits.

The client, the simulator, the DataFrame flattening and the docs all read these; none repeats them.
Described in docs/protocol.md (the official plugin's behaviour wins over the seed article).
"""

from __future__ import annotations

from enum import IntEnum

DEFAULT_BASE_URL = "https://ilinkai.weixin.qq.com"
DEFAULT_CDN_BASE_URL = "https://novac2c.cdn.weixin.qq.com/c2c"

#: The official plugin's app id.
DEFAULT_APP_ID = "bot"
#: The official client release whose protocol this package implements. Sent by default as
#: ``iLink-App-ClientVersion`` (packed: 132105) and ``base_info.channel_version``, so that a server gating
#: features by client version treats us as that client; ``bot_agent`` still says openclaw-nb.
PROTOCOL_CLIENT_VERSION = "2.4.9"
#: ``bot_type`` query parameter of ``get_bot_qrcode``.
BOT_TYPE = 3
#: ``local_token_list`` carries at most this many recent tokens.
MAX_LOCAL_TOKENS = 10
#: ``message_id``, ``msg_id`` and ``svr_id`` are uint64 on the wire.
UINT64_MAX = (1 << 64) - 1

# Header names, spelled as on the wire.
H_AUTHORIZATION_TYPE = "AuthorizationType"
H_AUTHORIZATION = "Authorization"
H_UIN = "X-WECHAT-UIN"
H_APP_ID = "iLink-App-Id"
H_CLIENT_VERSION = "iLink-App-ClientVersion"
H_ROUTE_TAG = "SKRouteTag"
H_ENCRYPTED_PARAM = "x-encrypted-param"
H_ERROR_MESSAGE = "x-error-message"
AUTHORIZATION_TYPE = "ilink_bot_token"

# Business codes (``ret`` / ``errcode``).
RET_OK = 0
RET_SEND_REJECTED = -2  # quota, 24 h window, rate limit, text too long ("prepare failed")
RET_INVALID_ARGS = -3
RET_NOT_YET_CONTACTED = -4  # getconfig before the user's first message
RET_STALE_TOKEN = -14

# Limits observed on real servers (docs/protocol.md, "Observed server behaviour").
SENDS_PER_CONTEXT_TOKEN = 10
REPLY_WINDOW_SECONDS = 24 * 3600
MAX_TEXT_BYTES = 16 * 1024
MAX_MEDIA_DOWNLOAD_BYTES = 100 * 1024 * 1024
#: The largest API answer (JSON body) a client reads, in bytes. A full getupdates page of 100 long messages is
#: well under a megabyte; a larger answer is refused unread rather than held in memory several times over.
MAX_API_RESPONSE_BYTES = 32 * 1024 * 1024

# Timeouts (seconds) the official plugin uses.
LONG_POLL_TIMEOUT = 35.0
DEFAULT_LONGPOLLING_TIMEOUT_MS = 35_000
#: The client waits this much longer than the server's long-poll window, so an answer at the end of the
#: window is not cut off (polls time out constantly when the two are equal).
LONG_POLL_GRACE = 10.0
#: The largest ``longpolling_timeout_ms`` this client follows (docs/protocol.md: a positive value is the timeout
#: of the next poll; the official default, and the longest window observed, is 35 s). The value comes from
#: the server and only sets the client's own timeout (window + LONG_POLL_GRACE), so it is clamped, not trusted:
#: a window of an hour would stall every poll for an hour when a connection silently dies, and 10**20 ms does
#: not even fit a socket timeout (OverflowError). 120 s leaves room for a server that lengthens its window on
#: purpose. Any positive value up to this is followed as is: a short window needs no lower bound, because the
#: grace keeps the client's timeout at 10 s or more (and simulators use sub-second windows in tests). Zero and
#: negative values, and values that are not integers, are ignored: the previous window stays.
MAX_LONGPOLLING_TIMEOUT_MS = 120_000
#: Seconds to wait for a TCP/TLS connection, whatever the request's own timeout (a long poll waits 45 s
#: for its answer, but a dead host should not take that long to report).
CONNECT_TIMEOUT = 10.0
SEND_TIMEOUT = 15.0
CONFIG_TIMEOUT = 10.0
QR_ACTIVE_SECONDS = 5 * 60
#: How long the simulator's QR codes live before ``expired`` (``SimConfig.qr_lifetime``, ``openclaw-nb sim
#: --qr-expiry``): the official client's 5 minutes. The real server's lifetime is not known exactly (docs/protocol.md,
#: observed: "roughly a minute or more") and it sends no lifetime field, so the login widget counts down
#: ``QR_ACTIVE_SECONDS`` as an estimate (a code is replaced only when the server says ``expired``, as in the
#: official client); with the simulator the widget's "expires in" is exact.
#: To play a server with short-lived codes: ``openclaw-nb sim --qr-expiry 60``.
QR_LIFETIME = float(QR_ACTIVE_SECONDS)
LOGIN_DEADLINE_SECONDS = 8 * 60
MAX_QR_CODES = 3

# The poll loop's failure policy.
POLL_RETRY_DELAY = 2.0
POLL_BACKOFF_AFTER_FAILURES = 3
POLL_BACKOFF_DELAY = 30.0

# The typing-ticket cache policy (seconds): refresh at a random time within 24 h of a successful getconfig;
# after a failure retry with exponential back-off from 2 s up to 1 h.
TYPING_TICKET_REFRESH_WINDOW = 24 * 3600.0
TYPING_TICKET_RETRY_MIN = 2.0
TYPING_TICKET_RETRY_MAX = 3600.0
#: While a typing indicator is on, status 1 is sent again this often (s), as the official client does while it
#: produces a reply (its keepalive interval); ``typing_indicator(keepalive=...)`` changes it.
TYPING_KEEPALIVE_SECONDS = 5.0


class MessageType(IntEnum):
    NONE = 0
    USER = 1
    BOT = 2


class MessageState(IntEnum):
    NEW = 0
    GENERATING = 1
    FINISH = 2


class ItemType(IntEnum):
    NONE = 0
    TEXT = 1
    IMAGE = 2
    VOICE = 3
    FILE = 4
    VIDEO = 5
    TOOL_CALL_START = 11
    TOOL_CALL_RESULT = 12


#: MessageItem payload field per item type.
ITEM_PAYLOAD_FIELD: dict[int, str] = {
    ItemType.TEXT: "text_item",
    ItemType.IMAGE: "image_item",
    ItemType.VOICE: "voice_item",
    ItemType.FILE: "file_item",
    ItemType.VIDEO: "video_item",
    ItemType.TOOL_CALL_START: "tool_call_start_item",
    ItemType.TOOL_CALL_RESULT: "tool_call_result_item",
}


#: ``text``, ``image``... per known item type (the spelling of the frames' ``item_types`` column).
ITEM_TYPE_NAMES: dict[int, str] = {int(t): t.name.lower() for t in ItemType}


def item_type_name(value: object) -> str:
    """``text`` for 1, ``image`` for 2 ... ``type<N>`` for an integer this version does not know, ``none`` when
    absent; a type that is not an integer (``"1"``, an array...) reads as ``type<its JSON text>`` when short,
    else ``type?``: it matches no known type, as in the official client.
    """
    if value is None:
        return "none"
    if isinstance(value, int) and not isinstance(value, bool):
        name = ITEM_TYPE_NAMES.get(value)
        return name if name is not None else f"type{value}"
    if isinstance(value, str) and len(value) <= 16:
        return f"type{value}"
    return "type?"


class UploadMediaType(IntEnum):
    """``media_type`` of ``getuploadurl``."""

    IMAGE = 1
    VIDEO = 2
    FILE = 3
    VOICE = 4


class EncryptType(IntEnum):
    FILE_ID_ONLY = 0
    PACKED = 1


class VoiceEncodeType(IntEnum):
    PCM = 1
    ADPCM = 2
    FEATURE = 3
    SPEEX = 4
    AMR = 5
    SILK = 6
    MP3 = 7
    OGG_SPEEX = 8


class TypingStatus(IntEnum):
    TYPING = 1
    CANCEL = 2


class QrStatus:
    """Values of ``get_qrcode_status``'s ``status`` (the server's own spelling, ``scaned`` included)."""

    WAIT = "wait"
    SCANNED = "scaned"
    NEED_VERIFY_CODE = "need_verifycode"
    VERIFY_CODE_BLOCKED = "verify_code_blocked"
    EXPIRED = "expired"
    SCANNED_BUT_REDIRECT = "scaned_but_redirect"
    BINDED_REDIRECT = "binded_redirect"
    CONFIRMED = "confirmed"

    ALL = (
        WAIT,
        SCANNED,
        NEED_VERIFY_CODE,
        VERIFY_CODE_BLOCKED,
        EXPIRED,
        SCANNED_BUT_REDIRECT,
        BINDED_REDIRECT,
        CONFIRMED,
    )


def pack_version(version: str) -> int:
    """``major<<16 | minor<<8 | patch`` as the official client packs it: ``pack_version("1.0.11") == 65547``.

    Pre-release or local suffixes (``0.1.0.dev3``, ``1.2.3+local``) are ignored; missing parts count as 0.
    """
    parts: list[int] = []
    for piece in version.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits) if digits else 0)
        if digits != piece:
            break
    while len(parts) < 3:
        parts.append(0)
    major, minor, patch = (min(p, 0xFF) if i else min(p, 0xFFFF) for i, p in enumerate(parts))
    return (major << 16) | (minor << 8) | patch
