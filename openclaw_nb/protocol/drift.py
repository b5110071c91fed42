"""Wire drift: what a server sent that the models did not expect, collected per endpoint and field path.

Theory of operation: readers of server data (the lenient models, the getupdates page decoder) append a
:class:`Drift` for every unknown field, wrongly typed known field, unknown enum value or repaired byte run they
meet, with the field's path written the same way for every list element (``msgs[].item_list[].type``). A driver
that runs a request makes a :class:`DriftLog` current for that request (:func:`collecting`), and the readers hand
their findings to whichever log is current (:func:`report`), so no parser needs to know about clients. The log
keeps one entry per (endpoint, path, kind, seen) with a count, the first and last time and one short redacted
example, logs each new entry once at WARNING, and stays bounded however long a stream runs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .redact import SECRET_FIELDS, redact, redact_json

log = logging.getLogger("openclaw_nb.drift")

#: Kinds of drift.
UNKNOWN_FIELD = "unknown field"
UNEXPECTED_TYPE = "unexpected type"
UNKNOWN_VALUE = "unknown value"
REPAIRED = "repaired"
UNDECODABLE = "undecodable"

#: Distinct entries one log keeps; later new ones are counted in ``DriftLog.overflow`` only.
MAX_ENTRIES = 2000
_EXAMPLE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Drift:
    """One finding: where (``path``), what kind, what was seen, and the value as sent (``example``)."""

    path: str
    kind: str
    seen: str
    example: Any = None


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type: ``string``, ``number``, ``boolean``, ``array``, ``object``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def example_of(path: str, value: Any) -> str:
    """A short example of ``value`` for the report, with secrets redacted (by field name and inside objects)."""
    leaf = path.rsplit(".", 1)[-1].removesuffix("[]")
    if leaf in SECRET_FIELDS and isinstance(value, str) and value:
        return redact(value)
    try:
        if isinstance(value, (dict, list)):
            text = json.dumps(redact_json(value), ensure_ascii=False)
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
            text = f"<integer of {len(str(abs(value))) if value.bit_length() < 14000 else 'over 4000'} digits>"
        else:
            text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = f"<{json_type(value)}>"
    if len(text) > _EXAMPLE_CHARS:
        text = text[: _EXAMPLE_CHARS - 1] + "…"
    return text


@dataclass
class DriftEntry:
    endpoint: str
    path: str
    kind: str
    seen: str
    count: int
    first_seen: float
    last_seen: float
    example: str

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "path": self.path,
            "kind": self.kind,
            "seen": self.seen,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "example": self.example,
        }


class DriftLog:
    """Every drift one client met, one entry per (endpoint, path, kind, seen); thread-safe, bounded.

    >>> client.drift      # a DataFrame of the entries                        # doctest: +SKIP
    """

    def __init__(self, *, clock: Any = time.time, warn: bool = True) -> None:
        self._entries: dict[tuple[str, str, str, str], DriftEntry] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.warn = warn
        #: New entries not kept because the log was full.
        self.overflow = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"DriftLog({len(self._entries)} entries)"

    def record(self, endpoint: str, findings: Iterable[Drift]) -> None:
        """Count ``findings`` under ``endpoint``; a new (path, kind, seen) is logged once at WARNING."""
        now = self._clock()
        fresh: list[DriftEntry] = []
        with self._lock:
            for d in findings:
                key = (endpoint, d.path, d.kind, d.seen)
                entry = self._entries.get(key)
                if entry is not None:
                    entry.count += 1
                    entry.last_seen = now
                    continue
                if len(self._entries) >= MAX_ENTRIES:
                    self.overflow += 1
                    continue
                entry = DriftEntry(endpoint, d.path, d.kind, d.seen, 1, now, now, example_of(d.path, d.example))
                self._entries[key] = entry
                fresh.append(entry)
        if self.warn:
            for entry in fresh:
                log.warning(
                    "wire drift in %s: %s %s (%s); kept as sent, reported once (client.drift lists all)",
                    entry.endpoint,
                    entry.path,
                    entry.kind,
                    entry.seen,
                )

    def entries(self) -> list[DriftEntry]:
        """The entries, in the order first seen."""
        with self._lock:
            return [DriftEntry(**vars(e)) for e in self._entries.values()]

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.entries()]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.overflow = 0

    def frame(self) -> Any:
        """The entries as a DataFrame (endpoint, path, kind, seen, count, first_seen, last_seen, example)."""
        import pandas as pd

        rows = self.to_json()
        columns = ["endpoint", "path", "kind", "seen", "count", "first_seen", "last_seen", "example"]
        df = pd.DataFrame(rows, columns=columns)
        for name in ("first_seen", "last_seen"):
            df[name] = pd.to_datetime(df[name], unit="s", utc=True)
        df["count"] = df["count"].astype("int64")
        return df


_CURRENT: contextvars.ContextVar[tuple[DriftLog, str] | None] = contextvars.ContextVar(
    "openclaw_nb_drift", default=None
)


@contextmanager
def collecting(log_: DriftLog | None, endpoint: str = "") -> Iterator[None]:
    """Make ``log_`` the log that :func:`report` writes to while the block runs (``endpoint`` names the call
    when the reader does not)."""
    if log_ is None:
        yield
        return
    token = _CURRENT.set((log_, endpoint))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def report(endpoint: str, findings: list[Drift]) -> None:
    """Hand ``findings`` to the current log (none: they are dropped, as for a model built by hand)."""
    if not findings:
        return
    current = _CURRENT.get()
    if current is not None:
        current[0].record(endpoint or current[1], findings)
