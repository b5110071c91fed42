"""Inbound media without I/O: where an item's file is, which AES key opens it, and what to call it on disk.

Key rules of docs/protocol.md, in order: an image's ``image_item.aeskey`` (32 hex characters); otherwise the
payload's ``media.aes_key``, base64 of the raw 16 bytes or of the 32-character hex string; no key at all
means the file is stored in the clear (seen on images). ``media.full_url`` is preferred to building the
download URL from ``encrypt_query_param``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import errors as E
from . import constants as C
from .crypto import KeyFormatError, parse_hex_key, parse_media_aes_key
from .models import read_uint64

#: File extension of a voice note by ``encode_type``.
VOICE_EXTENSIONS: dict[int, str] = {
    C.VoiceEncodeType.PCM: ".pcm",
    C.VoiceEncodeType.ADPCM: ".adpcm",
    C.VoiceEncodeType.SPEEX: ".speex",
    C.VoiceEncodeType.AMR: ".amr",
    C.VoiceEncodeType.SILK: ".silk",
    C.VoiceEncodeType.MP3: ".mp3",
    C.VoiceEncodeType.OGG_SPEEX: ".ogg",
}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
)


def sniff(data: bytes) -> tuple[str | None, str]:
    """``(MIME type, extension)`` of an image from its first bytes; ``(None, "")`` if not a known image."""
    for magic, mime, ext in _MAGIC:
        if data.startswith(magic):
            return mime, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return None, ""


@dataclass(frozen=True)
class InboundMedia:
    """Everything needed to fetch and open one item's media."""

    kind: str  # image, voice, file, video
    msg_id: int | None
    encrypt_query_param: str | None
    full_url: str | None
    key: bytes | None
    key_source: str  # "image_item.aeskey", "media.aes_key" or "none" (stored in the clear)
    file_name: str | None = None
    size: int | None = None  # plaintext size when the wire says (file_item.len)
    md5: str | None = None  # plaintext MD5 when the wire says (file_item.md5, video_item.video_md5)
    encode_type: int | None = None

    def __repr__(self) -> str:
        # The key and the download parameter are secrets: show where they came from, not what they are.
        return (
            f"InboundMedia(kind={self.kind!r}, msg_id={self.msg_id}, key_source={self.key_source!r}, "
            f"file_name={self.file_name!r}, size={self.size}, full_url={'yes' if self.full_url else 'no'})"
        )

    def default_name(self, data: bytes = b"") -> str:
        """The file name to save under: the sender's (sanitised) for files, else ``<kind>-<msg_id><ext>``."""
        if self.file_name:
            return safe_filename(self.file_name, fallback=f"file-{self.msg_id or 'unknown'}")
        ext = ""
        if self.kind == "image":
            ext = sniff(data)[1] or ".bin"
        elif self.kind == "voice":
            ext = VOICE_EXTENSIONS.get(self.encode_type, ".bin") if self.encode_type is not None else ".silk"
        elif self.kind == "video":
            ext = ".mp4"
        return f"{self.kind}-{self.msg_id if self.msg_id is not None else 'unknown'}{ext}"


def _as_dict(item: Any) -> dict[str, Any]:
    if hasattr(item, "to_wire"):
        return dict(item.to_wire())
    if isinstance(item, Mapping):
        return dict(item)
    raise E.UsageError(f"expected a MessageItem (or its wire dict), got {type(item).__name__}")


def _payload(item: dict[str, Any]) -> tuple[int | None, str, dict[str, Any]]:
    kind = item.get("type")
    name = C.ITEM_PAYLOAD_FIELD.get(kind) if isinstance(kind, int) else None
    if name is None or kind not in (C.ItemType.IMAGE, C.ItemType.VOICE, C.ItemType.FILE, C.ItemType.VIDEO):
        # A payload without (or with a wrong) type: accept whichever media payload is there.
        for candidate in ("image_item", "file_item", "video_item", "voice_item"):
            if isinstance(item.get(candidate), dict):
                name = candidate
                break
        else:
            raise E.UsageError(f"item of type {kind!r} carries no media (types with media: image, voice, file, video)")
    payload = item.get(name)
    if not isinstance(payload, dict):
        raise E.UsageError(f"the item has type {kind!r} but no {name} payload")
    return kind if isinstance(kind, int) else None, name.removesuffix("_item"), payload


def key_source(item: Any) -> str:
    """Which key rule applies to an item: ``image_item.aeskey``, ``media.aes_key`` or ``none``."""
    try:
        return inbound_media(item).key_source
    except (E.UsageError, E.ProtocolError):
        return "none"


def inbound_media(item: Any, *, thumb: bool = False) -> InboundMedia:
    """Resolve an item's media and key. ``thumb`` picks ``thumb_media`` (images and videos).

    A key in none of the protocol's formats raises ProtocolError naming the field.
    """
    data = _as_dict(item)
    _, kind, payload = _payload(data)
    media = payload.get("thumb_media" if thumb else "media")
    if thumb and not isinstance(media, dict):
        raise E.UsageError(f"this {kind} has no thumb_media")
    media = media if isinstance(media, dict) else {}
    key: bytes | None = None
    source = "none"
    problems: list[str] = []
    hex_key = payload.get("aeskey") if kind == "image" else None
    if isinstance(hex_key, str) and hex_key:
        try:
            key, source = parse_hex_key(hex_key), "image_item.aeskey"
        except KeyFormatError as exc:
            problems.append(f"image_item.aeskey: {exc}")
    if key is None:
        b64 = media.get("aes_key")
        if isinstance(b64, str) and b64:
            try:
                key, source = parse_media_aes_key(b64), "media.aes_key"
            except KeyFormatError as exc:
                problems.append(f"media.aes_key: {exc}")
    if key is None and problems:
        raise E.ProtocolError(f"cannot read the AES key of this {kind}: {'; '.join(problems)}", endpoint="cdn_download")
    plain_size = read_uint64(payload.get("len"))  # a string on the wire; a number is read the same
    md5 = payload.get("md5") if kind == "file" else payload.get("video_md5") if kind == "video" and not thumb else None
    msg_id = data.get("msg_id")
    encode_type = payload.get("encode_type")
    param = media.get("encrypt_query_param")
    url = media.get("full_url")
    return InboundMedia(
        kind=kind,
        msg_id=read_uint64(msg_id),
        encrypt_query_param=param if isinstance(param, str) and param else None,
        full_url=url if isinstance(url, str) and url else None,
        key=key,
        key_source=source,
        file_name=payload.get("file_name") if kind == "file" and isinstance(payload.get("file_name"), str) else None,
        size=None if thumb else plain_size,
        md5=md5 if isinstance(md5, str) and md5 else None,
        encode_type=encode_type if isinstance(encode_type, int) else None,
    )


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_filename(name: str, *, fallback: str = "file", max_bytes: int = 200) -> str:
    """A sender-chosen file name made safe to save: no folders, no control or reserved characters, no
    leading dots, bounded length (extension kept).

    >>> safe_filename("../../etc/passwd")
    'passwd'
    >>> safe_filename("report:v2?.pdf")
    'report_v2_.pdf'
    """
    text = unicodedata.normalize("NFC", str(name))
    text = text.replace("\\", "/").split("/")[-1]
    text = _UNSAFE.sub("_", text).strip().strip(".").strip()
    stem, dot, ext = text.rpartition(".")
    if not dot:
        stem, ext = text, ""
    if stem.upper() in _RESERVED:
        stem = f"_{stem}"
    ext = ext[:16]
    text = f"{stem}.{ext}" if ext else stem
    if not stem:
        return fallback
    while len(text.encode("utf-8")) > max_bytes and stem:
        stem = stem[:-1]
        text = f"{stem}.{ext}" if ext else stem
    return text or fallback
