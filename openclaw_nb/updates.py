"""The getupdates stream for both drivers: ``UpdatesMixin`` (``Client``) and ``AsyncUpdatesMixin`` (``AsyncClient``).

``client.updates()`` yields messages (``for`` / ``async for``; ``stop()`` ends it; ``client.stream()``, the live
DataFrame built on the same stream, is in :mod:`openclaw_nb.live`), ``client.reply_budget(user)`` says whether a reply
can still succeed, ``client.download_media(item)`` fetches and decrypts inbound media. The decisions (cursor,
failure policy, duplicates) are made once in :mod:`openclaw_nb.protocol.poll`; here they are only driven.

Persistence, per account (``client.bot_id``, or the ``account=`` name you pass) under ``$OPENCLAW_NB_HOME``:
after every page that changed something, in this order, each file written atomically —
``<account>.pending.sync.json`` (messages received but not yet consumed by your loop, and the ids of the
latest page), ``<account>.context-tokens.json`` (latest token per user), ``<account>.sync.json`` (the
cursor, last). Each message your loop consumes (it asks for the next one, or calls ``ack()``) appends a
one-line mark to the pending file. A restarted kernel therefore resumes with nothing lost: unconsumed messages
come first, then the stream continues from the cursor; a page the server serves again is dropped by
``message_id``. What a crash can repeat: the one message your loop body held (not yet consumed) when it died
or raised. Without an account id the stream keeps its cursor in memory only (and says so in the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors as E
from .journal import AppendLog, read_lines
from .protocol import constants as C
from .protocol import crypto
from .protocol import models as m
from .protocol.codec import unreadable_message
from .protocol.drift import collecting, json_type
from .protocol.flow import Failure, Send, Sleep
from .protocol.inbound import InboundMedia, inbound_media, sniff
from .protocol.lenient import Undecodable, as_text
from .protocol.lenient import loads as lenient_loads
from .protocol.poll import COL, Page, PollEvent, PollPolicy, PollState, QuoteHistory
from .protocol.redact import redact
from .store import Store, atomic_write_bytes, safe_name

if TYPE_CHECKING:  # pragma: no cover
    import os

    from .client import BaseClient, Peer

log = logging.getLogger("openclaw_nb")

#: How many recent message ids the pending file keeps, to drop a page the server serves again after a restart.
PERSISTED_IDS = 256
_EVENT_LEVELS = {
    "retry": logging.WARNING,
    "backoff": logging.WARNING,
    "stale": logging.ERROR,
    "window": logging.WARNING,  # the server asked for a long-poll window the client will not follow
    "notify": logging.WARNING,  # a notifystart/notifystop failed (the stream goes on)
}
_I_FROM, _I_TYPE, _I_TOKEN, _I_CREATE, _I_DUP = (
    COL["from_user_id"],
    COL["message_type"],
    COL["context_token"],
    COL["create_time"],
    COL["probable_duplicate"],
)


def log_event(event: PollEvent) -> None:
    log.log(_EVENT_LEVELS.get(event.kind, logging.INFO), event.message)


def message_from_raw(raw: str | bytes, history: QuoteHistory | None = None) -> m.WeixinMessage:
    """A WeixinMessage from its JSON text, as leniently as the page it came in was read: a wrongly typed known
    field is kept as sent in ``extra`` of its object, the rest is typed as usual; text that can't be read at all
    gives a message with ``decode_error`` set (its id, if one can be found, and its text in ``raw_text``).
    Never raises for what a server sent. With ``history``, an ID-only quote gets the quoted text
    (``msg.quoted``) when the quoted message is there."""
    text = raw if isinstance(raw, str) else as_text(raw)
    try:
        data, _repairs = lenient_loads(text, "msgs[]")
    except Undecodable as exc:
        return unreadable_message(text, exc.reason)
    if not isinstance(data, dict):
        return unreadable_message(text, f"not a JSON object ({json_type(data)})")
    try:
        msg = m.WeixinMessage.from_wire(data)
    except RecursionError:
        return unreadable_message(text, "nested too deeply to read")
    if history is not None:
        history.fill(msg)
    return msg


# --- one stream's state and persistence (no HTTP) --------------------------------------------------------


class StreamState:
    """A poll state plus what persists it: loading at start, writing after pages, pending messages."""

    def __init__(
        self,
        client: BaseClient,
        *,
        account: str | None,
        persist: bool,
        policy: PollPolicy | None,
        store: Store | None,
    ) -> None:
        self.client = client
        self.account = account if account is not None else client.bot_id
        self.store = store if store is not None else Store()
        if persist and not self.account:
            log.warning(
                "client.bot_id is None, so this stream keeps its cursor in memory only; pass "
                "account='a name' to persist it (and resume after a restart)"
            )
            persist = False
        self.persist = persist
        #: Messages received but not yet consumed by the loop: (JSON text, probable duplicate), oldest first.
        self.pending: deque[tuple[str, bool]] = deque()
        self._disk_pending = 0  # how many of ``pending`` the file still offers (its list minus its marks)
        self._marks: AppendLog | None = None  # one line appended to the pending file per message consumed
        self._marked = 0
        self._saved_cursor: str | None = None
        seen: list[int] = []
        cursor = client.cursor
        if persist:
            assert self.account is not None
            self._saved_cursor = self.store.load_cursor(self.account)
            cursor = cursor or self._saved_cursor
            self._load_peers()
            pending, seen = self._load_pending()
            self.pending.extend(pending)
            self._disk_pending = len(pending)
        self.state = PollState(
            policy,
            cursor=cursor,
            longpolling_timeout_ms=client.longpolling_timeout_ms,
            seen=seen,
            history=client.history,
        )
        self.state.on_event = log_event
        self._lock = threading.Lock()  # the loop's thread updates what a write-behind thread reads
        self._tokens_dirty = False
        self._delivered_cursor = cursor

    # --- requests ---

    def make_send(self, cursor: str, timeout: float) -> Send:
        send, _ = self.client._api_send("get_updates", m.GetUpdatesReq(get_updates_buf=cursor), timeout=timeout)
        return send

    # --- files ---

    @property
    def pending_path(self) -> Path:
        assert self.account is not None
        # Ends in .sync.json so Store.accounts() does not mistake it for credentials.
        return self.store.accounts_dir / f"{safe_name(self.account)}.pending.sync.json"

    def _load_pending(self) -> tuple[list[tuple[str, bool]], list[int]]:
        """The pending file: a JSON object on its first line, then one line per message consumed since."""
        path = self.pending_path
        if not path.exists():
            return [], []
        try:
            lines, _torn = read_lines(path, warn=False)  # a mark cut short by a crash: that message was not taken
            data = json.loads(lines[0]) if lines else None
        except (OSError, ValueError) as exc:
            log.warning("could not read %s (%s); starting without the messages it held", path.name, exc)
            return [], []
        if not isinstance(data, dict):
            return [], []
        flagged = {i for i in data.get("flagged") or [] if isinstance(i, int)}
        pending = [(p, i in flagged) for i, p in enumerate(data.get("pending") or []) if isinstance(p, str)]
        pending = pending[len(lines) - 1 :]  # those the loop had consumed
        seen = [i for i in data.get("seen") or [] if isinstance(i, int) and not isinstance(i, bool)]
        if pending:
            log.info("resuming with %d message(s) received before the last stop but not yet consumed", len(pending))
        return pending, seen

    def _save_pending(self) -> None:
        if self._marks is not None:
            self._marks.close()  # the file is replaced: the next mark opens the new one
            self._marks = None
        header = {
            "pending": [raw for raw, _ in self.pending],
            "flagged": [i for i, (_, flag) in enumerate(self.pending) if flag],
            "seen": self.state.seen.recent(PERSISTED_IDS),
        }
        # One line (the marks follow it), so no indentation; a raw newline in a message is escaped by JSON.
        atomic_write_bytes(self.pending_path, (json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8"))
        self._disk_pending = len(self.pending)
        self._marked = 0

    def consume(self) -> None:
        """The loop is done with the oldest pending message (it asked for the next one, or acked it): a restart
        must not offer it again. One short line appended to the pending file, no fsync: a killed process loses
        nothing it wrote, and a power cut can at worst hand the message out once more."""
        self.pending.popleft()
        if self.persist and self._disk_pending:
            if self._marks is None:
                self._marks = AppendLog(self.pending_path)
            self._marks.append(["1"])
            self._disk_pending -= 1
            self._marked += 1

    def _load_peers(self) -> None:
        assert self.account is not None
        for user, rec in self.store.load_context_tokens(self.account).items():
            if user in self.client.peers:
                continue  # what this client saw since it started is newer than the file
            peer = self.client.peer(user)
            token, last, sends, error = (
                rec.get("context_token"),
                rec.get("last_inbound_ms"),
                rec.get("sends_on_token"),
                rec.get("last_error"),
            )
            peer.context_token = token if isinstance(token, str) and token else None
            peer.last_inbound_ms = last if isinstance(last, int) else None
            peer.sends_on_token = sends if isinstance(sends, int) else 0
            peer.last_error = error if isinstance(error, str) else None

    def _peer_records(self) -> dict[str, dict[str, Any]]:
        peers = dict(self.client.peers)  # a copy first: another thread may add a user meanwhile
        return {
            uid: {
                "context_token": p.context_token,
                "last_inbound_ms": p.last_inbound_ms,
                "sends_on_token": p.sends_on_token,
                "last_error": p.last_error,
            }
            for uid, p in peers.items()
        }

    def _save_peers(self) -> None:
        assert self.account is not None
        self.store.save_context_tokens(self.account, self._peer_records())

    # --- after each page ---

    def _remember(self, page: Page) -> bool:
        """Feed the page into the client's per-user map; True if a context token changed.

        One ``remember_message`` per user and page, with that user's last token and latest time: the same
        end state as one call per message (tokens are never reused, so an A→B→A sequence, whose middle
        would reset the send count, does not occur).
        """
        cols = page.columns
        bot = C.MessageType.BOT
        last: dict[str, list[Any]] = {}
        for sender, kind, token, created in zip(
            cols[_I_FROM], cols[_I_TYPE], cols[_I_TOKEN], cols[_I_CREATE], strict=True
        ):
            if kind == bot or not sender:
                continue
            seen = last.get(sender)
            if seen is None:
                last[sender] = [kind, token, created]
                continue
            if token:
                seen[1] = token
            if created is not None and (seen[2] is None or created > seen[2]):
                seen[2] = created
        peers = self.client.peers
        changed = False
        for sender, (kind, token, created) in last.items():
            before = peers.get(sender)
            old = before.context_token if before is not None else None
            self.client.remember_message(
                m.WeixinMessage(from_user_id=sender, message_type=kind, context_token=token, create_time_ms=created)
            )
            if token and token != old:
                changed = True
        return changed

    def remember(self, page: Page) -> None:
        """Update the client from a page: cursor, server window, and each sender's latest context token.

        The live feed calls this before its rows become visible, so code that reacts to a new row can
        reply at once with the token that row brought.
        """
        state, client = self.state, self.client
        with self._lock:
            client.cursor = state.cursor
            client.longpolling_timeout_ms = state.longpolling_timeout_ms
            if len(page) and self._remember(page):
                self._tokens_dirty = True

    def commit(
        self, page: Page, *, keep_pending: bool, writer: WriteBehind | None = None, remembered: bool = False
    ) -> None:
        """After a page was delivered: update the client (unless ``remembered`` already), then persist
        (pending, tokens, cursor — in that order).

        With a ``writer`` (the live feed) the files are written by its thread, latest state only, while the
        loop polls on: the cursor it writes is always one whose page was already delivered.
        """
        if self.take(page, keep_pending=keep_pending, writer=writer, remembered=remembered):
            self.write_page(len(page) > 0, keep_pending=keep_pending, writer=writer)

    def take(
        self, page: Page, *, keep_pending: bool, writer: WriteBehind | None = None, remembered: bool = False
    ) -> bool:
        """The in-memory half of :meth:`commit`; True if :meth:`write_page` has files to write."""
        if not remembered:
            self.remember(page)
        with self._lock:
            # Only now, after the caller wrote the page's rows (the feed's log) or kept them pending: a cursor
            # write never covers rows that are not written yet.
            self._delivered_cursor = page.get_updates_buf or self._delivered_cursor
        if keep_pending and len(page):
            self.pending.extend((raw, flag is True) for raw, flag in zip(page.raws, page.columns[_I_DUP], strict=True))
        if not self.persist:
            if not keep_pending:
                self.pending.clear()
            if writer is not None:
                writer.notify()  # the feed's rows log is fsync'd there
            return False
        return True

    def write_page(self, rows: bool, *, keep_pending: bool, writer: WriteBehind | None = None) -> None:
        """The disk half of :meth:`commit` (pending, tokens, cursor — in that order); an async stream runs it in a
        worker thread (:func:`_off_loop`) while the loop serves other tasks."""
        if rows and (keep_pending or self._disk_pending):
            self._save_pending()
        if writer is not None:
            writer.notify()
        else:
            self.persist_latest()

    def needs_page_write(self) -> bool:
        """Whether :meth:`page_consumed` has a file to write."""
        return bool(self.persist and self._disk_pending and not self.pending)

    def persist_latest(self, before: Callable[[], None] | None = None) -> None:
        """Write the context tokens (if changed) and the cursor of the last delivered page; ``before`` runs
        between taking that cursor and writing it (the feed fsyncs the rows it covers there)."""
        if not self.persist:
            if before is not None:
                before()
            return
        assert self.account is not None
        with self._lock:
            records = self._peer_records() if self._tokens_dirty else None
            self._tokens_dirty = False
            cursor = self._delivered_cursor
        if before is not None:
            before()
        if records is not None:
            self.store.save_context_tokens(self.account, records)
        if cursor and cursor != self._saved_cursor:
            self.store.save_cursor(self.account, cursor)
            self._saved_cursor = cursor

    def page_consumed(self) -> None:
        """The loop took every pending message: the file must not offer them again after a restart."""
        if self.needs_page_write():
            self._save_pending()

    def close(self) -> None:
        """Persist whatever is still pending (a loop left mid-page) so the next stream starts with it; a file
        with consumption marks is written afresh, compact."""
        if self.persist and (len(self.pending) != self._disk_pending or self._marked):
            self._save_pending()
        if self._marks is not None:
            self._marks.close()
            self._marks = None


class WriteBehind:
    """Writes a stream's cursor and context tokens from a thread of its own, latest state only, each time after
    an fsync of the feed's rows log (so rows are on disk before the cursor that follows them).

    A live feed polls on while the files are written (an fsync'd write can take milliseconds); pages that
    arrive meanwhile are coalesced into the next write. The cursor written is always that of a page already
    delivered, so a crash can only make the server serve the last pages again, never skip one.
    """

    def __init__(self, stream: StreamState, *, logs: Sequence[AppendLog] = ()) -> None:
        self._stream = stream
        self._logs = list(logs)  # fsync'd before each write of the cursor: rows are durable before it
        self._io = threading.Lock()  # one write at a time: the thread's, or flush()'s
        self._wake = threading.Condition()
        self._dirty = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="openclaw-nb-persist", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        with self._wake:
            self._dirty = True
            self._wake.notify()

    #: Seconds to wait after a page before writing: pages arriving meanwhile share one write, and a reader
    #: woken by the page gets the interpreter first (the write's JSON work would compete with it).
    DELAY = 0.005

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._dirty and not self._closing:
                    self._wake.wait()
                if not self._dirty and self._closing:
                    return
                if not self._closing:
                    self._wake.wait(self.DELAY)  # a later page or close() may end the pause early
                self._dirty = False
            try:
                self._write()
            except Exception as exc:  # a full disk must not kill the feed; it is logged and retried next page
                log.error("could not save the stream's rows, cursor or context tokens: %s", exc)

    def _write(self) -> None:
        with self._io:
            self._stream.persist_latest(before=self._sync_logs)

    def _sync_logs(self) -> None:
        for rows in self._logs:
            rows.sync()

    def flush(self) -> None:
        """Write now, from the calling thread: the logs, then the latest cursor and context tokens."""
        self._write()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is left and stop the thread."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)


#: Worker threads that write the async streams' files (one pool for every stream of the process). Few on
#: purpose: each worker wakes from its fsync wanting the interpreter lock, and many of them made the event loop
#: wait for it (200 streams, 200 messages/s: loop lag p99 24 ms with 4 workers, 251 ms with 16).
DISK_WORKERS = 4
_disk_pool: ThreadPoolExecutor | None = None
_disk_pool_lock = threading.Lock()


def _disk_workers() -> ThreadPoolExecutor:
    global _disk_pool
    with _disk_pool_lock:
        if _disk_pool is None:
            _disk_pool = ThreadPoolExecutor(DISK_WORKERS, thread_name_prefix="openclaw-nb-disk")
        return _disk_pool


async def _off_loop(work: Callable[[], None]) -> None:
    """Run a stream's file writes (each fsync'd) in a worker thread (:data:`DISK_WORKERS`), so the event loop
    serves other tasks meanwhile (200 streams on one loop would otherwise wait for each other's disk). A
    cancellation while they run is held back until they are done: the files are never left to a thread that a
    later write (the stream's close) could race, and what the generator does next sees them written."""
    job = asyncio.get_running_loop().run_in_executor(_disk_workers(), work)
    cancelled = False
    while True:
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            if not job.done():
                cancelled = True
                continue
            if not job.cancelled():
                raise
            cancelled = True  # the job itself was cancelled before it ran: nothing more to wait for
        break
    if cancelled:
        raise asyncio.CancelledError


def _cancelling() -> bool:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


class Presence:
    """``notifystart`` before a stream's first poll and ``notifystop`` once when it ends, as the official client
    brackets its getupdates loop (see "Session start and stop" in docs/protocol.md).

    One try each, like the official client. A failure (HTTP, network, a ``ret`` other than 0) is logged and
    recorded as a ``notify`` event of the stream (``updates.events``, ``feed.events``); it never stops the
    stream. ``notifystop`` is sent at most once per start, from whichever ending comes first (the loop's own
    ``finally``, ``stop()``, ``__exit__``, the atexit hook of a thread feed), and not after ``-14``: that
    token no longer works. ``enabled=False`` (``notify=False``) sends neither.
    """

    def __init__(self, stream: StreamState, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise E.UsageError(
                f"notify is True (send notifystart/notifystop around the stream) or False, got {enabled!r}"
            )
        self.stream = stream
        client: Any = stream.client
        self._run: Any = client._run  # the driver's: blocking for Client, a coroutine for AsyncClient
        self.enabled = enabled
        self._lock = threading.Lock()
        self.serving = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _claim(self, kind: str, *, stale: bool = False) -> Any:
        """The flow to run for ``kind`` (``start``/``stop``), or None when there is nothing to send."""
        client = self.stream.client
        with self._lock:
            if not self.enabled or self.serving == (kind == "start"):
                return None
            self.serving = kind == "start"
            if stale or not client.token:
                return None
        from .protocol.endpoints import ENDPOINTS
        from .protocol.flow import RetryPolicy, api_call

        name = f"notify_{kind}"
        send, body = client._api_send(name, None)
        return api_call(ENDPOINTS[name], send, RetryPolicy(attempts=1), body=body)

    def _failed(self, kind: str, exc: Exception) -> None:
        self.stream.state._event(
            "notify", f"notify{kind} failed ({type(exc).__name__}: {exc}); the stream is not affected by it"
        )

    def start(self) -> None:
        flow = self._claim("start")
        if flow is not None:
            try:
                self._run(flow)
            except Exception as exc:
                self._failed("start", exc)

    def stop(self, *, stale: bool = False) -> None:
        flow = self._claim("stop", stale=stale)
        if flow is not None:
            try:
                self._run(flow)
            except Exception as exc:
                self._failed("stop", exc)

    async def astart(self) -> None:
        self._loop = asyncio.get_running_loop()
        flow = self._claim("start")
        if flow is not None:
            try:
                await self._run(flow)
            except Exception as exc:
                self._failed("start", exc)

    async def astop(self, *, stale: bool = False) -> None:
        flow = self._claim("stop", stale=stale)
        if flow is not None:
            try:
                await self._run(flow)
            except Exception as exc:
                self._failed("stop", exc)

    def astop_soon(self) -> None:
        """notifystop from a task of its own, for an ``async for`` generator that Python closes where it must not
        await (an abandoned loop whose event loop has no generator hooks, as under some nested notebook loops):
        awaiting there would break the HTTP connection the request runs on."""
        loop = self._loop
        if not self.enabled or not self.serving or loop is None or loop.is_closed():
            return

        def spawn() -> None:
            task = loop.create_task(self.astop(), name="openclaw-nb-notifystop")
            _background.add(task)
            task.add_done_callback(_background.discard)

        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            spawn()
        elif loop.is_running():
            try:
                loop.call_soon_threadsafe(spawn)
            except RuntimeError:  # the loop closed meanwhile
                pass
        else:  # collected after its loop stopped: a request started now could not finish
            log.info("notifystop not sent: the update stream was closed after its event loop had stopped")


#: Tasks sending a deferred notifystop (a strong reference, so they are not collected before they finish).
_background: set[asyncio.Task[None]] = set()


def _in_own_aclose() -> bool:
    """Whether an async generator is being closed by an ``aclose()`` that runs as a task of its own (the event
    loop's finalizer, ``asyncio.run``'s shutdown), where its ``finally`` may await."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop runs here: Python closes the generator by itself
        return False
    return task is not None and type(task.get_coro()).__name__ == "async_generator_athrow"


class _UpdatesBase:
    """What both iterators share: state, status, the stop flag and consumption.

    A message is consumed when the loop asks for the next one, or on :meth:`ack`; until then it stays pending,
    so an exception in the loop body (or a crash) hands it out again next time.
    """

    _stream: StreamState
    #: Whether the oldest pending message was handed to the loop and not yet consumed.
    _out = False

    def _hand_out(self) -> m.WeixinMessage:
        stream = self._stream
        raw, flag = stream.pending[0]
        msg = message_from_raw(raw, stream.state.history)
        msg.probable_duplicate = flag
        self._out = True
        return msg

    def ack(self) -> None:
        """Mark the message the loop holds as consumed now (say, before ``break``): a restart will not hand it
        out again. Asking for the next message does the same; a message never acked nor followed by another
        (the loop body raised, or the process died) is handed out again by the next stream.

        >>> for msg in updates:                                  # doctest: +SKIP
        ...     if msg.text == "quit":
        ...         updates.ack()
        ...         break
        """
        if self._out:
            self._out = False
            self._stream.consume()

    @property
    def state(self) -> PollState:
        return self._stream.state

    @property
    def status(self) -> str:
        return self._stream.state.status

    @property
    def events(self) -> list[PollEvent]:
        """Recent retries, back-offs and duplicates (newest last)."""
        return list(self._stream.state.events)

    @property
    def pending(self) -> int:
        """Messages received but not yet handed to the loop."""
        return len(self._stream.pending)

    def __repr__(self) -> str:
        s = self._stream.state
        return (
            f"<{type(self).__name__} account={self._stream.account!r} status={s.status!r} delivered={s.delivered} "
            f"dropped={s.dropped} flagged={s.flagged} pending={len(self._stream.pending)}>"
        )


class Updates(_UpdatesBase):
    """``for msg in client.updates(): ...`` — messages from the getupdates long poll, each exactly once.

    ``stop()`` (from the loop body or another thread) ends the iteration after the current poll. A message
    counts as consumed once the loop asks for the next one, or on :meth:`ack` (or when a ``with`` block over
    the updates ends without an exception): if the loop body raises, or the process dies, the next stream hands
    it out again. So after ``break`` without ``ack()`` that message comes again too. Messages received but not
    yet consumed are kept for the next stream.
    ``-14`` raises :class:`~openclaw_nb.errors.StaleTokenError` out of the loop. ``notifystart`` goes out
    before the first poll and ``notifystop`` when the loop ends, however it ends (``notify=False``: neither).
    """

    def __init__(self, client: UpdatesMixin, stream: StreamState, *, notify: bool = True) -> None:
        self._client = client
        self._stream = stream
        self._stop = threading.Event()
        self._presence = Presence(stream, notify)

    def stop(self) -> None:
        """End the iteration: at once if waiting between retries, else when the current long poll returns."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def __iter__(self) -> Iterator[m.WeixinMessage]:
        return self._messages()

    def __enter__(self) -> Updates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if exc[0] is None:
            self.ack()  # the block ended cleanly: the message in hand was dealt with
        self._stream.close()
        self._presence.stop(stale=isinstance(exc[1], E.StaleTokenError))

    def _messages(self) -> Iterator[m.WeixinMessage]:
        stream = self._stream
        ended_by: BaseException | None = None
        try:
            self._presence.start()
            while True:
                self.ack()  # asking for the next message consumes the one handed out before
                if self._stop.is_set():
                    break
                if stream.pending:
                    yield self._hand_out()
                    continue
                stream.page_consumed()
                page = self._client._poll_page(stream, self._stop)
                if page is None:
                    break
                stream.commit(page, keep_pending=True)
        except BaseException as exc:  # Ctrl-C, a closed generator, -14: each ends the serving
            ended_by = exc
            raise
        finally:
            stream.close()
            self._presence.stop(stale=isinstance(ended_by, E.StaleTokenError))


class AsyncUpdates(_UpdatesBase):
    """``async for msg in client.updates(): ...`` — as :class:`Updates`; ``stop()`` cancels a poll in flight
    (nothing is lost: the cursor only moves once a page has been read). ``notifystart``/``notifystop`` as
    :class:`Updates`; after ``break`` without ``async with``, notifystop goes out when the event loop closes the
    generator (``async with client.updates() as u`` sends it on the way out of the block)."""

    def __init__(self, client: AsyncUpdatesMixin, stream: StreamState, *, notify: bool = True) -> None:
        self._client = client
        self._stream = stream
        self._presence = Presence(stream, notify)
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._inflight: asyncio.Future[Page | None] | None = None

    def stop(self) -> None:
        """End the iteration now (a long poll in flight is cancelled)."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        if self._inflight is not None:
            self._inflight.cancel()

    @property
    def stopped(self) -> bool:
        return self._stopping

    def __aiter__(self) -> AsyncIterator[m.WeixinMessage]:
        return self._messages()

    async def __aenter__(self) -> AsyncUpdates:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        if exc[0] is None:
            self.ack()  # the block ended cleanly: the message in hand was dealt with
        self._stream.close()
        await self._presence.astop(stale=isinstance(exc[1], E.StaleTokenError))

    async def _messages(self) -> AsyncIterator[m.WeixinMessage]:
        stream = self._stream
        if self._stop_event is None:
            self._stop_event = asyncio.Event()
        ended_by: BaseException | None = None
        try:
            await self._presence.astart()
            while True:
                self.ack()  # asking for the next message consumes the one handed out before
                if self._stopping:
                    break
                if stream.pending:
                    yield self._hand_out()
                    continue
                if stream.needs_page_write():
                    await _off_loop(stream.page_consumed)
                self._inflight = asyncio.ensure_future(self._client._apoll_page(stream, self._stop_event))
                try:
                    page = await self._inflight
                except asyncio.CancelledError:
                    if self._stopping and not _cancelling():
                        break
                    raise
                finally:
                    self._inflight = None
                if page is None:
                    break
                if stream.take(page, keep_pending=True):
                    await _off_loop(partial(stream.write_page, len(page) > 0, keep_pending=True))
        except BaseException as exc:  # a cancelled task, a closed generator, -14: each ends the serving
            ended_by = exc
            raise
        finally:
            stream.close()
            if isinstance(ended_by, GeneratorExit) and not _in_own_aclose():
                self._presence.astop_soon()  # closed where awaiting is not allowed
            else:
                await self._presence.astop(stale=isinstance(ended_by, E.StaleTokenError))


# --- reply budget ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyBudget:
    """Whether a reply to ``user_id`` can succeed now, as far as this client knows (see the observed
    limits in docs/protocol.md: 10 sends per context token, replies within 24 h of the user's last message)."""

    user_id: str
    last_inbound: datetime | None
    window_left: timedelta | None
    sends_left: int | None
    has_context_token: bool
    last_error: str | None

    @property
    def can_reply(self) -> bool:
        return bool(
            self.has_context_token
            and self.window_left is not None
            and self.window_left > timedelta(0)
            and (self.sends_left or 0) > 0
        )

    @property
    def reason(self) -> str:
        """Why a reply would fail, or ``"ok"``."""
        if self.last_inbound is None and not self.has_context_token:
            return "the user has not written to this bot yet (no context token)"
        if not self.has_context_token:
            return "no context token from this user"
        if self.window_left is not None and self.window_left <= timedelta(0):
            hours = C.REPLY_WINDOW_SECONDS / 3600
            return f"more than {hours:g} h since the user's last message: wait for the user to write again"
        if self.sends_left is not None and self.sends_left <= 0:
            return (
                f"all {C.SENDS_PER_CONTEXT_TOKEN} sends on the current context token are used: "
                "wait for the user's next message"
            )
        return "ok"

    def __repr__(self) -> str:
        left = f"{self.window_left.total_seconds() / 3600:.1f} h" if self.window_left is not None else "unknown"
        return (
            f"ReplyBudget(user_id={self.user_id!r}, can_reply={self.can_reply}, window_left={left}, "
            f"sends_left={self.sends_left}, reason={self.reason!r}"
            + (f", last_error={self.last_error!r}" if self.last_error else "")
            + ")"
        )


def reply_budget_of(peer: Peer | None, user_id: str, now: float | None = None) -> ReplyBudget:
    """The budget from what the client knows of a user (``client.peers[user]``)."""
    now = time.time() if now is None else now
    if peer is None:
        return ReplyBudget(user_id, None, None, None, False, None)
    last = datetime.fromtimestamp(peer.last_inbound_ms / 1000, tz=UTC) if peer.last_inbound_ms is not None else None
    window = None
    if peer.last_inbound_ms is not None:
        window = timedelta(seconds=C.REPLY_WINDOW_SECONDS - (now - peer.last_inbound_ms / 1000))
        # Within [0, 24 h]: the two clocks may disagree by a second or so (Date has whole seconds).
        window = min(max(window, timedelta(0)), timedelta(seconds=C.REPLY_WINDOW_SECONDS))
    sends_left = max(C.SENDS_PER_CONTEXT_TOKEN - peer.sends_on_token, 0) if peer.context_token else None
    return ReplyBudget(user_id, last, window, sends_left, bool(peer.context_token), peer.last_error)


# --- inbound media --------------------------------------------------------------------------------------


class Media(bytes):
    """Decrypted media: plain ``bytes`` that also know what they are, display inline in a notebook when
    they are an image, and save themselves: ``media.save("downloads/")``."""

    info: InboundMedia
    mime: str | None
    #: What did not match the message's ``len``/``md5``/``video_md5`` after decryption (None: all agreed, or
    #: the message gave none). The official client never reads them, so a mismatch only warns.
    mismatch: str | None

    def __new__(cls, data: bytes, info: InboundMedia, mismatch: str | None = None) -> Media:
        obj = super().__new__(cls, data)
        obj.info = info
        obj.mime = sniff(data)[0] if info.kind == "image" else None
        obj.mismatch = mismatch
        return obj

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def name(self) -> str:
        """The name it saves under: the sender's sanitised file name, or ``<kind>-<msg_id><ext>``."""
        return self.info.default_name(bytes(self[:16]))

    def __repr__(self) -> str:
        warn = f", mismatch: {self.mismatch}" if self.mismatch else ""
        return f"<Media {self.kind} {self.name!r}, {len(self):,} bytes{warn}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        if self.mime in ("image/png", "image/jpeg", "image/gif"):
            bundle[self.mime] = bytes(self)
        return bundle

    def save(self, folder: str | os.PathLike[str] = ".", *, name: str | None = None, overwrite: bool = False) -> Path:
        """Write to ``folder`` under :attr:`name` (or ``name``, sanitised); never overwrites unless asked —
        ``photo.jpg`` becomes ``photo (1).jpg``."""
        from .protocol.inbound import safe_filename

        target_dir = Path(folder)
        target_dir.mkdir(parents=True, exist_ok=True)
        base = safe_filename(name, fallback=self.name) if name else self.name
        target = target_dir / base
        if not overwrite:
            stem, suffix = Path(base).stem, Path(base).suffix
            n = 1
            while target.exists():
                target = target_dir / f"{stem} ({n}){suffix}"
                n += 1
        target.write_bytes(bytes(self))
        return target


def _media_request(item: Any, thumb: bool) -> InboundMedia:
    if isinstance(item, m.WeixinMessage):
        found = [
            i for i in item.items if i.type in (C.ItemType.IMAGE, C.ItemType.VOICE, C.ItemType.FILE, C.ItemType.VIDEO)
        ]
        if not found:
            raise E.UsageError("this message has no media item; pass one of msg.item_list")
        item = found[0]
    elif isinstance(item, str):
        item = json.loads(item)
    elif not isinstance(item, m.MessageItem) and hasattr(item, "get") and "item" in item:
        raw = item.get("item")  # a row of items_frame() (a pandas Series or a dict): the item's JSON
        item = json.loads(raw) if isinstance(raw, str) else raw
    info = inbound_media(item, thumb=thumb)
    if not info.full_url and not info.encrypt_query_param:
        raise E.UsageError(f"this {info.kind} item has neither media.full_url nor media.encrypt_query_param")
    return info


def _open_media(ciphertext: bytes, info: InboundMedia) -> Media:
    if info.key is None:
        data = ciphertext  # stored in the clear (images may arrive that way)
    else:
        try:
            data = crypto.decrypt(ciphertext, info.key)
        except ValueError as exc:
            raise E.ProtocolError(
                f"download_media could not decrypt this {info.kind} with the key from {info.key_source}: {exc}",
                endpoint="cdn_download",
            ) from None
    # The official client never reads len/md5/video_md5: a mismatch keeps the bytes, warns, and is recorded.
    problems = []
    if info.size is not None and info.size != len(data):
        problems.append(f"decrypted to {len(data):,} bytes, the message says {info.size:,}")
    if info.md5 and crypto.md5_hex(data) != info.md5.lower():
        problems.append("MD5 differs from the message's")
    mismatch = "; ".join(problems) or None
    if mismatch:
        global _mismatch_warned
        level = logging.DEBUG if _mismatch_warned else logging.WARNING
        _mismatch_warned = True
        log.log(
            level,
            "download_media: the %s %s (kept: the official client does not check; see Media.mismatch; "
            "this warning is shown once)",
            info.kind,
            mismatch,
        )
    return Media(data, info, mismatch)


#: Whether a size/MD5 mismatch was warned about already (later ones are logged at DEBUG).
_mismatch_warned = False


# --- the mixins --------------------------------------------------------------------------------------------


class _Shared:
    """No-I/O methods both clients share."""

    if TYPE_CHECKING:
        peers: dict[str, Peer]

        def server_now(self) -> float: ...

    def reply_budget(self, user: str) -> ReplyBudget:
        """Can a reply to ``user`` still succeed? Time left in the 24 h window, sends left on the token.

        >>> client.reply_budget("alice@im.wechat").can_reply    # doctest: +SKIP
        True
        """
        return reply_budget_of(self.peers.get(user), user, self.server_now())

    def _new_stream(
        self, account: str | None, persist: bool, policy: PollPolicy | None, store: Store | None
    ) -> StreamState:
        return StreamState(self, account=account, persist=persist, policy=policy, store=store)  # type: ignore[arg-type]

class UpdatesMixin(_Shared):
    """Update-stream methods of :class:`~openclaw_nb.client.Client`."""

    if TYPE_CHECKING:
        _transmit: Any
        cdn_download: Any

    def updates(
        self,
        *,
        account: str | None = None,
        persist: bool = True,
        policy: PollPolicy | None = None,
        store: Store | None = None,
        notify: bool = True,
    ) -> Updates:
        """Messages from the long poll, each exactly once, cursor persisted after every page.

        As the official client, the loop tells the server it serves the account: ``notifystart`` before the
        first poll, ``notifystop`` when it ends (also on Ctrl-C); ``notify=False`` sends neither.

        >>> for msg in client.updates():                       # doctest: +SKIP
        ...     client.send_text(msg.from_user_id, "echo: " + msg.text)
        """
        return Updates(self, self._new_stream(account, persist, policy, store), notify=notify)

    def _poll_page(self, stream: StreamState, stop: threading.Event) -> Page | None:
        """Run one page flow: HTTP with this driver, sleeps that ``stop`` interrupts (then None)."""
        with collecting(stream.client.drift_log, "get_updates"):
            return self._poll_page_flow(stream, stop)

    def _poll_page_flow(self, stream: StreamState, stop: threading.Event) -> Page | None:
        flow = stream.state.page_flow(stream.make_send)
        try:
            action = next(flow)
            while True:
                if isinstance(action, Sleep):
                    if stop.wait(action.seconds):
                        flow.close()
                        return None
                    action = flow.send(None)
                else:
                    outcome = self._transmit(action)
                    if stop.is_set() and isinstance(outcome, Failure):
                        # Stopped while the poll was in flight (the client may be closing): not a failure.
                        flow.close()
                        return None
                    action = flow.send(outcome)
        except StopIteration as done:
            page: Page = done.value
            return page

    def download_media(self, item: Any, *, max_bytes: int = C.MAX_MEDIA_DOWNLOAD_BYTES, thumb: bool = False) -> Media:
        """Fetch and decrypt an inbound image, voice note, file or video (a MessageItem, its dict, a message
        with one, or a row of ``items_frame()``). The size cap applies while downloading.

        >>> img = client.download_media(msg.item_list[0])   # an image displays inline  # doctest: +SKIP
        >>> img.save("downloads/")                             # doctest: +SKIP
        """
        info = _media_request(item, thumb)
        data = self.cdn_download(info.encrypt_query_param, full_url=info.full_url, max_bytes=max_bytes)
        return _open_media(data, info)

    def save_media(
        self, item: Any, folder: str | os.PathLike[str] = ".", *, max_bytes: int = C.MAX_MEDIA_DOWNLOAD_BYTES
    ) -> Path:
        """Download, decrypt and save to ``folder`` under the item's own (sanitised) name; returns the path."""
        return self.download_media(item, max_bytes=max_bytes).save(folder)


class AsyncUpdatesMixin(_Shared):
    """Update-stream methods of :class:`~openclaw_nb.client.AsyncClient`."""

    if TYPE_CHECKING:
        _transmit: Any
        cdn_download: Any

    def updates(
        self,
        *,
        account: str | None = None,
        persist: bool = True,
        policy: PollPolicy | None = None,
        store: Store | None = None,
        notify: bool = True,
    ) -> AsyncUpdates:
        """Messages from the long poll, each exactly once: ``async for msg in client.updates(): ...``;
        ``notifystart``/``notifystop`` around the loop unless ``notify=False`` (see :meth:`UpdatesMixin.updates`)."""
        return AsyncUpdates(self, self._new_stream(account, persist, policy, store), notify=notify)

    async def _apoll_page(self, stream: StreamState, stop: asyncio.Event | None) -> Page | None:
        """Run one page flow: HTTP awaited, sleeps that ``stop`` interrupts (then None)."""
        with collecting(stream.client.drift_log, "get_updates"):
            return await self._apoll_page_flow(stream, stop)

    async def _apoll_page_flow(self, stream: StreamState, stop: asyncio.Event | None) -> Page | None:
        flow = stream.state.page_flow(stream.make_send)
        try:
            action = next(flow)
            while True:
                if isinstance(action, Sleep):
                    if stop is not None:
                        try:
                            await asyncio.wait_for(stop.wait(), action.seconds)
                        except TimeoutError:
                            pass
                        else:
                            flow.close()
                            return None
                    else:
                        await asyncio.sleep(action.seconds)
                    action = flow.send(None)
                else:
                    outcome = await self._transmit(action)
                    if stop is not None and stop.is_set() and isinstance(outcome, Failure):
                        flow.close()
                        return None
                    action = flow.send(outcome)
        except StopIteration as done:
            page: Page = done.value
            return page

    async def download_media(
        self, item: Any, *, max_bytes: int = C.MAX_MEDIA_DOWNLOAD_BYTES, thumb: bool = False
    ) -> Media:
        """Fetch and decrypt inbound media (see :meth:`UpdatesMixin.download_media`)."""
        info = _media_request(item, thumb)
        data = await self.cdn_download(info.encrypt_query_param, full_url=info.full_url, max_bytes=max_bytes)
        return _open_media(data, info)

    async def save_media(
        self, item: Any, folder: str | os.PathLike[str] = ".", *, max_bytes: int = C.MAX_MEDIA_DOWNLOAD_BYTES
    ) -> Path:
        """Download, decrypt and save to ``folder`` under the item's own (sanitised) name; returns the path."""
        return (await self.download_media(item, max_bytes=max_bytes)).save(folder)


def budget_rows(
    peers: Mapping[str, Peer], counts: Mapping[str, int] | None = None, now: float | None = None
) -> list[dict[str, Any]]:
    """One dict per known user for ``feed.users``: the things that make sends fail (``now`` on the server's
    clock, as ``client.server_now()`` gives it; this computer's by default)."""
    now = time.time() if now is None else now
    rows = []
    for uid, peer in peers.items():
        b = reply_budget_of(peer, uid, now)
        rows.append(
            {
                "user": uid,
                "messages": (counts or {}).get(uid, 0),
                "last_inbound_time": b.last_inbound,
                "window_left": b.window_left,
                "sends_left": b.sends_left,
                "context_token": redact(peer.context_token) if peer.context_token else None,
                "can_reply": b.can_reply,
                "last_error": b.last_error,
            }
        )
    return rows


__all__ = [
    "AsyncUpdates",
    "AsyncUpdatesMixin",
    "Media",
    "ReplyBudget",
    "Updates",
    "UpdatesMixin",
    "message_from_raw",
    "reply_budget_of",
]
