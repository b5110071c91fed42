"""The simulator's whole world as one plain, thread-safe object, :class:`SimState`: users, bots and tokens, QR
codes, inbound messages and cursors, context tokens, typing tickets, uploads and CDN objects, fault rules and a clock.

No HTTP lives here. :mod:`.app` turns each request into one call on :class:`SimState` and answers with the
dict it returns, so every rule is unit-testable without a server.

It is put together from rooms, one concern each: :mod:`.config` (knobs, limits, :class:`SimError`),
:mod:`.records` (the plain records), :mod:`.base` (lock, change notification, clock and ids, shared lookups; the
theory of operation), :mod:`.accounts` (users, bots, tokens, QR login), :mod:`.delivery` (inbound messages,
``getupdates`` and cursors), :mod:`.media` (inbound media, uploads, the CDN), :mod:`.sending` (``sendmessage``'s
rules, typing, notifications), :mod:`.faults` (fault rules, request log, conformance) and :mod:`.persistence`
(the state file, journal records). This module joins them and re-exports their names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..protocol.redact import redact
from .accounts import AccountsRoom
from .config import _KNOB_RULES as _KNOB_RULES
from .config import CDN_DOWNLOAD as CDN_DOWNLOAD
from .config import CDN_PREFIX as CDN_PREFIX
from .config import CDN_UPLOAD as CDN_UPLOAD
from .config import CONTROL_PREFIX as CONTROL_PREFIX
from .config import FAULT_TARGETS as FAULT_TARGETS
from .config import MAX_CONTROL_BODY_BYTES as MAX_CONTROL_BODY_BYTES
from .config import PRIMARY as PRIMARY
from .config import REDIRECT as REDIRECT
from .config import UPLOAD_SLACK_BYTES as UPLOAD_SLACK_BYTES
from .config import SimConfig as SimConfig
from .config import SimError as SimError
from .config import user_id_of as user_id_of
from .delivery import UNKNOWN_ITEM_TYPE as UNKNOWN_ITEM_TYPE
from .delivery import DeliveryRoom
from .delivery import partial_quote as partial_quote
from .faults import FaultsRoom
from .media import THUMB_HEIGHT as THUMB_HEIGHT
from .media import THUMB_WIDTH as THUMB_WIDTH
from .media import MediaRoom
from .media import _png as _png
from .persistence import PersistenceRoom
from .records import BotLogin as BotLogin
from .records import ConformanceEntry as ConformanceEntry
from .records import FaultRule as FaultRule
from .records import Notification as Notification
from .records import OutboxEntry as OutboxEntry
from .records import QrCode as QrCode
from .records import QrScenario as QrScenario
from .records import SimBot as SimBot
from .records import SimUser as SimUser
from .records import TypingEvent as TypingEvent
from .sending import SendingRoom


class SimState(AccountsRoom, MediaRoom, DeliveryRoom, SendingRoom, FaultsRoom, PersistenceRoom):
    """The simulator's world. Thread-safe; every method may be called from any thread.

    >>> state = SimState(SimConfig(long_poll_timeout=1))
    >>> login = state.login_bot("alice")
    >>> state.say("alice", "hi")["item_list"][0]["text_item"]["text"]
    'hi'
    """

    # --- views -------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything a person or a test in another process wants to see, JSON-ready; secrets redacted."""
        with self._lock:
            for qr in self._qrcodes.values():
                self._refresh(qr)
            pending = [qr for qr in self._qrcodes.values() if not qr.is_terminal]
            return {
                "base_url": self.base_url,
                "cdn_base_url": self.cdn_base_url,
                "redirect_host": self.redirect_host,
                "now_ms": self.now_ms(),
                "clock_offset_seconds": self._offset,
                "config": self.config.to_json(),
                "bots": [
                    {
                        "bot_id": b.bot_id,
                        "owner_id": b.owner_id,
                        "bot_token": redact(b.token) if b.token else "",
                        "created_ms": b.created_ms,
                        "delivered": len(b.inbox),
                        "acknowledged": b.acked,
                        "latest": b.bot_id == self._latest_bot,
                    }
                    for b in self._bots.values()
                ],
                "users": [dataclasses.asdict(u) for u in self._users.values()],
                "qrcodes": [self._qr_json(qr) for qr in pending],
                "all_qrcodes": len(self._qrcodes),
                "outbox_size": len(self._outbox),
                "typing": [dataclasses.asdict(t) for t in self._typing[-100:]],
                "notifications": [dataclasses.asdict(n) for n in self._notifications[-100:]],
                "faults": [r.to_json() for r in self._faults],
                "request_counts": dict(self.request_counts),
                "nonconforming_requests": len(self._conformance),
            }
