"""The chat panel: a client's conversations as a chat app in the notebook, fed by the client's live feed.

``client.chat()`` (or ``%wx_chat``) returns a :class:`ChatPanel`. Conversations (one per user, with unread
counts and the last message time) on the left; the selected one as bubbles on the right (text, images and
video thumbnails decrypted inline, files behind a save button, voice with its transcript, quotes as quotes,
probable duplicates marked, unreadable entries shown raw and redacted); a reply box (text, an attached file
sent as image, file or video) with the typing indicator on while a reply goes out, and under it the user's
reply budget. Every bubble opens into its protocol exchange from ``client.log``, redacted.

How it finds its data: the panel reads the client's running feed (``client.stream()``, ``%wx_updates``) and
starts one only when none runs, so there is never a second poller. A helper thread waits on the feed's change
signal and indexes new rows straight from the feed's buffer (no DataFrame is built for it); the bot's own
messages come from the client's send listeners, so sends made anywhere (``%wx_send``, a cell, ``broadcast()``)
show too, and those made before the panel opened from the client's record of its last sends (each once, at the
server time it was sent, between the inbound messages where it belongs; the client keeps its last 10,000).
Only the last ``window`` bubbles of the selected conversation are widgets ("older" shows more), so a feed of
100,000 messages paints as fast as one of 100. Outside a widget front end it shows as text.

Following the conversation, with no script of its own: the bubble box scrolls from its bottom (a CSS
``column-reverse`` box around the list). Selecting a conversation opens it on its newest bubble; a message that
arrives while the view is at the bottom shows; scrolled up to read older bubbles, the view stays where it is (the
browser's scroll anchoring, in Chromium and Firefox; checked in Chromium by tests/browser) and the new bubble
waits below. "older" sits above the box, outside what scrolls.

Stable CSS classes, for styling and browser tests (``widget.add_class``):

==========================  ===================================================================
``wxchat-panel``            the whole panel (an HBox)
``wxchat-convs``            the conversation list; ``wxchat-conv`` each item (a Button),
                            ``wxchat-conv-selected`` the selected one, ``wxchat-conv-unread`` one
                            with unread messages, ``wxchat-conv-more`` the "more conversations" button
``wxchat-thread``           the right-hand side; ``wxchat-header`` its title line
``wxchat-older``            the button that shows older bubbles
``wxchat-bubbles``          the scrolling box of bubbles (it scrolls from its bottom: ``scrollTop`` is 0
                            at the newest bubble, negative above); ``wxchat-bubble-list`` the list
                            in it, oldest bubble first
``wxchat-bubble``           one message, with ``wxchat-in`` (from the user) or ``wxchat-out`` (the
                            bot's), its kind ``wxchat-text`` / ``-image`` / ``-file`` / ``-voice`` /
                            ``-video`` / ``-other``, ``wxchat-dup`` (probable duplicate), ``wxchat-raw``
                            (an entry that could not be read); inside: ``wxchat-body`` (its HTML, with
                            ``data-message-id`` / ``data-client-id``), ``wxchat-quote`` (plus
                            ``wxchat-quote-partial``), ``wxchat-media`` (an inline image),
                            ``wxchat-file-save`` (the save button), ``wxchat-wire-toggle`` and
                            ``wxchat-exchange`` (the protocol exchange)
``wxchat-reply``            the reply box; ``wxchat-reply-text`` its text area, ``wxchat-attach`` the
                            file picker, ``wxchat-send-as`` the kind chooser, ``wxchat-send`` the button
``wxchat-status``           what the last send did
``wxchat-typing``           "typing…" while a reply is uploaded and sent
``wxchat-budget``           the selected user's reply budget (sends left, hours left)
==========================  ===================================================================
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import env
from .. import errors as E
from ..live import running_feed
from ..protocol import constants as C
from ..protocol.poll import COL, COLUMNS
from ..protocol.redact import redact_body_text, redact_header, redact_json

if TYPE_CHECKING:  # pragma: no cover
    from ..live import Feed

log = logging.getLogger("openclaw_nb")

#: The conversation of entries that could not be read at all (no sender): shown raw, never replied to.
UNREADABLE = "(unreadable)"
#: How often the budget line is recomputed when nothing happens (the 24 h window shrinks on its own).
BUDGET_REFRESH = 30.0
#: Decrypted images and thumbnails kept for redraws.
MEDIA_CACHE = 64
#: The longest JSON shown in an exchange or a raw entry.
SHOWN_CHARS = 20_000

#: The item kinds drawn as bubbles of their own (any other item type is an "other" bubble), named as the protocol
#: core names item types, and the payload field of each media kind.
_KINDS = ("text", "image", "voice", "file", "video")
_PAYLOAD = {C.item_type_name(n): f for n, f in C.ITEM_PAYLOAD_FIELD.items() if C.item_type_name(n) in _KINDS[1:]}


def _kind_of_item(item_type: object) -> str:
    name = C.item_type_name(item_type)
    return name if name in _KINDS else "other"
_I_FROM, _I_TO, _I_TYPE, _I_CREATE = COL["from_user_id"], COL["to_user_id"], COL["message_type"], COL["create_time"]
_BOT = int(C.MessageType.BOT)
_STYLE = """<style>
.wxchat-panel {border:1px solid #ddd; border-radius:6px; font-family:sans-serif}
.wxchat-convs {border-right:1px solid #eee; padding:4px}
.wxchat-conv-selected button, button.wxchat-conv-selected {background:#d8f5c8}
.wxchat-bubble {border-radius:8px; padding:2px 8px; margin:2px 0}
.wxchat-in {background:#f1f1f1}
.wxchat-out {background:#95ec69}
.wxchat-dup {outline:2px dashed #c80}
.wxchat-quote {color:#666; border-left:3px solid #bbb; padding-left:4px; margin-bottom:2px}
.wxchat-quote mark {background:#ffe58a}
.wxchat-meta {font-size:75%; color:#777}
.wxchat-exchange pre {font-size:75%; max-height:24em; overflow:auto; background:#fafafa}
</style>"""

#: The picture a send made by the panel showed, handed to the send listener on the same thread or task.
_preview: contextvars.ContextVar[tuple[str, bytes] | None] = contextvars.ContextVar("wxchat_preview", default=None)


def _clock(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None


def _image_format(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return "png"


@dataclass
class ChatMessage:
    """One bubble's content: an inbound row of the feed or a message the client sent."""

    outgoing: bool
    user: str
    time_ms: int | None
    kind: str  # text, image, file, voice, video, other, raw
    text: str = ""
    message_id: int | None = None
    client_id: str | None = None
    item_types: str = ""
    quoted: str | None = None
    duplicate: bool = False
    decode_error: str | None = None
    position: int | None = None  # the row in the feed (inbound)
    items: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the wire items (inbound, parsed)
    name: str | None = None  # a file's name
    preview: bytes | None = field(default=None, repr=False)  # a picture the panel sent
    raw: str | None = field(default=None, repr=False)  # the JSON text (secrets in it: never shown unredacted)

    @property
    def key(self) -> str:
        return f"in:{self.position}" if not self.outgoing else f"out:{self.client_id}"


@dataclass
class _Conversation:
    user: str
    rows: list[int] = field(default_factory=list)  # feed positions of the user's messages
    sent: list[ChatMessage] = field(default_factory=list)
    last_ms: int = 0
    unread: int = 0

    last_pos: int = -1  # the latest feed position: orders conversations whose last times are equal

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.sent)


def _recency(conv: _Conversation) -> tuple[int, int]:
    return conv.last_ms, conv.last_pos


class _FeedView:
    """A consistent read of the feed's rows: the built frame for the first ones, raw column lists after."""

    def __init__(self, feed: Feed) -> None:
        self.frame, self.lists, self.count = feed._buffer.snapshot()
        self.framed = len(self.frame) if self.frame is not None else 0

    def index(self, start: int) -> list[tuple[str, list[int], int]]:
        """Rows ``start..count`` grouped by conversation: (user, positions, latest create time in ms)."""
        groups: dict[str, tuple[list[int], list[int]]] = {}
        if start < self.framed:
            self._index_frame(start, groups)
        first = max(start, self.framed)
        if first < self.count:
            self._index_lists(first, groups)
        return [(user, rows, last[0]) for user, (rows, last) in groups.items()]

    def _index_lists(self, first: int, groups: dict[str, tuple[list[int], list[int]]]) -> None:
        # One plain loop: for 100,000 rows it beats building arrays for pandas' factorize (11 vs 20 ms).
        a, b = first - self.framed, self.count - self.framed
        senders, receivers = self.lists[_I_FROM][a:b], self.lists[_I_TO][a:b]
        users = [
            (r if k == _BOT else s) or UNREADABLE
            for s, r, k in zip(senders, receivers, self.lists[_I_TYPE][a:b], strict=True)
        ]
        by_user: dict[str, list[int]] = {}
        for i, user in enumerate(users, first):
            rows = by_user.get(user)
            if rows is None:
                rows = by_user[user] = []
            rows.append(i)
        created = self.lists[_I_CREATE]
        for user, rows in by_user.items():
            entry = groups.setdefault(user, ([], [0]))
            entry[0].extend(rows)
            ms = created[rows[-1] - self.framed]  # the latest of the user's rows (they arrive in order)
            if type(ms) is int and ms > entry[1][0]:
                entry[1][0] = ms

    def _index_frame(self, start: int, groups: dict[str, tuple[list[int], list[int]]]) -> None:
        import numpy as np
        import pandas as pd

        assert self.frame is not None
        part = self.frame.iloc[start : self.framed]
        is_bot = (part["message_type"] == C.MessageType.BOT.name.lower()).to_numpy(dtype=bool)
        senders = part["from_user_id"].to_numpy(dtype=object, na_value=None)
        receivers = part["to_user_id"].to_numpy(dtype=object, na_value=None)
        users = np.where(is_bot, receivers, senders)
        users[pd.isna(users)] = UNREADABLE
        created = part["create_time"].dt.tz_convert(None).to_numpy(dtype="datetime64[ms]")
        ms = np.where(np.isnat(created), 0, created.astype("int64"))
        _group(users, ms, start, groups)

    def rows(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """The rows at ``positions`` as dicts of plain values (ms times, wire ints, None for missing)."""
        out: list[dict[str, Any]] = []
        in_frame = [p for p in positions if p < self.framed]
        if in_frame:
            import numpy as np

            assert self.frame is not None
            sub = self.frame.iloc[in_frame]
            created = sub["create_time"].dt.tz_convert(None).to_numpy(dtype="datetime64[ms]")
            ms = [None if np.isnat(t) else int(t.astype("int64")) for t in created] if len(created) else []
            cols = {name: sub[name].tolist() for name in _ROW_FIELDS}
            bot = C.MessageType.BOT.name.lower()
            for i in range(len(in_frame)):
                row = {name: cols[name][i] for name in _ROW_FIELDS}
                row["create_time"] = ms[i]
                row["message_type"] = _BOT if row["message_type"] == bot else None
                out.append(row)
        for p in positions:
            if p >= self.framed:
                j = p - self.framed
                row = {name: self.lists[COL[name]][j] for name in _ROW_FIELDS}
                row["create_time"] = self.lists[_I_CREATE][j]
                out.append(row)
        return out


_ROW_FIELDS = tuple(
    name
    for name in COLUMNS
    if name
    in (
        "message_id",
        "from_user_id",
        "to_user_id",
        "message_type",
        "item_types",
        "text",
        "quoted",
        "probable_duplicate",
        "decode_error",
        "raw",
    )
)


def _group(users: Any, ms: Any, offset: int, groups: dict[str, tuple[list[int], list[int]]]) -> None:
    """Add rows to ``groups`` by user, vectorised: ``users`` and ``ms`` are arrays of the rows from ``offset``."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(users)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(uniques)))
    lo = 0
    for code, user in enumerate(uniques):
        hi = int(bounds[code])
        idx = order[lo:hi]
        rows, last = groups.setdefault(str(user), ([], [0]))
        rows.extend((idx + offset).tolist())
        last[0] = max(last[0], int(ms[idx].max()))
        lo = hi


def _message_of_row(row: dict[str, Any], position: int, user: str) -> ChatMessage:
    raw = row.get("raw")
    if isinstance(raw, (bytes, bytearray)):
        raw = bytes(raw).decode("utf-8", "replace")
    raw = _str(raw)
    error = _str(row.get("decode_error"))
    item_types = _str(row.get("item_types")) or ""
    quoted = _str(row.get("quoted"))
    items: list[dict[str, Any]] = []
    if error is None and raw and (quoted is not None or (item_types and item_types != "text")):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        found = parsed.get("item_list") if isinstance(parsed, dict) else None
        items = [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []
    kinds = [k for k in item_types.split(",") if k]
    kind = "raw" if error is not None else next((k for k in kinds if k != "text"), kinds[0] if kinds else "other")
    if kind not in (*_KINDS, "raw"):
        kind = "other"
    name = None
    if kind == "file":
        payload = next((i.get("file_item") for i in items if isinstance(i.get("file_item"), dict)), None)
        name = _str(payload.get("file_name")) if payload else None
    return ChatMessage(
        outgoing=row.get("message_type") == _BOT,
        user=user,
        time_ms=_int(row.get("create_time")),
        kind=kind,
        text=_str(row.get("text")) or "",
        message_id=_int(row.get("message_id")),
        item_types=item_types,
        quoted=quoted,
        duplicate=bool(row.get("probable_duplicate")),
        decode_error=error,
        position=position,
        items=items,
        name=name,
        raw=raw,
    )


def _message_of_send(wire: dict[str, Any], resp: Any, when_ms: int, *, preview: bool = True) -> ChatMessage | None:
    user = _str(wire.get("to_user_id"))
    if not user:
        return None
    items = [i for i in wire.get("item_list") or [] if isinstance(i, dict)]
    kinds = [_kind_of_item(i.get("type")) for i in items]
    kind = next((k for k in kinds if k != "text"), kinds[0] if kinds else "other")
    texts = [i["text_item"].get("text") for i in items if isinstance(i.get("text_item"), dict)]
    name = None
    for i in items:
        payload = i.get("file_item")
        if isinstance(payload, dict):
            name = _str(payload.get("file_name"))
    picture = None
    held = _preview.get() if preview else None
    if kind == "image" and held is not None and held[0] == user:
        picture = held[1]
    return ChatMessage(
        outgoing=True,
        user=user,
        time_ms=when_ms,
        kind=kind,
        text="\n".join(t for t in texts if isinstance(t, str)),
        message_id=_int(getattr(resp, "message_id", None)),
        client_id=_str(wire.get("client_id")),
        item_types=",".join(kinds),
        name=name,
        preview=picture,
    )


def _quote_html(msg: ChatMessage) -> str:
    ref = next((i.get("ref_msg") for i in msg.items if isinstance(i.get("ref_msg"), dict)), None)
    if msg.quoted is None and ref is None:
        return ""
    full = None
    partial = False
    if isinstance(ref, dict):
        inner = ref.get("message_item")
        if isinstance(inner, dict):
            for name in ("text_item", "voice_item"):
                payload = inner.get(name)
                if isinstance(payload, dict) and isinstance(payload.get("text"), str):
                    full = payload["text"]
                    break
        partial = isinstance(ref.get("partial_text"), dict)
    excerpt = msg.quoted
    if partial and excerpt and full and excerpt in full:
        start = full.index(excerpt)
        body = (
            html.escape(full[:start])
            + f"<mark>{html.escape(excerpt)}</mark>"
            + html.escape(full[start + len(excerpt) :])
        )
    elif excerpt:
        body = f"<mark>{html.escape(excerpt)}</mark>" if partial else html.escape(excerpt)
    else:
        body = "<i>a message not in view</i>"
    classes = "wxchat-quote wxchat-quote-partial" if partial else "wxchat-quote"
    title = " title='quotes part of the message'" if partial else ""
    return f"<div class='{classes}'{title}>{body}</div>"


def _item_payload(msg: ChatMessage, kind: str) -> dict[str, Any] | None:
    name = _PAYLOAD.get(kind)
    for item in msg.items:
        if name and isinstance(item.get(name), dict):
            return item
    return None


def _body_html(msg: ChatMessage) -> str:
    ident = (
        f" data-client-id='{html.escape(msg.client_id)}'"
        if msg.outgoing and msg.client_id
        else f" data-message-id='{msg.message_id}'"
        if msg.message_id is not None
        else ""
    )
    parts = [f"<div class='wxchat-body'{ident}>"]
    if msg.kind == "raw":
        shown = redact_body_text(msg.raw or "", False)
        if shown is None:
            shown = f"(not shown: {len(msg.raw or ''):,} characters whose secrets could not be vouched for)"
        parts.append(f"<div><b>unreadable entry</b>: {html.escape(msg.decode_error or '')}</div>")
        parts.append(f"<pre style='white-space:pre-wrap'>{html.escape(shown[:SHOWN_CHARS])}</pre>")
    else:
        parts.append(_quote_html(msg))
        if msg.kind == "voice":
            item = _item_payload(msg, "voice")
            payload = item.get("voice_item", {}) if item else {}
            seconds = _int(payload.get("playtime"))
            length = f", {seconds / 1000:.1f} s" if seconds else ""
            parts.append(f"<div>🎤 voice{length}</div>")
            if msg.text:
                parts.append(f"<div style='white-space:pre-wrap'><i>{html.escape(msg.text)}</i></div>")
        else:
            if msg.kind == "file":
                parts.append(f"<div>📄 {html.escape(msg.name or 'file')}</div>")
            elif msg.kind in ("image", "video") and not msg.text:
                parts.append(f"<div>[{msg.kind}]</div>")
            elif msg.kind == "other":
                parts.append(f"<div>[{html.escape(msg.item_types or 'empty message')}]</div>")
            if msg.text:
                parts.append(f"<div style='white-space:pre-wrap'>{html.escape(msg.text)}</div>")
    meta = _clock(msg.time_ms)
    if msg.duplicate:
        meta += " · <span class='wxchat-dup-flag' title='same sender and content as a recent message'>"
        meta += "probable duplicate</span>"
    parts.append(f"<div class='wxchat-meta'>{meta}</div></div>")
    return "".join(parts)


def _carries(ex: Any, msg: ChatMessage) -> bool:
    """Whether the exchange is the one that carried ``msg`` (its id may also show in another page's quote)."""
    if msg.outgoing:
        body = ex.request_body
        sent = body.get("msg") if isinstance(body, dict) else None
        return isinstance(sent, dict) and sent.get("client_id") == msg.client_id
    body = ex.response_body
    msgs = body.get("msgs") if isinstance(body, dict) else None
    return isinstance(msgs, list) and any(_is_message(m, msg.message_id) for m in msgs)


def _is_message(entry: Any, message_id: int | None) -> bool:
    return isinstance(entry, dict) and message_id is not None and str(entry.get("message_id")) == str(message_id)


def _pretty(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=1, default=str)
    if len(text) > SHOWN_CHARS:
        text = text[:SHOWN_CHARS] + f"\n… ({len(text) - SHOWN_CHARS:,} more characters)"
    return text


class ChatPanel:
    """The chat panel of a client (see the module docstring). Made by ``client.chat()`` or ``%wx_chat``.

    >>> panel = client.chat()                   # displays itself in a notebook cell  # doctest: +SKIP
    >>> panel.select("alice@im.wechat")         # doctest: +SKIP
    >>> panel.send("hello from the panel")      # what the Send button does  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        *,
        user: str | None = None,
        window: int = 50,
        feed: Feed | None = None,
        conversations: int = 30,
        downloads: str | Path = "downloads",
    ) -> None:
        for name, value in (("window", window), ("conversations", conversations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise E.UsageError(f"{name} is how many to show at once, an int >= 1, got {value!r}")
        if user is not None and (not isinstance(user, str) or not user):
            raise E.UsageError(f"user must be a user id such as 'alice@im.wechat', got {user!r}")
        self.client = client
        self.window = window
        self.max_conversations = conversations
        self.downloads = Path(downloads)
        self._async = asyncio.iscoroutinefunction(getattr(client, "send_text", None))
        if feed is None:
            feed = running_feed(client)  # (a Feed with no rows yet is falsy: compare with None)
        self.feed = feed if feed is not None else self._start_feed()
        self._lock = threading.RLock()
        self._convs: dict[str, _Conversation] = {}
        self._indexed = 0
        self._selected: str | None = user
        self._limit = window  # bubbles of the selected conversation shown now
        self._shown: list[ChatMessage] = []
        self._sent: deque[ChatMessage] = deque()
        self._sent_ids: set[str] = set()  # client ids of the sends taken in: each shows once
        self._previews: deque[ChatMessage] = deque()  # sent messages that keep their picture (the last few)
        self._media: OrderedDict[str, bytes] = OrderedDict()
        self._workers: ThreadPoolExecutor | None = None
        self._ui: _Widgets | None = None
        self._sending = 0
        self._sending_to = ""
        self._status = ""
        self._poked = False
        self._closed = False
        self._drawn = threading.Condition()
        self.version = 0  # counts redraws; wait_shown() waits on it
        self._seen = self.feed._version  # read before the first look, so no change falls in between
        # Listen first, then read the sends made before: a send in between is in both, and shows once.
        client._sent_listeners.append(self._on_sent)
        self._seed_sent()
        self._refresh()  # the first look; with no user given, it selects the latest conversation
        self._thread = threading.Thread(target=self._watch, name="openclaw-nb-chat", daemon=True)
        self._thread.start()

    def _start_feed(self) -> Feed:
        if self._async and env.running_loop() is None:
            raise E.UsageError(
                "an AsyncClient's chat panel needs its feed on a running event loop: call client.chat() in a "
                "notebook cell or in async code, or pass feed=client.stream()"
            )
        feed: Feed = self.client.stream()
        return feed

    # --- the model ----------------------------------------------------------------------------------

    @property
    def selected(self) -> str | None:
        """The user whose conversation is shown."""
        return self._selected

    @property
    def conversations(self) -> list[dict[str, Any]]:
        """Each conversation, latest first: user, messages, unread, last message time (ms)."""
        with self._lock:
            convs = sorted(self._convs.values(), key=_recency, reverse=True)
            return [{"user": c.user, "messages": c.count, "unread": c.unread, "last_ms": c.last_ms} for c in convs]

    @property
    def shown(self) -> list[ChatMessage]:
        """The messages of the selected conversation that are bubbles now, oldest first."""
        with self._lock:
            return list(self._shown)

    def _conversation(self, user: str) -> _Conversation:
        conv = self._convs.get(user)
        if conv is None:
            conv = self._convs[user] = _Conversation(user)
        return conv

    def _index(self) -> tuple[_FeedView, list[int]]:
        """Take the feed's new rows in; returns the view and the new positions of the selected conversation."""
        view = _FeedView(self.feed)
        fresh: list[int] = []
        if view.count > self._indexed:
            for user, rows, last in view.index(self._indexed):
                conv = self._conversation(user)
                conv.rows.extend(rows)
                conv.last_ms = max(conv.last_ms, last)
                conv.last_pos = max(conv.last_pos, rows[-1])
                if user == self._selected:
                    fresh.extend(rows)
                else:
                    conv.unread += len(rows)
            self._indexed = view.count
        return view, fresh

    def _messages(self, conv: _Conversation, limit: int, view: _FeedView | None = None) -> list[ChatMessage]:
        """The last ``limit`` messages of a conversation, inbound and sent merged by time."""
        view = view or _FeedView(self.feed)
        positions = [p for p in conv.rows[-limit:] if p < view.count]
        inbound = [_message_of_row(row, p, conv.user) for row, p in zip(view.rows(positions), positions, strict=True)]
        merged = inbound + conv.sent[-limit:]
        merged.sort(key=lambda msg: msg.time_ms or 0)
        return merged[-limit:]

    def _seed_sent(self) -> None:
        """Queue the sends the client made before the panel opened (its record of its last sends)."""
        recent = getattr(self.client, "_sent_recent", None)
        if recent is None:
            return
        earlier = []
        for when, wire, resp in recent.copy():  # (a copy is taken at once; sends go on meanwhile)
            msg = _message_of_send(wire, resp, int(when * 1000), preview=False)
            if msg is not None:
                earlier.append(msg)
        self._sent.extendleft(reversed(earlier))  # before any send the listener queued meanwhile

    def _on_sent(self, wire: dict[str, Any], resp: Any) -> None:
        msg = _message_of_send(wire, resp, int(self.client.server_now() * 1000))
        if msg is None:
            return
        self._sent.append(msg)
        self._poke()

    def _poke(self) -> None:
        changed = self.feed._changed
        with changed:
            self._poked = True
            changed.notify_all()

    def _watch(self) -> None:
        feed = self.feed
        seen = self._seen
        while not self._closed:
            with feed._changed:
                while not self._closed and not self._poked and feed._version == seen:
                    if not feed._changed.wait(BUDGET_REFRESH):
                        break
                seen = feed._version
                self._poked = False
            if self._closed:
                break
            http = getattr(self.client, "_http", None)
            if not feed.running and getattr(http, "is_closed", False):
                break  # the client is closed: nothing can change any more
            try:
                self._refresh()
            except Exception as exc:  # the panel must keep following the feed
                log.warning("the chat panel could not update: %s: %s", type(exc).__name__, exc)

    def _refresh(self) -> None:
        """Index what is new, show it, and tell whoever waits (wait_shown) that the panel was redrawn."""
        with self._lock:
            view, fresh = self._index()
            sent = []
            while self._sent:
                msg = self._sent.popleft()
                if msg.client_id is not None:
                    if msg.client_id in self._sent_ids:
                        continue  # seen twice: sent while the panel opened
                    self._sent_ids.add(msg.client_id)
                conv = self._conversation(msg.user)
                conv.sent.append(msg)
                conv.last_ms = max(conv.last_ms, msg.time_ms or 0)
                if msg.preview is not None:
                    self._previews.append(msg)
                    if len(self._previews) > MEDIA_CACHE:
                        self._previews.popleft().preview = None  # an old bubble redrawn shows "[image]"
                if msg.user == self._selected:
                    sent.append(msg)
            if self._selected is None and self._convs:
                self._selected = max(self._convs.values(), key=_recency).user
                self._convs[self._selected].unread = 0
                self._show_selected(view, newest=True)
            elif fresh or sent:
                rows = view.rows(fresh)
                new = [_message_of_row(row, p, self._selected or "") for row, p in zip(rows, fresh, strict=True)]
                added = sorted(new + sent, key=lambda msg: msg.time_ms or 0)
                self._shown = (self._shown + added)[-self._limit :]
                if self._ui is not None:
                    self._ui.append(added, self._limit)
            if self._ui is not None:
                self._ui.update_conversations()
                self._ui.update_lines()
        self._redrawn()

    def _redrawn(self) -> None:
        with self._drawn:
            self.version += 1
            self._drawn.notify_all()

    def _show_selected(self, view: _FeedView | None = None, *, newest: bool = False) -> None:
        conv = self._convs.get(self._selected or "")
        self._shown = self._messages(conv, self._limit, view) if conv is not None else []
        if self._ui is not None:
            self._ui.show(self._shown, newest)

    # --- actions ------------------------------------------------------------------------------------

    def select(self, user: str) -> None:
        """Show ``user``'s conversation (its unread count goes to 0)."""
        if not isinstance(user, str) or not user:
            raise E.UsageError(f"select() takes a user id such as 'alice@im.wechat', got {user!r}")
        with self._lock:
            self._selected = user
            self._limit = self.window
            self._conversation(user).unread = 0
            self._show_selected(newest=True)
            if self._ui is not None:
                self._ui.update_conversations()
                self._ui.update_lines()
        self._redrawn()

    def older(self) -> None:
        """Show ``window`` more bubbles of the selected conversation."""
        with self._lock:
            self._limit += self.window
            self._show_selected()
        self._redrawn()

    def wait_shown(
        self,
        condition: Callable[[ChatPanel], bool] | None = None,
        *,
        message_id: int | None = None,
        timeout: float = 10.0,
    ) -> ChatPanel:
        """Block until ``condition(panel)`` holds, or the message ``message_id`` is a bubble (TimeoutError)."""
        if condition is None:
            if message_id is None:
                raise E.UsageError("wait_shown() needs a condition or message_id=")

            def condition(panel: ChatPanel) -> bool:
                return any(m.message_id == message_id for m in panel.shown)

        deadline = time.monotonic() + timeout
        with self._drawn:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"the chat panel did not show what was waited for within {timeout} s "
                        f"({self!r}; {len(self._shown)} bubbles; the feed: {self.feed.status})"
                    )
                self._drawn.wait(left)
        return self

    def budget_text(self, user: str | None = None) -> str:
        """The reply budget line of ``user`` (default: the selected one)."""
        user = user or self._selected
        if not user or user == UNREADABLE:
            return ""
        budget = self.client.reply_budget(user)
        if not budget.can_reply:
            return f"{user}: no reply possible now — {budget.reason}"
        hours = budget.window_left.total_seconds() / 3600 if budget.window_left is not None else 0.0
        window = C.REPLY_WINDOW_SECONDS / 3600
        return (
            f"{user}: {budget.sends_left} of {C.SENDS_PER_CONTEXT_TOKEN} sends left on the current context token"
            f" · {hours:.1f} h left in the {window:g} h window"
        )

    def send(
        self,
        text: str | None = None,
        *,
        file: str | Path | bytes | None = None,
        name: str | None = None,
        kind: str | None = None,
        user: str | None = None,
    ) -> Any:
        """Send a reply to ``user`` (default: the selected one) as the reply box does: the text, and an
        attached ``file`` (a path or bytes with ``name``) as ``kind`` ("image", "file", "video"; None guesses
        from the name), with the typing indicator on meanwhile. With a :class:`~openclaw_nb.client.Client`
        it returns the answers; with an AsyncClient it returns a coroutine to await."""
        user, text, data, name, kind = self._checked(text, file, name, kind, user)
        if self._async:
            return self._send_async(user, text, data, name, kind)
        return self._send_sync(user, text, data, name, kind)

    def _checked(
        self, text: str | None, file: str | Path | bytes | None, name: str | None, kind: str | None, user: str | None
    ) -> tuple[str, str | None, bytes | None, str | None, str | None]:
        user = user or self._selected
        if not user or user == UNREADABLE:
            raise E.UsageError("no conversation is selected: select(user) first, or pass user=")
        if text is not None and not isinstance(text, str):
            raise E.UsageError(f"text must be a str, got {type(text).__name__}")
        if file is None and not (text and text.strip()):
            raise E.UsageError("nothing to send: type a message or attach a file")
        if kind not in (None, "image", "file", "video"):
            raise E.UsageError(f"kind is 'image', 'file', 'video' or None (guess from the name), got {kind!r}")
        data: bytes | None = None
        if file is not None:
            if isinstance(file, (bytes, bytearray, memoryview)):
                data = bytes(file)
                if not name:
                    raise E.UsageError("a file given as bytes needs name= (such as 'photo.png')")
            else:
                path = Path(file)
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise E.UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
                name = name or path.name
        return user, (text if text and text.strip() else None), data, name, kind

    def _send_in_background(
        self, text: str | None, data: bytes | None, name: str | None, kind: str | None, after: Callable[[bool], None]
    ) -> None:
        """What the Send button does: check at once (UsageError), then send off the kernel's thread."""
        user, text, data, name, kind = self._checked(text, data, name, kind, None)
        send = self._send_async if self._async else self._send_sync

        def done(_result: Any, error: BaseException | None) -> None:
            if error is not None and not isinstance(error, E.OpenClawError):
                log.warning("the chat panel's send failed: %s: %s", type(error).__name__, error)
            after(error is None)
            self._redrawn()

        self._in_background(lambda: send(user, text, data, name, kind), done)

    def _sending_state(self, user: str, on: bool, status: str | None = None) -> None:
        with self._lock:
            self._sending += 1 if on else -1
            if on:
                self._sending_to = user
            if status is not None:
                self._status = status
            if self._ui is not None:
                self._ui.update_lines()

    def _send_sync(self, user: str, text: str | None, data: bytes | None, name: str | None, kind: str | None) -> Any:
        client = self.client
        self._sending_state(user, True, "sending…")
        answers: list[Any] = []
        token = _preview.set((user, data) if data is not None else None)
        try:
            with ExitStack() as stack:
                try:
                    stack.enter_context(client.typing_indicator(user))
                except E.OpenClawError as exc:
                    log.info("no typing indicator for %s: %s", user, exc)
                if data is not None:
                    answers.append(client.send_media(data, user, caption=text, kind=kind, name=name, progress=False))
                else:
                    answers.append(client.send_text(user, text))
        except Exception as exc:
            self._sending_state(user, False, f"not sent: {exc}")
            raise
        finally:
            _preview.reset(token)
        self._sending_state(user, False, f"sent to {user}")
        return answers

    async def _send_async(
        self, user: str, text: str | None, data: bytes | None, name: str | None, kind: str | None
    ) -> Any:
        client = self.client
        self._sending_state(user, True, "sending…")
        answers: list[Any] = []
        token = _preview.set((user, data) if data is not None else None)
        try:
            async with AsyncExitStack() as stack:
                try:
                    await stack.enter_async_context(client.typing_indicator(user))
                except E.OpenClawError as exc:
                    log.info("no typing indicator for %s: %s", user, exc)
                if data is not None:
                    answers.append(
                        await client.send_media(data, user, caption=text, kind=kind, name=name, progress=False)
                    )
                else:
                    answers.append(await client.send_text(user, text))
        except Exception as exc:
            self._sending_state(user, False, f"not sent: {exc}")
            raise
        finally:
            _preview.reset(token)
        self._sending_state(user, False, f"sent to {user}")
        return answers

    def _in_background(self, make: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        """Run a client call off the kernel's thread: a worker thread (Client), a task on the feed's loop
        (AsyncClient). ``done(result, error)`` is called when it ends."""
        if self._async:
            loop = self.feed._loop or env.running_loop()
            if loop is None:
                done(None, E.UsageError("the AsyncClient's event loop is not running"))
                return
            future = asyncio.run_coroutine_threadsafe(make(), loop)
        else:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="openclaw-nb-chat")
            future = self._workers.submit(make)

        def finished(f: Future[Any]) -> None:
            try:
                result, error = f.result(), None
            except BaseException as exc:
                result, error = None, exc
            try:
                done(result, error)
            except Exception as exc:  # a view update failed: say so, the panel goes on
                log.warning("the chat panel could not show a result: %s: %s", type(exc).__name__, exc)

        future.add_done_callback(finished)

    def media(self, msg: ChatMessage, *, thumb: bool = False) -> Any:
        """Download and decrypt the message's media (what the inline image and the save button use)."""
        item = _item_payload(msg, msg.kind)
        if item is None:
            raise E.UsageError(f"this {msg.kind} message carries no media item")
        return self.client.download_media(item, thumb=thumb)

    # --- the protocol exchange ------------------------------------------------------------------------

    def exchange(self, msg: ChatMessage) -> Any:
        """The recorded exchange that carried ``msg``: the getupdates page it came in, or its sendmessage.
        None when the protocol log is off or no longer holds it."""
        recorder = getattr(self.client, "log", None)
        if recorder is None:
            return None
        if msg.outgoing:
            needle, call, attr = msg.client_id, "send_message", "_request_body"
        else:
            needle, call, attr = (
                None if msg.message_id is None else str(msg.message_id),
                "get_updates",
                "_response_body",
            )
        if not needle:
            return None
        for ex in reversed(list(recorder)):
            if ex.call != call:
                continue
            kept = getattr(ex, attr, None)
            text = getattr(kept, "text", None)
            if text is None:
                text = json.dumps(kept, default=str) if kept is not None else ""
            if needle in text and _carries(ex, msg):
                return ex
        return None

    def exchange_html(self, msg: ChatMessage) -> str:
        """The exchange of ``msg`` as HTML: request line, headers and body, answer (redacted as recorded)."""
        recorder = getattr(self.client, "log", None)
        if recorder is None:
            return "<i>the protocol log is off (Client(record=True) keeps it)</i>"
        ex = self.exchange(msg)
        if ex is None:
            return f"<i>not in the protocol log any more (it keeps the last {recorder.maxlen:,} exchanges)</i>"
        answer = ex.response_body
        note = ""
        if not msg.outgoing and isinstance(answer, dict) and isinstance(answer.get("msgs"), list):
            msgs = answer["msgs"]
            mine = [m for m in msgs if _is_message(m, msg.message_id)]
            if len(msgs) > len(mine):
                note = f" (this message only; the page held {len(msgs)})"
            answer = {**answer, "msgs": mine}
        # A recorder made with redact=False kept the secrets: the panel still shows them redacted.
        headers = ex.request_headers
        if not ex.redacted:
            headers = {name: redact_header(name, value) for name, value in headers.items()}
        request = ex.request_body if ex.redacted else redact_json(ex.request_body)
        if not ex.redacted:
            answer = redact_json(answer)
        duration = f" · {ex.duration_ms:.0f} ms" if ex.duration_ms is not None else ""
        return (
            f"<div><b>{html.escape(ex.method)} {html.escape(ex.path)}</b> · {html.escape(ex.outcome)}{duration}"
            f" · exchange #{ex.id} of client.log</div>"
            f"<div>request headers</div><pre>{html.escape(_pretty(headers))}</pre>"
            f"<div>request body</div><pre>{html.escape(_pretty(request))}</pre>"
            f"<div>response body{html.escape(note)}</div><pre>{html.escape(_pretty(answer))}</pre>"
        )

    # --- display ------------------------------------------------------------------------------------

    @property
    def widget(self) -> Any:
        """The panel's widget tree (built on first use; needs ipywidgets)."""
        with self._lock:
            if self._ui is None:
                self._ui = _Widgets(self)
                self._ui.show(self._shown)
                self._ui.update_conversations()
                self._ui.update_lines()
            return self._ui.root

    @property
    def bubble_widgets(self) -> tuple[Any, ...]:
        """The bubble widgets in the widget tree now, oldest first (empty before :attr:`widget` is built)."""
        with self._lock:
            return tuple(self._ui.bubble_box.children) if self._ui is not None else ()

    def close(self) -> None:
        """Stop following the feed and the client's sends (the feed itself goes on)."""
        self._closed = True
        try:
            self.client._sent_listeners.remove(self._on_sent)
        except ValueError:
            pass
        self._poke()
        if self._workers is not None:
            self._workers.shutdown(wait=False)

    def _plain_text(self, per_conversation: int = 3, conversations: int = 10) -> str:
        with self._lock:
            convs = sorted(self._convs.values(), key=_recency, reverse=True)
            total = sum(c.count for c in convs)
            lines = [
                f"chat: {len(convs)} conversation{'s' if len(convs) != 1 else ''}, {total:,} messages "
                f"(feed: {self.feed.status})"
            ]
            view = _FeedView(self.feed)
            for conv in convs[:conversations]:
                mark = "▶ " if conv.user == self._selected else ""
                unread = f", {conv.unread} unread" if conv.unread else ""
                lines.append(f"{mark}{conv.user} — {conv.count:,} messages{unread}, last {_clock(conv.last_ms)}")
                for msg in self._messages(conv, per_conversation, view):
                    arrow = "→" if msg.outgoing else "←"
                    body = " ".join((msg.text or f"[{msg.kind}{': ' + msg.name if msg.name else ''}]").split())
                    if msg.kind == "raw":
                        body = f"[unreadable: {msg.decode_error}]"
                    body = body if len(body) <= 70 else body[:69] + "…"
                    dup = " (probable duplicate)" if msg.duplicate else ""
                    lines.append(f"  {_clock(msg.time_ms)} {arrow} {body}{dup}")
                budget = self.budget_text(conv.user)
                if budget:
                    lines.append(f"  {budget.split(': ', 1)[1]}")
            if len(convs) > conversations:
                lines.append(f"… and {len(convs) - conversations} more conversations")
            return "\n".join(lines)

    def __repr__(self) -> str:
        with self._lock:
            total = sum(c.count for c in self._convs.values())
            return (
                f"<ChatPanel: {len(self._convs)} conversations, {total:,} messages, showing "
                f"{self._selected or 'nothing yet'}>"
            )

    def __str__(self) -> str:
        """``print(panel)``: the last messages of each conversation, as text."""
        return self._plain_text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self._plain_text())

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not env.has_widgets():
            display({"text/plain": self._plain_text()}, raw=True)
            return
        bundle = dict(self.widget._repr_mimebundle_() or {})
        bundle["text/plain"] = self._plain_text()
        display(bundle, raw=True)


class _Widgets:
    """The panel's ipywidgets: built once, then changed in place (only the visible window is widgets)."""

    def __init__(self, panel: ChatPanel) -> None:
        import ipywidgets as w

        self.w = w
        self.panel = panel
        self.conv_buttons: dict[str, Any] = {}
        self.conv_order: list[str] = []
        self.bubbles: list[tuple[ChatMessage, Any]] = []
        # Bubbles and conversation items share their Layout and Style models: a widget with its own would
        # cost two more widgets each, and the first paint is mostly widget construction.
        self.layouts = {
            # flex 0 0 auto: a bubble keeps its height and the box scrolls, instead of every bubble being
            # squeezed (its "wire" button to a sliver) once the conversation is taller than the box.
            "in": w.Layout(align_self="flex-start", max_width="80%", flex="0 0 auto"),
            "out": w.Layout(align_self="flex-end", max_width="80%", flex="0 0 auto"),
            "auto": w.Layout(width="auto"),
            "wire": w.Layout(width="5em"),
            "body": w.Layout(),
        }
        # (HTMLStyle and ToggleButtonStyle are not exported by ipywidgets: taken from a first instance.)
        first_html, first_toggle = w.HTML(), w.ToggleButton()
        self.html_style, self.toggle_style = first_html.style, first_toggle.style
        self.button_style = w.ButtonStyle()
        self.conv_box = w.VBox(layout=w.Layout(width="32%", overflow="auto", max_height="560px"))
        self.conv_box.add_class("wxchat-convs")
        self.more = w.Button(description="more conversations", layout=w.Layout(width="auto"))
        self.more.add_class("wxchat-conv-more")
        self.more.on_click(lambda _b: self._more_conversations())
        self.header = w.HTML()
        self.header.add_class("wxchat-header")
        self.older = w.Button(description="older", layout=w.Layout(width="auto"))
        self.older.add_class("wxchat-older")
        self.older.on_click(lambda _b: panel.older())
        # The bubbles, oldest first, in a box that scrolls from its bottom (see _scroller).
        self.bubble_box = w.VBox(layout=w.Layout(flex="0 0 auto"))
        self.bubble_box.add_class("wxchat-bubble-list")
        self.scroller = self._scroller()
        self.text = w.Textarea(placeholder="reply…", layout=w.Layout(width="100%", height="4em"))
        self.text.add_class("wxchat-reply-text")
        self.upload = w.FileUpload(description="attach", multiple=False)
        self.upload.add_class("wxchat-attach")
        self.send_as = w.Dropdown(
            options=[("as its type", "auto"), ("as image", "image"), ("as file", "file"), ("as video", "video")],
            value="auto",
            layout=w.Layout(width="9em"),
        )
        self.send_as.add_class("wxchat-send-as")
        self.send_button = w.Button(description="Send", button_style="success", layout=w.Layout(width="6em"))
        self.send_button.add_class("wxchat-send")
        self.send_button.on_click(lambda _b: self._send_clicked())
        self.status = w.HTML()
        self.status.add_class("wxchat-status")
        self.typing = w.HTML()
        self.typing.add_class("wxchat-typing")
        self.budget = w.HTML()
        self.budget.add_class("wxchat-budget")
        reply = w.VBox(
            [self.text, w.HBox([self.upload, self.send_as, self.send_button]), self.status, self.typing, self.budget]
        )
        reply.add_class("wxchat-reply")
        thread = w.VBox([self.header, self.older, self.scroller, reply], layout=w.Layout(width="68%"))
        thread.add_class("wxchat-thread")
        self.thread = thread
        self.shown_conversations = panel.max_conversations
        self.root = w.HBox([w.HTML(_STYLE), self.conv_box, thread])
        self.root.add_class("wxchat-panel")

    # -- conversations --

    def _more_conversations(self) -> None:
        with self.panel._lock:
            self.shown_conversations += self.panel.max_conversations
            self.update_conversations()

    def update_conversations(self) -> None:
        panel = self.panel
        convs = sorted(panel._convs.values(), key=_recency, reverse=True)
        order = [c.user for c in convs[: self.shown_conversations]]
        for conv in convs[: self.shown_conversations]:
            button = self.conv_buttons.get(conv.user)
            if button is None:
                button = self.w.Button(layout=self.layouts["auto"], style=self.button_style, tooltip=conv.user)
                button.add_class("wxchat-conv")
                button.on_click(lambda _b, user=conv.user: panel.select(user))
                self.conv_buttons[conv.user] = button
            unread = f" ({conv.unread})" if conv.unread else ""
            description = f"{conv.user}{unread} · {_clock(conv.last_ms) or '—'}"
            if button.description != description:
                button.description = description
            self._toggle(button, "wxchat-conv-unread", bool(conv.unread))
            self._toggle(button, "wxchat-conv-selected", conv.user == panel._selected)
        if order != self.conv_order:
            self.conv_order = order
            more = [self.more] if len(convs) > len(order) else []
            self.conv_box.children = tuple(self.conv_buttons[u] for u in order) + tuple(more)

    @staticmethod
    def _toggle(widget: Any, name: str, on: bool) -> None:
        has = name in widget._dom_classes
        if on and not has:
            widget.add_class(name)
        elif has and not on:
            widget.remove_class(name)

    # -- bubbles --

    def _scroller(self) -> Any:
        """The scrolling box around the bubble list. Its flex direction is ``column-reverse``: a browser puts
        the scroll origin of such a box at its bottom, so a new box opens on the newest bubble, and a bubble
        added while the view is at the bottom is shown (the list grows upwards from there). No script needed."""
        box = self.w.Box(
            [self.bubble_box],
            layout=self.w.Layout(display="flex", flex_flow="column-reverse", overflow="auto", max_height="420px"),
        )
        box.add_class("wxchat-bubbles")
        return box

    def to_newest(self) -> None:
        """Show the newest bubble: a new scrolling box starts at its bottom wherever the old one was scrolled."""
        old, self.scroller = self.scroller, self._scroller()
        self.thread.children = tuple(self.scroller if c is old else c for c in self.thread.children)
        old.children = ()
        old.close()

    def show(self, messages: list[ChatMessage], newest: bool = False) -> None:
        panel = self.panel
        if newest:
            self.to_newest()
        conv = panel._convs.get(panel._selected or "")
        title = html.escape(panel._selected or "no conversation yet")
        count = f" · {conv.count:,} messages" if conv is not None else ""
        self.header.value = f"<b>{title}</b>{count}"
        self.older.layout.display = "" if conv is not None and conv.count > len(messages) else "none"
        old = {msg.key: widget for msg, widget in self.bubbles}
        self.bubbles = [(msg, old.get(msg.key) or self.bubble(msg)) for msg in messages]
        self.bubble_box.children = tuple(widget for _, widget in self.bubbles)

    def append(self, messages: list[ChatMessage], limit: int) -> None:
        self.bubbles = (self.bubbles + [(msg, self.bubble(msg)) for msg in messages])[-limit:]
        self.bubble_box.children = tuple(widget for _, widget in self.bubbles)
        conv = self.panel._convs.get(self.panel._selected or "")
        if conv is not None:
            self.header.value = f"<b>{html.escape(conv.user)}</b> · {conv.count:,} messages"
            self.older.layout.display = "" if conv.count > len(self.bubbles) else "none"

    def bubble(self, msg: ChatMessage) -> Any:
        w = self.w
        body = w.HTML(value=_body_html(msg), layout=self.layouts["body"], style=self.html_style)
        children: list[Any] = [body]
        if msg.kind in ("image", "video"):
            image = w.Image(layout=w.Layout(max_width="240px", max_height="240px"))
            image.add_class("wxchat-media")
            children.append(image)
            self._load_image(msg, image)
        if msg.kind in ("file", "video", "image") and not msg.outgoing:
            label = f"save {msg.name}" if msg.name else f"save the {msg.kind}"
            save = w.Button(description=label, icon="download", layout=self.layouts["auto"], style=self.button_style)
            save.add_class("wxchat-file-save")
            saved = w.HTML(layout=self.layouts["body"], style=self.html_style)
            save.on_click(lambda _b: self._save(msg, saved))
            children += [save, saved]
        wire = w.ToggleButton(
            description="wire", tooltip="the protocol exchange", layout=self.layouts["wire"], style=self.toggle_style
        )
        wire.add_class("wxchat-wire-toggle")
        children.append(wire)
        box = w.VBox(children, layout=self.layouts["out" if msg.outgoing else "in"])

        def toggled(change: dict[str, Any]) -> None:
            if change["new"]:
                shown = w.HTML(value=self.panel.exchange_html(msg))
                shown.add_class("wxchat-exchange")
                box.children = (*box.children, shown)
            else:
                box.children = tuple(c for c in box.children if "wxchat-exchange" not in c._dom_classes)

        wire.observe(toggled, names="value")
        for name in ("wxchat-bubble", "wxchat-out" if msg.outgoing else "wxchat-in", f"wxchat-{msg.kind}"):
            box.add_class(name)
        if msg.duplicate:
            box.add_class("wxchat-dup")
        return box

    def _load_image(self, msg: ChatMessage, image: Any) -> None:
        panel = self.panel
        if msg.preview is not None:
            image.format, image.value = _image_format(msg.preview), msg.preview
            return
        if msg.outgoing:
            return
        thumb = msg.kind == "video"
        key = f"{msg.key}:{thumb}"
        cached = panel._media.get(key)
        if cached is not None:
            image.format, image.value = _image_format(cached), cached
            return

        def done(media: Any, error: BaseException | None) -> None:
            if error is not None:
                image.layout.display = "none"
                log.info("the chat panel could not show a %s: %s", msg.kind, error)
                return
            data = bytes(media)
            with panel._lock:
                panel._media[key] = data
                while len(panel._media) > MEDIA_CACHE:
                    panel._media.popitem(last=False)
            image.format, image.value = _image_format(data), data

        try:
            panel._in_background(lambda: panel.media(msg, thumb=thumb), done)
        except E.OpenClawError as exc:
            done(None, exc)

    def _save(self, msg: ChatMessage, saved: Any) -> None:
        panel = self.panel
        saved.value = "downloading…"

        def done(media: Any, error: BaseException | None) -> None:
            if error is not None:
                saved.value = f"<span style='color:#c22'>{html.escape(str(error))}</span>"
                return
            path = media.save(panel.downloads)
            saved.value = f"saved to <code>{html.escape(str(path))}</code>"

        panel._in_background(lambda: panel.media(msg), done)

    # -- reply box --

    def _send_clicked(self) -> None:
        files = self.upload.value
        data = name = None
        if files:
            data, name = bytes(files[0]["content"]), files[0]["name"]
        kind = None if self.send_as.value == "auto" else self.send_as.value

        def sent(ok: bool) -> None:
            if ok:
                self.text.value = ""
                self.upload.value = ()

        try:
            self.panel._send_in_background(self.text.value, data, name, kind, sent)
        except E.UsageError as exc:
            self.status.value = html.escape(str(exc))

    def update_lines(self) -> None:
        panel = self.panel
        status = panel._status
        if not panel.feed.running:
            stopped = f"the feed has stopped ({panel.feed.status}): new messages do not show until one runs again"
            status = f"{status} · {stopped}" if status else stopped
        self.status.value = html.escape(status)
        self.typing.value = (
            f"typing… (shown to {html.escape(panel._sending_to)} while the reply is uploaded and sent)"
            if panel._sending
            else ""
        )
        self.budget.value = html.escape(panel.budget_text())
