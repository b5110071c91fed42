"""The protocol log: the live ring buffer (:class:`Recorder`) and frozen views of it (:class:`ExchangeLog`).

Both share one set of views: indexing, ``frame()``, ``show()``, ``filter()``, ``summary()`` and the HAR / JSONL
exports. pandas is imported inside the methods that need it, never at import time.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import httpx

from ..protocol.redact import redact_text, redact_url
from .capture import AsyncRecordingTransport, RecordingTransport, _InFlight, wire_log
from .exchange import _FIELDS, FORMAT_VERSION, Binary, Exchange, JsonText, Text

if TYPE_CHECKING:
    import pandas as pd

    from .display import LogTable

DEFAULT_MAXLEN = 1000
#: A recorder's default byte budget: what its exchanges may hold in memory together (see :func:`footprint`).
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
_NO_BYTE_LIMIT = 2**62
#: What an exchange holds besides its bodies, URL and header texts (the field tuple, header tuples, numbers,
#: small strings), measured with tracemalloc on recorded simulator traffic (about 3 KB for an empty poll, 5 KB
#: for a page with a message; tests/recorder/test_recorder_budget.py checks the estimate stays close).
_EXCHANGE_OVERHEAD = 1200
_I_URL, _I_REQ_HEADERS, _I_REQ_BODY, _I_RESP_HEADERS, _I_RESP_BODY, _I_ERROR = (
    _FIELDS.index(name)
    for name in ("url", "request_headers", "request_body", "response_headers", "response_body", "error")
)


def _text_size(value: Any) -> int:
    if isinstance(value, (str, bytes)):
        return sys.getsizeof(value)
    if isinstance(value, (JsonText, Text)):
        return sys.getsizeof(value.text) + 64
    if value is None or isinstance(value, Binary):
        return 0
    return sys.getsizeof(json.dumps(value, default=str))  # a parsed body (an Exchange built by hand)


def _headers_size(headers: Any) -> int:
    # Lengths plus a bytes object's 33-byte header per name and value: this runs for every exchange, and
    # sys.getsizeof per header would cost more than the rest of the estimate together.
    items = headers.items() if isinstance(headers, dict) else headers or ()
    total = count = 0
    for name, value in items:
        total += len(name) + len(value)
        count += 1
    return total + 66 * count


#: What an exchange not looked at yet holds besides: its raw parts' object (about 30 references, the floats of
#: its timings), measured like _EXCHANGE_OVERHEAD.
_PENDING_OVERHEAD = 600


def _pending_footprint(flight: _InFlight) -> int:
    """About how many bytes a finished exchange holds while it keeps its raw parts (see :func:`footprint`)."""
    chunks = flight.resp_chunks
    body = 0
    if chunks:
        for chunk in chunks:
            body += len(chunk)
        body += 33 * len(chunks)
    content = flight.req_content
    return (
        _EXCHANGE_OVERHEAD
        + _PENDING_OVERHEAD
        + body
        + (len(content) + 33 if content is not None else 0)
        + _text_size(flight.url)
        + _text_size(flight.error)
        + _headers_size(flight.req_headers)
        + _headers_size(flight.resp_headers)
    )


def footprint(ex: Exchange) -> int:
    """About how many bytes of memory ``ex`` holds: what a recorder's byte budget counts.

    For an exchange a recorder stored, what it counted when it stored it (its raw parts, which are about the
    size of the redacted ones they become when looked at), so that a recorder's ``bytes`` stays the sum.
    """
    if ex._fp is not None:
        return ex._fp
    v = ex._values()
    return (
        _EXCHANGE_OVERHEAD
        + _text_size(v[_I_URL])
        + _text_size(v[_I_REQ_BODY])
        + _text_size(v[_I_RESP_BODY])
        + _text_size(v[_I_ERROR])
        + _headers_size(v[_I_REQ_HEADERS])
        + _headers_size(v[_I_RESP_HEADERS])
    )


class LogBudget:
    """A byte budget for the exchanges of one or several recorders: when the exchanges they hold together
    pass ``max_bytes``, the oldest of them all are dropped first (each recorder counts its own in
    ``dropped``), though a recorder always keeps its newest one.

    Every recorder has one; give several the same (``Recorder(max_bytes=budget)``, ``Client(log_bytes=budget)``)
    to bound them together, as :meth:`Accounts.load <openclaw_nb.accounts.Accounts.load>` does.

    >>> budget = LogBudget(64 * 1024 * 1024)
    >>> a, b = Recorder(max_bytes=budget), Recorder(max_bytes=budget)
    >>> budget.used <= budget.max_bytes
    True
    """

    def __init__(self, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"a log budget is a whole number of bytes >= 1 (say 8 * 1024 * 1024), got {max_bytes!r}")
        self.max_bytes = max_bytes
        #: Bytes the recorders on this budget hold now (by :func:`footprint`).
        self.used = 0
        # One lock for the budget and every recorder on it: an eviction touches both, in any order. Reentrant,
        # because a recorder collected mid-operation hands its bytes back from a finalizer on the same thread.
        self._lock = threading.RLock()
        # Every kept exchange in the order it was recorded: (its recorder, its id). Entries of exchanges a
        # recorder dropped by itself (maxlen, clear) stay until they reach the front or a compaction.
        self._order: deque[tuple[weakref.ref[Recorder], int]] = deque()
        self._live = 0

    def __repr__(self) -> str:
        return f"LogBudget(max_bytes={self.max_bytes:,}, used={self.used:,})"

    def _add(self, rec: Recorder, ex_id: int) -> None:
        """Account for ``rec``'s newest exchange, then drop the oldest until within budget (lock held)."""
        order = self._order
        order.append((rec._self_ref, ex_id))
        self._live += 1
        while self.used > self.max_bytes and len(order) > 1:
            ref, oldest = order[0]
            owner = ref()
            if owner is None or not owner._ring or owner._ring[0].id != oldest:
                order.popleft()  # already gone: dropped by its recorder, or the recorder is
                continue
            if owner is rec and len(rec._ring) == 1:
                break  # the newest exchange stays whatever its size
            order.popleft()
            owner._drop_oldest()
        if len(order) > 2 * self._live + 1024:  # many stale entries: keep the order list in step
            self._compact()

    def _compact(self) -> None:
        live: dict[int, set[int]] = {}
        kept: deque[tuple[weakref.ref[Recorder], int]] = deque()
        for ref, ex_id in self._order:
            owner = ref()
            if owner is None:
                continue
            ids = live.get(id(owner))
            if ids is None:
                ids = live[id(owner)] = {ex.id for ex in owner._ring}
            if ex_id in ids:
                kept.append((ref, ex_id))
        self._order = kept

    def _release(self, size: int, count: int) -> None:
        self.used -= size
        self._live -= count

    def _forget(self, usage: list[int]) -> None:
        """A recorder was collected: its exchanges no longer count."""
        with self._lock:
            self._release(usage[0], usage[1])


#: Columns of :meth:`frame` and their dtypes (pandas 3 spellings); the empty frame has them too.
FRAME_DTYPES: dict[str, str] = {
    "started": "datetime64[us, UTC]",
    "call": "str",
    "method": "str",
    "url": "str",
    "status": "Int64",
    "ret": "Int64",
    "attempt": "int64",
    "duration_ms": "float64",
    "wait_ms": "float64",
    "request_size": "Int64",
    "response_size": "Int64",
    "error": "str",
    "failed": "bool",
    "request_headers": "object",
    "request_body": "object",
    "response_headers": "object",
    "response_body": "object",
}


def _as_utc(value: datetime | str | timedelta) -> datetime:
    if isinstance(value, timedelta):
        return datetime.now(UTC) - value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # pandas Timestamps are datetimes too; a naive time is taken as UTC, like everything in the log.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_set(value: Any) -> set[Any]:
    if isinstance(value, (str, int)):
        return {value}
    return set(value)


class _LogViews(Sequence[Exchange]):
    """Everything a log can show or export; subclasses provide :meth:`_exchanges` and set ``_redacted``."""

    _redacted: bool
    #: The wire drift of the session (a client's :class:`~openclaw_nb.protocol.drift.DriftLog`, or the entries a
    #: loaded log carried), exported with the exchanges so a shared log shows what the server sent that was new.
    drift: Any = None

    def _exchanges(self) -> list[Exchange]:
        raise NotImplementedError

    @property
    def redacted(self) -> bool:
        """Whether secrets are redacted; fixed when the log is made (read-only)."""
        return self._redacted

    @redacted.setter
    def redacted(self, value: bool) -> None:
        # Read-only, with an error that says what to do: flipping it would silently keep later secrets in clear.
        raise AttributeError(
            f"{type(self).__name__}.redacted is read-only: redaction is chosen when the log is made "
            "(Recorder(redact=False) keeps secrets, and warns)"
        )

    def _drift_entries(self) -> list[dict[str, Any]]:
        drift = self.drift
        if drift is None:
            return []
        return list(drift.to_json()) if hasattr(drift, "to_json") else [dict(e) for e in drift]

    # -- sequence ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._exchanges())

    def __iter__(self) -> Iterator[Exchange]:
        # Each exchange is redacted (if not yet) as the iteration reaches it: in the order they were recorded,
        # as the recorder once did when it stored them, and only as far as the loop goes.
        for ex in self._exchanges():
            if ex._raw is not None:
                ex._settle()
            yield ex

    @overload
    def __getitem__(self, index: int) -> Exchange: ...

    @overload
    def __getitem__(self, index: slice) -> ExchangeLog: ...

    def __getitem__(self, index: int | slice) -> Exchange | ExchangeLog:
        """``log[-1]`` is the latest exchange; ``log[-5:]`` a log of the last five."""
        items = self._exchanges()
        if isinstance(index, slice):
            return ExchangeLog(items[index], redacted=self.redacted, drift=self.drift)
        return items[index]

    def by_id(self, ident: int) -> Exchange:
        """The exchange with this id (ids count up from 1 per recorder and survive filtering)."""
        for ex in self._exchanges():
            if ex.id == ident:
                return ex
        raise KeyError(f"no exchange with id {ident} in this log")

    # -- filters -----------------------------------------------------------------------------------------

    def filter(
        self,
        call: str | Iterable[str] | None = None,
        status: int | Iterable[int] | None = None,
        since: datetime | str | timedelta | None = None,
        until: datetime | str | timedelta | None = None,
        errors_only: bool = False,
        *,
        method: str | None = None,
        where: Callable[[Exchange], bool] | None = None,
    ) -> ExchangeLog:
        """A log of the matching exchanges (same views and exports).

        ``call``/``status`` take one value or several; ``since``/``until`` a UTC datetime, an ISO string or a
        timedelta back from now; ``errors_only`` keeps failed exchanges (no response, HTTP >= 400, or a non-zero
        ``ret``/``errcode``).

        >>> client.log.filter(call="send_message", errors_only=True).frame()   # doctest: +SKIP
        >>> client.log.filter(since=timedelta(minutes=5)).summary()            # doctest: +SKIP
        """
        calls = _as_set(call) if call is not None else None
        statuses = _as_set(status) if status is not None else None
        t_from = _as_utc(since) if since is not None else None
        t_to = _as_utc(until) if until is not None else None
        out = []
        for ex in self._exchanges():
            if calls is not None and ex.call not in calls:
                continue
            if statuses is not None and ex.status not in statuses:
                continue
            if t_from is not None and ex.started < t_from:
                continue
            if t_to is not None and ex.started > t_to:
                continue
            if errors_only and not ex.failed:
                continue
            if method is not None and ex.method != method.upper():
                continue
            if where is not None and not where(ex):
                continue
            out.append(ex)
        return ExchangeLog(out, redacted=self.redacted, drift=self.drift)

    # -- views -------------------------------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        """One row per exchange, indexed by id: time (UTC), call, status, ``ret``, duration, error, bodies.

        Bodies and headers stay Python objects (JSON as parsed, big ids exact).

        >>> df = client.log.frame()                                  # doctest: +SKIP
        >>> df[df.call == "get_updates"].duration_ms.describe()      # doctest: +SKIP
        """
        import pandas as pd

        items = self._exchanges()
        cols: dict[str, list[Any]] = {name: [] for name in FRAME_DTYPES}
        ids = []
        # Column lists, then one DataFrame: building row by row is quadratic.
        for ex in items:
            ids.append(ex.id)
            cols["started"].append(ex.started)
            cols["call"].append(ex.call)
            cols["method"].append(ex.method)
            cols["url"].append(ex.url)
            cols["status"].append(ex.status)
            cols["ret"].append(ex.ret)
            cols["attempt"].append(ex.attempt)
            cols["duration_ms"].append(ex.duration_ms)
            cols["wait_ms"].append(ex.wait_ms)
            cols["request_size"].append(ex.request_size)
            cols["response_size"].append(ex.response_size)
            cols["error"].append(ex.error)
            cols["failed"].append(ex.failed)
            cols["request_headers"].append(ex.request_headers)
            cols["request_body"].append(ex.request_body)
            cols["response_headers"].append(ex.response_headers)
            cols["response_body"].append(ex.response_body)
        data: dict[str, Any] = {}
        for name, dtype in FRAME_DTYPES.items():
            values = cols[name]
            if dtype == "object":
                series = pd.Series(values, dtype=object)
            elif dtype.startswith("datetime64"):
                series = pd.Series(pd.to_datetime(values, utc=True)).astype(dtype)
            elif dtype == "float64":
                series = pd.Series([float("nan") if v is None else v for v in values], dtype="float64")
            else:
                series = pd.Series(values, dtype=dtype)
            series.index = pd.Index(ids, dtype="int64", name="id")
            data[name] = series
        return pd.DataFrame(data, index=pd.Index(ids, dtype="int64", name="id"))

    def summary(self) -> pd.DataFrame:
        """Per call: count, failed count, error rate, p50 / p99 / max duration in ms.

        >>> client.log.summary()             # doctest: +SKIP
        """
        import pandas as pd

        df = self.frame()
        columns = ["count", "errors", "error_rate", "p50_ms", "p99_ms", "max_ms"]
        if df.empty:
            return pd.DataFrame(
                {
                    "count": pd.Series(dtype="int64"),
                    "errors": pd.Series(dtype="int64"),
                    "error_rate": pd.Series(dtype="float64"),
                    "p50_ms": pd.Series(dtype="float64"),
                    "p99_ms": pd.Series(dtype="float64"),
                    "max_ms": pd.Series(dtype="float64"),
                },
                index=pd.Index([], dtype="str", name="call"),
            )
        g = df.groupby("call", sort=True)
        out = pd.DataFrame(
            {
                "count": g.size().astype("int64"),
                "errors": g["failed"].sum().astype("int64"),
                "p50_ms": g["duration_ms"].quantile(0.5),
                "p99_ms": g["duration_ms"].quantile(0.99),
                "max_ms": g["duration_ms"].max(),
            }
        )
        out["error_rate"] = out["errors"] / out["count"]
        return out[columns]

    def show(self, n: int = 20) -> LogTable:
        """The last ``n`` exchanges as a table: rich in a terminal, HTML with collapsible JSON in a notebook.

        >>> client.log.show(5)               # doctest: +SKIP
        """
        from .display import LogTable

        items = self._exchanges()
        return LogTable(items[-n:] if n else items, total=len(items))

    def __repr__(self) -> str:
        return repr(self.show())

    def _repr_html_(self) -> str:
        return self.show()._repr_html_()

    def __rich__(self) -> Any:
        return self.show().__rich__()

    # -- exports -----------------------------------------------------------------------------------------

    def to_har(self, path: str | PathLike[str] | None = None) -> dict[str, Any]:
        """HAR 1.2 (opens in browser devtools: Network → Import HAR); written to ``path`` when given.

        >>> client.log.to_har("session.har")  # doctest: +SKIP
        """
        from .har import build_har

        har = build_har(self._exchanges())
        drift = self._drift_entries()
        if drift:
            har["log"]["_drift"] = drift  # a custom field, as HAR allows (a leading underscore)
        if path is not None:
            Path(path).write_text(json.dumps(har, ensure_ascii=False, indent=1), encoding="utf-8")
        return har

    def to_jsonl(self, path: str | PathLike[str]) -> Path:
        """One JSON object per line (a header line, then one line per exchange); read back with :func:`load_log`.

        >>> client.log.to_jsonl("session.jsonl")  # doctest: +SKIP
        """
        target = Path(path)
        items = self._exchanges()
        header = {
            "openclaw_nb_log": FORMAT_VERSION,
            "redacted": all(ex.redacted for ex in items) if items else self.redacted,
            "count": len(items),
            "written": datetime.now(UTC).isoformat(),
        }
        drift = self._drift_entries()
        if drift:
            header["drift"] = drift
        with target.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(header, ensure_ascii=False) + "\n")
            for ex in items:
                fh.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
        return target


class ExchangeLog(_LogViews):
    """A fixed list of exchanges: a filtered or sliced view of a recorder, or a log loaded from disk."""

    def __init__(
        self, exchanges: Iterable[Exchange] = (), *, redacted: bool = True, drift: list[dict[str, Any]] | None = None
    ) -> None:
        self._items = list(exchanges)
        self._redacted = bool(redacted)
        self.drift = drift

    def _exchanges(self) -> list[Exchange]:
        return self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _LogViews):
            return self._exchanges() == other._exchanges()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Recorder(_LogViews):
    """Records every HTTP exchange of a client in a bounded ring buffer, redacted when first looked at.

    The client wires it in with ``transport=recorder.wrap(httpx.HTTPTransport(...))`` and shows it as
    ``client.log``. ``redact=False`` keeps secrets (tokens, keys, upload parameters) in memory and in every
    export; it is an explicit opt-in and warns.

    Ids count up in the order requests start; the log is in the order exchanges finish (a response is
    finished when its body has been read or the stream closed), so concurrent async requests may appear
    out of id order, and a streamed download appears only once its stream is closed. An exchange is stored
    the moment it finishes, on the thread that finished it: ``client.log[-1]`` right after a call is that
    call. It keeps its raw parts privately until something that can hold a secret is first looked at (a body,
    a header, the URL, the error, a print, an export, a pickle); they are redacted then, once, and dropped.

    >>> rec = Recorder(maxlen=200)
    >>> http = httpx.Client(transport=rec.wrap(httpx.HTTPTransport()))     # doctest: +SKIP
    >>> rec[-1], rec.frame(), rec.summary()                               # doctest: +SKIP
    """

    def __init__(
        self,
        maxlen: int = DEFAULT_MAXLEN,
        redact: bool = True,
        *,
        max_bytes: int | LogBudget | None = DEFAULT_MAX_BYTES,
        _stacklevel: int = 2,
    ) -> None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        if max_bytes is None:
            max_bytes = LogBudget(_NO_BYTE_LIMIT)
        elif not isinstance(max_bytes, LogBudget):
            if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
                raise ValueError(
                    f"max_bytes is the recorder's memory budget in bytes (an int >= 1, or a LogBudget shared with "
                    f"other recorders, or None for no byte limit), got {max_bytes!r}"
                )
            max_bytes = LogBudget(max_bytes)
        self._redacted = bool(redact)
        self._maxlen = maxlen
        self._ring: deque[Exchange] = deque()
        self._sizes: deque[int] = deque()  # footprint of each exchange in the ring
        self._budget = max_bytes
        self._lock = max_bytes._lock  # the ring, the sizes, the dropped count and the budget
        self._usage = [0, 0]  # bytes and exchanges held, handed back to the budget if this recorder is collected
        self._self_ref = weakref.ref(self)
        weakref.finalize(self, max_bytes._forget, self._usage)
        self._ids = itertools.count(1)
        self._dropped = 0
        _recorders.add(self)
        if not redact:
            warnings.warn(
                "Recorder(redact=False): bot tokens, context tokens, AES keys and upload parameters will be kept "
                "in memory and written to every export (HAR, JSONL). Do not share such a log.",
                UserWarning,
                stacklevel=_stacklevel,  # the user's line: a client that creates the recorder says how deep it is
            )

    @property
    def maxlen(self) -> int:
        """How many exchanges are kept; older ones are dropped first."""
        return self._maxlen

    @property
    def dropped(self) -> int:
        """How many exchanges fell out of the ring buffer so far (past ``maxlen`` or the byte budget)."""
        return self._dropped

    @property
    def bytes(self) -> int:
        """About how many bytes of memory the kept exchanges hold (see :func:`footprint`)."""
        return self._usage[0]

    @property
    def budget(self) -> LogBudget:
        """The byte budget this recorder keeps within (shared with other recorders when one was given)."""
        return self._budget

    @property
    def max_bytes(self) -> int:
        """The byte budget's limit (of every recorder on it together, when shared)."""
        return self._budget.max_bytes

    def wrap(self, transport: httpx.BaseTransport) -> httpx.BaseTransport:
        """A sync transport that records every exchange of ``transport`` and passes it through."""
        return RecordingTransport(transport, self._begin)

    def wrap_async(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """The async twin of :meth:`wrap`."""
        return AsyncRecordingTransport(transport, self._begin)

    def clear(self) -> None:
        """Forget every recorded exchange (ids keep counting up)."""
        with self._lock:
            self._budget._release(self._usage[0], self._usage[1])
            self._ring.clear()
            self._sizes.clear()
            self._usage[:] = [0, 0]

    def snapshot(self) -> ExchangeLog:
        """A frozen copy of the log as it is now."""
        return ExchangeLog(self._exchanges(), redacted=self.redacted, drift=self._drift_entries() or None)

    def _exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._ring)

    def _drop_oldest(self) -> None:
        """Drop the oldest exchange (the budget's lock held)."""
        self._ring.popleft()
        size = self._sizes.popleft()
        self._usage[0] -= size
        self._usage[1] -= 1
        self._budget._release(size, 1)
        self._dropped += 1

    def _begin(self, request: httpx.Request) -> _InFlight:
        return _InFlight(request, next(self._ids), self.redacted, self._finished)

    def _finished(self, flight: _InFlight) -> None:
        """Store a finished exchange with its raw parts, redacted when first looked at. Never raises: a recorder
        bug must not break the request it recorded, so an exchange that can't be built is kept as a stand-in that
        says so, and logged (when it is looked at)."""
        size = _pending_footprint(flight)
        ex = Exchange._pending(flight.known(), flight, size)
        with self._lock:
            if len(self._ring) >= self._maxlen:
                self._drop_oldest()
            self._ring.append(ex)
            self._sizes.append(size)
            self._usage[0] += size
            self._usage[1] += 1
            self._budget.used += size
            self._budget._add(self, ex.id)
        # Outside the lock: a logging handler may itself send through this recorder's client.
        if wire_log.isEnabledFor(logging.DEBUG):
            _log_line(ex)


# A forked child has only the thread that forked: a recorder's lock another thread held at that moment would
# stay held for good in the child. The child gets fresh locks (the ring itself is whole: deque appends are
# atomic).
_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for rec in list(_recorders):
        budget = rec._budget
        if rec._lock is not budget._lock:  # this budget got its fresh lock from another of its recorders
            rec._lock = budget._lock
            continue
        budget._lock = rec._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _log_line(ex: Exchange) -> None:
    # Always redacted, even for redact=False recorders: log files travel further than notebooks.
    ms = f" in {ex.duration_ms:.1f} ms" if ex.duration_ms is not None else ""
    again = f" (attempt {ex.attempt})" if ex.attempt != 1 else ""
    outcome = ex.outcome if ex.error is None else f"{ex.outcome} [{redact_text(ex.error)}]"
    wire_log.debug("#%d %s %s %s -> %s%s%s", ex.id, ex.call, ex.method, redact_url(ex.url), outcome, ms, again)


def load_log(path: str | PathLike[str]) -> ExchangeLog:
    """Read a log written by :meth:`Recorder.to_jsonl` back into an :class:`ExchangeLog`.

    >>> log = load_log("session.jsonl")  # doctest: +SKIP
    """
    items: list[Exchange] = []
    redacted = True
    drift: list[dict[str, Any]] | None = None
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno} is not a JSON line: {exc}") from None
            if "openclaw_nb_log" in data:
                if int(data["openclaw_nb_log"]) > FORMAT_VERSION:
                    raise ValueError(
                        f"{path} was written by a newer openclaw-nb (log format {data['openclaw_nb_log']}); "
                        "upgrade to read it"
                    )
                redacted = bool(data.get("redacted", True))
                found = data.get("drift")
                drift = [d for d in found if isinstance(d, dict)] if isinstance(found, list) else None
                continue
            try:
                items.append(Exchange.from_dict(data))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno} is not an exchange: {exc!r}") from None
    return ExchangeLog(items, redacted=redacted, drift=drift)


__all__ = ["Binary", "Exchange", "ExchangeLog", "Recorder", "Text", "load_log"]
