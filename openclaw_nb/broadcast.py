"""Broadcast: one text or media message to many users at once, reported per target instead of failing as a whole.

The engine runs a fixed set of worker coroutines over the list of users on an :class:`~.client.AsyncClient`.
``Client.broadcast`` runs the same engine in a worker thread with its own event loop and a private
AsyncClient that shares the client's settings, token, recorder and per-user state; the calling thread draws
the progress bar and waits, so Ctrl-C reaches code that can stop the broadcast cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from . import errors as E
from .protocol import constants as C
from .protocol.media import UploadedMedia, UploadPlan, digest, parse_kind
from .protocol.models import new_client_id

if TYPE_CHECKING:
    import pandas as pd

    from .client import AsyncClient, BaseClient, Client
    from .media import Plaintext
    from .progress import Progress

    _Base = BaseClient
else:
    _Base = object

log = logging.getLogger("openclaw_nb")

#: Sends under way at once unless told otherwise. Measured (benchmarks/bench_concurrency.py, README): 16 is
#: httpcore's best (its async pool slows down with more in flight: 477 req/s at 16, 230 at 256 on loopback) and
#: a polite load on a server whose rate limits are not documented; on aiohttp's engine more in flight pays where
#: the network has latency (at 20 ms: 578 req/s with 16 connections, 1,523 with 64), so pass concurrency=64 there
#: when the server is known to take it.
DEFAULT_CONCURRENCY = 16

SENT = "sent"
REJECTED = "rejected"
UNKNOWN = "may_have_been_delivered"
SKIPPED = "skipped"
NOT_STARTED = "not_started"
#: Every status a target can end in, in the order the summary counts them.
STATUSES = (SENT, REJECTED, UNKNOWN, SKIPPED, NOT_STARTED)
#: Columns of :attr:`BroadcastResult.frame` (an ``account`` column comes first in ``Accounts.broadcast``'s).
BROADCAST_COLUMNS = ("user", "status", "message_id", "client_id", "code", "reason")

#: The callback of ``broadcast(on_progress=...)``: the finished row, targets done so far, targets in all.
OnProgress = Callable[["BroadcastRow", int, int], object]


@dataclass
class BroadcastRow:
    """What happened to one target. ``client_id`` is set for every send that went out (retry a
    ``may_have_been_delivered`` one with ``send_text(user, text, client_id=row.client_id)``)."""

    user: str
    status: str = NOT_STARTED
    message_id: int | None = None
    client_id: str | None = None
    #: The server's ``ret``/``errcode``, or the HTTP status, of a rejected send.
    code: int | None = None
    reason: str = ""
    account: str | None = None


class BroadcastResult:
    """The table of a broadcast: one row per target in the order given, and counts per status.

    >>> result = client.broadcast(users, "hello")
    >>> result.counts
    {'sent': 61, 'rejected': 1, 'may_have_been_delivered': 0, 'skipped': 2, 'not_started': 0}
    >>> result.frame[result.frame.status != "sent"]
    """

    def __init__(self, rows: Sequence[BroadcastRow]) -> None:
        self.rows: list[BroadcastRow] = list(rows)
        #: Why the broadcast stopped before every target was tried (None when it ran to the end).
        self.interrupted: str | None = None

    @classmethod
    def combine(cls, results: Iterable[BroadcastResult]) -> BroadcastResult:
        """One table of several broadcasts (rows in order; the first reason to stop, if any)."""
        parts = list(results)
        combined = cls([row for part in parts for row in part.rows])
        combined.interrupted = next((p.interrupted for p in parts if p.interrupted), None)
        return combined

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def counts(self) -> dict[str, int]:
        """How many targets ended in each status (every status listed, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            counts[row.status] += 1
        return counts

    @property
    def sent(self) -> int:
        return self.counts[SENT]

    @property
    def rejected(self) -> int:
        return self.counts[REJECTED]

    @property
    def may_have_been_delivered(self) -> int:
        return self.counts[UNKNOWN]

    @property
    def skipped(self) -> int:
        return self.counts[SKIPPED]

    @property
    def not_started(self) -> int:
        return self.counts[NOT_STARTED]

    def users(self, status: str) -> list[str]:
        """The users whose send ended in ``status`` (e.g. ``"not_started"`` to broadcast to them again)."""
        if status not in STATUSES:
            raise E.UsageError(f"status is one of {', '.join(STATUSES)}, got {status!r}")
        return [row.user for row in self.rows if row.status == status]

    @property
    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame: ``user``, ``status``, ``message_id`` (exact UInt64), ``client_id``,
        ``code`` (Int64) and ``reason``; ``account`` first when the rows carry one."""
        import pandas as pd

        data: dict[str, Any] = {}
        if any(row.account is not None for row in self.rows):
            data["account"] = [row.account for row in self.rows]
        data.update(
            {
                "user": [row.user for row in self.rows],
                "status": [row.status for row in self.rows],
                # UInt64: message ids are uint64 above 2**53, which a float column (what one missing value
                # makes of an int column) would corrupt.
                "message_id": pd.array([row.message_id for row in self.rows], dtype="UInt64"),
                "client_id": [row.client_id for row in self.rows],
                "code": pd.array([row.code for row in self.rows], dtype="Int64"),
                "reason": [row.reason for row in self.rows],
            }
        )
        return pd.DataFrame(data)

    def summary(self) -> str:
        """One line: how many targets ended how."""
        counts = self.counts
        parts = [f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n]
        text = f"{self.total} target{'s' if self.total != 1 else ''}: {', '.join(parts) or 'none'}"
        if self.interrupted:
            text += f" (stopped: {self.interrupted})"
        return text

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        head = f"<BroadcastResult {self.summary()}>"
        if not self.rows:
            return head
        return f"{head}\n{self.frame.to_string(max_rows=20, max_colwidth=60)}"

    def _repr_html_(self) -> str:
        import html

        return f"<div><b>broadcast</b>: {html.escape(self.summary())}</div>{self.frame._repr_html_()}"


class BroadcastInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a KeyboardInterrupt from ``on_progress``) stopped a broadcast: no new send started, the ones
    under way finished (or, on a second Ctrl-C, were marked ``may_have_been_delivered``). ``result`` holds
    the table so far; targets never tried are ``not_started``."""

    def __init__(self, result: BroadcastResult) -> None:
        super().__init__(f"broadcast interrupted: {result.summary()}; the table is in .result")
        self.result = result


# --- what to send -----------------------------------------------------------------------------------


@dataclass
class _Content:
    """The message of a broadcast, checked once: a text, a finished upload, or plaintext to upload per user."""

    text: str | None = None
    markdown: str | None = None
    uploaded: UploadedMedia | None = None
    plain: Plaintext | None = None
    kind: C.UploadMediaType | None = None
    caption: str | None = None
    rawsize: int = 0
    md5: str = ""

    @property
    def what(self) -> str:
        if self.text is not None:
            return "text"
        assert self.kind is not None
        return self.kind.name.lower()


def _content(message: object, kind: object, caption: object, name: str | None, markdown: str | None) -> _Content:
    """Check what to send before anything goes out (hashing a file happens in :func:`_hash`)."""
    from .media import plaintext_of

    if caption is not None and (not isinstance(caption, str) or not caption):
        raise E.UsageError(f"caption must be a non-empty str or None, got {caption!r}")
    if isinstance(message, str) and kind is None:
        if not message:
            raise E.UsageError("the text is empty; pass the message to send")
        if caption is not None or name is not None:
            raise E.UsageError(
                "caption= and name= go with media; to send a file by its path pass kind='image', 'file' or "
                "'video' (a str without kind= is sent as text)"
            )
        return _Content(text=message, markdown=markdown)
    if markdown is not None:
        raise E.UsageError("markdown= filters a text; it does not apply to media")
    if isinstance(message, UploadedMedia):
        if kind is not None and _kind(kind, message.file_name) != message.media_type:
            raise E.UsageError(f"this upload is a {message.kind}; pass kind={message.kind!r} or leave kind out")
        return _Content(uploaded=message, kind=message.media_type, caption=caption)
    if isinstance(message, (str, os.PathLike, bytes, bytearray, memoryview)):
        plain = plaintext_of(message, name)
        return _Content(plain=plain, kind=_kind(kind, plain.name), caption=caption)
    raise E.UsageError(
        f"broadcast sends a text (str), a file (a pathlib.Path, or a str path with kind=), bytes with kind=, or "
        f"an UploadedMedia; got {type(message).__name__}"
    )


def _kind(kind: object, name: str | None) -> C.UploadMediaType:
    try:
        return parse_kind(kind, name)  # type: ignore[arg-type]
    except ValueError as exc:
        raise E.UsageError(str(exc)) from None


def _user_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise E.UsageError(
            f"each user must be a non-empty user id string such as 'abc@im.wechat', got {value!r}; "
            "user ids come from message.from_user_id"
        )
    return value


def _hash(content: _Content) -> _Content:
    """Size and MD5 of the plaintext, once for all users (each user still gets an upload of their own)."""
    if content.plain is not None:
        content.rawsize, content.md5 = digest(content.plain.chunks())
    return content


def _targets(users: object) -> list[str]:
    if isinstance(users, str) or users is None or not isinstance(users, Iterable):
        raise E.UsageError(
            f"users is a list of user ids such as ['alice@im.wechat', 'bob@im.wechat'], got {users!r:.80}; "
            "to send to one user use send_text()"
        )
    seen: dict[str, None] = {}
    for user in users:
        seen.setdefault(_user_id(user), None)
    return list(seen)


def _concurrency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise E.UsageError(f"concurrency is how many sends may be under way at once (an int >= 1), got {value!r}")
    return value


def _budget_problem(client: BaseClient, user: str) -> str | None:
    """Why a send to ``user`` is bound to be refused, from the client's reply budget (``client.reply_budget``):
    the 24 h reply window closed, or the context token's sends used up. None when a send may go (a user the
    client never heard from is sent to: the server decides)."""
    from .updates import reply_budget_of

    peer = client.peers.get(user)
    if peer is None:
        return None
    budget = reply_budget_of(peer, user, client.server_now())
    if budget.window_left is not None and budget.window_left <= timedelta(0):
        assert peer.last_inbound_ms is not None
        return f"{budget.reason} ({client._since_last_message(peer.last_inbound_ms)})"
    if budget.sends_left is not None and budget.sends_left <= 0:
        return f"{budget.reason} ({peer.sends_on_token} sends made on it)"
    return None


def _classify(exc: BaseException, row: BroadcastRow) -> None:
    """Fill ``row`` from the error a send ended with."""
    row.reason = str(exc)
    if isinstance(exc, E.UsageError):
        row.status = SKIPPED  # a long text that does not fit in the sends left: nothing was sent
    elif isinstance(exc, E.DeliveryUnknownError):
        row.status, row.code, row.client_id = UNKNOWN, exc.status_code, exc.client_id
    elif isinstance(exc, E.ApiError):
        row.status, row.code = REJECTED, exc.code
    elif isinstance(exc, E.ProtocolError) and exc.endpoint == "send_message":
        row.status = UNKNOWN  # the server answered something unreadable: it may have stored the message
    elif isinstance(exc, E.TransportError):
        row.status, row.code = REJECTED, exc.status_code
    elif isinstance(exc, E.OpenClawError):
        row.status = REJECTED
    else:  # a failure of unknown kind after the send may have gone out
        row.status, row.reason = UNKNOWN, f"{type(exc).__name__}: {exc}"


# --- the engine ---------------------------------------------------------------------------------------


class _Run:
    """What the engines of one broadcast share: the stop flag and the reporting callback."""

    def __init__(self, report: Callable[[BroadcastRow], object]) -> None:
        self.report = report
        self.stopping = False
        #: What the reporting callback raised (a KeyboardInterrupt from on_progress): the broadcast stops.
        self.report_error: BaseException | None = None

    def done(self, row: BroadcastRow) -> None:
        if self.report_error is not None:
            return
        try:
            self.report(row)
        except BaseException as exc:  # a KeyboardInterrupt from on_progress: stop starting sends
            self.report_error = exc
            self.stopping = True


class _Engine:
    """Workers that take one client's next target, check its reply budget, send, and fill its row.

    Cancelling :meth:`run` once stops new sends and waits for those under way; cancelling it again cancels
    those too (their rows say ``may_have_been_delivered``). Either way it then raises CancelledError.
    """

    def __init__(
        self,
        run: _Run,
        client: AsyncClient,
        rows: list[BroadcastRow],
        content: _Content,
        concurrency: int,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.shared = run
        self.client = client
        self.rows = rows
        self.content = content
        self.concurrency = concurrency
        self.gate = gate
        self.next = 0
        self.stopping = False
        self.stale: str | None = None

    async def run(self) -> None:
        workers = [asyncio.ensure_future(self._worker()) for _ in range(min(self.concurrency, len(self.rows)))]
        if workers:
            await _wind_down(workers, self._stop)

    def _stop(self) -> None:
        self.stopping = True

    async def _worker(self) -> None:
        shared = self.shared
        while not self.stopping and not shared.stopping and self.next < len(self.rows):
            row = self.rows[self.next]
            self.next += 1
            problem = self.stale or _budget_problem(self.client, row.user)
            if problem:
                row.status, row.reason = SKIPPED, problem
            else:
                try:
                    if self.gate is None:
                        await self._send(row)
                    else:
                        async with self.gate:
                            if self.stopping or shared.stopping:  # stopped while waiting: not started
                                return
                            await self._send(row)
                except asyncio.CancelledError:
                    if row.client_id is not None:  # else it was still waiting for the gate: not started
                        row.status = UNKNOWN
                        row.reason = "the broadcast was cancelled while this send was under way"
                        shared.done(row)
                    return
            shared.done(row)

    async def _send(self, row: BroadcastRow) -> None:
        client, content = self.client, self.content
        row.client_id = new_client_id()
        try:
            if content.text is not None:
                resp: Any = await client.send_text(
                    row.user, content.text, client_id=row.client_id, markdown=content.markdown
                )
            elif content.uploaded is not None:
                resp = await client._send_media(
                    content.uploaded, row.user, content.kind, content.caption, None, row.client_id, None, False
                )
            else:
                resp = await self._upload_and_send(row)
        except Exception as exc:
            _classify(exc, row)
            if isinstance(exc, E.StaleTokenError):
                self.stale = f"not sent: {exc}"
            return
        row.status, row.message_id, row.reason = SENT, resp.message_id, ""

    async def _upload_and_send(self, row: BroadcastRow) -> Any:
        """The file goes to the CDN once per user: ``getuploadurl`` registers an upload for one ``to_user_id``
        (docs/protocol.md, "Media upload"), as the official client does for every media message."""
        from .progress import NullProgress

        client, content = self.client, self.content
        assert content.plain is not None and content.kind is not None
        peer, token, parts = client._media_budget(row.user, content.caption, None)
        plan = UploadPlan(row.user, content.kind, content.rawsize, content.md5, content.plain.name)
        uploaded = await client._run(client._upload_flow(plan, content.plain, NullProgress()))
        return await client._run(client._send_media_flow(uploaded, peer, token, parts, row.client_id))


async def _wind_down(tasks: Sequence[asyncio.Future[Any]], stop: Callable[[], object]) -> None:
    """Wait for ``tasks``. Cancelled once: ``stop()`` (no new send starts) and wait for them; cancelled again:
    cancel them (the sends under way stop). Then raise CancelledError."""
    try:
        await asyncio.wait(tasks)  # unlike gather, a cancelled wait leaves the tasks running
        return
    except asyncio.CancelledError:
        stop()
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        raise


Job = tuple["AsyncClient", list[BroadcastRow]]


async def _run_jobs(
    jobs: Sequence[Job], content: _Content, concurrency: int, report: Callable[[BroadcastRow], object]
) -> _Run:
    """One engine per client, all at once; with several clients at most ``concurrency`` sends in all."""
    run = _Run(report)
    gate = asyncio.Semaphore(concurrency) if len(jobs) > 1 else None
    engines = [_Engine(run, client, rows, content, concurrency, gate) for client, rows in jobs if rows]
    if len(engines) == 1:
        await engines[0].run()
    elif engines:
        runs = [asyncio.ensure_future(engine.run()) for engine in engines]
        # Each engine takes its first cancellation as "start no new send": pass one on to each.
        await _wind_down(runs, lambda: [r.cancel() for r in runs])
    return run


def _skip_missing(rows: Iterable[BroadcastRow], reason: str) -> None:
    for row in rows:
        row.status, row.reason = SKIPPED, reason


def _bar(total: int, enabled: bool | None, what: str) -> Progress:
    from .progress import make_progress

    if enabled is not None and not isinstance(enabled, bool):
        raise E.UsageError(f"progress is True, False or None (a bar in notebooks and terminals), got {enabled!r}")
    return make_progress(total, f"broadcast ({what})", enabled, unit="messages")


def _check_callback(on_progress: object) -> None:
    if on_progress is not None and not callable(on_progress):
        raise E.UsageError(f"on_progress is a function (row, done, total) or None, got {on_progress!r}")


async def run_async(
    jobs: Sequence[Job],
    result: BroadcastResult,
    content: _Content,
    concurrency: int,
    bar: Progress,
    on_progress: OnProgress | None,
) -> BroadcastResult:
    """Run a broadcast on the running loop, updating ``bar`` and calling ``on_progress`` after each target.

    Cancelled: the rows so far are kept, ``result.interrupted`` says so, and CancelledError is raised again
    with the result as its ``broadcast`` attribute. A KeyboardInterrupt from ``on_progress`` becomes
    :class:`BroadcastInterrupted`.
    """
    total = len(result.rows)
    done = 0

    def report(row: BroadcastRow) -> None:
        nonlocal done
        done += 1
        bar.advance(1)
        if on_progress is not None:
            on_progress(row, done, total)

    bar.start(total)
    ok = False
    try:
        _report_settled(result, report)
        run = await _run_jobs(jobs, content, concurrency, report)
        ok = run.report_error is None
    except asyncio.CancelledError as exc:
        result.interrupted = "cancelled"
        exc.broadcast = result  # type: ignore[attr-defined]
        exc.add_note(f"the broadcast was cancelled: {result.summary()}")
        raise
    finally:
        bar.close(ok)
    _raise_report_error(run.report_error, result)
    return result


def _report_settled(result: BroadcastResult, report: Callable[[BroadcastRow], object]) -> None:
    """Report the rows settled before any send (an account that is not loaded), so progress counts them."""
    for row in result.rows:
        if row.status != NOT_STARTED:
            report(row)


def _raise_report_error(error: BaseException | None, result: BroadcastResult) -> None:
    if error is None:
        return
    if isinstance(error, KeyboardInterrupt):
        result.interrupted = "interrupted"
        raise BroadcastInterrupted(result) from error
    result.interrupted = f"on_progress raised {type(error).__name__}"
    error.add_note(f"the broadcast stopped: {result.summary()}")
    raise error


# --- synchronous callers: the engine in a worker thread ---------------------------------------------


_DONE = object()


def drive_in_thread(
    loop: asyncio.AbstractEventLoop,
    work: Callable[[Callable[[BroadcastRow], object]], Coroutine[Any, Any, object]],
    result: BroadcastResult,
    bar: Progress,
    on_progress: OnProgress | None,
    *,
    close_loop: bool,
) -> BroadcastResult:
    """Run ``work(report)`` on ``loop`` in a worker thread while this thread draws the bar and calls
    ``on_progress`` for each row reported. Ctrl-C here stops new sends and waits for those under way; a
    second Ctrl-C cancels them. ``loop`` must not be running elsewhere."""
    total = len(result.rows)
    finished: queue.SimpleQueue[object] = queue.SimpleQueue()
    failure: list[BaseException] = []
    _report_settled(result, finished.put)
    task = loop.create_task(work(finished.put))

    def drive() -> None:
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported in the calling thread
            failure.append(exc)
        finally:
            try:
                if close_loop:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.close()
            finally:
                finished.put(_DONE)

    thread = threading.Thread(target=drive, name="openclaw-nb broadcast", daemon=True)
    interrupt: BaseException | None = None
    done = 0
    ok = False
    bar.start(total)
    thread.start()
    try:
        while True:
            try:
                item = finished.get()
                if item is _DONE:
                    break
                done += 1
                bar.advance(1)
                if on_progress is not None and interrupt is None:
                    on_progress(cast(BroadcastRow, item), done, total)
            except BaseException as exc:  # Ctrl-C (or on_progress) while waiting: stop, then wait for the rest
                if interrupt is not None and isinstance(exc, KeyboardInterrupt):
                    log.warning("broadcast: second interrupt, cancelling the sends under way")
                elif interrupt is None:
                    interrupt = exc
                with contextlib.suppress(RuntimeError):  # the loop already closed: nothing left to stop
                    loop.call_soon_threadsafe(task.cancel)
        ok = interrupt is None and not failure
    finally:
        bar.close(ok)
        thread.join()
    if failure:
        raise failure[0]
    _raise_report_error(interrupt, result)
    return result


@dataclass
class Plan:
    """A checked broadcast, ready to run: its table (every row ``not_started``), one job per client, what to
    send, and how. Nothing has been sent yet."""

    result: BroadcastResult
    jobs: list[Job]
    message: _Content
    concurrency: int
    bar: Progress
    on_progress: OnProgress | None

    async def run(self) -> BroadcastResult:
        """Run on the running event loop (a file is hashed in a worker thread first)."""
        if self.message.plain is not None:
            await asyncio.to_thread(_hash, self.message)
        return await run_async(self.jobs, self.result, self.message, self.concurrency, self.bar, self.on_progress)

    def run_in_thread(self, loop: asyncio.AbstractEventLoop, *, close_loop: bool) -> BroadcastResult:
        """Run on ``loop`` in a worker thread while this thread shows progress and takes Ctrl-C."""
        _hash(self.message)

        async def work(report: Callable[[BroadcastRow], object]) -> None:
            await _run_jobs(self.jobs, self.message, self.concurrency, report)

        return drive_in_thread(loop, work, self.result, self.bar, self.on_progress, close_loop=close_loop)


def plan(
    rows: list[BroadcastRow],
    clients: Mapping[str | None, AsyncClient],
    message: object,
    *,
    concurrency: object,
    kind: object,
    caption: object,
    name: str | None,
    markdown: str | None,
    progress: bool | None,
    on_progress: object,
) -> Plan:
    """Check a broadcast's arguments (nothing is sent) and group its ``rows`` by ``row.account`` into jobs of
    ``clients``; a row whose account has no client is ``skipped`` at once."""
    content = _content(message, kind, caption, name, markdown)
    count = _concurrency(concurrency)
    _check_callback(on_progress)
    by_account: dict[str | None, list[BroadcastRow]] = {}
    for row in rows:
        by_account.setdefault(row.account, []).append(row)
    jobs: list[Job] = []
    for account, own in by_account.items():
        client = clients.get(account)
        if client is None:
            _skip_missing(own, f"account {account} is not loaded")
        else:
            jobs.append((client, own))
    bar = _bar(len(rows), progress, content.what)
    return Plan(BroadcastResult(rows), jobs, content, count, bar, cast("OnProgress | None", on_progress))


def plan_accounts(
    clients: Mapping[str, AsyncClient],
    message: object,
    to: object,
    *,
    concurrency: object = DEFAULT_CONCURRENCY,
    kind: object = None,
    caption: object = None,
    name: str | None = None,
    markdown: str | None = None,
    progress: bool | None = None,
    on_progress: object = None,
) -> Plan:
    """The plan of :meth:`Accounts.broadcast <openclaw_nb.accounts.Accounts.broadcast>`: ``to`` is None (each
    client to every user it has received a message from), ``{bot_id: [users]}`` or ``(bot_id, user)`` pairs."""
    targets: dict[tuple[str, str], None] = {}
    if to is None:
        for bot_id, client in clients.items():
            for user, peer in client.peers.items():
                if peer.context_token or peer.last_inbound_ms is not None:
                    targets.setdefault((bot_id, user), None)
    elif isinstance(to, Mapping):
        for bot_id, users in to.items():
            for user in _targets(users):
                targets.setdefault((str(bot_id), user), None)
    elif isinstance(to, Iterable) and not isinstance(to, str):
        for item in to:
            if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 2:
                raise E.UsageError(
                    f"each target is a (bot_id, user) pair, got {item!r}; or pass to={{bot_id: [users]}}, "
                    "or leave to out to reach every user each account has heard from"
                )
            targets.setdefault((str(item[0]), _user_id(item[1])), None)
    else:
        raise E.UsageError(f"to is None, {{bot_id: [users]}} or a list of (bot_id, user) pairs, got {to!r:.80}")
    rows = [BroadcastRow(user, account=bot_id) for bot_id, user in targets]
    return plan(
        rows,
        cast("Mapping[str | None, AsyncClient]", clients),
        message,
        concurrency=concurrency,
        kind=kind,
        caption=caption,
        name=name,
        markdown=markdown,
        progress=progress,
        on_progress=on_progress,
    )


def run_sync(sync: Client, job: Plan) -> BroadcastResult:
    """A broadcast for the sync client: a private AsyncClient on a fresh loop in a worker thread."""
    _hash(job.message)
    rows = job.result.rows

    async def work(report: Callable[[BroadcastRow], object]) -> None:
        engine_client = sync.async_twin()
        try:
            await _run_jobs([(engine_client, rows)], job.message, job.concurrency, report)
        finally:
            sync._clock_offset, sync._last_date = engine_client._clock_offset, engine_client._last_date
            await engine_client.aclose()

    return drive_in_thread(asyncio.new_event_loop(), work, job.result, job.bar, job.on_progress, close_loop=True)


# --- the public methods -----------------------------------------------------------------------------


_DOC = """Send one message to many users at once and report each: sent, rejected, may have been delivered,
        or skipped.

        ``users``: user ids (a list, a Series...; repeats are sent to once). ``text_or_media``: a text
        (``str``), or media as ``send_image``/``send_file``/``send_video`` take it: a ``pathlib.Path`` or
        bytes (``kind`` ``"image"``, ``"file"`` or ``"video"``; without it the name's extension decides), a
        ``str`` path with ``kind`` given (a ``str`` alone is a text), or an ``UploadedMedia`` (sent as is
        to everyone). ``name``: the file name bytes go under. A file is read and
        hashed once, then uploaded once per user: ``getuploadurl`` registers each upload for one recipient.
        ``caption``: a text sent before the media. ``markdown``: as in ``send_text``.

        At most ``concurrency`` sends are under way at once. Users whose reply budget is used up (10 sends on
        their latest context token) or whose 24 h reply window has closed are ``skipped``: reported, not
        sent. A bar shows progress in notebooks and terminals (``progress=False``: none);
        ``on_progress(row, done, total)`` is called after each target.

        Returns a :class:`~openclaw_nb.broadcast.BroadcastResult`: ``.frame`` (user, status, message_id,
        client_id, code, reason), ``.counts`` and ``.users(status)``; ``client.last_broadcast`` holds it too,
        filled in while it runs. Ctrl-C stops cleanly: no new send starts, the ones under way finish (a
        second Ctrl-C cancels them: ``may_have_been_delivered``), and :class:`BroadcastInterrupted` carries
        the table so far (``.result``; targets not tried are ``not_started``). A cancelled task does the
        same and raises CancelledError, with the table as its ``broadcast`` attribute.
"""


class _BroadcastBase(_Base):
    #: The latest broadcast's table (filled in while it runs).
    last_broadcast: BroadcastResult | None = None

    def _plan_broadcast(
        self,
        users: Iterable[str],
        message: object,
        concurrency: object,
        kind: object,
        caption: object,
        name: str | None,
        markdown: str | None,
        progress: bool | None,
        on_progress: object,
    ) -> Plan:
        rows = [BroadcastRow(user) for user in _targets(users)]
        job = plan(
            rows,
            {None: cast("AsyncClient", self)},  # the sync driver swaps in its private AsyncClient
            message,
            concurrency=concurrency,
            kind=kind,
            caption=caption,
            name=name,
            markdown=markdown,
            progress=progress,
            on_progress=on_progress,
        )
        self.last_broadcast = job.result
        return job


class BroadcastMixin(_BroadcastBase):
    """``broadcast`` for :class:`~openclaw_nb.client.Client`."""

    def broadcast(
        self,
        users: Iterable[str],
        text_or_media: object,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        kind: str | None = None,
        caption: str | None = None,
        name: str | None = None,
        markdown: str | None = None,
        progress: bool | None = None,
        on_progress: OnProgress | None = None,
    ) -> BroadcastResult:
        job = self._plan_broadcast(
            users, text_or_media, concurrency, kind, caption, name, markdown, progress, on_progress
        )
        return run_sync(cast("Client", self), job)

    broadcast.__doc__ = (
        _DOC
        + """
        >>> result = client.broadcast(users, "the class starts at 9 today")
        >>> result.frame[result.frame.status != "sent"]
        """
    )


class AsyncBroadcastMixin(_BroadcastBase):
    """``broadcast`` for :class:`~openclaw_nb.client.AsyncClient`."""

    async def broadcast(
        self,
        users: Iterable[str],
        text_or_media: object,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        kind: str | None = None,
        caption: str | None = None,
        name: str | None = None,
        markdown: str | None = None,
        progress: bool | None = None,
        on_progress: OnProgress | None = None,
    ) -> BroadcastResult:
        job = self._plan_broadcast(
            users, text_or_media, concurrency, kind, caption, name, markdown, progress, on_progress
        )
        return await job.run()

    broadcast.__doc__ = (
        _DOC
        + """
        >>> result = await client.broadcast(users, "the class starts at 9 today", concurrency=64)
        """
    )


__all__ = [
    "BROADCAST_COLUMNS",
    "DEFAULT_CONCURRENCY",
    "STATUSES",
    "AsyncBroadcastMixin",
    "BroadcastInterrupted",
    "BroadcastMixin",
    "BroadcastResult",
    "BroadcastRow",
    "Plan",
    "plan",
    "plan_accounts",
]
