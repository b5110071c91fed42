"""The live feed: a getupdates stream that fills a DataFrame while the notebook stays usable, and the
``stream()`` and ``chat()`` methods of both drivers (:class:`LiveMixin`, :class:`AsyncLiveMixin`).

``feed = client.stream()`` returns at once. With ``AsyncClient`` the loop is a task on the running event loop
(the kernel's); with ``Client`` it is a daemon thread. Rows are buffered as column lists and become a
DataFrame only when ``feed.frame`` is read (no per-message concat). Displayed in a notebook, a feed is a
live view — state, count, rate, retries and the last messages — redrawn a few times a second at most and
only when something changed (the notebook layer's ``feed`` view); elsewhere it shows a static snapshot.
"""

from __future__ import annotations

import asyncio
import atexit
import html
import json
import logging
import os
import threading
import time
import weakref
from collections import Counter, deque
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import env
from . import errors as E
from .frames import MessageBuffer, html_table, items_frame, save_log
from .journal import AppendLog, read_lines
from .protocol.poll import COL, MESSAGE_TYPE_NAMES, Page, PollEvent, PollPolicy, decode_messages
from .protocol.redact import redact, redact_json_text
from .store import Store, safe_name
from .updates import Presence, StreamState, WriteBehind, budget_rows

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger("openclaw_nb")

_I_FROM = COL["from_user_id"]
#: Seconds of history behind the displayed rate.
RATE_WINDOW = 5.0


def feed_log_path(stream: StreamState) -> Path:
    """Where a persisting feed without ``log_path`` keeps its rows: next to its cursor, ``<account>.feed.jsonl``."""
    assert stream.account is not None
    return stream.store.accounts_dir / f"{safe_name(stream.account)}.feed.jsonl"


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


#: Thread feeds that may still run: at interpreter exit (kernel shutdown) each is stopped and sends its
#: notifystop before the daemon thread is killed (an async feed's task ends with its event loop).
_thread_feeds: weakref.WeakSet[Feed] = weakref.WeakSet()


#: The latest started feed of each client, so that a view (the chat panel) joins the feed already running
#: instead of starting a second poller on the same account.
_client_feeds: weakref.WeakKeyDictionary[Any, Feed] = weakref.WeakKeyDictionary()


def running_feed(client: Any) -> Feed | None:
    """The client's feed that is still running (started by ``client.stream()`` or ``%wx_updates``), or None."""
    try:
        feed = _client_feeds.get(client)
    except TypeError:  # an unhashable stand-in for a client
        return None
    return feed if feed is not None and feed.running else None


@atexit.register
def _stop_thread_feeds() -> None:
    for feed in list(_thread_feeds):
        if feed.running:
            try:
                feed._stop_serving()
            except Exception as exc:  # exiting anyway: say why the server was not told
                log.warning("could not stop the feed of %s at exit: %s", feed.account or "(no account)", exc)


class Feed:
    """A running (or finished) stream of messages into a DataFrame. Made by ``client.stream()``.

    >>> feed = client.stream()          # returns at once  # doctest: +SKIP
    >>> feed.frame.tail()               # the messages so far, one row each  # doctest: +SKIP
    >>> feed.users                      # reply budget per user  # doctest: +SKIP
    >>> feed.stop()                     # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        stream: StreamState,
        *,
        log_path: str | os.PathLike[str] | None = None,
        redact_log: bool = True,
        show: int = 10,
        refresh: float = 0.5,
        notify: bool = True,
    ) -> None:
        self.client = client
        self._stream = stream
        # notifystart before the first poll, notifystop once at the end (see updates.Presence).
        self._presence = Presence(stream, notify)
        self._buffer = MessageBuffer()
        self.log_path = Path(log_path) if log_path is not None else None
        # log_path is the user's file, to keep or share: its lines are redacted as feed.save() redacts, unless
        # redact_log=False asks for exact ones (the file is 0600 either way).
        self._redact_rows = bool(redact_log) and self.log_path is not None
        self.show = show
        self.refresh = max(0.1, refresh)
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.error: BaseException | None = None
        self._counts: Counter[str] = Counter()
        self._rate_marks: deque[tuple[float, int]] = deque()
        self._changed = threading.Condition()
        self._version = 0
        self._stop_flag = threading.Event()
        self._done = threading.Event()
        self._waiting = 0  # threads blocked in wait_rows()
        self._wanted: list[int] = []  # the row counts waiters wait for (0: a condition that any row may meet)
        self._published = 0  # rows announced by _notify(); len(feed) and the waits count these
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._saved: dict[str, int] = {}
        stream.state.on_event = self._on_event
        # When the stream persists its cursor, the rows have a log of their own next to it (exact, in the
        # private data folder): they reach it before the cursor that follows them, and a restart rebuilds the
        # frame from it. ``log_path`` is the user's copy (redacted unless redact_log=False), written alike.
        self._take_lock = threading.RLock()  # stop() waits for a page being taken in
        self._rows_log: AppendLog | None = None
        if stream.persist:
            own = feed_log_path(stream)
            self._rebuild(own)
            self._rows_log = AppendLog(own, drop_torn=True)  # a torn page is served again: written whole then
        self._export_log = AppendLog(self.log_path) if self.log_path is not None else None
        # Files are written behind the loop, so a slow disk does not slow the feed (see WriteBehind): the logs
        # are fsync'd there, in batches, before each cursor write.
        logs = [f for f in (self._rows_log, self._export_log) if f is not None]
        self._writer = WriteBehind(stream, logs=logs) if stream.persist or logs else None

    # --- running --------------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        _client_feeds[self.client] = self
        self._thread = threading.Thread(target=self._thread_main, name="openclaw-nb-feed", daemon=True)
        _thread_feeds.add(self)
        self._thread.start()

    def _start_task(self, loop: asyncio.AbstractEventLoop) -> None:
        _client_feeds[self.client] = self
        self._loop = loop
        self._task = loop.create_task(self._task_main(), name="openclaw-nb-feed")

    def _thread_main(self) -> None:
        stream = self._stream
        try:
            self._presence.start()
            while not self._stop_flag.is_set():
                page = self.client._poll_page(stream, self._stop_flag)
                if page is None:
                    break
                self._take(page)
        except BaseException as exc:
            self._fail(exc)
        finally:
            try:
                self._presence.stop(stale=isinstance(self.error, E.StaleTokenError))
            finally:
                self._finish()

    async def _task_main(self) -> None:
        stream = self._stream
        stop = asyncio.Event()
        try:
            await self._presence.astart()
            while not self._stop_flag.is_set():
                page = await self.client._apoll_page(stream, stop)
                if page is None:
                    break
                self._take(page, persist=False)
                if self._async_waiters:
                    await asyncio.sleep(0)  # let the coroutines waiting for these rows run before the bookkeeping
                self._stream.commit(page, keep_pending=False, writer=self._writer, remembered=True)
        except asyncio.CancelledError:
            if not self._stop_flag.is_set():
                self._fail(E.UsageError("the feed's task was cancelled"))
        except BaseException as exc:
            self._fail(exc)
        finally:
            try:
                await self._presence.astop(stale=isinstance(self.error, E.StaleTokenError))
            finally:
                self._finish()

    def _stop_serving(self) -> None:
        """Stop a thread feed and send its notifystop now, from the calling thread, instead of after the long
        poll in flight (the interpreter is exiting, or the server is about to go away). An async feed just stops:
        its task sends notifystop as it ends."""
        if self._thread is None:
            self.stop()
            return
        self._stop_flag.set()
        self._presence.stop()

    def _take(self, page: Page, *, persist: bool = True) -> None:
        """Take a page in, under the lock :meth:`stop` waits on (so a page half taken in when it is called is
        on disk when it returns; a page a thread feed's last poll brings later is written before it ends)."""
        with self._take_lock:
            self._take_in(page, persist=persist)

    def _take_in(self, page: Page, *, persist: bool = True) -> None:
        """The client's context tokens, then the rows (visible at once), then the log and the files that let a
        restart resume. Tokens come first so that whoever sees a new row can reply to it straight away."""
        n = len(page)
        self._stream.remember(page)
        if n:
            count = self._buffer.extend(page.columns)
            self._counts.update(page.columns[_I_FROM])
            now = time.monotonic()
            self._rate_marks.append((now, count))
            while self._rate_marks and self._rate_marks[0][0] < now - RATE_WINDOW:
                self._rate_marks.popleft()
            self._prebuild(count)
            self._published = count
            self._notify()
            if self._thread is not None and self._waiting:
                # Hand the GIL to the reader that was just woken before doing the bookkeeping below,
                # or it waits for this thread's next blocking call (up to the 5 ms switch interval).
                time.sleep(0)
            if self._rows_log is not None or self._export_log is not None:
                self._append_log(page)
        if persist:
            self._stream.commit(page, keep_pending=False, writer=self._writer, remembered=True)

    def _prebuild(self, count: int) -> None:
        """Bring the frame up to date before waking a waiter these rows satisfy, so that its read of
        ``feed.frame`` returns at once. Built later, on the reader's side, the work would compete for the GIL
        with this thread's next poll (and an embedded simulator serving it) and take several times longer.
        Rows nobody waits for are left to the next read, which converts everything new in one go: a backlog
        drains at full speed."""
        if not any(wanted <= count for wanted in list(self._wanted)):
            return
        try:
            self._buffer.materialise()
        except Exception as exc:  # the rows stay in the buffer; reading feed.frame reports the problem
            log.warning("could not bring the feed's frame up to date: %s: %s", type(exc).__name__, exc)

    def _rebuild(self, path: Path) -> None:
        """Fill the frame from the rows' log of an earlier run, through the stream's own duplicate rules: ids
        in it are remembered, so a page the server serves again after a crash is dropped, not shown twice."""
        if not path.exists():
            return
        try:
            lines, _torn = read_lines(path)
        except OSError as exc:
            log.warning("could not read the feed's log %s (%s): the frame starts empty", path, exc)
            return
        # A line that is not whole JSON is what an append cut short by a crash left before the next append
        # started a fresh line: the page it belonged to was served again and is in a later line.
        whole = [line for line in lines if _is_json(line)]
        if len(whole) < len(lines):
            log.warning("%s: %d line(s) cut short by a crash left out of the frame", path.name, len(lines) - len(whole))
        lines = whole
        if not lines:
            return
        state = self._stream.state
        # What the rules find in the log was reported when it was live: no events, no counts this time.
        delivered, dropped, flagged = state.delivered, state.dropped, state.flagged
        events, on_event = list(state.events), state.on_event
        state.on_event = None
        try:
            for start in range(0, len(lines), 4096):
                columns, signatures, _ = decode_messages(lines[start : start + 4096])
                page = state.accept(columns, signatures, int(time.time() * 1000))
                state.history.resolve(page.columns)
                self._buffer.extend(page.columns)
                self._counts.update(page.columns[_I_FROM])
        finally:
            state.delivered, state.dropped, state.flagged = delivered, dropped, flagged
            state.events.clear()
            state.events.extend(events)
            state.on_event = on_event
        self._published = len(self._buffer)
        log.info("the feed resumes with %d message(s) from %s", self._published, path.name)

    def _log_line(self, raw: str) -> str:
        """One message as its line in ``log_path`` (every line of it goes through here): with its context token,
        media keys and download parameters redacted unless ``redact_log=False``."""
        return redact_json_text(raw) if self._redact_rows else raw

    def _append_log(self, page: Page) -> None:
        """Write the page's rows now (a killed process keeps them): the feed's own log exact, ``log_path`` through
        :meth:`_log_line`. The writer thread fsyncs both in batches before it writes the cursor that follows."""
        if self._rows_log is not None:
            self._rows_log.append(page.raws)
        if self._export_log is not None:
            self._export_log.append([self._log_line(raw) for raw in page.raws])

    def _on_event(self, event: PollEvent) -> None:
        from .updates import log_event

        log_event(event)
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()
        here = env.running_loop()
        for loop, future in list(self._async_waiters):
            if loop is here:
                _resolve(future)
            else:
                try:
                    loop.call_soon_threadsafe(_resolve, future)
                except RuntimeError:  # that loop is closed
                    pass

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        if isinstance(exc, E.StaleTokenError):
            log.error("feed stopped: %s", exc)
        else:
            log.error("feed stopped by %s: %s", type(exc).__name__, exc)

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for rows in (self._rows_log, self._export_log):
            if rows is not None:
                rows.close()
        self._stream.close()
        self._published = len(self._buffer)  # rows taken in before a failure are announced too
        self.finished_at = time.time()
        self._done.set()
        self._notify()

    def stop(self) -> None:
        """Stop the stream. Once it returns, every message the feed received is on disk (the rows' log, then
        the cursor). An async feed stops at once (a poll in flight is cancelled, nothing is lost); a thread
        feed's thread ends when its current long poll returns (use :meth:`wait` to block until then), after
        taking in and writing whatever that poll brings."""
        self._stop_flag.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        with self._take_lock:  # a page being taken in is finished first
            pass
        if self._writer is not None:
            self._writer.flush()

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def wait(self, timeout: float | None = None) -> Feed:
        """Block until a thread feed has finished (re-raising the error that ended it, e.g. StaleTokenError)."""
        if self._thread is None:
            raise E.UsageError("this feed runs as a task on an event loop: use `await feed.finished()`")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the feed is still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self

    async def finished(self) -> Feed:
        """Await the end of the feed (re-raising the error that ended it)."""
        if self._task is not None:
            await asyncio.shield(self._task)  # the task ends normally, also when stopped
        elif self.running:
            await self.until(lambda f: not f.running, timeout=None)
        if self.error is not None:
            raise self.error
        return self

    def wait_for(self, count: int, timeout: float = 10.0) -> pd.DataFrame:
        """Block until the frame has ``count`` rows (thread feeds); returns the frame. TimeoutError otherwise."""
        self.wait_rows(count, timeout)
        return self.frame

    def wait_rows(self, count: int, timeout: float = 10.0) -> int:
        """Block until ``count`` rows are in the feed; returns the count. The feed brings its frame up to date
        before it wakes you, so a read of ``feed.frame`` right after returns at once."""
        if self._loop is not None and env.running_loop() is self._loop:
            raise E.UsageError("waiting would block the loop this feed runs on: use `await feed.until(count)`")
        deadline = time.monotonic() + timeout
        with self._changed:
            self._waiting += 1
            self._wanted.append(count)
            try:
                while self._published < count and self.running:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            finally:
                self._waiting -= 1
                self._wanted.remove(count)
        if self._published < count:
            if self.error is not None:
                raise self.error
            raise TimeoutError(f"the feed has {self._published} of {count} messages after {timeout} s")
        return self._published

    async def until(self, condition: Any, timeout: float | None = 10.0) -> Feed:
        """Await until ``condition`` holds: a row count, or a callable taking the feed.

        >>> await feed.until(100)             # 100 messages  # doctest: +SKIP
        """
        check = (lambda f: len(f) >= condition) if isinstance(condition, int) else condition
        wanted = condition if isinstance(condition, int) else 0
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not check(self):
            if not self.running:
                if self.error is not None:
                    raise self.error
                raise TimeoutError(f"the feed stopped with {len(self)} messages")
            # A bare future per wait: woken by the feed in one loop iteration (no wait_for task in between).
            future: asyncio.Future[None] = loop.create_future()
            waiter = (loop, future)
            self._async_waiters.append(waiter)
            self._wanted.append(wanted)
            timer = None
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    self._async_waiters.remove(waiter)
                    self._wanted.remove(wanted)
                    raise TimeoutError(f"the feed has {len(self)} messages after {timeout} s")
                timer = loop.call_later(left, _resolve, future)
            try:
                if not check(self):
                    await future
            finally:
                if timer is not None:
                    timer.cancel()
                if waiter in self._async_waiters:
                    self._async_waiters.remove(waiter)
                self._wanted.remove(wanted)
        return self

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- data -----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        # Rows announced to waiters: a read of feed.frame returns at least these.
        return self._published

    @property
    def frame(self) -> pd.DataFrame:
        """Every message so far, one row each (a snapshot; read it again for newer rows). Its displays (repr,
        the HTML table in Jupyter) show ``context_token`` and ``raw`` redacted; the data is exact."""
        from .safe_frame import safe_frame

        return safe_frame(self._buffer.frame())

    def items_frame(self) -> pd.DataFrame:
        """One row per item of every message so far (see :func:`openclaw_nb.frames.items_frame`); its displays
        redact the items' keys and download parameters, as ``feed.frame``'s do."""
        from .safe_frame import safe_frame

        return safe_frame(items_frame(self.frame))

    @property
    def users(self) -> pd.DataFrame:
        """Per user: messages, last inbound time, time left in the 24 h window, sends left on the current
        context token (redacted), whether a reply can succeed, the last send error."""
        import pandas as pd

        rows = budget_rows(self.client.peers, self._counts, self.client.server_now())
        df = pd.DataFrame(
            rows,
            columns=[
                "user",
                "messages",
                "last_inbound_time",
                "window_left",
                "sends_left",
                "context_token",
                "can_reply",
                "last_error",
            ],
        )
        df["last_inbound_time"] = pd.to_datetime(df["last_inbound_time"], utc=True)
        df["window_left"] = pd.to_timedelta(df["window_left"])
        df["sends_left"] = df["sends_left"].astype("Int64")
        return df.set_index("user")

    def save(self, path: str | os.PathLike[str], *, redact_secrets: bool = True) -> Path:
        """Save the messages not yet saved to ``path``: ``*.jsonl``, or a Parquet dataset folder partitioned
        by bot and date (see :func:`openclaw_nb.frames.save_log`). Call it again to add newer messages."""
        key = str(Path(path).resolve())
        df = self.frame
        done = self._saved.get(key, 0)
        out = save_log(df.iloc[done:], path, bot_id=self._stream.account, redact_secrets=redact_secrets)
        self._saved[key] = len(df)
        return out

    # --- state --------------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        if self.error is not None:
            if isinstance(self.error, E.StaleTokenError):
                return "stopped: the bot token is stale (-14); log in again with client.login()"
            return f"stopped: {type(self.error).__name__}: {self.error}"
        if not self.running:
            return "stopped"
        if self._stop_flag.is_set():
            return "stopping (after the current long poll)"
        return self._stream.state.status

    @property
    def rate(self) -> float:
        """Messages per second over the last few seconds."""
        marks = self._rate_marks
        if len(marks) < 2:
            return 0.0
        (t0, c0), (t1, c1) = marks[0], marks[-1]
        if not self.running or time.monotonic() - t1 > RATE_WINDOW:
            return 0.0
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def events(self) -> list[PollEvent]:
        """Recent retries, back-offs, dropped and flagged duplicates (newest last)."""
        return list(self._stream.state.events)

    @property
    def account(self) -> str | None:
        return self._stream.account

    def __repr__(self) -> str:
        s = self._stream.state
        return (
            f"<Feed {self.account or '(no account)'}: {self.status}; {len(self):,} messages, {self.rate:,.1f} msg/s, "
            f"{s.dropped} dropped, {s.flagged} flagged as probable duplicates>"
        )

    def _last_rows(self) -> list[dict[str, Any]]:
        rows = []
        for r in self._buffer.tail(self.show):
            created = r.get("create_time")
            when = datetime.fromtimestamp(created / 1000, tz=UTC).strftime("%H:%M:%S") if created else ""
            text = r.get("text") or ""
            rows.append(
                {
                    "time": when,
                    "from": r.get("from_user_id") or "",
                    "type": MESSAGE_TYPE_NAMES.get(r.get("message_type"), r.get("message_type")),  # type: ignore[arg-type]
                    "items": r.get("item_types") or "",
                    "text": text if len(text) <= 80 else text[:79] + "…",
                    "dup": "probable" if r.get("probable_duplicate") else "",
                    "context_token": redact(r["context_token"]) if r.get("context_token") else "",
                }
            )
        return rows

    def _repr_html_(self) -> str:
        s = self._stream.state
        if self.error is not None:
            color = "#c22"  # stopped by an error (a stale token, most often)
        elif not self.running:
            color = "#888"
        elif s.status.startswith(("retrying", "backing off")):
            color = "#c80"
        else:
            color = "#2a2"
        parts = [
            "<div style='font-family:sans-serif'>",
            f"<div><span style='color:{color}'>●</span> <b>feed</b> {html.escape(self.account or '(no account)')}"
            f" — {html.escape(self.status)}</div>",
            f"<div>{len(self):,} messages · {self.rate:,.1f} msg/s · {s.pages:,} polls · {s.dropped} dropped "
            f"(same message_id) · {s.flagged} probable duplicates</div>",
        ]
        notable = [e for e in self.events if e.kind in ("retry", "backoff", "stale", "window", "notify")][-3:]
        for e in notable:
            when = datetime.fromtimestamp(e.time, tz=UTC).strftime("%H:%M:%S")
            parts.append(f"<div style='color:#a60'>{when} {html.escape(e.message)}</div>")
        rows = self._last_rows()
        if rows:
            parts.append(html_table(rows, ["time", "from", "type", "items", "text", "dup", "context_token"]))
        parts.append("</div>")
        return "".join(parts)

    # --- live display ---------------------------------------------------------------------------------

    def as_text(self) -> str:
        """The view as plain text, for where no widget or HTML renders (``jupyter console``, text exports,
        nbconvert to text): the summary line, recent retries, and the last messages one per line."""
        lines = [repr(self)]
        notable = [e for e in self.events if e.kind in ("retry", "backoff", "stale", "window", "notify")][-3:]
        for e in notable:
            lines.append(f"  {datetime.fromtimestamp(e.time, tz=UTC).strftime('%H:%M:%S')} {e.message}")
        rows = self._last_rows()
        if rows:
            width = max(len(str(r["from"])) for r in rows)
            for r in rows:
                text = " ".join(str(r["text"]).split())
                text = text if len(text) <= 60 else text[:59] + "…"
                dup = " (probable duplicate)" if r["dup"] else ""
                lines.append(f"  {r['time']}  {r['from']!s:<{width}}  {r['items'] or r['type']}: {text}{dup}")
        return "\n".join(lines)

    def _ipython_display_(self) -> None:
        if env.has_widgets():
            env.view("feed")(self)  # the notebook layer's widget, redrawn as rows arrive
            return
        from IPython.display import display

        display({"text/plain": self.as_text(), "text/html": self._repr_html_()}, raw=True)

    @property
    def version(self) -> int:
        """A number that changes whenever rows arrive or the status changes (what a live view redraws on)."""
        return self._version

    def ended(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the feed to end; True once it has (a live view's clock)."""
        return self._done.wait(timeout)


# --- the drivers' methods ---------------------------------------------------------------------------


class _LiveShared:
    if TYPE_CHECKING:

        def _new_stream(
            self, account: str | None, persist: bool, policy: PollPolicy | None, store: Store | None
        ) -> StreamState: ...

    def _new_feed(
        self, account: str | None, persist: bool, policy: PollPolicy | None, store: Store | None, **view: Any
    ) -> Feed:
        """A live feed over a new stream (not started: each driver starts it its own way)."""
        return Feed(self, self._new_stream(account, persist, policy, store), **view)

    def chat(
        self, user: str | None = None, *, window: int = 50, feed: Feed | None = None, downloads: str = "downloads"
    ) -> Any:
        """A chat panel: the conversations on the left, the selected one as bubbles, a reply box, each
        bubble's protocol exchange one click away. It reads the client's running feed (``client.stream()``,
        ``%wx_updates``), or starts one; it shows the last ``window`` bubbles (an "older" button shows more);
        received files are saved to ``downloads``. Outside a widget front end it shows the last messages of
        each conversation as text.

        >>> client.chat()                      # in a notebook cell  # doctest: +SKIP
        """
        return env.view("chat")(self, user=user, window=window, feed=feed, downloads=downloads)


class LiveMixin(_LiveShared):
    """``stream()`` and ``chat()`` of :class:`~openclaw_nb.client.Client`: the feed polls in a thread."""

    def stream(
        self,
        *,
        account: str | None = None,
        persist: bool = True,
        policy: PollPolicy | None = None,
        store: Store | None = None,
        log_path: str | os.PathLike[str] | None = None,
        redact_log: bool = True,
        show: int = 10,
        refresh: float = 0.5,
        notify: bool = True,
    ) -> Feed:
        """Start filling a live DataFrame in a background thread and return at once: ``feed.frame``.

        ``log_path`` appends every page's messages to a JSONL file before the cursor moves (so a crash
        loses nothing that :func:`~openclaw_nb.frames.read_log` can't read back), a 0600 file whose context
        tokens, media keys and download parameters are redacted as ``feed.save()`` does (``redact_log=False``
        keeps them exact). ``notifystart`` goes out
        from the thread before its first poll, ``notifystop`` when the feed ends (``feed.stop()``, an error,
        the interpreter exiting); ``notify=False`` sends neither.
        """
        feed = self._new_feed(
            account,
            persist,
            policy,
            store,
            log_path=log_path,
            redact_log=redact_log,
            show=show,
            refresh=refresh,
            notify=notify,
        )
        feed._start_thread()
        return feed


class AsyncLiveMixin(_LiveShared):
    """``stream()`` and ``chat()`` of :class:`~openclaw_nb.client.AsyncClient`: the feed is a task on the loop."""

    def stream(
        self,
        *,
        account: str | None = None,
        persist: bool = True,
        policy: PollPolicy | None = None,
        store: Store | None = None,
        log_path: str | os.PathLike[str] | None = None,
        redact_log: bool = True,
        show: int = 10,
        refresh: float = 0.5,
        notify: bool = True,
    ) -> Feed:
        """Start filling a live DataFrame as a task on the running event loop (the kernel's, in Jupyter) and
        return at once. Call it from a notebook cell or from async code. ``notifystart``/``notifystop`` around
        the task unless ``notify=False`` (also when the task is cancelled).

        >>> feed = client.stream()      # then: feed.frame, feed.users, feed.stop()   # doctest: +SKIP
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise E.UsageError(
                "AsyncClient.stream() runs as a task on the running event loop: call it in a notebook cell or "
                "in async code (in a plain script use Client.stream(), which runs in a thread)"
            ) from None
        feed = self._new_feed(
            account,
            persist,
            policy,
            store,
            log_path=log_path,
            redact_log=redact_log,
            show=show,
            refresh=refresh,
            notify=notify,
        )
        feed._start_task(loop)
        return feed
