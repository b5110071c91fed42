"""The durable state: what ``--state PATH`` saves and loads, and the replay of journal records
(:mod:`.journal` writes them).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from .base import SimBase
from .config import SimError
from .records import CdnObject, ContextRecord, Notification, SimBot, SimUser, TypingEvent, outbox_entry, outbox_json


class PersistenceRoom(SimBase):
    """The state file and the journal's records."""

    # --- persistence -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The durable part of the state (bots, tokens, users, messages, cursors, context tokens, tickets,
        outbox, CDN objects, the clock): what ``--state PATH`` saves. QR codes and faults are not kept."""

        def b64(data: bytes | None) -> str | None:
            return None if data is None else base64.b64encode(data).decode("ascii")

        with self._lock:
            return {
                "format": 1,
                "clock_offset": self._offset,
                "next_id": self._next_id,
                "latest_bot": self._latest_bot,
                "users": [dataclasses.asdict(u) for u in self._users.values()],
                "bots": [dataclasses.asdict(b) for b in self._bots.values()],
                "contexts": [dataclasses.asdict(r) for r in self._contexts.values()],
                "last_inbound": [[b, u, t] for (b, u), t in self._last_inbound.items()],
                "tickets": [[b, u, t] for (b, u), t in self._tickets.items()],
                "sent": [[b, c, m] for (b, c), m in self._sent.items()],
                "outbox": [outbox_json(e) for e in self._outbox],
                "typing": [dataclasses.asdict(t) for t in self._typing],
                "notifications": [dataclasses.asdict(n) for n in self._notifications],
                "cdn": {
                    p: {
                        "data": b64(o.data),
                        "key": b64(o.key),
                        "rawsize": o.rawsize,
                        "md5": o.md5,
                        "filekey": o.filekey,
                    }
                    for p, o in self._cdn.items()
                },
            }

    def load_json(self, data: dict[str, Any]) -> None:
        """Replace the durable state with what :meth:`to_json` produced."""
        if data.get("format") != 1:
            raise SimError("not a simulator state file (format 1)")

        def unb64(text: str | None) -> bytes | None:
            return None if text is None else base64.b64decode(text)

        with self._lock:
            self._clear()
            self._offset = float(data.get("clock_offset", 0.0))
            self._next_id = int(data.get("next_id", self._next_id))
            self._users = {u["user_id"]: SimUser(**u) for u in data.get("users", [])}
            self._bots = {b["bot_id"]: SimBot(**b) for b in data.get("bots", [])}
            self._tokens = {b.token: b.bot_id for b in self._bots.values() if b.token}
            latest = data.get("latest_bot")
            self._latest_bot = latest if latest in self._bots else None
            self._contexts = {r["token"]: ContextRecord(**r) for r in data.get("contexts", [])}
            self._last_inbound = {(b, u): float(t) for b, u, t in data.get("last_inbound", [])}
            self._tickets = {(b, u): t for b, u, t in data.get("tickets", [])}
            self._sent = {(b, c): int(m) for b, c, m in data.get("sent", [])}
            for bot in self._bots.values():
                for msg in bot.inbox:
                    self._by_id[msg["message_id"]] = msg
            for raw in data.get("outbox", []):
                entry = outbox_entry(raw)
                self._outbox.append(entry)
                self._by_id[entry.message_id] = entry.msg
            self._typing = [TypingEvent(**t) for t in data.get("typing", [])]
            self._notifications = [Notification(**n) for n in data.get("notifications", [])]
            for param, obj in data.get("cdn", {}).items():
                self._cdn[param] = CdnObject(
                    unb64(obj["data"]) or b"", unb64(obj.get("key")), obj["rawsize"], obj["md5"], obj.get("filekey", "")
                )
            self._wake_all()

    def apply_record(self, record: list[Any]) -> None:
        """Replay one journal record (see :meth:`_record`), as the change it stands for made it. Under the lock."""
        kind, args = record[0], record[1:]
        if kind == "deliver":
            bot_id, added, context, user_id, now, next_id = args
            bot = self._bots[bot_id]
            for msg in added:
                bot.inbox.append(msg)
                self._by_id[msg["message_id"]] = msg
            self._contexts[context["token"]] = ContextRecord(**context)
            self._last_inbound[(bot_id, user_id)] = float(now)
            self._next_id = max(self._next_id, int(next_id))
        elif kind == "ack":
            bot = self._bots[args[0]]
            bot.acked = max(bot.acked, int(args[1]))
        elif kind == "user":
            user = SimUser(**args[0])
            self._users[user.user_id] = user
        elif kind == "send":
            raw, token, sends, next_id = args
            entry = outbox_entry(raw)
            self._outbox.append(entry)
            self._by_id[entry.message_id] = entry.msg
            if entry.client_id:
                self._sent[(entry.bot_id, entry.client_id)] = entry.message_id
            if token is not None and token in self._contexts:
                self._contexts[token].sends = int(sends)
            self._next_id = max(self._next_id, int(next_id))
        elif kind == "ticket":
            self._tickets[(args[0], args[1])] = args[2]
        elif kind == "typing":
            self._typing.append(TypingEvent(**args[0]))
        elif kind == "notify":
            self._notifications.append(Notification(**args[0]))
        else:
            raise SimError(f"unknown simulator journal record {kind!r}")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` atomically and readable by its owner only (it holds the simulated tokens)."""
        from ..journal import atomic_write_bytes

        data = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(Path(os.fspath(path)), data)

    def load(self, path: str | os.PathLike[str]) -> None:
        with open(path, "rb") as fh:
            self.load_json(json.loads(fh.read()))
