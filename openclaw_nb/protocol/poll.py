"""The getupdates poll loop without I/O: cursor, failure policy, de-duplication and page flattening.

Theory of operation: :class:`PollState` owns everything a long-poll loop decides. Its :meth:`PollState.page_flow`
is a flow (see :mod:`.flow`): it yields one :class:`~.flow.Send` per poll and a :class:`~.flow.Sleep` after each
failure, and returns one :class:`Page` once a poll succeeds. The failure policy is the official one: ``ret`` or
``errcode`` non-zero, HTTP 4xx/5xx, a transport error or a body that is not JSON → wait ``retry_delay``; the
``backoff_after``-th failure in a row → wait ``backoff_delay`` and start counting again (the official plugin's
2 s / 3 / 30 s); ``-14`` → :class:`~openclaw_nb.errors.StaleTokenError`, which ends the stream because waiting
does not help. A client-side timeout is a normal empty page. Every decision is recorded as a
:class:`PollEvent` so drivers can log it and live views can show it.

A successful page is flattened into rows (one tuple per message, fields in :data:`COLUMNS` order) while its
body is decoded, so the DataFrame layer never parses a message twice. Rows whose ``message_id`` was seen
before (a page served twice) are dropped, with bounded memory; a message with a *new* ``message_id`` but the
same sender and content as one seen within ``duplicate_window`` seconds is kept and flagged
``probable_duplicate`` (real servers deliver at least once, sometimes re-numbered).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from .. import errors as E
from . import constants as C
from . import drift as D
from .codec import check_envelope, http_status_error, updates_cursor
from .drift import Drift
from .endpoints import ENDPOINTS
from .flow import Failure, Flow, Reply, Send, Sleep, too_large_error
from .lenient import Entry, as_text, encode_message, find_message_id, read_entry, read_page
from .models import GetUpdatesResp, MessageItem, WeixinMessage, WireModel, read_uint64, resolve_partial

_ENDPOINT = ENDPOINTS["get_updates"]

#: One row per message, in this order. ``frames`` gives them their pandas dtypes; the poll loop fills them.
COLUMNS: tuple[str, ...] = (
    "seq",
    "message_id",
    "from_user_id",
    "to_user_id",
    "session_id",
    "group_id",
    "client_id",
    "create_time",  # ms since the epoch here; a tz-aware UTC datetime in the frame
    "update_time",
    "message_type",  # the wire int here; a category of readable names in the frame
    "message_state",
    "item_types",
    "text",
    "has_media",
    "quoted",
    "quoted_svr_id",
    "context_token",
    "probable_duplicate",
    "received_time",  # when this client read the page (ms), None for messages not read live
    "decode_error",  # why this entry of msgs could not be read at all (then only message_id and raw are set)
    "raw",  # the message's JSON text exactly as the server sent it (or re-encoded when it had to be parsed)
)
COL = {name: i for i, name in enumerate(COLUMNS)}
_I_ID, _I_FROM, _I_CREATE, _I_DUP = (
    COL["message_id"],
    COL["from_user_id"],
    COL["create_time"],
    COL["probable_duplicate"],
)

#: Item types whose payload is a file on the CDN.
MEDIA_ITEM_TYPES = frozenset({C.ItemType.IMAGE, C.ItemType.VOICE, C.ItemType.FILE, C.ItemType.VIDEO})
#: ``item_types`` spelling of each known item type (``text``, ``image``, ``tool_call_start``...).
ITEM_TYPE_NAMES = C.ITEM_TYPE_NAMES
item_type_name = C.item_type_name
#: Readable names of ``message_type`` and ``message_state``, as the frame's categories.
MESSAGE_TYPE_NAMES: dict[int, str] = {int(t): t.name.lower() for t in C.MessageType}
MESSAGE_STATE_NAMES: dict[int, str] = {int(t): t.name.lower() for t in C.MessageState}
_KNOWN_ITEM_TYPES = frozenset(ITEM_TYPE_NAMES)
_KNOWN_MESSAGE_TYPES = frozenset(MESSAGE_TYPE_NAMES)
_KNOWN_MESSAGE_STATES = frozenset(MESSAGE_STATE_NAMES)


# --- flattening ---------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short_number(value: int) -> str:
    sign, digits = ("-", str(-value)) if value < 0 else ("", str(value))
    return sign + (digits if len(digits) <= 12 else f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}")


def long_poll_window_ms(value: object) -> tuple[int | None, str | None]:
    """The server's ``longpolling_timeout_ms`` as the window a client follows, and what was wrong with it.

    ``(ms, None)``: usable as is. ``(MAX, why)``: too large, clamped to ``constants.MAX_LONGPOLLING_TIMEOUT_MS``
    (the bound and its reasons are documented there). ``(None, None)``: absent or 0, so the current window
    stays (docs/protocol.md: only a positive value counts). ``(None, why)``: negative, or not an integer; the
    current window stays.

    >>> long_poll_window_ms(10**20)[0], long_poll_window_ms(-5)[0], long_poll_window_ms(20_000)
    (120000, None, (20000, None))
    """
    if value is None:
        return None, None
    if isinstance(value, float) and math.isfinite(value):
        # 35000.0 is a number of milliseconds too; a positive fraction of one counts as 1 ms, not as "absent"
        value = max(int(value), 1) if value > 0 else int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if isinstance(value, (str, float)) else f"of type {type(value).__name__}"
        if len(shown) > 40:
            shown = shown[:36] + "…" + shown[-1]
        return None, f"longpolling_timeout_ms {shown} is not a number of milliseconds; kept the current window"
    if value == 0:
        return None, None
    if value < 0:
        return None, f"longpolling_timeout_ms {_short_number(value)} is negative; kept the current window"
    top = C.MAX_LONGPOLLING_TIMEOUT_MS
    if value > top:
        return top, (
            f"longpolling_timeout_ms {_short_number(value)} is more than {top:,} ms; "
            f"following {top // 1000} s instead (polls would stall, or fail, on a window that long)"
        )
    return value, None


def _message_id(value: Any) -> int | None:
    # A uint64 on the wire, as a number or (as the official parser accepts) a string of digits. Anything else
    # (negative, wider) is treated as missing, by every path alike, so the stream and bulk ingest drop and flag
    # the same rows; the ``raw`` column still has the value.
    value = read_uint64(value)
    return value if value is not None and 0 <= value <= C.UINT64_MAX else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _item_text(item: dict[str, Any]) -> str | None:
    # As MessageItem.item_text: a text item's text, else a voice item's transcription.
    for name in ("text_item", "voice_item"):
        payload = item.get(name)
        if isinstance(payload, dict):
            text = payload.get("text")
            if isinstance(text, str) and text:
                return text
    return None


def _quote(item: dict[str, Any]) -> tuple[str | None, int | None]:
    # As WeixinMessage.quoted / quoted_svr_id without history: excerpt, quoted text or title; svr_id, else the
    # quoted item's msg_id.
    ref = item.get("ref_msg")
    if not isinstance(ref, dict):
        return None, None
    quoted = None
    inner = ref.get("message_item")
    inner_id = None
    if isinstance(inner, dict):
        quoted = _item_text(inner)
        inner_id = inner.get("msg_id")
        partial = ref.get("partial_text")
        if quoted is not None and isinstance(partial, dict):
            quoted = (
                resolve_partial(
                    quoted,
                    partial.get("start"),
                    partial.get("end"),
                    partial.get("startindex"),
                    partial.get("endindex"),
                    partial.get("quotemd5"),
                )
                or quoted
            )
    if quoted is None:
        title = ref.get("title")
        quoted = title if isinstance(title, str) and title else None
    svr_id = read_uint64(ref.get("svr_id"))
    return quoted, svr_id if svr_id is not None else read_uint64(inner_id)


def content_signature(item_types: str, text: str, media_ids: Sequence[str] = ()) -> str | None:
    """What two messages must share to be the same content: their item types, text and media ids
    (``None`` when there is no text and no media id: nothing to compare)."""
    if text or media_ids:
        return "\x1f".join((item_types, text, *media_ids))
    return None


def flatten(msg: dict[str, Any], raw: Any, received_ms: int | None = None) -> tuple[tuple[Any, ...], str | None]:
    """One message (a decoded JSON object) as a row in :data:`COLUMNS` order, plus its content signature.

    Lenient by design: a field of the wrong JSON type becomes a missing value (the ``raw`` column still has
    it), so one odd message never stops a stream; ids sent as strings of digits are read as ints. The signature
    (sender-independent: text, item types and media ids) is what :class:`DuplicateDetector` compares; ``None``
    when there is nothing to compare.
    """
    types: list[str] = []
    texts: list[str] = []
    media_ids: list[str] = []
    has_media = False
    quoted: str | None = None
    svr_id: int | None = None
    items = msg.get("item_list")
    if isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                types.append("none")
                continue
            kind = item.get("type")
            types.append(item_type_name(kind))
            text = _item_text(item)
            if text is not None:
                texts.append(text)
            payload_name = _MEDIA_PAYLOADS.get(kind) if type(kind) is int else None
            if payload_name is not None:
                has_media = True
                payload = item.get(payload_name)
                media = payload.get("media") if isinstance(payload, dict) else None
                if isinstance(media, dict):
                    ident = media.get("encrypt_query_param") or media.get("full_url")
                    if isinstance(ident, str):
                        media_ids.append(ident)
            if quoted is None and svr_id is None and "ref_msg" in item:
                quoted, svr_id = _quote(item)
    item_types = ",".join(types)
    text = "\n".join(texts)
    signature = content_signature(item_types, text, media_ids)
    row = (
        _int(msg.get("seq")),
        _message_id(msg.get("message_id")),
        _str(msg.get("from_user_id")),
        _str(msg.get("to_user_id")),
        _str(msg.get("session_id")),
        _str(msg.get("group_id")),
        _str(msg.get("client_id")),
        _int(msg.get("create_time_ms")),
        _int(msg.get("update_time_ms")),
        _int(msg.get("message_type")),
        _int(msg.get("message_state")),
        item_types,
        text,
        has_media,
        quoted,
        svr_id,
        _str(msg.get("context_token")),
        False,
        received_ms,
        None,
        raw,
    )
    return row, signature


def unreadable_row(raw: Any, reason: str, received_ms: int | None = None) -> tuple[Any, ...]:
    """The row of an entry of ``msgs`` that can't be read: its id if one can be found, why, and its JSON text."""
    text = raw if isinstance(raw, str) else as_text(bytes(raw)) if raw is not None else ""
    row: list[Any] = [None] * len(COLUMNS)
    row[COL["message_id"]] = _message_id(find_message_id(text))
    row[COL["item_types"]] = ""
    row[COL["text"]] = ""
    row[COL["has_media"]] = False
    row[COL["probable_duplicate"]] = False
    row[COL["received_time"]] = received_ms
    row[COL["decode_error"]] = reason
    row[COL["raw"]] = raw
    return tuple(row)


def message_drift(msg: Any, findings: list[Drift], path: str = "msgs[]") -> None:
    """Compare one decoded message with the models and append what does not fit to ``findings``."""
    WeixinMessage.find_drift(msg, path, findings)


# --- decoding a page --------------------------------------------------------------------------------------

_msgspec: Any
try:  # msgspec decodes typed messages and splits a page into per-message byte spans in C (optional, fast)
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - exercised by forcing the fallback in tests
    _msgspec = None

#: Set to False to force the standard-library decoder (tests compare both paths).
USE_MSGSPEC = _msgspec is not None

#: The first fields of a message, in COLUMNS order, so a tuple of the typed struct slices into the row.
_ROW_FIELDS = (
    *(f"{name}_ms" if name.endswith("_time") else name for name in COLUMNS[: COL["message_state"] + 1]),
    "context_token",
    "item_list",
)
_QUOTE_DEPTH = 2  # quotes of quotes deeper than this take the dict path (where every level is checked)


def _strict_struct(model: type[WireModel], depth: int = 0, first: Sequence[str] = ()) -> Any:
    """A msgspec Struct with every field of ``model``, strictly typed, refusing unknown fields: a message that
    decodes into it has nothing for the drift report but unknown enum values (checked on the columns)."""
    specs = {name: (kind, sub) for name, kind, sub in model._specs()}
    order = [*first, *(name for name in specs if name not in first)]
    fields: list[tuple[str, Any, Any]] = []
    for name in order:
        kind, sub = specs[name]
        if kind == "model" and sub is MessageItem and depth >= _QUOTE_DEPTH:
            continue  # not declared: a deeper quote is an "unknown field" here, and goes the checked way
        fields.append((name, _struct_type(kind, sub, depth) | None, None))
    return _msgspec.defstruct(
        f"_Strict{model.__name__}{depth}", fields, forbid_unknown_fields=True, gc=False, omit_defaults=True
    )


def _struct_type(kind: str, sub: Any, depth: int) -> Any:
    if kind.startswith("list:"):
        return list[_struct_type(kind[5:], sub, depth)]  # type: ignore[misc]
    if kind == "model":
        return _strict_struct(sub, depth + (sub is MessageItem))
    if kind == "uint64":
        return Annotated[int, _msgspec.Meta(ge=0)]  # negative: the lenient path
    return {"int": int, "str": str, "bool": bool}.get(kind, Any)


_raw_decoder: Any = None
_typed_decoder: Any = None
_any_decoder: Any = None
_astuple: Any = None
if _msgspec is not None:

    class _Envelope(_msgspec.Struct, gc=False):  # type: ignore[call-arg]
        ret: Any = None
        errcode: Any = None
        errmsg: Any = None
        get_updates_buf: Any = None
        sync_buf: Any = None
        longpolling_timeout_ms: Any = None

    class _RawEnvelope(_Envelope, gc=False):  # type: ignore[call-arg]
        msgs: list[_msgspec.Raw] | None = None  # each message's bytes, as sent

    _msg_struct: Any = _strict_struct(WeixinMessage, first=_ROW_FIELDS)
    _TypedPage = _msgspec.defstruct(
        "_TypedPage", [("msgs", list[_msg_struct] | None, None)], bases=(_Envelope,), gc=False
    )
    _raw_decoder = _msgspec.json.Decoder(_RawEnvelope)
    _typed_decoder = _msgspec.json.Decoder(_TypedPage)
    _any_decoder = _msgspec.json.Decoder()
    _astuple = _msgspec.structs.astuple

_MEDIA_PAYLOADS: dict[int, str] = {int(t): C.ITEM_PAYLOAD_FIELD[t] for t in MEDIA_ITEM_TYPES}


def _typed_item_columns(item_lists: Iterable[Any], unknown: set[Any]) -> tuple[list[Any], ...]:
    """The item-derived columns of typed messages; the same rules as :func:`flatten`, over structs. Item types
    this version does not know are added to ``unknown``."""
    rows: list[tuple[str, str, bool, str | None, int | None, str | None]] = []
    add = rows.append
    names = ITEM_TYPE_NAMES
    media_payloads = _MEDIA_PAYLOADS
    text_kind = int(C.ItemType.TEXT)
    empty = ("", "", False, None, None, None)
    for items in item_lists:
        if not items:
            add(empty)
            continue
        if len(items) == 1:
            # The common message, one plain text item: the general rules below give exactly this.
            only = items[0]
            payload = only.text_item
            if only.type == text_kind and only.ref_msg is None and payload is not None and payload.text:
                add(("text", payload.text, False, None, None, "text\x1f" + payload.text))
                continue
        types: list[str] = []
        texts: list[str] = []
        media_ids: list[str] = []
        has_media = False
        quoted: str | None = None
        svr_id: int | None = None
        for item in items:
            kind = item.type
            name = names.get(kind) if kind is not None else "none"
            if name is None:
                unknown.add(kind)
                name = f"type{kind}"
            types.append(name)
            payload = item.text_item
            if payload is not None and payload.text:
                texts.append(payload.text)
            else:
                voice = item.voice_item
                if voice is not None and voice.text:
                    texts.append(voice.text)
            payload_name = media_payloads.get(kind)
            if payload_name is not None:
                has_media = True
                media_payload = getattr(item, payload_name)
                media = media_payload.media if media_payload is not None else None
                if media is not None:
                    ident = media.encrypt_query_param or media.full_url
                    if ident is not None:
                        media_ids.append(ident)
            ref = item.ref_msg
            if ref is not None and quoted is None and svr_id is None:
                inner = ref.message_item
                if inner is not None:
                    if inner.text_item is not None and inner.text_item.text:
                        quoted = inner.text_item.text
                    elif inner.voice_item is not None and inner.voice_item.text:
                        quoted = inner.voice_item.text
                    part = ref.partial_text
                    if quoted is not None and part is not None:
                        quoted = (
                            resolve_partial(quoted, part.start, part.end, part.startindex, part.endindex, part.quotemd5)
                            or quoted
                        )
                if quoted is None and ref.title:
                    quoted = ref.title
                svr_id = ref.svr_id if ref.svr_id is not None else inner.msg_id if inner is not None else None
        item_types = ",".join(types)
        text = "\n".join(texts)
        signature = "\x1f".join((item_types, text, *media_ids)) if text or media_ids else None  # as content_signature()
        add((item_types, text, has_media, quoted, svr_id, signature))
    if not rows:
        return [], [], [], [], [], []
    return tuple(list(col) for col in zip(*rows, strict=True))


def _typed_columns(
    msgs: list[Any], raws: list[Any], received_ms: int | None
) -> tuple[list[list[Any]], list[Any], list[Drift]]:
    n = len(msgs)
    tuples = [_astuple(m) for m in msgs]
    fixed = [list(col) for col in zip(*tuples, strict=True)] if tuples else [[] for _ in range(13)]
    if max(filter(None, fixed[1]), default=0) > C.UINT64_MAX:  # wider than the wire's uint64: missing (see _message_id)
        fixed[1] = [_message_id(v) for v in fixed[1]]
    unknown_items: set[Any] = set()
    types_col, text_col, media_col, quoted_col, svr_col, sig_col = _typed_item_columns(fixed[12], unknown_items)
    findings = [Drift("msgs[].item_list[].type", D.UNKNOWN_VALUE, str(k), k) for k in sorted(unknown_items)]
    for i, known, name in ((9, _KNOWN_MESSAGE_TYPES, "message_type"), (10, _KNOWN_MESSAGE_STATES, "message_state")):
        odd = set(fixed[i]).difference(known)
        odd.discard(None)
        findings.extend(Drift(f"msgs[].{name}", D.UNKNOWN_VALUE, str(v), v) for v in sorted(odd))
    columns = [
        *fixed[:11],
        types_col,
        text_col,
        media_col,
        quoted_col,
        svr_col,
        fixed[11],
        [False] * n,
        [received_ms] * n,
        [None] * n,
        raws,
    ]
    return columns, sig_col, findings


def rows_to_columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Transpose rows in :data:`COLUMNS` order into one list per column."""
    if not rows:
        return [[] for _ in COLUMNS]
    return [list(col) for col in zip(*rows, strict=True)]


@dataclass
class DecodedPage:
    """A getupdates body after the envelope check, its messages already flattened into columns."""

    columns: list[list[Any]]
    signatures: list[str | None]
    get_updates_buf: str
    #: As sent (any JSON value, or None): :meth:`PollState.follow_window` decides what it is worth.
    longpolling_timeout_ms: Any
    #: Entries of ``msgs`` that could not be read at all (delivered as rows with ``decode_error`` set).
    unreadable: int = 0
    #: What did not fit the models (see :mod:`.drift`); empty for a page of well-typed, known fields.
    drift: list[Drift] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.signatures)


def _checked_envelope(env: Any) -> tuple[str, Any]:
    """Raise for an error envelope decoded by msgspec; else its cursor and long-poll window."""
    check_envelope(_ENDPOINT, {"ret": env.ret, "errcode": env.errcode, "errmsg": env.errmsg})
    return _envelope_fields(env.get_updates_buf, env.sync_buf, env.longpolling_timeout_ms)


def _envelope_fields(cursor: Any, alias: Any, lpt: Any) -> tuple[str, Any]:
    return updates_cursor(_ENDPOINT.name, cursor, alias), lpt


def _dict_columns(
    entries: Iterable[Entry], received_ms: int | None, findings: list[Drift] | None = None
) -> tuple[list[list[Any]], list[str | None], int]:
    """Rows of entries read one by one; with ``findings``, each message is also compared with the models."""
    rows: list[tuple[Any, ...]] = []
    sigs: list[str | None] = []
    unreadable = 0
    for msg, raw, problem in entries:
        if problem is None and not isinstance(msg, dict):
            problem = f"not a JSON object ({D.json_type(msg)})"
            if raw is None:
                raw = encode_message(msg)
        if problem is not None:
            unreadable += 1
            rows.append(unreadable_row(raw, problem, received_ms))
            sigs.append(None)
            if findings is not None:
                findings.append(Drift("msgs[]", D.UNDECODABLE, problem, None))
            continue
        if findings is not None:
            message_drift(msg, findings)
        row, sig = flatten(msg, raw, received_ms)
        rows.append(row)
        sigs.append(sig)
    return rows_to_columns(rows), sigs, unreadable


def _msgspec_entry(span: Any, raw_spans: bool, findings: list[Drift]) -> Entry:
    """One message of a page that did not type strictly: msgspec reads it when it can, else the lenient reader."""
    try:
        value = _any_decoder.decode(span)
        raw = span if raw_spans else str(span, "utf-8")
    except (_msgspec.DecodeError, _msgspec.ValidationError, UnicodeDecodeError, RecursionError, ValueError):
        return read_entry(span, raw_spans, findings)
    return value, raw, None


def decode_page(
    content: bytes, received_ms: int | None = None, *, raw_spans: bool = False, raw: bool = True
) -> DecodedPage:
    """Decode a getupdates body into columns. Raises the typed ApiError for ``ret``/``errcode`` ≠ 0 (``-14``
    → StaleTokenError) and ProtocolError only for a body that is not a JSON object: any message, however odd,
    becomes a row (see :func:`flatten`; one that can't be read at all has ``decode_error`` set).

    The ``raw`` column holds each message's JSON text as the server sent it (msgspec present) or re-encoded
    (standard library). With ``raw_spans`` it holds zero-copy byte spans instead of str, for bulk ingest;
    with ``raw=False`` it is left empty (None), which saves the pass that finds each message's bytes.
    ``drift`` lists what did not fit the models; with msgspec, a page of known, well-typed fields is typed in
    one pass and costs the report nothing more than a look at the enum values.
    """
    if not raw:
        lean = _decode_lean(content, received_ms)
        if lean is not None:
            return lean
        decoded = decode_page(content, received_ms, raw_spans=True)
        decoded.columns[COL["raw"]] = [None] * len(decoded)
        return decoded
    if USE_MSGSPEC and _raw_decoder is not None:
        try:
            env = _raw_decoder.decode(content)
        except (_msgspec.DecodeError, _msgspec.ValidationError, RecursionError):
            env = None  # the lenient path below copes, or gives the precise error
        if env is not None:
            cursor, lpt = _checked_envelope(env)
            spans = env.msgs or []
            typed = None
            if spans:
                try:
                    typed = _typed_decoder.decode(content).msgs
                except (_msgspec.DecodeError, _msgspec.ValidationError, RecursionError):
                    typed = None
            if typed is not None or not spans:
                try:
                    raws: list[Any] = spans if raw_spans else [str(span, "utf-8") for span in spans]
                except UnicodeDecodeError:
                    raws = []
                if len(raws) == len(spans):
                    columns, sigs, findings = _typed_columns(typed or [], raws, received_ms)
                    return DecodedPage(columns, sigs, cursor, lpt, 0, findings)
            findings = []
            entries = [_msgspec_entry(span, raw_spans, findings) for span in spans]
            columns, sigs, unreadable = _dict_columns(entries, received_ms, findings)
            return DecodedPage(columns, sigs, cursor, lpt, unreadable, findings)
    data, entries, findings = read_page(content, _ENDPOINT.name, raw_spans=raw_spans)
    check_envelope(_ENDPOINT, data)
    cursor, lpt = _envelope_fields(
        data.get("get_updates_buf"), data.get("sync_buf"), data.get("longpolling_timeout_ms")
    )
    _envelope_drift(data, findings)
    columns, sigs, unreadable = _dict_columns(entries, received_ms, findings)
    return DecodedPage(columns, sigs, cursor, lpt, unreadable, findings)


def _envelope_drift(data: dict[str, Any], findings: list[Drift]) -> None:
    GetUpdatesResp.find_drift({k: v for k, v in data.items() if k != "msgs"}, "", findings)


def _decode_lean(content: bytes, received_ms: int | None) -> DecodedPage | None:
    """The common page (well-typed messages) decoded in one pass without raw text; None to take the full path."""
    if not USE_MSGSPEC or _typed_decoder is None:
        return None
    try:
        page = _typed_decoder.decode(content)
    except (_msgspec.DecodeError, _msgspec.ValidationError, RecursionError):
        return None
    msgs = page.msgs or []
    cursor, lpt = _checked_envelope(page)
    columns, sigs, findings = _typed_columns(msgs, [None] * len(msgs), received_ms)
    return DecodedPage(columns, sigs, cursor, lpt, 0, findings)


def decode_messages(
    messages: Iterable[Any], received_ms: int | None = None
) -> tuple[list[list[Any]], list[str | None], int]:
    """Flatten messages given one by one: dicts, JSON text (str/bytes) of one message, or anything with
    ``to_wire()`` (a WeixinMessage). Returns ``(columns, signatures, unreadable)``: text that can't be read as
    JSON, and values that are not objects, become rows with ``decode_error`` set."""

    def entries() -> Iterator[Entry]:
        for item in messages:
            if isinstance(item, dict):
                yield item, encode_message(item), None
            elif isinstance(item, (str, bytes, bytearray, memoryview)):
                yield read_entry(item if isinstance(item, (str, bytes)) else bytes(item), False)
            elif isinstance(item, WeixinMessage) and item.decode_error is not None:
                yield None, item.raw_text or "", item.decode_error
            elif isinstance(item, WireModel) and item.not_an_object:
                yield item.as_sent, None, None
            elif hasattr(item, "to_wire"):
                wire = item.to_wire()
                yield wire, encode_message(wire), None
            else:
                yield None, None, f"not a message ({type(item).__name__})"

    return _dict_columns(entries(), received_ms)


# --- policy, events, bounded memories ------------------------------------------------------------------


@dataclass(frozen=True)
class PollPolicy:
    """How the poll loop reacts to failures and duplicates. Defaults are the official plugin's.

    ``timeout`` overrides the client-side timeout of a poll (default: the server's ``longpolling_timeout_ms``
    plus ``constants.LONG_POLL_GRACE``). Tests shrink the delays: ``PollPolicy(retry_delay=0.01, backoff_delay=0.05)``.
    """

    retry_delay: float = C.POLL_RETRY_DELAY
    backoff_after: int = C.POLL_BACKOFF_AFTER_FAILURES
    backoff_delay: float = C.POLL_BACKOFF_DELAY
    timeout: float | None = None
    #: How many recent ``message_id`` values are remembered to drop a page served twice.
    dedup_size: int = 100_000
    #: Same sender and content with a new ``message_id`` within this many seconds → ``probable_duplicate``.
    duplicate_window: float = 60.0

    def __post_init__(self) -> None:
        if self.retry_delay < 0 or self.backoff_delay < 0:
            raise E.UsageError("PollPolicy delays must be >= 0 seconds")
        if self.backoff_after < 1:
            raise E.UsageError("PollPolicy.backoff_after counts failures in a row and must be >= 1")
        if self.dedup_size < 1:
            raise E.UsageError("PollPolicy.dedup_size must be >= 1")
        if self.timeout is not None and self.timeout <= 0:
            raise E.UsageError("PollPolicy.timeout must be a positive number of seconds (or None)")

    def delay_after(self, failures: int) -> tuple[float, bool]:
        """Seconds to wait after the ``failures``-th failure in a row, and whether that is the long back-off."""
        if failures >= self.backoff_after:
            return self.backoff_delay, True
        return self.retry_delay, False


@dataclass(frozen=True)
class PollEvent:
    """Something the loop did that a user may want to see: ``retry``, ``backoff``, ``stale``, ``duplicate``."""

    kind: str
    message: str
    time: float = field(default_factory=time.time)
    delay: float = 0.0
    failures: int = 0


class QuoteHistory:
    """The text of recent messages by id, so an ID-only quote (``ref_msg`` with only ``svr_id``, sent by newer
    WeChat apps) can be shown with what it quotes, as the official client does from its own store. Bounded."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self.maxlen = maxlen
        self._texts: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, message_id: object) -> str | None:
        return self._texts.get(message_id)  # type: ignore[call-overload]

    def add(self, message_id: int | None, text: str | None) -> None:
        if message_id is None or not text:
            return
        texts = self._texts
        texts.pop(message_id, None)
        texts[message_id] = text
        if len(texts) > self.maxlen:
            del texts[next(iter(texts))]

    def fill(self, msg: WeixinMessage) -> None:
        """Give an ID-only quote in ``msg`` the quoted message's text (``msg.quoted``) when it is here."""
        if msg.quoted_text is None and msg.ref is not None and msg.quoted is None:
            svr_id = msg.quoted_svr_id
            if svr_id is not None:
                msg.quoted_text = self._texts.get(svr_id) or None

    def resolve(self, columns: list[list[Any]]) -> None:
        """Remember the rows' texts, then fill ``quoted`` of the rows that quote by id only (a quote may quote a
        message of its own page). Both steps run in C but for the rare rows that quote."""
        texts = self._texts
        texts.update(zip(columns[COL["message_id"]], columns[COL["text"]], strict=True))
        texts.pop(None, None)  # type: ignore[call-overload]
        quoted, svr_ids = columns[COL["quoted"]], columns[COL["quoted_svr_id"]]
        if svr_ids.count(None) != len(svr_ids):
            for i, svr_id in enumerate(svr_ids):
                if svr_id is not None and quoted[i] is None:
                    quoted[i] = texts.get(svr_id) or None
        excess = len(texts) - self.maxlen
        if excess > 0:
            for old in list(itertools.islice(texts, excess)):
                del texts[old]


class RecentIds:
    """A set of the last ``maxlen`` ids: memory stays bounded however long the stream runs."""

    def __init__(self, maxlen: int, initial: Iterable[int] = ()) -> None:
        self.maxlen = maxlen
        self._ids: dict[int, None] = {}
        for value in initial:
            self.add(value)

    def __contains__(self, value: object) -> bool:
        return value in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, value: int) -> bool:
        """Remember ``value``; False if it was already there."""
        if value in self._ids:
            return False
        self._ids[value] = None
        if len(self._ids) > self.maxlen:
            del self._ids[next(iter(self._ids))]
        return True

    def add_many(self, values: list[Any]) -> bool:
        """Remember all ``values`` at once if none is known and none repeats (True); else change nothing."""
        ids = self._ids
        if None in values or not ids.keys().isdisjoint(values):
            return False
        before = len(ids)
        ids.update(dict.fromkeys(values))
        if len(ids) - before != len(values):  # a repeat within the page: undo, the caller goes one by one
            for value in values:
                ids.pop(value, None)
            return False
        excess = len(ids) - self.maxlen
        if excess > 0:
            for old in list(itertools.islice(ids, excess)):
                del ids[old]
        return True

    def recent(self, n: int) -> list[int]:
        """The ``n`` most recently added ids, oldest first."""
        ids = list(self._ids)
        return ids[-n:] if n else []


class DuplicateDetector:
    """Flags a message whose sender and content match one seen within ``window`` seconds under another id.

    Times are the server's ``create_time_ms`` (the receive time when absent). Memory is bounded by two
    generations of entries: the current one and the one before; a generation is dropped whole once it is
    more than a window old (or when the current one reaches ``maxlen / 2``), so forgetting costs nothing
    per message.
    """

    def __init__(self, window: float, maxlen: int = 100_000) -> None:
        self.window_ms = int(window * 1000)
        self.maxlen = maxlen
        self._current: dict[tuple[str | None, str], tuple[int, int | None]] = {}
        self._previous: dict[tuple[str | None, str], tuple[int, int | None]] = {}
        self._started: int | None = None

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def _rotate(self, when_ms: int) -> None:
        if self._started is None:
            self._started = when_ms
        elif when_ms - self._started >= self.window_ms or len(self._current) >= max(1, self.maxlen // 2):
            # Everything in the generation dropped now is more than a window older than ``when_ms``.
            self._previous, self._current, self._started = self._current, {}, when_ms

    def check(
        self, sender: str | None, signature: str | None, when_ms: int, message_id: int | None
    ) -> tuple[bool, int | None]:
        """``(True, original message_id)`` if this message probably repeats an earlier one, else ``(False, None)``
        (and this one is remembered as an original)."""
        if signature is None or self.window_ms <= 0:
            return False, None
        self._rotate(when_ms)
        key = (sender, signature)
        prior = self._current.get(key) or self._previous.get(key)
        if prior is not None and prior[1] != message_id and abs(when_ms - prior[0]) <= self.window_ms:
            return True, prior[1]
        self._current[key] = (when_ms, message_id)
        return False, None

    def remember_if_new(self, keys: list[tuple[str | None, str]], whens: list[int], ids: list[Any]) -> bool:
        """Remember a page of (sender, signature) keys at once when none of them can repeat another (True);
        else change nothing, and the caller checks one by one. Results are the same as :meth:`check`."""
        if self.window_ms <= 0 or not keys:
            return True
        if (
            len(set(keys)) != len(keys)
            or not self._current.keys().isdisjoint(keys)
            or not self._previous.keys().isdisjoint(keys)
        ):
            return False
        self._rotate(max(whens))
        self._current.update(zip(keys, zip(whens, ids, strict=True), strict=True))
        return True


# --- the page --------------------------------------------------------------------------------------


@dataclass
class Page:
    """One successful poll: new messages as columns (``message_id`` repeats already dropped)."""

    columns: list[list[Any]]
    get_updates_buf: str
    cursor_changed: bool
    received_ms: int
    timed_out: bool = False
    dropped: int = 0  # exact duplicates (same message_id) that were not delivered again
    flagged: int = 0  # probable duplicates among the new messages

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @property
    def raws(self) -> list[Any]:
        """The messages' JSON texts, in order."""
        return self.columns[COL["raw"]]

    def rows(self) -> list[tuple[Any, ...]]:
        return list(zip(*self.columns, strict=True))


MakeSend = Callable[[str, float], Send]


class PollState:
    """Cursor, server window, failure count, recent ids and recent content of one stream."""

    def __init__(
        self,
        policy: PollPolicy | None = None,
        *,
        cursor: str = "",
        longpolling_timeout_ms: int = C.DEFAULT_LONGPOLLING_TIMEOUT_MS,
        seen: Iterable[int] = (),
        clock: Callable[[], float] = time.time,
        history: QuoteHistory | None = None,
    ) -> None:
        self.policy = policy or PollPolicy()
        self.cursor = cursor
        self.longpolling_timeout_ms = C.DEFAULT_LONGPOLLING_TIMEOUT_MS
        #: Whether an unusable ``longpolling_timeout_ms`` was reported already (a "window" event, once).
        self.window_reported = False
        self.failures = 0
        self.seen = RecentIds(self.policy.dedup_size, seen)
        self.duplicates = DuplicateDetector(self.policy.duplicate_window)
        #: Texts of recent messages, to resolve ID-only quotes (a client shares its own with its streams).
        self.history = history if history is not None else QuoteHistory()
        self.events: deque[PollEvent] = deque(maxlen=100)
        self.on_event: Callable[[PollEvent], None] | None = None
        self.status = "idle"
        self.pages = 0
        self.delivered = 0
        self.dropped = 0
        self.flagged = 0
        self._clock = clock
        self.follow_window(longpolling_timeout_ms)

    def follow_window(self, value: object) -> None:
        """Take the server's ``longpolling_timeout_ms`` (see :func:`long_poll_window_ms`); a value that had to
        be clamped or ignored is reported once, as a ``window`` event."""
        window, problem = long_poll_window_ms(value)
        if window is not None:
            self.longpolling_timeout_ms = window
        if problem and not self.window_reported:
            self.window_reported = True
            self._event("window", f"{_ENDPOINT.name}: {problem} (reported once per stream)")

    def _event(self, kind: str, message: str, delay: float = 0.0) -> PollEvent:
        event = PollEvent(kind, message, self._clock(), delay, self.failures)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def request_timeout(self) -> float:
        """Client-side timeout of the next poll: the server's window plus a grace, unless the policy says."""
        if self.policy.timeout is not None:
            return self.policy.timeout
        return self.longpolling_timeout_ms / 1000 + C.LONG_POLL_GRACE

    def page_flow(self, make_send: MakeSend) -> Flow:
        """Poll until one page succeeds (sleeping after failures as the policy says); return the :class:`Page`."""
        while True:
            self.status = "polling"
            outcome = yield make_send(self.cursor, self.request_timeout())
            try:
                page = self.receive(outcome)
            except E.StaleTokenError as exc:
                self.status = "stopped: the bot token is stale (-14); log in again"
                self._event("stale", str(exc))
                raise
            except (E.ApiError, E.TransportError, E.ProtocolError) as exc:
                yield self._failed(str(exc))
                continue
            return page

    def _failed(self, problem: str) -> Sleep:
        self.failures += 1
        delay, backoff = self.policy.delay_after(self.failures)
        if backoff:
            message = f"getupdates failed {self.failures} times in a row ({problem}); backing off {delay:g} s"
            self.status = f"backing off {delay:g} s after {self.failures} failures in a row"
            self._event("backoff", message, delay)
            # The official plugin starts counting again after its long back-off.
            self.failures = 0
            return Sleep(delay, message)
        message = f"getupdates failed ({problem}); retry {self.failures} in {delay:g} s"
        self.status = f"retrying in {delay:g} s ({self.failures} failure(s) in a row)"
        self._event("retry", message, delay)
        return Sleep(delay, message)

    def receive(self, outcome: Reply | Failure | None) -> Page:
        """Turn one poll's outcome into a :class:`Page`, or raise the error that makes it a failure."""
        now_ms = int(self._clock() * 1000)
        if isinstance(outcome, Failure):
            if outcome.timeout:
                # A client-side timeout of a long poll is a normal empty page: no messages, same cursor.
                self.failures = 0
                self.pages += 1
                return Page(rows_to_columns([]), self.cursor, False, now_ms, timed_out=True)
            error = outcome.error
            text = str(error)
            raise E.TransportError(
                f"{_ENDPOINT.name}: {type(error).__name__}" + (f": {text}" if text else ""), endpoint=_ENDPOINT.name
            )
        if not isinstance(outcome, Reply):
            raise E.UsageError("a poll outcome is a Reply or a Failure")
        if outcome.status >= 400:
            raise http_status_error(_ENDPOINT, outcome.status, outcome.content, dict(outcome.headers))
        if outcome.truncated:
            raise too_large_error(_ENDPOINT, outcome.cap)
        decoded = decode_page(outcome.content, now_ms)
        self.follow_window(decoded.longpolling_timeout_ms)
        changed = bool(decoded.get_updates_buf) and decoded.get_updates_buf != self.cursor
        if decoded.get_updates_buf:  # replace the cursor only with a non-empty value
            self.cursor = decoded.get_updates_buf
        if decoded.unreadable:
            self._event(
                "unreadable",
                f"a getupdates page had {decoded.unreadable} entries in msgs that could not be read; "
                "they are delivered with decode_error set and their JSON text in raw",
            )
        D.report(_ENDPOINT.name, decoded.drift)
        self.failures = 0
        self.pages += 1
        page = self.accept(decoded.columns, decoded.signatures, now_ms)
        page.cursor_changed = changed
        self.history.resolve(page.columns)
        return page

    def accept(self, columns: list[list[Any]], signatures: list[str | None], received_ms: int) -> Page:
        """Drop ids seen before and flag probable duplicates, in place on ``columns``; return the page."""
        ids, senders, created, flags = columns[_I_ID], columns[_I_FROM], columns[_I_CREATE], columns[_I_DUP]
        seen, detector = self.seen, self.duplicates
        drop: list[int] = []
        flagged = 0
        if ids and seen.add_many(ids):
            # The usual page: no id seen before. If no content repeats either, all is decided in bulk.
            keys: list[tuple[str | None, str]]
            if None not in signatures:  # the usual case: whole columns, zipped in C
                keys = list(zip(senders, signatures, strict=True))  # type: ignore[arg-type]
                whens = created if None not in created else [received_ms if w is None else w for w in created]
                picked_ids = ids
            else:
                picked = [i for i, sig in enumerate(signatures) if sig is not None]
                keys = [(senders[i], signatures[i]) for i in picked]  # type: ignore[misc]
                whens = [created[i] if created[i] is not None else received_ms for i in picked]
                picked_ids = [ids[i] for i in picked]
            if detector.remember_if_new(keys, whens, picked_ids):
                page = Page(columns, self.cursor, False, received_ms)
                self.delivered += len(page)
                return page
            ids = [None] * len(ids)  # already remembered: only the content check below is left to do
        for i, message_id in enumerate(ids):
            if message_id is not None and not seen.add(message_id):
                drop.append(i)
                continue
            signature = signatures[i]
            if signature is None:
                continue
            when = created[i]
            real_id = columns[_I_ID][i]
            repeat, original = detector.check(senders[i], signature, when if when is not None else received_ms, real_id)
            if repeat:
                flags[i] = True
                flagged += 1
                self._event(
                    "duplicate",
                    f"message {real_id} from {senders[i]} repeats message {original} (probable re-delivery)",
                )
        if drop:
            gone = set(drop)
            columns = [[v for i, v in enumerate(col) if i not in gone] for col in columns]
            self._event("dropped", f"dropped {len(drop)} message(s) delivered before (same message_id)")
        page = Page(columns, self.cursor, False, received_ms, dropped=len(drop), flagged=flagged)
        self.delivered += len(page)
        self.dropped += len(drop)
        self.flagged += flagged
        return page
