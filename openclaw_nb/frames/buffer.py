"""The live feed's buffer: rows arrive a page at a time from the poll thread or task, and readers get an
up-to-date DataFrame without copying what they already saw (see :class:`MessageBuffer`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
from .schema import (
    _INTEGER_LIKE,
    BOOL_COLUMNS,
    CATEGORY_NAMES,
    COLUMNS,
    TIME_COLUMNS,
    _categorical_of,
    _category_codes,
    _code_kind,
    _concat_arrays,
    _frame_arrays,
    _have_arrow,
    _int_column,
    _joined_chunks,
    _joined_masks,
    _pandas_frame,
    _pieces,
    _str_column,
    _utc_times,
    _wrap,
)


class _LiveParts:
    """A live feed's columns between reads: numpy data (and missing masks) for the integer-like and bool
    columns, category codes with the wire values they stand for, Arrow chunks for the strings.

    :meth:`merged` gives new parts with a batch appended (fresh arrays, so a frame handed out earlier never
    shares memory that later rows are written into, and a failed merge leaves these parts as they were);
    :meth:`arrays` wraps them as pandas arrays without copying.
    """

    __slots__ = ("bools", "codes", "ints", "rows", "strings")

    def __init__(self) -> None:
        self.rows = 0
        self.ints: dict[str, tuple[Any, Any]] = {}
        self.bools: dict[str, Any] = {}
        self.codes: dict[str, tuple[Any, tuple[int, ...]]] = {
            name: (None, tuple(names)) for name, names in CATEGORY_NAMES.items()
        }
        self.strings: dict[str, list[Any]] = {}

    def merged(self, pieces: Sequence[Any]) -> _LiveParts:
        import numpy as np

        out = _LiveParts()
        n = 0
        for name, part in zip(COLUMNS, pieces, strict=True):
            if name in CATEGORY_NAMES:
                data, mask = part
                n = len(data)
                old, wires = self.codes[name]
                codes, wires = _category_codes(wires, data, mask)
                kind = _code_kind(wires)
                codes = codes.astype(kind)
                out.codes[name] = (codes if old is None else np.concatenate([old.astype(kind), codes]), wires)
            elif name in _INTEGER_LIKE:
                data, mask = part
                n = len(data)
                if name in self.ints:
                    old, old_mask = self.ints[name]
                    out.ints[name] = (np.concatenate([old, data]), _joined_masks(old_mask, self.rows, mask, n))
                else:
                    out.ints[name] = (data, mask)
            elif name in BOOL_COLUMNS:
                out.bools[name] = np.concatenate([self.bools[name], part]) if name in self.bools else part
            else:
                out.strings[name] = _joined_chunks(self.strings.get(name, ()), part)
        out.rows = self.rows + n
        return out

    def arrays(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in COLUMNS:
            if name in CATEGORY_NAMES:
                codes, wires = self.codes[name]
                out[name] = _categorical_of(name, codes, wires)
            elif name in TIME_COLUMNS:
                out[name] = _utc_times(self.ints[name][0])
            elif name in _INTEGER_LIKE:
                out[name] = _int_column(*self.ints[name])
            elif name in BOOL_COLUMNS:
                out[name] = self.bools[name]
            else:
                out[name] = _str_column(self.strings[name])
        return out


class MessageBuffer:
    """Rows appended as column lists (O(1) per message) and turned into a DataFrame only when asked.

    Appending never touches pandas, so its cost stays flat however many rows there are. :meth:`frame`
    converts only the rows added since the last call and appends them column by column to the arrays it
    already built (strings as Arrow chunks, so no string is copied), then wraps them in a DataFrame: a read
    after a few new messages costs about a millisecond, not a rebuild. Thread-safe: a feed thread appends
    while a notebook reads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only to swap or extend the lists
        self._build = threading.Lock()  # serialises materialisation
        self._cols: list[list[Any]] = [[] for _ in COLUMNS]
        self._count = 0
        self._parts: _LiveParts | None = None  # with pyarrow
        self._arrays: dict[str, Any] | None = None  # without: pandas arrays, concatenated per read
        self._frame: pd.DataFrame | None = None
        self._framed = 0

    def __len__(self) -> int:
        return self._count

    def extend(self, columns: Sequence[Sequence[Any]]) -> int:
        """Append rows given as one sequence per column; returns the new row count."""
        n = len(columns[0]) if columns else 0
        if not n:
            return self._count
        with self._lock:
            for col, values in zip(self._cols, columns, strict=True):
                col.extend(values)
            self._count += n
            return self._count

    def frame(self) -> pd.DataFrame:
        """All rows so far as a DataFrame (a snapshot: later rows do not appear in it)."""
        with self._build:
            self._materialise()
            assert self._frame is not None
            return self._frame.copy(deep=False)

    def materialise(self) -> None:
        """Bring the frame up to date now, so that the next :meth:`frame` only hands it out."""
        with self._build:
            self._materialise()

    def _materialise(self) -> None:
        with self._lock:
            added = self._count - self._framed
            if added:
                new = self._cols
                self._cols = [[] for _ in COLUMNS]
                self._framed = self._count
        if not added:
            if self._frame is not None:
                return
            # The first read, before any row: an empty frame. Never build from the live lists, which the
            # feed thread may be appending to (column by column) at this very moment.
            new = [[] for _ in COLUMNS]
        try:
            if _have_arrow():
                parts = (self._parts or _LiveParts()).merged(_pieces(new))
                arrays = parts.arrays()
            else:
                chunk, parts = _frame_arrays(_pandas_frame(new)), None
                old = self._arrays
                arrays = chunk if old is None else {c: _concat_arrays(old[c], chunk[c]) for c in COLUMNS}
            frame = _wrap(arrays, self._framed)
        except BaseException:
            # Nothing is lost: the rows go back in front of any that arrived meanwhile.
            with self._lock:
                self._cols = [old + later for old, later in zip(new, self._cols, strict=True)]
                self._framed -= added
            raise
        self._parts, self._arrays, self._frame = parts, arrays, frame

    def snapshot(self) -> tuple[pd.DataFrame | None, list[list[Any]], int]:
        """A consistent view of every row so far without building anything: ``(frame, lists, count)``, where
        ``frame`` holds the first rows (None before any read) and ``lists`` the rest, one list per column in
        :data:`COLUMNS` order with raw values. Later appends only add past ``count``, so the view stays valid."""
        with self._build, self._lock:
            return self._frame, list(self._cols), self._count

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` rows as dicts of raw values (ms times, wire ints), cheap enough for a live view."""
        if n <= 0:
            return []
        with self._lock:
            pending = list(zip(*(col[-n:] for col in self._cols), strict=True))
        rows = [dict(zip(COLUMNS, row, strict=True)) for row in pending]
        short = n - len(rows)
        if short > 0:
            with self._build:
                df = self._frame
            if df is not None and len(df):
                older = []
                for rec in df.tail(short).to_dict("records"):
                    for name in TIME_COLUMNS:
                        t = rec.get(name)
                        rec[name] = None if t is None or t != t else int(t.timestamp() * 1000)
                    for name, names in CATEGORY_NAMES.items():
                        value = rec.get(name)
                        rec[name] = next((k for k, v in names.items() if v == value), value)
                    older.append(rec)
                rows = older + rows
        return rows


