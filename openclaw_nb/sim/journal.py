"""The simulator's write-ahead journal (``--state PATH``): every change the state records is appended to
``PATH.journal`` and fsync'd, in batches, before the HTTP answer that follows it goes out; a timer (and any
change the journal has no record kind for) folds everything into the state file ``PATH`` and empties the
journal. A SIGKILL therefore loses no answered change: the next start loads ``PATH`` and replays the journal.

Theory of operation
-------------------
* :class:`~openclaw_nb.sim.state.SimState` calls :meth:`StateJournal.record` under its lock with a small JSON
  record (``["deliver", ...]``, ``["ack", ...]``...) or ``["snapshot"]`` for a change with no record kind.
  Each record gets the next sequence number.
* One thread writes: it appends the waiting records in one write and fsyncs once (group commit), or, when a
  snapshot is due, captures ``state.to_json()`` under the state's lock (which covers every record so far),
  writes it atomically with ``journal_seq`` and truncates the journal.
* :meth:`StateJournal.durable` (async, for the HTTP layer) and :meth:`StateJournal.wait` (threads) return
  once every record made before the call is on disk.
* Loading: the state file, then every whole journal line whose sequence number is above its ``journal_seq``
  (a torn last line is a record whose answer never went out).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..journal import AppendLog, read_lines

if TYPE_CHECKING:  # pragma: no cover
    from .state import SimState

log = logging.getLogger("openclaw_nb.sim")

#: Seconds between foldings of the journal into the state file while something changed.
COMPACT_INTERVAL = 30.0
#: A journal larger than this is folded into the state file at once.
COMPACT_BYTES = 64 << 20


def journal_path(state_path: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(state_path) + ".journal")


class StateJournal:
    """The write-ahead journal of one :class:`SimState` saved at ``state_path`` (see the module docstring)."""

    def __init__(
        self,
        state: SimState,
        state_path: str | os.PathLike[str],
        *,
        compact_interval: float = COMPACT_INTERVAL,
        compact_bytes: int = COMPACT_BYTES,
    ) -> None:
        self.state = state
        self.state_path = Path(os.fspath(state_path))
        self.compact_interval = compact_interval
        self.compact_bytes = compact_bytes
        self._log = AppendLog(journal_path(self.state_path))
        self._cond = threading.Condition()
        self._buffer: list[str] = []
        self._seq = 0  # the last record's number
        self._durable = 0  # every record up to here is on disk
        self._snapshot_wanted = False
        self._journal_bytes = 0
        self._last_compact = time.monotonic()
        self._closing = False
        self._async_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        #: Snapshots written (by the timer, by changes with no record kind, on close): for tests and the curious.
        self.snapshots = 0

    # --- loading ---------------------------------------------------------------------------------------

    def load(self) -> int:
        """Load the state file (if any) and replay the journal after it; returns the records replayed."""
        data: dict[str, Any] | None = None
        if self.state_path.exists():
            with open(self.state_path, "rb") as fh:
                data = json.loads(fh.read())
        applied = 0
        base = int(data.get("journal_seq", 0)) if isinstance(data, dict) else 0
        records: list[list[Any]] = []
        path = journal_path(self.state_path)
        if path.exists():
            lines, torn = read_lines(path, warn=False)
            if torn:
                log.info("the simulator journal ends in a record cut short by a crash; its answer never went out")
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    log.warning("skipping an unreadable simulator journal line")
                    continue
                if isinstance(record, list) and record and isinstance(record[0], int) and record[0] > base:
                    records.append(record)
        if data is not None:
            self.state.load_json(data)
        with self.state._lock:
            for record in records:
                self.state.apply_record(record[1:])
                applied += 1
        self._seq = self._durable = max([base, *(r[0] for r in records)])
        return applied

    # --- recording (under the state's lock) -------------------------------------------------------

    def record(self, record: list[Any]) -> None:
        with self._cond:
            self._seq += 1
            if record[0] == "snapshot":
                self._snapshot_wanted = True
            else:
                self._buffer.append(json.dumps([self._seq, *record], separators=(",", ":"), ensure_ascii=False))
            self._cond.notify()

    @property
    def seq(self) -> int:
        return self._seq

    # --- waiting -------------------------------------------------------------------------------------

    def wait(self, timeout: float = 10.0) -> None:
        """Block until every record made before this call is on disk."""
        with self._cond:
            target = self._seq
            if not self._cond.wait_for(lambda: self._durable >= target or self._error is not None, timeout):
                raise TimeoutError(f"the simulator journal did not reach the disk within {timeout} s")
            if self._error is not None and self._durable < target:
                raise OSError(f"the simulator journal could not be written: {self._error}")

    async def durable(self) -> None:
        """Return once every record made before this call is on disk (the HTTP layer awaits this before it
        answers). Costs nothing when nothing is waiting to be written."""
        with self._cond:
            target = self._seq
            if self._durable >= target or self._error is not None:
                return
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._async_waiters.append((target, loop, future))
        await future

    def _release(self) -> None:
        """Wake whoever waits for records up to ``_durable`` (called with ``_cond`` held)."""
        self._cond.notify_all()
        keep = []
        for target, loop, future in self._async_waiters:
            if target <= self._durable or self._error is not None:
                try:
                    loop.call_soon_threadsafe(_resolve, future)
                except RuntimeError:  # that loop is closed
                    pass
            else:
                keep.append((target, loop, future))
        self._async_waiters = keep

    # --- the writer thread -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="openclaw-nb-sim-journal", daemon=True)
        self._thread.start()

    def _due(self) -> bool:
        return self._snapshot_wanted or (
            self._journal_bytes > 0
            and (
                self._journal_bytes >= self.compact_bytes
                or time.monotonic() - self._last_compact >= self.compact_interval
            )
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._buffer and not self._due() and not self._closing:
                    left = self.compact_interval - (time.monotonic() - self._last_compact)
                    self._cond.wait(max(left, 0.05) if self._journal_bytes else None)
                if self._closing and not self._buffer and not self._snapshot_wanted:
                    return
                snapshot = self._due()
                batch, self._buffer = self._buffer, []
                target = self._seq
            try:
                if snapshot:
                    target = self._snapshot()
                else:
                    self._journal_bytes += self._log.append(batch)
                    self._log.sync()
                error = None
            except Exception as exc:  # a full disk: answers go out (nothing to do about it), the error is logged
                log.error("could not write the simulator journal: %s", exc)
                error = exc
            with self._cond:
                self._error = error
                if error is None:
                    self._durable = max(self._durable, target)
                self._release()

    def _snapshot(self) -> int:
        """Fold everything into the state file and empty the journal; returns the sequence number covered."""
        from ..journal import atomic_write_bytes

        with self.state._lock:  # no record can be made meanwhile: the snapshot covers all of them
            data = self.state.to_json()
            with self._cond:
                covered = self._seq
                self._buffer = []
                self._snapshot_wanted = False
        data["journal_seq"] = covered
        atomic_write_bytes(self.state_path, json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        self._log.truncate()
        self._journal_bytes = 0
        self._last_compact = time.monotonic()
        self.snapshots += 1
        return covered

    def snapshot_now(self) -> None:
        """Fold the journal into the state file now (from the calling thread)."""
        covered = self._snapshot()
        with self._cond:
            self._durable = max(self._durable, covered)
            self._release()

    def close(self) -> None:
        """Write what is waiting, fold it into the state file, stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self.snapshot_now()
        self._log.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def durable_app(app: Callable[..., Any], journal: StateJournal) -> Callable[..., Any]:
    """Wrap an ASGI app so that no answer starts before the journal holds every change made until then."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return

        async def durable_send(message: Any) -> None:
            if message.get("type") == "http.response.start":
                await journal.durable()
            await send(message)

        await app(scope, receive, durable_send)

    return wrapped


__all__ = ["COMPACT_BYTES", "COMPACT_INTERVAL", "StateJournal", "durable_app", "journal_path"]
