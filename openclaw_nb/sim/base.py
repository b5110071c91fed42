"""The ground of :class:`~openclaw_nb.sim.state.SimState`: its lock, change notification and journaling, the
simulated clock and ids, and the lookups every room shares. The rooms (:mod:`.accounts`, :mod:`.delivery`...)
are mixins over :class:`SimBase`.

Theory of operation
-------------------
* Every public method takes ``self._lock`` (an RLock) and leaves the state consistent when it returns.
* Every mutation calls ``_changed(keys)``: it bumps ``mutations``, wakes Python threads blocked in
  :meth:`SimState.wait_for`, and calls the listeners registered for those keys. The HTTP layer registers a
  listener per held long poll (``("bot", bot_id)`` or ``("qr", qrcode)``) that wakes its asyncio task with
  ``loop.call_soon_threadsafe``; ``"*"`` listeners hear everything (clock moves, resets, close).
* With a state file, a mutation first journals what it changed (``_record``: an inbound message, an
  acknowledgement, a send...; :meth:`SimState.apply_record` replays it); one that records nothing makes
  ``_changed`` ask the journal (:mod:`.journal`) for a full snapshot instead.
* Long polls are split in two: a method answers at once when there is something to say, or returns ``None``
  with the key to wait on; with ``final=True`` it always answers (the "nothing happened" answer).
* Time-based changes (QR expiry, auto-confirm) are applied lazily whenever a QR code is looked at, against
  a clock that tests and teachers can move forward with :meth:`SimState.advance`. Long-poll *windows* run on
  real time; rules (24 h reply window, QR lifetime, rate limits) run on the simulated clock.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Self

from ..protocol import constants as C
from .config import CDN_PREFIX, MAX_SIM_SECONDS, SimConfig, SimError, user_id_of
from .records import (
    CdnObject,
    ConformanceEntry,
    ContextRecord,
    FaultRule,
    Notification,
    OutboxEntry,
    QrCode,
    QrScenario,
    SimBot,
    SimUser,
    TypingEvent,
    UploadSlot,
)


class SimBase:
    """The ground every room stands on: the lock, change notification, the clock and ids, and the
    lookups of users, bots and tokens. :meth:`_clear` declares the attributes of the whole world."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._listeners: dict[Any, set[Callable[[], None]]] = {}
        self.config = config or SimConfig()
        #: What :meth:`reset` goes back to: the config this state started with.
        self.initial_config = self.config
        self.base_url = "http://127.0.0.1:0"
        self.cdn_base_url = self.base_url + CDN_PREFIX
        self.redirect_host = "127.0.0.1:0"
        self.closed = False
        #: Bumped on every change.
        self.mutations = 0
        #: Requests per endpoint name, counted by the HTTP layer.
        self.request_counts: Counter[str] = Counter()
        #: The write-ahead journal (a :class:`~openclaw_nb.sim.journal.StateJournal`) when the state is saved
        #: to a file: every change is recorded in it, under the lock, as it is made.
        self.journal: Any = None
        self._recorded = -1  # the value of ``mutations`` when the change being made journaled a record
        self._clear()

    # --- bookkeeping -------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._next_id = self.config.id_floor + self._rng.randrange(1 << 40)
        self._offset = 0.0
        self._users: dict[str, SimUser] = {}
        self._bots: dict[str, SimBot] = {}
        self._tokens: dict[str, str] = {}
        self._latest_bot: str | None = None
        self._qrcodes: dict[str, QrCode] = {}
        self._latest_qr: str | None = None
        self._planned: deque[QrScenario] = deque()
        self._default_scenario: QrScenario | None = None
        self._contexts: dict[str, ContextRecord] = {}
        self._last_inbound: dict[tuple[str, str], float] = {}
        self._tickets: dict[tuple[str, str], str] = {}
        self._sent: dict[tuple[str, str], int] = {}
        self._send_times: dict[str, deque[float]] = {}
        self._by_id: dict[int, dict[str, Any]] = {}
        self._outbox: list[OutboxEntry] = []
        self._typing: list[TypingEvent] = []
        self._notifications: list[Notification] = []
        self._uploads: dict[str, UploadSlot] = {}
        self._cdn: dict[str, CdnObject] = {}
        self._faults: list[FaultRule] = []
        self._fault_ids = 0
        self._requests: deque[dict[str, Any]] = deque(maxlen=max(self.config.record_requests, 1))
        self._conformance: deque[ConformanceEntry] = deque(maxlen=max(self.config.conformance_log, 1))
        self._checked = 0

    def _record(self, *record: Any) -> None:
        """Journal the change being made (JSON values only; :meth:`apply_record` replays it)."""
        if self.journal is not None:
            self.journal.record(list(record))
            self._recorded = self.mutations

    def _changed(self, *keys: Any) -> None:
        """Record a mutation and wake whoever waits on ``keys`` (and ``"*"`` listeners). A change that did not
        journal a record of its own asks the journal for a full snapshot."""
        if self.journal is not None and self._recorded != self.mutations:
            self.journal.record(["snapshot"])
        self.mutations += 1  # a record made before this change no longer counts for the next one
        self._cond.notify_all()
        for key in (*keys, "*"):
            for callback in tuple(self._listeners.get(key, ())):
                callback()

    def _wake_all(self) -> None:
        if self.journal is not None:
            self.journal.record(["snapshot"])
        self.mutations += 1
        self._cond.notify_all()
        for callbacks in tuple(self._listeners.values()):
            for callback in tuple(callbacks):
                callback()

    def listen(self, key: Any, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (under the lock, so it must not block) whenever ``key`` changes; returns the
        function that unregisters it. Keys: ``("bot", bot_id)``, ``("qr", qrcode)``, ``"*"`` for all."""
        with self._lock:
            self._listeners.setdefault(key, set()).add(callback)
            self._cond.notify_all()  # wait_for(lambda s: s.waiters(key)) is woken by this

        def unlisten() -> None:
            with self._lock:
                callbacks = self._listeners.get(key)
                if callbacks is not None:
                    callbacks.discard(callback)
                    if not callbacks:
                        del self._listeners[key]
                self._cond.notify_all()

        return unlisten

    def waiters(self, key: Any = None) -> int:
        """How many held long polls (listeners) wait on ``key``, or on anything when ``key`` is None.

        Lets a test know that a request is held before it makes the change that should wake it.
        """
        with self._lock:
            if key is None:
                return sum(len(v) for k, v in self._listeners.items() if k != "*")
            return len(self._listeners.get(key, ()))

    def wait_for(self, predicate: Callable[[Self], Any], timeout: float | None = None) -> Any:
        """Block the calling thread until ``predicate(state)`` is truthy (re-checked after every change);
        return its value, or raise ``TimeoutError`` after ``timeout`` seconds.

        >>> state.wait_for(lambda s: s.outbox, timeout=5)  # doctest: +SKIP
        """
        with self._cond:
            result = self._cond.wait_for(lambda: predicate(self), timeout)
            if not result:
                raise TimeoutError(f"the simulator state did not reach the condition within {timeout} s")
            return result

    def close(self) -> None:
        """Wake every held long poll so it answers now (the server is shutting down)."""
        with self._lock:
            self.closed = True
            self._wake_all()

    def reset(self, config: SimConfig | None = None) -> None:
        """Forget everything (bots, users, messages, QR codes, faults, the clock) and start over with ``config``,
        or with the config this state started with (knobs changed since by :meth:`configure` are undone)."""
        with self._lock:
            self.config = config or self.initial_config
            self._clear()
            self._wake_all()

    def configure(self, **changes: Any) -> SimConfig:
        """Change config knobs live: ``state.configure(long_poll_timeout=0.5, duplicate_rate=1.0)``."""
        with self._lock:
            self.config = self.config.replace(**changes)
            if "record_requests" in changes:
                self._requests = deque(self._requests, maxlen=max(self.config.record_requests, 1))
            if self.config.conformance_log and "conformance_log" in changes:  # 0 stops checking, keeps the list
                self._conformance = deque(self._conformance, maxlen=self.config.conformance_log)
            self._wake_all()
            return self.config

    def set_urls(self, base_url: str, cdn_base_url: str, redirect_host: str) -> None:
        """Tell the state where it is served (the server knows once its sockets are bound)."""
        with self._lock:
            self.base_url = base_url.rstrip("/")
            self.cdn_base_url = cdn_base_url.rstrip("/")
            self.redirect_host = redirect_host

    def _err(self, code: int, message: str) -> dict[str, Any]:
        body: dict[str, Any] = {"ret": code, "errmsg": message if self.config.descriptive_errors else ""}
        if code == C.RET_STALE_TOKEN:
            body["errcode"] = code  # -14 is reported with errcode as well; clients check both
        return body

    def _stale(self) -> dict[str, Any]:
        return self._err(
            C.RET_STALE_TOKEN,
            "session timeout: the bot token is unknown, stale or was replaced by a newer login; log in again",
        )

    # --- clock and ids -----------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated wall-clock time in seconds (real time plus what :meth:`advance` added)."""
        return time.time() + self._offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> float:
        """Move the simulated clock forward (QR expiry, the 24 h reply window and rate limits follow it).

        >>> state.advance(hours=25)  # doctest: +SKIP
        """
        delta = 0.0
        units = (("seconds", seconds, 1), ("minutes", minutes, 60), ("hours", hours, 3600), ("days", days, 86400))
        for unit, amount, scale in units:
            try:
                value = float(amount) if not isinstance(amount, (bool, str)) else math.nan
            except (TypeError, ValueError, OverflowError):
                value = math.nan if not isinstance(amount, int) else math.inf
            if not math.isfinite(value):
                raise SimError(f"advance {unit} is a finite number of {unit}, got {amount!r:.80}")
            if value < 0:
                raise SimError(f"the simulated clock only moves forward: advance {unit} is >= 0, got {amount!r}")
            delta += value * scale
        with self._lock:
            if self._offset + delta > MAX_SIM_SECONDS:
                raise SimError(
                    f"advance moves the simulated clock at most {MAX_SIM_SECONDS / 86400:,.0f} days ahead of real "
                    f"time in all (it is {self._offset / 86400:,.1f} days ahead now); reset the simulator to start over"
                )
            self._offset += delta
            self._wake_all()
            return self.now()

    def _new_id(self) -> int:
        self._next_id += self._rng.randrange(1, 1 << 12)
        if self._next_id > C.UINT64_MAX:
            self._next_id = self.config.id_floor
        return self._next_id

    # --- shared lookups: users, bots, tokens -------------------------------------------------------

    def _user(self, user: str | None, name: str | None = None) -> SimUser:
        user_id = user_id_of(user or self.config.default_user)
        found = self._users.get(user_id)
        if found is None:
            found = SimUser(user_id, name or user_id.split("@", 1)[0], self.now_ms())
            self._users[user_id] = found
            self._record("user", dataclasses.asdict(found))
            self._changed()
        return found

    def _bot(self, bot_id: str | None) -> SimBot:
        if bot_id is None:
            if self._latest_bot is None:
                raise SimError("there is no bot yet: log one in (sim.login_bot() or a QR login) first")
            return self._bots[self._latest_bot]
        bot = self._bots.get(bot_id)
        if bot is None:
            raise SimError(f"unknown bot {bot_id!r}; known bots: {sorted(self._bots)}")
        return bot

    def bot_for_token(self, token: str | None) -> str | None:
        """The bot id a token belongs to, or None when the token is missing, unknown or stale."""
        if not token:
            return None
        return self._tokens.get(token)
