"""Sans-I/O media and long-text logic: upload plans, message items, MIME routing, text splitting, ticket cache.

Everything here is a pure function or a small state object; the drivers (:mod:`openclaw_nb.media`) read files
and talk HTTP. The wire shapes follow docs/protocol.md, sections "Media upload" and "Typing".
"""

from __future__ import annotations

import hashlib
import random
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from . import constants as C
from . import models as m
from .crypto import encrypt_stream, key_to_hex, key_to_message_aes_key, new_filekey, new_key, padded_size
from .redact import redact

# --- kinds and MIME routing -----------------------------------------------------------------------

#: The media kinds that can be sent as a message item, by their friendly names.
KINDS: dict[str, C.UploadMediaType] = {
    "image": C.UploadMediaType.IMAGE,
    "video": C.UploadMediaType.VIDEO,
    "file": C.UploadMediaType.FILE,
}
#: The message item type that refers to an upload of each kind.
ITEM_TYPE_FOR: dict[C.UploadMediaType, C.ItemType] = {
    C.UploadMediaType.IMAGE: C.ItemType.IMAGE,
    C.UploadMediaType.VIDEO: C.ItemType.VIDEO,
    C.UploadMediaType.FILE: C.ItemType.FILE,
}


#: The official client's extension table (the only MIME types it knows); anything else is
#: ``application/octet-stream`` and goes as a file. Fixed here, so a file routes the same way on every machine
#: (the operating system's ``mimetypes`` table differs between machines, and knows ``.svg``, ``.heic``...).
EXTENSION_MIME: dict[str, str] = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".tar": "application/x-tar",
    ".gz": "application/gzip",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
UNKNOWN_MIME = "application/octet-stream"


def kind_for_mime(mime: str | None) -> C.UploadMediaType:
    """The routing of docs/protocol.md: ``video/*`` → video, ``image/*`` → image, anything else (or unknown) → file."""
    major = (mime or "").split("/", 1)[0].strip().lower()
    if major == "video":
        return C.UploadMediaType.VIDEO
    if major == "image":
        return C.UploadMediaType.IMAGE
    return C.UploadMediaType.FILE


def mime_for_name(file_name: str | None) -> str:
    """The MIME type of a file name by :data:`EXTENSION_MIME` (its last extension, any case), else
    ``application/octet-stream``: ``mime_for_name("Clip.MOV")`` is ``video/quicktime``."""
    if not file_name:
        return UNKNOWN_MIME
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    dot = base.rfind(".")
    # A leading dot names a hidden file, not an extension (".mp4" alone has none), as path.extname reads it.
    ext = base[dot:].lower() if dot > 0 else ""
    return EXTENSION_MIME.get(ext, UNKNOWN_MIME)


def guess_kind(file_name: str | None) -> C.UploadMediaType:
    """The kind a file name routes to, by :func:`mime_for_name`: ``guess_kind("cat.jpg")`` is IMAGE,
    ``guess_kind("icon.svg")`` is FILE (the official table has no ``.svg``)."""
    return kind_for_mime(mime_for_name(file_name))


def parse_kind(kind: str | int | None, file_name: str | None) -> C.UploadMediaType:
    """``kind`` as given (``"image"``, ``"video"``, ``"file"`` or an UploadMediaType), or guessed from the name.

    Raises ``ValueError`` with the accepted values for anything else.
    """
    if kind is None:
        return guess_kind(file_name)
    if isinstance(kind, str) and kind.strip().lower() in KINDS:
        return KINDS[kind.strip().lower()]
    if isinstance(kind, int) and not isinstance(kind, bool) and kind in ITEM_TYPE_FOR:
        return C.UploadMediaType(kind)
    names = ", ".join(map(repr, KINDS))
    raise ValueError(f"kind must be one of {names} or None (guess from the file name), got {kind!r}")


# --- upload plan and result -----------------------------------------------------------------------


def digest(chunks: Iterable[bytes | memoryview]) -> tuple[int, str]:
    """``(rawsize, rawfilemd5)`` of plaintext chunks, in one pass."""
    md5 = hashlib.md5()
    size = 0
    for chunk in chunks:
        md5.update(chunk)
        size += len(chunk)
    return size, md5.hexdigest()


@dataclass(frozen=True, repr=False)
class UploadPlan:
    """Everything decided before the first request of an upload: sizes, MD5, ``filekey`` and the AES key.

    >>> plan = UploadPlan("u@im.wechat", UploadMediaType.FILE, 5, "5d41402abc4b2a76b9719d911017c592", "a.txt")
    >>> plan.filesize
    16
    """

    to_user_id: str
    media_type: C.UploadMediaType
    rawsize: int
    rawfilemd5: str
    file_name: str
    key: bytes = field(default_factory=new_key)
    filekey: str = field(default_factory=new_filekey)

    @property
    def filesize(self) -> int:
        """Ciphertext size: what the CDN receives, known before encrypting (PKCS#7 adds 1-16 bytes)."""
        return padded_size(self.rawsize)

    def request(self) -> m.GetUploadUrlReq:
        """The ``getuploadurl`` body (``base_info`` is added when the request is built)."""
        return m.GetUploadUrlReq(
            filekey=self.filekey,
            media_type=int(self.media_type),
            to_user_id=self.to_user_id,
            rawsize=self.rawsize,
            rawfilemd5=self.rawfilemd5,
            filesize=self.filesize,
            no_need_thumb=True,
            aeskey=key_to_hex(self.key),
        )

    def encrypt(self, chunks: Iterable[bytes | memoryview]) -> Iterator[bytes]:
        """Ciphertext of the plaintext chunks, streamed (one reused output buffer). Each chunk is consumed
        before the next is asked for, so a reader may hand out views of one reused input buffer."""
        return encrypt_stream(cast(Iterable[bytes], chunks), self.key)  # any buffer works, not only bytes

    def uploaded(self, encrypt_query_param: str) -> UploadedMedia:
        """The record of this upload once the CDN answered with its ``x-encrypted-param``."""
        return UploadedMedia(
            media_type=self.media_type,
            to_user_id=self.to_user_id,
            file_name=self.file_name,
            filekey=self.filekey,
            encrypt_query_param=encrypt_query_param,
            aeskey=key_to_hex(self.key),
            rawsize=self.rawsize,
            filesize=self.filesize,
            rawfilemd5=self.rawfilemd5,
        )

    def __repr__(self) -> str:
        return (
            f"UploadPlan(to_user_id={self.to_user_id!r}, media_type={self.media_type.name}, "
            f"file_name={self.file_name!r}, rawsize={self.rawsize}, filesize={self.filesize}, "
            f"rawfilemd5={self.rawfilemd5!r}, filekey={self.filekey!r}, key={redact(self.key.hex())})"
        )


@dataclass(frozen=True, repr=False)
class UploadedMedia:
    """A finished CDN upload: what a message needs to refer to it. The key and download parameter are secrets
    and show redacted in ``repr``.

    >>> media = client.upload("report.pdf", to=user)
    >>> client.send_file(media, to=user)          # send it (again) without uploading again
    """

    media_type: C.UploadMediaType
    to_user_id: str
    file_name: str
    filekey: str
    #: The download parameter (the CDN's ``x-encrypted-param``).
    encrypt_query_param: str
    #: The AES-128 key as 32 hex characters (``getuploadurl``'s ``aeskey``).
    aeskey: str
    rawsize: int
    filesize: int
    rawfilemd5: str

    @property
    def kind(self) -> str:
        """``image``, ``video`` or ``file``."""
        return self.media_type.name.lower()

    @property
    def key(self) -> bytes:
        return bytes.fromhex(self.aeskey)

    def cdn_media(self) -> m.CDNMedia:
        """``media`` of the message item; ``aes_key`` is base64 of the hex key (raw-key base64 shows grey)."""
        return m.CDNMedia(
            encrypt_query_param=self.encrypt_query_param,
            aes_key=key_to_message_aes_key(self.key),
            encrypt_type=int(C.EncryptType.PACKED),
        )

    def message_item(self) -> m.MessageItem:
        """The message item that shows this upload, exactly as docs/protocol.md's step 4 writes it."""
        media = self.cdn_media()
        if self.media_type == C.UploadMediaType.IMAGE:
            return m.MessageItem(type=C.ItemType.IMAGE, image_item=m.ImageItem(media=media, mid_size=self.filesize))
        if self.media_type == C.UploadMediaType.VIDEO:
            return m.MessageItem(type=C.ItemType.VIDEO, video_item=m.VideoItem(media=media, video_size=self.filesize))
        if self.media_type == C.UploadMediaType.FILE:
            return m.MessageItem(
                type=C.ItemType.FILE,
                file_item=m.FileItem(media=media, file_name=self.file_name, len=str(self.rawsize)),
            )
        raise ValueError(f"an upload of media_type {int(self.media_type)} cannot be sent as a message item")

    def __repr__(self) -> str:
        return (
            f"UploadedMedia(kind={self.kind!r}, file_name={self.file_name!r}, to_user_id={self.to_user_id!r}, "
            f"rawsize={self.rawsize}, filesize={self.filesize}, rawfilemd5={self.rawfilemd5!r}, "
            f"filekey={self.filekey!r}, encrypt_query_param={redact(self.encrypt_query_param)}, "
            f"aeskey={redact(self.aeskey)})"
        )


# --- long text ------------------------------------------------------------------------------------

#: Boundaries from the best place to cut to the worst. Each match's non-whitespace head stays with the part
#: before the cut; its whitespace tail is the gap, dropped (parts don't start or end with a stray newline).
_BOUNDARIES: tuple[re.Pattern[str], ...] = (
    re.compile(r"\n[^\S\n]*\n\s*"),  # paragraph: a blank line
    re.compile(r"\n\s*"),  # line
    re.compile(r"[.!?…]+[\"'”’»)\]]*\s+|[。！？]+[”’」』）】]*\s*"),  # sentence (CJK needs no space after it)
    re.compile(r"\s+"),  # word
)
#: A boundary that would leave a part shorter than this share of the limit is passed over for a finer one,
#: so a short first paragraph does not cost a message out of the few a context token allows.
_MIN_SHARE = 4
_ZWJ = "\u200d"


def _extends_cluster(ch: str) -> bool:
    """Characters that attach to the one before them (combining marks, variation selectors, ZWJ)."""
    return ch == _ZWJ or "\ufe00" <= ch <= "\ufe0f" or unicodedata.category(ch) in ("Mn", "Mc", "Me")


def _fit(text: str, start: int, max_bytes: int, max_chars: int | None) -> int:
    """End index of the longest run of whole characters from ``start`` within ``max_bytes`` of UTF-8 and
    ``max_chars`` characters."""
    window = text[start : start + (max_bytes if max_chars is None else min(max_bytes, max_chars))]
    raw = window.encode("utf-8")
    if len(raw) <= max_bytes:
        return start + len(window)
    # Cut the bytes, then drop the one character the cut may have split: never inside a UTF-8 sequence.
    return start + len(raw[:max_bytes].decode("utf-8", "ignore"))


def split_text(text: str, max_bytes: int = C.MAX_TEXT_BYTES, max_chars: int | None = None) -> list[str]:
    """Split ``text`` into parts of at most ``max_bytes`` of UTF-8 (and at most ``max_chars`` characters when
    given), cutting at a paragraph, else a line, a sentence, a word, and only then between characters (never
    inside a UTF-8 sequence, and not between a character and its combining marks when that can be helped).

    Whitespace at a cut is dropped; nothing else is. Text that fits comes back unchanged as one part.

    >>> split_text("First paragraph.\\n\\nSecond one.", max_bytes=20)
    ['First paragraph.', 'Second one.']
    >>> split_text("One. Two. Three.", max_chars=10)
    ['One. Two.', 'Three.']
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must be at least 4 (one character can take 4 bytes of UTF-8)")
    if max_chars is not None and max_chars < 1:
        raise ValueError("max_chars must be at least 1, or None for no limit in characters")
    if (max_chars is None or len(text) <= max_chars) and len(text.encode("utf-8")) <= max_bytes:
        return [text]
    parts: list[str] = []
    start = 0
    n = len(text)
    while start < n:
        end = _fit(text, start, max_bytes, max_chars)
        if end >= n:
            parts.append(text[start:])
            break
        cut = _best_cut(text, start, end, max_bytes, max_chars)
        part = text[start:cut].rstrip()
        if part:  # only leading whitespace of the whole text can make an empty part
            parts.append(part)
        start = cut
        while start < n and text[start].isspace():
            start += 1
    return parts


def _best_cut(text: str, start: int, end: int, max_bytes: int, max_chars: int | None) -> int:
    def long_enough(cut: int) -> bool:
        # At least a share of either limit: whichever one binds, a tiny part is not worth a message.
        if max_chars is not None and cut >= max_chars // _MIN_SHARE:
            return True
        return len(text[start : start + cut].encode("utf-8")) >= max_bytes // _MIN_SHARE

    # One character of look-ahead, so a sentence end right at the limit still sees its following space.
    window = text[start : end + 1]
    for pattern in _BOUNDARIES:
        best = None
        for match in pattern.finditer(window):
            cut = match.start() + len(match.group().rstrip())
            if 0 < cut <= end - start:
                best = cut
        if best is not None and long_enough(best):
            return start + best
    # Between characters: step back over marks that belong to the character before the cut.
    cut = end
    for _ in range(16):
        if cut - 1 <= start or not (_extends_cluster(text[cut]) or text[cut - 1] == _ZWJ):
            break
        cut -= 1
    else:
        cut = end
    return cut if cut > start else end


@dataclass(repr=False)
class SplitSendResp(m.SendMessageResp):
    """The answer to a text sent as several messages: the last part's fields, plus every part's answer.

    ``unsent`` holds the parts left out when told to send only what fits in the context token's budget.
    """

    parts: list[m.SendMessageResp] = field(default_factory=list, kw_only=True, compare=False, metadata=m.LOCAL)
    unsent: list[str] = field(default_factory=list, kw_only=True, compare=False, metadata=m.LOCAL)

    def __repr__(self) -> str:
        extra = f", unsent={len(self.unsent)} part(s)" if self.unsent else ""
        return f"SplitSendResp(parts={len(self.parts)}, message_ids={[p.message_id for p in self.parts]}{extra})"


@dataclass(repr=False)
class MediaSendResp(m.SendMessageResp):
    """The answer to a media message: its own fields, plus the upload it refers to and the caption's answers."""

    uploaded: UploadedMedia | None = field(default=None, kw_only=True, compare=False, metadata=m.LOCAL)
    caption: list[m.SendMessageResp] = field(default_factory=list, kw_only=True, compare=False, metadata=m.LOCAL)

    def __repr__(self) -> str:
        kind = self.uploaded.kind if self.uploaded else "media"
        name = self.uploaded.file_name if self.uploaded else ""
        return (
            f"MediaSendResp({kind} {name!r}, message_id={self.message_id}, "
            f"caption_messages={len(self.caption)}, client_id={self.client_id!r})"
        )


# --- typing tickets -------------------------------------------------------------------------------


@dataclass
class TicketEntry:
    """What the cache knows about one user's ``typing_ticket``."""

    ticket: str | None = None
    #: Clock time at which to call ``getconfig`` again (0: now).
    next_fetch_at: float = 0.0
    #: Wait before the next try after a failure; doubles per failure up to the maximum.
    retry_delay: float = C.TYPING_TICKET_RETRY_MIN
    failures: int = 0
    last_error: str | None = None
    #: The context token of the last failed ``getconfig``: a new token (the user wrote again) ends the back-off.
    failed_token: str | None = None

    def __repr__(self) -> str:
        ticket = redact(self.ticket) if self.ticket else None
        return (
            f"TicketEntry(ticket={ticket}, next_fetch_at={self.next_fetch_at:.1f}, failures={self.failures}, "
            f"last_error={self.last_error!r})"
        )


class TypingTicketCache:
    """The official client's ``typing_ticket`` policy, per user, with an injectable clock and random source.

    After a successful ``getconfig`` the ticket is kept and refreshed at a random time within 24 h; after a
    failed one the next try waits 2 s, doubling per failure up to 1 h, while an older ticket stays in use.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.entries: dict[str, TicketEntry] = {}

    def ticket(self, user: str) -> str | None:
        """The cached ticket (possibly due for a refresh), or None."""
        entry = self.entries.get(user)
        return entry.ticket if entry else None

    def due(self, user: str, context_token: str | None = None) -> bool:
        """Whether to call ``getconfig`` now: no entry yet, the refresh time has come, or a new context token
        arrived since the last failure."""
        entry = self.entries.get(user)
        if entry is None:
            return True
        if entry.failures and context_token and context_token != entry.failed_token:
            return True
        return self.clock() >= entry.next_fetch_at

    def wait(self, user: str) -> float:
        """Seconds until the next ``getconfig`` for this user is due (0 when due now)."""
        entry = self.entries.get(user)
        return 0.0 if entry is None else max(0.0, entry.next_fetch_at - self.clock())

    def succeeded(self, user: str, ticket: str) -> None:
        entry = self.entries.setdefault(user, TicketEntry())
        entry.ticket = ticket
        entry.next_fetch_at = self.clock() + self.rng() * C.TYPING_TICKET_REFRESH_WINDOW
        entry.retry_delay = C.TYPING_TICKET_RETRY_MIN
        entry.failures = 0
        entry.last_error = None
        entry.failed_token = None

    def failed(self, user: str, error: str, context_token: str | None = None) -> None:
        entry = self.entries.setdefault(user, TicketEntry())
        entry.next_fetch_at = self.clock() + entry.retry_delay
        entry.retry_delay = min(entry.retry_delay * 2, C.TYPING_TICKET_RETRY_MAX)
        entry.failures += 1
        entry.last_error = error
        entry.failed_token = context_token

    def invalidate(self, user: str) -> None:
        """Forget the ticket (the server refused it); the next use fetches a new one."""
        self.entries.pop(user, None)
