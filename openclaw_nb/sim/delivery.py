"""What simulated users send a bot and how it comes out of ``getupdates``: inbound text, tool calls, quotes
and hand-made messages, context tokens, duplicates, and the cursor that pages through a bot's inbox.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import hashlib
import os
import secrets
import uuid
from typing import Any

from ..protocol import constants as C
from ..protocol.models import UINT64_FIELDS
from .base import SimBase
from .config import SimError
from .records import ContextRecord, OutboxEntry, SimBot, SimUser

#: The item type of the extra item that ``unknown_fields`` adds (no protocol version defines it).
UNKNOWN_ITEM_TYPE = 99


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


def _encode_cursor(nonce: str, pos: int) -> str:
    return base64.b64encode(f"{nonce}:{pos}".encode("ascii")).decode("ascii")


def _decode_cursor(cursor: str) -> tuple[str, int] | None:
    try:
        nonce, _, pos = base64.b64decode(cursor, validate=True).decode("ascii").partition(":")
        return nonce, int(pos)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


class DeliveryRoom(SimBase):
    """Inbound messages and ``getupdates``."""

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
