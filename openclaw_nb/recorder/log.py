"""The protocol log: the live ring buffer (:class:`Recorder`) and frozen views of it (:class:`ExchangeLog`).

Both share one set of views: indexing, ``frame()``, ``show()``, ``filter()``, ``summary()`` and the HAR / JSONL
exports. pandas is imported inside the methods that need it, never at import time.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
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
from .exchange import FORMAT_VERSION, Binary, Exchange, Text

if TYPE_CHECKING:
    import pandas as pd

    from .display import LogTable

DEFAULT_MAXLEN = 1000

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
    """Everything a log can show or export; subclasses provide :meth:`_exchanges` and :attr:`redacted`."""

    redacted: bool
    #: The wire drift of the session (a client's :class:`~openclaw_nb.protocol.drift.DriftLog`, or the entries a
    #: loaded log carried), exported with the exchanges so a shared log shows what the server sent that was new.
    drift: Any = None

    def _exchanges(self) -> list[Exchange]:
        raise NotImplementedError

    def _drift_entries(self) -> list[dict[str, Any]]:
        drift = self.drift
        if drift is None:
            return []
        return list(drift.to_json()) if hasattr(drift, "to_json") else [dict(e) for e in drift]

    # -- sequence ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._exchanges())

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self._exchanges())

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
        self.redacted = redacted
        self.drift = drift

    def _exchanges(self) -> list[Exchange]:
        return self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _LogViews):
            return self._exchanges() == other._exchanges()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Recorder(_LogViews):
    """Records every HTTP exchange of a client in a bounded ring buffer, redacted as it is recorded.

    The client wires it in with ``transport=recorder.wrap(httpx.HTTPTransport(...))`` and shows it as
    ``client.log``. ``redact=False`` keeps secrets (tokens, keys, upload parameters) in memory and in every
    export; it is an explicit opt-in and warns.

    Ids count up in the order requests start; the log is in the order exchanges finish (a response is
    finished when its body has been read or the stream closed), so concurrent async requests may appear
    out of id order, and a streamed download appears only once its stream is closed. An exchange is built,
    redacted and stored the moment it finishes, on the thread that finished it: ``client.log[-1]`` right
    after a call is that call.

    >>> rec = Recorder(maxlen=200)
    >>> http = httpx.Client(transport=rec.wrap(httpx.HTTPTransport()))     # doctest: +SKIP
    >>> rec[-1], rec.frame(), rec.summary()                               # doctest: +SKIP
    """

    def __init__(self, maxlen: int = DEFAULT_MAXLEN, redact: bool = True, *, _stacklevel: int = 2) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self.redacted = bool(redact)
        self._ring: deque[Exchange] = deque(maxlen=maxlen)
        self._lock = threading.Lock()  # the ring and the dropped count
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
        return self._ring.maxlen or 0

    @property
    def dropped(self) -> int:
        """How many exchanges fell out of the ring buffer so far."""
        return self._dropped

    def wrap(self, transport: httpx.BaseTransport) -> httpx.BaseTransport:
        """A sync transport that records every exchange of ``transport`` and passes it through."""
        return RecordingTransport(transport, self._begin)

    def wrap_async(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """The async twin of :meth:`wrap`."""
        return AsyncRecordingTransport(transport, self._begin)

    def clear(self) -> None:
        """Forget every recorded exchange (ids keep counting up)."""
        with self._lock:
            self._ring.clear()

    def snapshot(self) -> ExchangeLog:
        """A frozen copy of the log as it is now."""
        return ExchangeLog(self._exchanges(), redacted=self.redacted, drift=self._drift_entries() or None)

    def _exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._ring)

    def _begin(self, request: httpx.Request) -> _InFlight:
        return _InFlight(request, next(self._ids), self.redacted, self._finished)

    def _finished(self, flight: _InFlight) -> None:
        """Build a finished exchange and store it. Never raises: a recorder bug must not break the request it
        recorded, so an exchange that can't be built is kept as a stand-in that says so, and logged."""
        ex = flight.built()
        with self._lock:
            if len(self._ring) == self._ring.maxlen:
                self._dropped += 1
            self._ring.append(ex)
        # Outside the lock: a logging handler may itself send through this recorder's client.
        if wire_log.isEnabledFor(logging.DEBUG):
            _log_line(ex)


# A forked child has only the thread that forked: a recorder's lock another thread held at that moment would
# stay held for good in the child. The child gets fresh locks (the ring itself is whole: deque appends are
# atomic).
_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for rec in list(_recorders):
        rec._lock = threading.Lock()


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
