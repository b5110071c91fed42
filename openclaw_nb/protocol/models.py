"""Typed models of every wire type in docs/protocol.md, lossless in both directions.

Theory of operation: each model is a dataclass whose fields are the known wire fields (all optional, since
servers omit what they like). ``from_wire`` checks each known field's JSON type and raises
:class:`WireTypeError` (with the field's path) on a mismatch; fields the model does not know go to ``extra``
untouched, and ``to_wire`` writes them back, so the protocol can grow without anything being dropped.
uint64 ids (``message_id``, ``msg_id``, ``svr_id``) are Python ints, exact at any size.
Secret fields are redacted in ``repr``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union

from .constants import ITEM_PAYLOAD_FIELD, ItemType, MessageState, MessageType, QrStatus
from .redact import SECRET_FIELDS, redact

M = TypeVar("M", bound="WireModel")

#: Field metadata marking a dataclass field that is ours, not the wire's (``extra``, ``raw``, ``timed_out``...).
LOCAL = {"wire": False}


class WireTypeError(ValueError):
    """A known field arrived with the wrong JSON type. ``path`` locates it, e.g. ``msgs[3].item_list[0].type``."""

    def __init__(self, path: str, expected: str, got: object) -> None:
        self.path = path
        self.expected = expected
        self.got_type = _json_type(got)
        super().__init__(f"field {path or '<root>'} should be {expected}, got {self.got_type}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# A field spec is (name, kind, model class or None). Kinds: int, str, bool, any, model, list:<kind>.
_Spec = tuple[str, str, Any]


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


def _check(kind: str, model: Any, value: Any, path: str) -> Any:
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise WireTypeError(path, "an integer", value)
    if kind == "str":
        if isinstance(value, str):
            return value
        raise WireTypeError(path, "a string", value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise WireTypeError(path, "a boolean", value)
    if kind == "model":
        if isinstance(value, dict):
            return model._from_wire(value, path)
        raise WireTypeError(path, "an object", value)
    if kind.startswith("list:"):
        if not isinstance(value, list):
            raise WireTypeError(path, "an array", value)
        inner = kind[5:]
        return [_check(inner, model, item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def _dump(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


@dataclass(repr=False)
class WireModel:
    """Base of every wire model: known fields, plus ``extra`` for the fields this version does not know."""

    __wire_specs__: ClassVar[tuple[_Spec, ...]] = ()

    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, compare=False, metadata=LOCAL)

    @classmethod
    def _specs(cls) -> tuple[_Spec, ...]:
        specs = cls.__dict__.get("__wire_specs_cache__")
        if specs is None:
            hints = typing.get_type_hints(cls)
            specs = tuple(
                (f.name, *_kind_of(hints[f.name])) for f in dataclasses.fields(cls) if f.metadata.get("wire", True)
            )
            cls.__wire_specs_cache__ = specs  # type: ignore[attr-defined]
            cls.__wire_has_raw__ = any(f.name == "raw" for f in dataclasses.fields(cls))  # type: ignore[attr-defined]
        return specs

    @classmethod
    def from_wire(cls: type[M], data: dict[str, Any]) -> M:
        """Build from a decoded JSON object. Wrong types raise :class:`WireTypeError`; unknown keys go to ``extra``."""
        if not isinstance(data, dict):
            raise WireTypeError("", "an object", data)
        return cls._from_wire(data, "")

    @classmethod
    def _from_wire(cls: type[M], data: dict[str, Any], path: str) -> M:
        kwargs: dict[str, Any] = {}
        known = set()
        for name, kind, model in cls._specs():
            known.add(name)
            value = data.get(name)
            if value is not None:
                kwargs[name] = _check(kind, model, value, f"{path}.{name}" if path else name)
        extra = {k: v for k, v in data.items() if k not in known}
        obj = cls(**kwargs)
        obj.extra = extra
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
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def __repr__(self) -> str:
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
            parts.append(f"extra=<{len(self.extra)} unknown field(s): {', '.join(sorted(self.extra))}>")
        return f"{type(self).__name__}({', '.join(parts)})"


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
    start: int | None = None
    end: int | None = None
    startindex: int | None = None
    endindex: int | None = None
    quotemd5: str | None = None


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
        try:
            return ItemType(self.type).name.lower() if self.type is not None else "none"
        except ValueError:
            return f"type{self.type}"

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

    @property
    def items(self) -> list[MessageItem]:
        return self.item_list or []

    @property
    def text(self) -> str:
        """Text items joined by newlines, voice transcriptions included."""
        parts = []
        for item in self.items:
            if item.text_item is not None and item.text_item.text:
                parts.append(item.text_item.text)
            elif item.voice_item is not None and item.voice_item.text:
                parts.append(item.voice_item.text)
        return "\n".join(parts)

    @property
    def is_from_user(self) -> bool:
        return self.message_type == MessageType.USER

    @property
    def message_type_name(self) -> str:
        return _enum_name(MessageType, self.message_type)

    @property
    def message_state_name(self) -> str:
        return _enum_name(MessageState, self.message_state)


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

    @classmethod
    def _from_wire(cls, data: dict[str, Any], path: str) -> GetUpdatesResp:
        window = data.get("longpolling_timeout_ms")
        if window is None or (isinstance(window, int) and not isinstance(window, bool)):
            return super()._from_wire(data, path)
        # The window is a hint for the client's timeout, not data: a wrongly typed one must not cost the page
        # its messages (the cursor moves on, so they could not be fetched again). It stays in ``extra`` as
        # sent (so ``to_wire`` is lossless), and the client ignores or clamps it.
        page = super()._from_wire({k: v for k, v in data.items() if k != "longpolling_timeout_ms"}, path)
        page.extra["longpolling_timeout_ms"] = window
        page.raw = data
        return page

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
