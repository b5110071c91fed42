"""What bots send: ``sendmessage`` with the real server's rules (context token, reply window, text size, rate
limit, de-duplication), the phone's reading of sent media, and ``getconfig``, ``sendtyping`` and notifications.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..protocol import constants as C
from ..protocol import crypto
from .base import SimBase
from .records import ContextRecord, Notification, OutboxEntry, TypingEvent, outbox_json

_MEDIA_ITEM_FIELDS = ("image_item", "voice_item", "file_item", "video_item")


class SendingRoom(SimBase):
    """``sendmessage``, typing and session notifications."""

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
                    outbox_json(entry),
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
