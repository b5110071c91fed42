"""Typed models of every wire type (docs/protocol.md), lossless both ways, as lenient as the official client.

Theory of operation: each model is a dataclass whose fields are the known wire fields (all optional, since
servers omit what they like). ``from_wire`` reads what it can and never rejects server data: a known field of an
unexpected JSON type is kept as sent in ``extra`` (the typed attribute stays None), uint64 ids sent as strings of
digits are read as the same int, an unknown field goes to ``extra`` untouched, and an unknown enum value is kept;
each of these is reported as :class:`~.drift.Drift` (see :mod:`.drift`). ``to_wire`` writes ``extra`` back, so
nothing is dropped. Where an object was expected and something else came (a number in ``item_list``), the model
is built empty with the value kept in ``as_sent``. ``from_wire(..., strict=True)`` raises :class:`WireTypeError`
instead, for checking input the user wrote. uint64 ids are Python ints, exact at any size. Secret fields are
redacted in ``repr``.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union

from . import drift as D
from .constants import ITEM_PAYLOAD_FIELD, ItemType, MessageState, MessageType, QrStatus, item_type_name
from .redact import SECRET_FIELDS, redact

M = TypeVar("M", bound="WireModel")


def new_client_id(prefix: str = "openclaw-nb") -> str:
    """A message's ``client_id``: ``<prefix>:<ms timestamp>-<8 hex chars>``, the official client's format."""
    return f"{prefix}:{int(time.time() * 1000)}-{secrets.token_hex(4)}"

#: Field metadata marking a dataclass field that is ours, not the wire's (``extra``, ``raw``, ``timed_out``...).
LOCAL = {"wire": False}

#: Fields that carry a uint64 id. The official parser accepts them as bare numbers and as strings of digits.
UINT64_FIELDS = frozenset({"message_id", "msg_id", "svr_id"})
_MAX_ID_DIGITS = 20  # 2**64 - 1 has 20 digits

#: Known values of enum-like fields, by (model name, field): anything else is kept and reported.
ENUM_VALUES: dict[tuple[str, str], frozenset[int]] = {
    ("MessageItem", "type"): frozenset(int(t) for t in ItemType),
    ("WeixinMessage", "message_type"): frozenset(int(t) for t in MessageType),
    ("WeixinMessage", "message_state"): frozenset(int(t) for t in MessageState),
}

_ABSENT: Any = object()


class WireTypeError(ValueError):
    """A known field arrived with the wrong JSON type (strict reading only). ``path`` locates it, e.g.
    ``msgs[3].item_list[0].type``."""

    def __init__(self, path: str, expected: str, got: object) -> None:
        self.path = path
        self.expected = expected
        self.got_type = D.json_type(got)
        super().__init__(f"field {path or '<root>'} should be {expected}, got {self.got_type}")


# A field spec is (name, kind, model class or None). Kinds: int, uint64, str, bool, any, model, list:<kind>.
_Spec = tuple[str, str, Any]
_EXPECTED = {"int": "an integer", "uint64": "an integer", "str": "a string", "bool": "a boolean", "model": "an object"}


def _kind_of(tp: Any) -> tuple[str, Any]:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _kind_of(args[0]) if len(args) == 1 else ("any", None)
    if origin is list:
        (inner,) = typing.get_args(tp)
        kind, model = _kind_of(inner)
        return "list:" + kind, model
    if tp is bool:
        return "bool", None
    if tp is int:
        return "int", None
    if tp is str:
        return "str", None
    if isinstance(tp, type) and issubclass(tp, WireModel):
        return "model", tp
    return "any", None


def read_uint64(value: Any) -> int | None:
    """A uint64 id as the official parser reads it: a JSON integer, or a string of ASCII digits; else None.

    >>> read_uint64("18446744073709551615"), read_uint64(7), read_uint64("7a"), read_uint64(True)
    (18446744073709551615, 7, None, None)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID_DIGITS and value.isascii() and value.isdigit():
        return int(value)
    return None


def _expected(kind: str) -> str:
    return "an array" if kind.startswith("list:") else _EXPECTED.get(kind, "a value")


def _read(kind: str, model: Any, value: Any, path: str, drift: list[D.Drift] | None, strict: bool) -> Any:
    """``value`` as ``kind``, or ``_ABSENT`` when it is not of that kind (strict: raise WireTypeError)."""
    if kind == "str":
        if isinstance(value, str):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "uint64":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = read_uint64(value)
        if number is not None:
            if drift is not None:
                drift.append(D.Drift(path, D.UNEXPECTED_TYPE, "string of digits, expected integer (read as it)", value))
            return number
    elif kind == "model":
        if isinstance(value, dict):
            return model._from_wire(value, path, drift, strict)
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif kind.startswith("list:"):
        if isinstance(value, list):
            inner = kind[5:]
            out = []
            for item in value:
                if inner == "model" and not isinstance(item, dict) and not strict:
                    out.append(model._unreadable(item, f"{path}[]", drift))  # kept in place, as sent
                    continue
                got = _read(inner, model, item, f"{path}[]", drift, strict)
                if got is _ABSENT:
                    return _ABSENT  # a list of scalars with a stray element: the whole list is kept as sent
                out.append(got)
            return out
    else:
        return value
    if strict:
        raise WireTypeError(path, _expected(kind), value)
    if kind == "model" or kind.startswith("list:"):
        seen = f"{D.json_type(value)}, expected {'array' if kind.startswith('list:') else 'object'}"
    else:
        seen = f"{D.json_type(value)}, expected {_EXPECTED[kind].split()[-1]}"
    if drift is not None:
        drift.append(D.Drift(path, D.UNEXPECTED_TYPE, seen, value))
    return _ABSENT


def _check_value(kind: str, model: Any, value: Any, path: str, findings: list[D.Drift]) -> None:
    """What :func:`_read` reports for ``value``, without building anything."""
    if kind == "model":
        model.find_drift(value, path, findings)
    elif kind.startswith("list:") and isinstance(value, list):
        inner = kind[5:]
        if inner == "model":
            for item in value:
                model.find_drift(item, f"{path}[]", findings)
            return
        for item in value:
            before = len(findings)
            _check_value(inner, model, item, f"{path}[]", findings)
            if len(findings) > before:
                return  # as _read: the first stray element keeps the whole list as sent
    else:
        _read(kind, model, value, path, findings, False)


def _dump(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.as_sent if value.as_sent is not _ABSENT else value.to_wire()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


@dataclass(repr=False)
class WireModel:
    """Base of every wire model: known fields, plus ``extra`` for the fields this version does not know (and the
    known ones that came with an unexpected type, kept as sent)."""

    __wire_specs__: ClassVar[tuple[_Spec, ...]] = ()

    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, compare=False, metadata=LOCAL)
    #: What the wire had where this object was expected, when that was not an object (else a private sentinel).
    as_sent: Any = field(default=_ABSENT, kw_only=True, compare=False, metadata=LOCAL)

    @property
    def not_an_object(self) -> bool:
        """True when the wire had something other than an object here (kept in ``as_sent``)."""
        return self.as_sent is not _ABSENT

    @classmethod
    def _specs(cls) -> tuple[_Spec, ...]:
        specs = cls.__dict__.get("__wire_specs_cache__")
        if specs is None:
            hints = typing.get_type_hints(cls)
            specs = tuple(
                (f.name, *_field_kind(f.name, hints[f.name]))
                for f in dataclasses.fields(cls)
                if f.metadata.get("wire", True)
            )
            cls.__wire_specs_cache__ = specs  # type: ignore[attr-defined]
            cls.__wire_spec_map__ = {name: (kind, model) for name, kind, model in specs}  # type: ignore[attr-defined]
            cls.__wire_has_raw__ = any(f.name == "raw" for f in dataclasses.fields(cls))  # type: ignore[attr-defined]
            cls.__wire_enums__ = {  # type: ignore[attr-defined]
                name: values for (owner, name), values in ENUM_VALUES.items() if owner == cls.__name__
            }
        return specs

    @classmethod
    def from_wire(cls: type[M], data: Any, *, strict: bool = False, drift: list[D.Drift] | None = None) -> M:
        """Build from a decoded JSON object, keeping what does not fit (see the module's docstring).

        ``strict=True`` raises :class:`WireTypeError` for a wrongly typed known field instead; ``drift``, when
        given, receives a :class:`~.drift.Drift` for each unknown or unexpected part.
        """
        if not isinstance(data, dict):
            if strict:
                raise WireTypeError("", "an object", data)
            return cls._unreadable(data, "", drift)
        cls._specs()
        return cls._from_wire(data, "", drift, strict)

    @classmethod
    def find_drift(cls, data: Any, path: str, findings: list[D.Drift]) -> None:
        """Append to ``findings`` exactly what :meth:`from_wire` would report for ``data``, without building
        anything (the cheap check the stream runs on every message when msgspec is not installed)."""
        if not isinstance(data, dict):
            findings.append(D.Drift(path or "<root>", D.UNEXPECTED_TYPE, f"{D.json_type(data)}, expected object", data))
            return
        specs: dict[str, tuple[str, Any]] | None = cls.__dict__.get("__wire_spec_map__")
        if specs is None:
            cls._specs()
            specs = cls.__dict__["__wire_spec_map__"]
        prefix = f"{path}." if path else ""
        for key, value in data.items():
            spec = specs.get(key)
            if spec is None:
                findings.append(D.Drift(prefix + key, D.UNKNOWN_FIELD, D.json_type(value), value))
            elif value is not None:
                kind = spec[0]
                if (kind == "str" and type(value) is str) or (kind == "int" and type(value) is int):
                    continue  # the usual case, decided at once
                _check_value(kind, spec[1], value, prefix + key, findings)
        enums = cls.__dict__.get("__wire_enums__")
        if enums:
            for name, values in enums.items():
                value = data.get(name)
                if type(value) is int and value not in values:
                    findings.append(D.Drift(prefix + name, D.UNKNOWN_VALUE, str(value), value))

    @classmethod
    def _unreadable(cls: type[M], value: Any, path: str, drift: list[D.Drift] | None) -> M:
        if drift is not None:
            drift.append(D.Drift(path or "<root>", D.UNEXPECTED_TYPE, f"{D.json_type(value)}, expected object", value))
        obj = cls()
        obj.as_sent = value
        return obj

    @classmethod
    def _from_wire(cls: type[M], data: dict[str, Any], path: str, drift: list[D.Drift] | None, strict: bool) -> M:
        specs: dict[str, tuple[str, Any]] | None = cls.__dict__.get("__wire_spec_map__")
        if specs is None:
            cls._specs()
            specs = cls.__dict__["__wire_spec_map__"]
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        as_strings: list[str] = []
        prefix = f"{path}." if path else ""
        for key, value in data.items():
            spec = specs.get(key)
            if spec is None:
                extra[key] = value
                if drift is not None:
                    drift.append(D.Drift(prefix + key, D.UNKNOWN_FIELD, D.json_type(value), value))
                continue
            if value is None:
                continue
            got = _read(spec[0], spec[1], value, prefix + key, drift, strict)
            if got is _ABSENT:
                extra[key] = value  # kept as sent: to_wire() writes it back
            else:
                kwargs[key] = got
                if got is not value and spec[0] == "uint64":
                    as_strings.append(key)  # an id sent as a string: written back as one
        enums = cls.__dict__.get("__wire_enums__")
        if enums and drift is not None:
            for name, values in enums.items():
                value = kwargs.get(name)
                if value is not None and value not in values:
                    drift.append(D.Drift(prefix + name, D.UNKNOWN_VALUE, str(value), value))
        obj = cls(**kwargs)
        if extra:
            obj.extra = extra
        if as_strings:
            obj.__dict__["_id_strings"] = frozenset(as_strings)
        if cls.__dict__.get("__wire_has_raw__"):
            obj.raw = data  # type: ignore[attr-defined]
        return obj

    def to_wire(self) -> dict[str, Any]:
        """The JSON object for the wire: known fields that are set, then the preserved unknown ones."""
        out: dict[str, Any] = {}
        for name, _kind, _model in self._specs():
            value = getattr(self, name)
            if value is not None:
                out[name] = _dump(value)
        for name in self.__dict__.get("_id_strings", ()):
            if isinstance(out.get(name), int):
                out[name] = str(out[name])  # as the server wrote it
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def __repr__(self) -> str:
        if self.as_sent is not _ABSENT:
            return f"{type(self).__name__}(as_sent=<{D.json_type(self.as_sent)}, not an object>)"
        parts = []
        for name, _kind, _model in self._specs():
            value = getattr(self, name)
            if value is None:
                continue
            if name in SECRET_FIELDS and value != "":
                shown = [redact(v) for v in value] if isinstance(value, list) else redact(value)
                parts.append(f"{name}={shown}")
            else:
                parts.append(f"{name}={value!r}")
        if self.extra:
            parts.append(f"extra=<{len(self.extra)} field(s) kept as sent: {', '.join(sorted(self.extra))}>")
        return f"{type(self).__name__}({', '.join(parts)})"


def _field_kind(name: str, tp: Any) -> tuple[str, Any]:
    kind, model = _kind_of(tp)
    if kind == "int" and name in UINT64_FIELDS:
        return "uint64", None
    return kind, model


# --- shared pieces ---------------------------------------------------------------------------------


@dataclass(repr=False)
class BaseInfo(WireModel):
    channel_version: str | None = None
    bot_agent: str | None = None


@dataclass(repr=False)
class CDNMedia(WireModel):
    encrypt_query_param: str | None = None
    aes_key: str | None = None
    encrypt_type: int | None = None
    full_url: str | None = None


# --- message items -------------------------------------------------------------------------------


@dataclass(repr=False)
class TextItem(WireModel):
    text: str | None = None


@dataclass(repr=False)
class ImageItem(WireModel):
    media: CDNMedia | None = None
    thumb_media: CDNMedia | None = None
    aeskey: str | None = None
    url: str | None = None
    mid_size: int | None = None
    thumb_size: int | None = None
    thumb_height: int | None = None
    thumb_width: int | None = None
    hd_size: int | None = None


@dataclass(repr=False)
class VoiceItem(WireModel):
    media: CDNMedia | None = None
    encode_type: int | None = None
    bits_per_sample: int | None = None
    sample_rate: int | None = None
    playtime: int | None = None
    text: str | None = None


@dataclass(repr=False)
class FileItem(WireModel):
    media: CDNMedia | None = None
    file_name: str | None = None
    md5: str | None = None
    len: str | None = None  # plaintext size, as a string on the wire


@dataclass(repr=False)
class VideoItem(WireModel):
    media: CDNMedia | None = None
    video_size: int | None = None
    play_length: int | None = None
    video_md5: str | None = None
    thumb_media: CDNMedia | None = None
    thumb_size: int | None = None
    thumb_height: int | None = None
    thumb_width: int | None = None


@dataclass(repr=False)
class ToolCallStartItem(WireModel):
    tool_name: str | None = None
    tool_call_id: str | None = None


@dataclass(repr=False)
class ToolCallResultItem(WireModel):
    tool_name: str | None = None
    tool_call_id: str | None = None
    status: Any = None  # seen as a number or a string; kept as sent


@dataclass(repr=False)
class PartialText(WireModel):
    """A quote of part of a message: ``start``/``end`` are the excerpt's first and last characters (strings),
    ``startindex``/``endindex`` which occurrence of each, ``quotemd5`` the excerpt's MD5 (see
    :func:`resolve_partial`)."""

    start: str | None = None
    end: str | None = None
    startindex: int | None = None
    endindex: int | None = None
    quotemd5: str | None = None

    def resolve(self, full_text: str) -> str | None:
        """The quoted excerpt of ``full_text``, or None when it can't be located (see :func:`resolve_partial`)."""
        return resolve_partial(full_text, self.start, self.end, self.startindex, self.endindex, self.quotemd5)


@dataclass(repr=False)
class RefMessage(WireModel):
    message_item: MessageItem | None = None
    title: str | None = None
    svr_id: int | None = None  # uint64
    partial_text: PartialText | None = None


@dataclass(repr=False)
class MessageItem(WireModel):
    type: int | None = None
    create_time_ms: int | None = None
    update_time_ms: int | None = None
    is_completed: bool | None = None
    msg_id: int | None = None  # uint64
    ref_msg: RefMessage | None = None
    text_item: TextItem | None = None
    image_item: ImageItem | None = None
    voice_item: VoiceItem | None = None
    file_item: FileItem | None = None
    video_item: VideoItem | None = None
    tool_call_start_item: ToolCallStartItem | None = None
    tool_call_result_item: ToolCallResultItem | None = None

    @property
    def payload(self) -> WireModel | None:
        """The payload object that matches ``type`` (``text_item`` for 1, ``image_item`` for 2, ...)."""
        name = ITEM_PAYLOAD_FIELD.get(self.type) if self.type is not None else None
        return getattr(self, name) if name else None

    @property
    def type_name(self) -> str:
        """``text``, ``image``, ``voice``, ``file``, ``video``, ``tool_call_start``... or ``type<N>`` if unknown."""
        if self.type is None and "type" in self.extra:
            return item_type_name(self.extra["type"])  # sent with another JSON type, kept as sent
        return item_type_name(self.type)

    @property
    def item_text(self) -> str | None:
        """This item's text: a text item's, else a voice item's transcription; None when neither has any."""
        if self.text_item is not None and self.text_item.text:
            return self.text_item.text
        if self.voice_item is not None and self.voice_item.text:
            return self.voice_item.text
        return None

    @classmethod
    def text(cls, text: str) -> MessageItem:
        return cls(type=ItemType.TEXT, text_item=TextItem(text=text))


@dataclass(repr=False)
class WeixinMessage(WireModel):
    seq: int | None = None
    message_id: int | None = None  # uint64
    from_user_id: str | None = None
    to_user_id: str | None = None
    client_id: str | None = None
    create_time_ms: int | None = None
    update_time_ms: int | None = None
    delete_time_ms: int | None = None
    session_id: str | None = None
    group_id: str | None = None
    message_type: int | None = None
    message_state: int | None = None
    item_list: list[MessageItem] | None = None
    context_token: str | None = None
    run_id: str | None = None
    #: The quoted text as the client could resolve it (see :attr:`quoted`); filled by the client's readers.
    quoted_text: str | None = field(default=None, kw_only=True, compare=False, metadata=LOCAL)
    #: Why this entry of ``msgs`` could not be read at all (nested too deeply, not an object...); None normally.
    #: Such a message keeps its JSON text in ``raw_text`` and whatever id could be found in ``message_id``.
    decode_error: str | None = field(default=None, kw_only=True, compare=False, metadata=LOCAL)
    raw_text: str | None = field(default=None, kw_only=True, compare=False, metadata=LOCAL)
    #: Set by ``client.updates()``: same sender and content as a message delivered shortly before under another
    #: ``message_id`` (a probable re-delivery; the feed's rows have the same flag in ``probable_duplicate``).
    probable_duplicate: bool = field(default=False, kw_only=True, compare=False, metadata=LOCAL)

    @property
    def items(self) -> list[MessageItem]:
        return self.item_list or []

    @property
    def text(self) -> str:
        """Text items joined by newlines, voice transcriptions included."""
        return "\n".join(t for t in (item.item_text for item in self.items) if t)

    @property
    def ref(self) -> RefMessage | None:
        """The first item's quote (``ref_msg``), if any item quotes a message."""
        for item in self.items:
            if item.ref_msg is not None:
                return item.ref_msg
        return None

    @property
    def quoted_svr_id(self) -> int | None:
        """The quoted message's id: ``ref_msg.svr_id``, else the quoted item's ``msg_id`` (as the official client)."""
        ref = self.ref
        if ref is None:
            return None
        if ref.svr_id is not None:
            return ref.svr_id
        return ref.message_item.msg_id if ref.message_item is not None else None

    @property
    def quoted(self) -> str | None:
        """What this message quotes, as text: the excerpt of a partial quote when it can be located, else the
        quoted item's text, else the quote's title; for an ID-only quote, what the client found in its recent
        history (:attr:`quoted_text`). None when nothing is quoted or nothing could be found."""
        if self.quoted_text is not None:
            return self.quoted_text
        ref = self.ref
        return quote_text(ref) if ref is not None else None

    @property
    def is_from_user(self) -> bool:
        return self.message_type == MessageType.USER

    @property
    def message_type_name(self) -> str:
        return _enum_name(MessageType, self.message_type)

    @property
    def message_state_name(self) -> str:
        return _enum_name(MessageState, self.message_state)


def resolve_partial(
    full_text: str,
    start: object,
    end: object,
    startindex: object,
    endindex: object,
    quotemd5: object = None,
) -> str | None:
    """Locate a partial quote's excerpt in the quoted message's ``full_text``, as the official client does.

    The excerpt starts at occurrence ``startindex`` (0-based) of the string ``start`` and ends after occurrence
    ``endindex`` of ``end``. Two readings of ``endindex`` are seen: counted over the whole text, or from the
    excerpt's start; when ``quotemd5`` is given, the candidate whose MD5 matches wins, else the whole-text reading.

    >>> resolve_partial("one two three two", "t", "o", 0, 2)
    'two three two'
    """
    import hashlib

    if not (isinstance(full_text, str) and full_text and isinstance(start, str) and start):
        return None
    if not (isinstance(end, str) and end):
        return None
    first = _nth_index(full_text, start, startindex)
    if first < 0:
        return None
    candidates: list[str] = []
    for origin in (0, first + len(start)):
        last = _nth_index(full_text, end, endindex, origin)
        if last >= first:
            text = full_text[first : last + len(end)]
            if text not in candidates:
                candidates.append(text)
    if not isinstance(quotemd5, str) or not quotemd5:
        return candidates[0] if candidates else None
    want = quotemd5.lower()
    for text in candidates:
        if hashlib.md5(text.encode("utf-8", "surrogatepass")).hexdigest() == want:
            return text
    return None


def _nth_index(text: str, value: str, occurrence: object, origin: int = 0) -> int:
    if not isinstance(occurrence, int) or isinstance(occurrence, bool) or occurrence < 0:
        return -1
    position = origin
    for current in range(occurrence + 1):
        position = text.find(value, position)
        if position < 0:
            return -1
        if current < occurrence:
            position += len(value)
    return position


def quote_text(ref: RefMessage) -> str | None:
    """A quote's text without history: the partial excerpt of the quoted item's text when it resolves, else
    that text, else the title."""
    inner = ref.message_item.item_text if ref.message_item is not None else None
    if inner is not None and ref.partial_text is not None:
        excerpt = ref.partial_text.resolve(inner)
        if excerpt is not None:
            return excerpt
    if inner is not None:
        return inner
    return ref.title or None


def _enum_name(enum: Any, value: int | None) -> str:
    if value is None:
        return "none"
    try:
        return str(enum(value).name.lower())
    except ValueError:
        return str(value)


# --- requests --------------------------------------------------------------------------------------


@dataclass(repr=False)
class GetBotQrcodeReq(WireModel):
    local_token_list: list[str] | None = None


@dataclass(repr=False)
class GetUpdatesReq(WireModel):
    get_updates_buf: str | None = None
    base_info: BaseInfo | None = None


@dataclass(repr=False)
class SendMessageReq(WireModel):
    msg: WeixinMessage | None = None
    base_info: BaseInfo | None = None


@dataclass(repr=False)
class GetUploadUrlReq(WireModel):
    filekey: str | None = None
    media_type: int | None = None
    to_user_id: str | None = None
    rawsize: int | None = None
    rawfilemd5: str | None = None
    filesize: int | None = None
    thumb_rawsize: int | None = None
    thumb_rawfilemd5: str | None = None
    thumb_filesize: int | None = None
    no_need_thumb: bool | None = None
    aeskey: str | None = None
    base_info: BaseInfo | None = None


@dataclass(repr=False)
class GetConfigReq(WireModel):
    ilink_user_id: str | None = None
    context_token: str | None = None
    base_info: BaseInfo | None = None


@dataclass(repr=False)
class SendTypingReq(WireModel):
    ilink_user_id: str | None = None
    typing_ticket: str | None = None
    status: int | None = None
    base_info: BaseInfo | None = None


@dataclass(repr=False)
class NotifyReq(WireModel):
    base_info: BaseInfo | None = None


# --- responses -------------------------------------------------------------------------------------


@dataclass(repr=False)
class ApiResponse(WireModel):
    """Envelope fields every response may carry; ``raw`` is the decoded JSON exactly as received."""

    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, kw_only=True, compare=False, metadata=LOCAL)


@dataclass(repr=False)
class QrCodeResp(ApiResponse):
    qrcode: str | None = None
    qrcode_img_content: str | None = None


@dataclass(repr=False)
class QrStatusResp(ApiResponse):
    status: str | None = None
    bot_token: str | None = None
    ilink_bot_id: str | None = None
    baseurl: str | None = None
    ilink_user_id: str | None = None
    redirect_host: str | None = None

    @property
    def is_known_status(self) -> bool:
        return self.status in QrStatus.ALL


@dataclass(repr=False)
class GetUpdatesResp(ApiResponse):
    msgs: list[WeixinMessage] | None = None
    get_updates_buf: str | None = None
    sync_buf: str | None = None  # deprecated alias of get_updates_buf
    longpolling_timeout_ms: int | None = None
    #: True when the page is the client's own "no answer in time" (a normal outcome of a long poll).
    timed_out: bool = field(default=False, kw_only=True, compare=False, metadata=LOCAL)

    @property
    def messages(self) -> list[WeixinMessage]:
        return self.msgs or []

    @property
    def cursor(self) -> str:
        """The new cursor, from ``get_updates_buf`` or its deprecated alias ``sync_buf``; '' if none."""
        return self.get_updates_buf or self.sync_buf or ""


@dataclass(repr=False)
class SendMessageResp(ApiResponse):
    message_id: int | None = None  # uint64; absent on older servers
    #: The ``client_id`` this client sent (not a wire field of the response; filled in by the client).
    client_id: str | None = field(default=None, kw_only=True, compare=False, metadata=LOCAL)


@dataclass(repr=False)
class GetUploadUrlResp(ApiResponse):
    upload_param: str | None = None
    thumb_upload_param: str | None = None
    upload_full_url: str | None = None


@dataclass(repr=False)
class GetConfigResp(ApiResponse):
    typing_ticket: str | None = None


@dataclass(repr=False)
class SendTypingResp(ApiResponse):
    pass


@dataclass(repr=False)
class NotifyResp(ApiResponse):
    pass
