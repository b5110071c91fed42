"""Messages as pandas DataFrames: the one-row-per-message schema, live buffering, bulk ingest, logs on disk,
and the analysis helpers a notebook reaches for.

pandas (and pyarrow, when installed) are imported inside functions, so ``import openclaw_nb`` stays light.
Column order and the flattening rules live in :mod:`openclaw_nb.protocol.poll`; this module only gives the
columns their dtypes: ``message_id``/``quoted_svr_id`` ``UInt64`` (exact above 2^53, never float), times
``datetime64[ms, UTC]``, ``message_type``/``message_state`` categories of readable names, strings ``str``.
"""

from __future__ import annotations

import functools
import gc
import html
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors as E
from .protocol import poll as P
from .protocol.redact import redact, redact_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

COLUMNS = P.COLUMNS
UINT64_COLUMNS = ("message_id", "quoted_svr_id")
INT64_COLUMNS = ("seq",)
TIME_COLUMNS = ("create_time", "update_time", "received_time")
BOOL_COLUMNS = ("has_media", "probable_duplicate")
CATEGORY_NAMES: dict[str, dict[int, str]] = {
    "message_type": P.MESSAGE_TYPE_NAMES,
    "message_state": P.MESSAGE_STATE_NAMES,
}
STR_COLUMNS = tuple(
    c for c in COLUMNS if c not in (*UINT64_COLUMNS, *INT64_COLUMNS, *TIME_COLUMNS, *BOOL_COLUMNS, *CATEGORY_NAMES)
)
#: Rows per Arrow batch in bulk ingest: big enough to amortise per-batch costs, small enough to keep the
#: transient Python objects of one batch cheap.
BATCH_ROWS = 1 << 14


def _have_arrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _need_pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        raise E.UsageError("DataFrames need pandas: pip install pandas") from None
    return pd


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Bulk ingest creates millions of short-lived objects and no cycles; the cyclic collector would scan the
    # growing heap again and again for nothing (measured: ~2x slower decode). Paused only for the call.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- columns → frames (the pandas-only path first; with pyarrow see the pieces below) ----------


def _categorical(values: Any, name: str) -> Any:
    """Wire numbers (nullable) → a Categorical of readable names, as the Arrow path gives it."""
    import numpy as np

    pd = _need_pandas()
    numbers = pd.array(values, dtype="Int64")
    filled = numbers.to_numpy(dtype=np.int64, na_value=0)
    codes, wires = _category_codes(tuple(CATEGORY_NAMES[name]), filled, np.asarray(numbers.isna()))
    return _categorical_of(name, codes, wires)


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    for name in CATEGORY_NAMES:
        df[name] = _categorical(df[name], name)
    return df


def _pandas_frame(columns: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """The same frame without pyarrow (slower; strings use pandas' default ``str`` dtype)."""
    pd = _need_pandas()
    data: dict[str, Any] = {}
    for name, values in zip(COLUMNS, columns, strict=True):
        if name in UINT64_COLUMNS:
            data[name] = pd.array(list(values), dtype="UInt64")
        elif name in INT64_COLUMNS or name in CATEGORY_NAMES:
            data[name] = pd.array(list(values), dtype="Int64")
        elif name in TIME_COLUMNS:
            ms = pd.array(list(values), dtype="Int64")
            data[name] = pd.to_datetime(ms, unit="ms", utc=True).as_unit("ms")
        elif name in BOOL_COLUMNS:
            data[name] = pd.array([bool(v) for v in values], dtype=bool)
        elif name == "raw":
            data[name] = pd.array([v if isinstance(v, str) else str(v, "utf-8") for v in values], dtype="str")
        else:
            data[name] = pd.array(list(values), dtype="str")
    return _finish(pd.DataFrame(data))


def columns_to_frame(columns: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """The message frame of rows given as one sequence per column (in :data:`COLUMNS` order)."""
    if _have_arrow():
        return _wrap(_pandas_arrays(_pieces(columns)), len(columns[0]) if columns else 0)
    return _pandas_frame(columns)


def empty_frame() -> pd.DataFrame:
    """A message frame with no rows but every column and dtype."""
    return columns_to_frame([[] for _ in COLUMNS])


def concat_frames(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate message frames, keeping the category columns categorical (categories are unioned)."""
    pd = _need_pandas()
    frames = [f for f in frames if len(f)] or list(frames[:1])
    if not frames:
        return empty_frame()
    if len(frames) == 1:
        return frames[0]
    for name in CATEGORY_NAMES:
        cats: list[str] = []
        for f in frames:
            for c in f[name].cat.categories:
                if c not in cats:
                    cats.append(c)
        frames = [f.assign(**{name: f[name].cat.set_categories(cats)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


# --- column pieces → pandas arrays ---------------------------------------------------------------
#
# One path builds every frame (a live feed's few new rows and a million-row bulk ingest alike): each batch
# of rows becomes "pieces" (numpy data + missing mask for the integer-like columns, Arrow chunks for the
# strings), and the pieces of all batches become pandas arrays in one step, concatenated once. Nothing goes
# through ``Table.to_pandas``, so no column is held twice.

#: A string column is re-combined into one Arrow chunk when appends have split it into more than this.
MAX_CHUNKS = 8
_NAT = -(2**63)


def _pool() -> Any:
    """The Arrow memory pool of the frames' string columns: the system allocator. Arrow's default (mimalloc)
    keeps freed pages of the many growing builders of a bulk ingest; measured on 1M messages, the system
    pool peaks ~70 MiB lower at the same speed."""
    import pyarrow as pa

    return pa.system_memory_pool()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _string_array(values: Sequence[Any]) -> pa.Array:
    """A large_string Arrow array of str values (None → null).

    A JSON text may escape half of a surrogate pair (``"\\ud83d"``); decoded, that is a str no UTF-8 can
    hold, and Arrow refuses the whole column. Such characters become U+FFFD here (the ``raw`` column keeps
    the escape as the server sent it), so one odd message never stops a feed or an ingest.
    """
    import pyarrow as pa

    try:
        return pa.array(values, pa.large_string(), memory_pool=_pool())
    except UnicodeEncodeError:
        cleaned = [_SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for v in values]
        return pa.array(cleaned, pa.large_string(), memory_pool=_pool())


def _raw_array(values: Sequence[Any]) -> pa.Array:
    """The ``raw`` column: from str, or from byte spans joined once into one buffer (no str per message)."""
    import numpy as np
    import pyarrow as pa

    try:
        data = b"".join(values) if values and values[0] is not None and not isinstance(values[0], str) else None
    except TypeError:  # pages of different kinds in one ingest: spans next to re-encoded str (or None)
        data = None
    if data is None:
        return _string_array([v if v is None or isinstance(v, str) else str(v, "utf-8") for v in values])
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))


def _int_kind(name: str) -> Any:
    import numpy as np

    return np.uint64 if name in UINT64_COLUMNS else np.int64


def _int_piece(values: Sequence[Any], kind: Any, fill: int) -> tuple[Any, Any]:
    """numpy data and missing mask (None when nothing is missing) of a column of ints and Nones.

    A value the dtype cannot hold (a negative or a > 64-bit ``message_id`` from an odd server) becomes
    missing, as a field of the wrong JSON type does when flattening: one odd message never stops an ingest.
    """
    import numpy as np

    n = len(values)
    try:
        return np.fromiter(values, dtype=kind, count=n), None
    except (TypeError, OverflowError, ValueError):
        pass
    if isinstance(values, list) and values.count(None) == n:  # a column nobody filled (quoted_svr_id, mostly)
        return np.full(n, fill, dtype=kind), np.ones(n, dtype=bool)
    info = np.iinfo(kind)
    lo, hi = int(info.min), int(info.max)
    fits = [v is not None and lo <= v <= hi for v in values]
    mask = ~np.fromiter(fits, dtype=bool, count=n)
    data = np.fromiter((v if ok else fill for v, ok in zip(values, fits, strict=True)), dtype=kind, count=n)
    return data, mask


def _pieces(columns: Sequence[Sequence[Any]]) -> list[Any]:
    """One batch of rows (one sequence per column, in :data:`COLUMNS` order) as pieces: see above."""
    import numpy as np

    out: list[Any] = []
    for name, values in zip(COLUMNS, columns, strict=True):
        if name in BOOL_COLUMNS:
            out.append(np.fromiter(values, dtype=bool, count=len(values)))
        elif name in _INTEGER_LIKE:
            out.append(_int_piece(values, _int_kind(name), _NAT if name in TIME_COLUMNS else 0))
        elif name == "raw":
            out.append(_raw_array(values))
        else:
            # large_string is what pandas' str dtype stores: no cast on wrapping
            out.append(_string_array(values))
    return out


_INTEGER_LIKE = frozenset((*UINT64_COLUMNS, *INT64_COLUMNS, *TIME_COLUMNS, *CATEGORY_NAMES))
_CATEGORY_DTYPES: dict[tuple[str, tuple[int, ...]], Any] = {}


def _category_codes(wires: tuple[int, ...], data: Any, mask: Any) -> tuple[Any, tuple[int, ...]]:
    """Category codes of wire values against the wire values known so far (in category order), and those
    values with any new ones appended in order of first appearance: codes given earlier stay valid, and the
    live and bulk paths order unknown values alike."""
    import numpy as np

    pd = _need_pandas()
    if len(data) <= 64:  # a live page: a dict lookup per value beats building a hash table
        position = {w: i for i, w in enumerate(wires)}
        codes = np.fromiter((position.get(v, -1) for v in data.tolist()), dtype=np.int64, count=len(data))
    else:
        codes = pd.Index(wires, dtype="int64").get_indexer(data)
    if mask is not None:
        codes[mask] = -1
    unknown = codes < 0
    if mask is not None:
        unknown &= ~mask
    if unknown.any():
        extra = [int(v) for v in pd.unique(data[unknown])]
        codes[unknown] = len(wires) + pd.Index(extra).get_indexer(data[unknown])
        wires = (*wires, *extra)
    return codes, wires


def _code_kind(wires: tuple[int, ...]) -> Any:
    import numpy as np

    return np.int8 if len(wires) < 127 else np.int16 if len(wires) < 32_767 else np.int32


def _categorical_of(name: str, codes: Any, wires: tuple[int, ...]) -> Any:
    """A Categorical of readable names over codes of ``wires``; a value this version does not know keeps
    its number. The dtype is built once per set of values (validating categories is slow)."""
    pd = _need_pandas()
    dtype = _CATEGORY_DTYPES.get((name, wires))
    if dtype is None:
        names = CATEGORY_NAMES[name]
        dtype = pd.CategoricalDtype([names[w] if w in names else str(w) for w in wires])
        if len(_CATEGORY_DTYPES) > 64:  # an odd server inventing values: do not keep every combination
            _CATEGORY_DTYPES.clear()
        _CATEGORY_DTYPES[(name, wires)] = dtype
    return pd.Categorical.from_codes(codes.astype(_code_kind(wires), copy=False), dtype=dtype, validate=False)


@functools.cache
def _str_array_type() -> tuple[Any, Any]:
    """pandas' array class and dtype of ``str`` columns (Arrow-backed when pyarrow is installed)."""
    empty = _need_pandas().array([], dtype="str")
    return type(empty), empty.dtype


def _str_column(chunks: Sequence[Any]) -> Any:
    """A ``str`` column over Arrow large_string chunks, without copying them."""
    import pyarrow as pa

    str_cls, str_dtype = _str_array_type()
    return str_cls(pa.chunked_array(chunks, type=pa.large_string()), dtype=str_dtype)


def _int_column(data: Any, mask: Any) -> Any:
    """A nullable integer column (``Int64``/``UInt64`` from the data's dtype) over numpy data and mask."""
    import numpy as np

    return _need_pandas().arrays.IntegerArray(data, np.zeros(len(data), dtype=bool) if mask is None else mask)


def _pandas_arrays(pieces: Sequence[Any], keep: Any = None) -> dict[str, Any]:
    """pandas arrays of one piece list (a string column's piece may be a list of Arrow chunks); ``keep`` is
    an optional boolean mask over the rows (rows where it is False are left out)."""
    out: dict[str, Any] = {}
    for name, part in zip(COLUMNS, pieces, strict=True):
        if name in _INTEGER_LIKE:
            data, mask = part
            if keep is not None:
                data = data[keep]
                mask = None if mask is None else mask[keep]
            if name in TIME_COLUMNS:
                out[name] = _utc_times(data)
            elif name in CATEGORY_NAMES:
                codes, wires = _category_codes(tuple(CATEGORY_NAMES[name]), data, mask)
                out[name] = _categorical_of(name, codes, wires)
            else:
                out[name] = _int_column(data, mask)
        elif name in BOOL_COLUMNS:
            out[name] = part if keep is None else part[keep]
        else:
            chunks = part if isinstance(part, list) else [part]
            chunks = [chunk for chunk in chunks if len(chunk)] or chunks[:1]
            if keep is not None:
                chunks = _filter_chunks(chunks, keep)
            out[name] = _str_column(chunks)
    return out


_UTC_MS: Any = None


def _utc_times(ms: Any) -> Any:
    """int64 ms since the epoch (NaT where missing) as a ``datetime64[ms, UTC]`` array, without a copy."""
    global _UTC_MS
    pd = _need_pandas()
    if _UTC_MS is None:
        _UTC_MS = pd.DatetimeTZDtype("ms", "UTC")
    values = ms.view("M8[ms]")
    try:
        # the validated constructor re-checks every value (a third of a live read); these are already exact
        return pd.arrays.DatetimeArray._simple_new(values, dtype=_UTC_MS)
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without this internal
        return pd.array(values, dtype=_UTC_MS)


class _Columns:
    """The pieces of many batches as they arrive: one growing buffer per integer-like and bool column (grown
    in place by ``realloc``, so the end result is not a concatenated copy) and a list of Arrow chunks per
    string column. :meth:`pieces` lends them out as one piece list without copying."""

    def __init__(self) -> None:
        import array

        self.rows = 0
        self._data = {n: array.array("Q" if n in UINT64_COLUMNS else "q") for n in COLUMNS if n in _INTEGER_LIKE}
        self._masks: dict[str, bytearray | None] = dict.fromkeys(self._data)
        self._bools = {n: bytearray() for n in BOOL_COLUMNS}
        self._chunks: dict[str, list[Any]] = {
            n: [] for n in COLUMNS if n not in _INTEGER_LIKE and n not in BOOL_COLUMNS
        }

    def add(self, pieces: Sequence[Any]) -> None:
        n = 0
        for name, part in zip(COLUMNS, pieces, strict=True):
            if name in self._data:
                data, mask = part
                n = len(data)
                self._data[name].frombytes(memoryview(data).cast("B"))
                held = self._masks[name]
                if mask is not None and held is None:
                    held = self._masks[name] = bytearray(self.rows)  # nothing was missing before
                if held is not None:
                    held += bytes(n) if mask is None else mask.tobytes()
            elif name in self._bools:
                self._bools[name] += part.tobytes()
            else:
                self._chunks[name].append(part)
        self.rows += n

    def pieces(self) -> list[Any]:
        import numpy as np

        out: list[Any] = []
        for name in COLUMNS:
            if name in self._data:
                data = self._data[name]
                mask = self._masks[name]
                kind = np.uint64 if data.typecode == "Q" else np.int64
                out.append((np.frombuffer(data, dtype=kind), None if mask is None else np.frombuffer(mask, dtype=bool)))
            elif name in self._bools:
                out.append(np.frombuffer(self._bools[name], dtype=bool))
            else:
                out.append(self._chunks[name])
        return out


def _filter_chunks(chunks: list[Any], keep: Any) -> list[Any]:
    """Arrow chunks without the rows ``keep`` leaves out; chunks that lose no row are not copied."""
    out = []
    offset = 0
    for chunk in chunks:
        part = keep[offset : offset + len(chunk)]
        offset += len(chunk)
        out.append(chunk if part.all() else chunk.filter(part))
    return out


def _frame_arrays(df: pd.DataFrame) -> dict[str, Any]:
    return {c: df[c].to_numpy() if df[c].dtype == bool else df[c].array for c in df.columns}


def _concat_arrays(old: Any, new: Any) -> Any:
    """Append pandas arrays of one column (the live frame's path without pyarrow)."""
    import numpy as np

    pd = _need_pandas()
    if isinstance(old, np.ndarray):
        return np.concatenate([old, new])
    if isinstance(old, pd.Categorical) and old.dtype != new.dtype:
        return pd.api.types.union_categoricals([old, new], ignore_order=True)
    return type(old)._concat_same_type([old, new])


@functools.cache
def _block_layout() -> tuple[Any, list[Any]]:
    """The column index of every message frame and each column's block placement (built once)."""
    import numpy as np

    return _need_pandas().Index(COLUMNS), [np.array([i]) for i in range(len(COLUMNS))]


def _wrap(arrays: dict[str, Any], length: int) -> pd.DataFrame:
    """A DataFrame over existing column arrays without copying them: one block per column, handed to pandas
    as they are (5x cheaper than the validating constructors, which matters on a live feed's reads)."""
    import numpy as np

    pd = _need_pandas()
    try:
        from pandas.api.internals import create_dataframe_from_blocks
    except ImportError:  # pragma: no cover - a pandas before 3.0
        return pd.DataFrame(arrays, columns=list(COLUMNS), copy=False)
    columns, placements = _block_layout()
    blocks = []
    for name, place in zip(COLUMNS, placements, strict=True):
        values = arrays[name]
        blocks.append((values.reshape(1, -1) if isinstance(values, np.ndarray) else values, place))
    return create_dataframe_from_blocks(blocks, index=pd.RangeIndex(length), columns=columns)


def _joined_chunks(old: Sequence[Any], new: Any) -> list[Any]:
    """A string column's Arrow chunks with ``new`` appended. Past MAX_CHUNKS, the small recent chunks are
    merged (cheap) unless they outgrew the first one: then all of it. Each row is copied O(log n) times in
    all, and reads never walk more than MAX_CHUNKS chunks."""
    import pyarrow as pa

    chunks = [*old, new] if len(new) or not old else list(old)
    if len(chunks) <= MAX_CHUNKS:
        return chunks
    rest = pa.concat_arrays(chunks[1:], memory_pool=_pool())
    if len(rest) > len(chunks[0]):
        return [pa.concat_arrays([chunks[0], rest], memory_pool=_pool())]
    return [chunks[0], rest]


def _joined_masks(old: Any, old_n: int, new: Any, new_n: int) -> Any:
    import numpy as np

    if old is None and new is None:
        return None
    return np.concatenate(
        [np.zeros(old_n, dtype=bool) if old is None else old, np.zeros(new_n, dtype=bool) if new is None else new]
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


# --- bulk ingest --------------------------------------------------------------------------------------


def _ingest(
    batches: Iterable[tuple[list[list[Any]], list[str | None]]],
    *,
    dedup: bool,
    duplicate_window: float,
    dedup_size: int | None,
) -> pd.DataFrame:
    if dedup_size is not None and (isinstance(dedup_size, bool) or not isinstance(dedup_size, int) or dedup_size < 1):
        raise E.UsageError(f"dedup_size must be a whole number >= 1, or None to remember every id (not {dedup_size!r})")
    if not _have_arrow():
        return _ingest_pandas(batches, dedup=dedup, duplicate_window=duplicate_window, dedup_size=dedup_size)
    store = _Columns()
    content = _ContentKeys() if dedup else None
    pending: list[list[Any]] = [[] for _ in COLUMNS]
    pending_sigs: list[str | None] = []
    count = 0

    def flush() -> None:
        nonlocal pending, pending_sigs, count
        if not count:
            return
        pieces = _pieces(pending)
        if content is not None:
            content.add(pending[_I_FROM], pending_sigs, pieces[_I_MEDIA], store.rows)
        store.add(pieces)
        pending = [[] for _ in COLUMNS]
        pending_sigs = []
        count = 0

    with _gc_paused():
        for columns, sigs in batches:
            for acc, values in zip(pending, columns, strict=True):
                acc.extend(values)
            if content is not None:
                pending_sigs.extend(sigs)
            count += len(sigs)
            if count >= BATCH_ROWS:
                flush()
        flush()
    if not store.rows:
        return empty_frame()
    pieces = store.pieces()
    keep = flags = None
    if content is not None:
        keep, flags = _bulk_duplicates(pieces, content, duplicate_window, dedup_size)
    arrays = _pandas_arrays(pieces, keep)
    if flags is not None:
        arrays["probable_duplicate"] = arrays["probable_duplicate"] | flags
    return _wrap(arrays, len(arrays["seq"]))


def _ingest_pandas(
    batches: Iterable[tuple[list[list[Any]], list[str | None]]],
    *,
    dedup: bool,
    duplicate_window: float,
    dedup_size: int | None,
) -> pd.DataFrame:
    """Bulk ingest without pyarrow: the stream's own rules, page by page (slower, same rows)."""
    state = P.PollState(P.PollPolicy(duplicate_window=duplicate_window, dedup_size=dedup_size or 2**62))
    frames: list[pd.DataFrame] = []
    pending: list[list[Any]] = [[] for _ in COLUMNS]
    count = 0
    with _gc_paused():
        for columns, sigs in batches:
            if dedup:
                columns = state.accept(columns, sigs, 0).columns
            for acc, values in zip(pending, columns, strict=True):
                acc.extend(values)
            count += len(columns[0])
            if count >= BATCH_ROWS:
                frames.append(_pandas_frame(pending))
                pending, count = [[] for _ in COLUMNS], 0
        if count:
            frames.append(_pandas_frame(pending))
    return concat_frames(frames) if frames else empty_frame()


_I_ID, _I_FROM, _I_CREATE = P.COL["message_id"], P.COL["from_user_id"], P.COL["create_time"]
_I_TYPES, _I_TEXT, _I_MEDIA = P.COL["item_types"], P.COL["text"], P.COL["has_media"]


class _ContentKeys:
    """What the duplicate check needs of each row's content, kept small: a 64-bit hash of (sender, signature),
    whether there is a signature at all, and the signatures of media messages only. Any other message's
    signature is its item types and text (:func:`~openclaw_nb.protocol.poll.content_signature`), which the
    frame holds anyway, so hash matches can be settled on exact strings without keeping a million of them."""

    def __init__(self) -> None:
        import array

        self.hashes = array.array("q")
        self.present = bytearray()
        self.media: dict[int, str | None] = {}

    def add(self, senders: list[Any], signatures: list[str | None], has_media: Any, offset: int) -> None:
        import numpy as np

        n = len(signatures)
        sig_hash = np.fromiter(map(hash, signatures), dtype=np.int64, count=n)
        sender_hash = np.fromiter(map(hash, senders), dtype=np.int64, count=n)
        with np.errstate(over="ignore"):
            combined = sender_hash * np.int64(1_000_003) + sig_hash  # wraps: equal keys, equal hashes
        self.hashes.frombytes(combined.data.cast("B"))
        self.present += bytes(s is not None for s in signatures)
        for i in np.flatnonzero(has_media).tolist():
            self.media[offset + i] = signatures[i]


def _bulk_duplicates(
    pieces: list[Any], content: _ContentKeys, window: float, dedup_size: int | None
) -> tuple[Any, Any]:
    """The stream's two duplicate rules over a whole ingest at once: ``(keep, flags)`` boolean masks over
    all rows (``keep`` None when nothing is dropped; ``flags`` over the kept rows).

    1. A ``message_id`` seen before is dropped. With ``dedup_size`` the memory is bounded as the live
       stream's is (an id more than ``dedup_size`` distinct ids back counts as new); ``None`` remembers all.
    2. A message whose sender and content (its signature) match the last unflagged message of that sender
       and content under another id, no more than ``window`` seconds apart, is flagged ``probable_duplicate``.

    Only rows whose id, or whose sender and content hash, occur more than once are visited in Python; the
    rest is decided with vectorised hashing, so the usual log (every id and text distinct) costs a few ns a
    row. Hash matches are settled on the exact strings.
    """
    import numpy as np

    pd = _need_pandas()
    ids, id_missing = pieces[_I_ID]
    n = len(ids)

    # 1. exact repeats of a message_id
    present = np.arange(n) if id_missing is None else np.flatnonzero(~id_missing)
    repeated = present[pd.Series(ids[present]).duplicated(keep=False).to_numpy()]
    drop = np.zeros(n, dtype=bool)
    if len(repeated):
        limit = dedup_size if dedup_size is not None else n + 1
        # The stream's id memory takes in every present id that is not dropped. A row whose id occurs once
        # is always taken in, so only the repeated ones are walked, counting what was taken in before them.
        once = np.ones(n, dtype=bool)
        once[repeated] = False
        if id_missing is not None:
            once &= ~id_missing
        taken_before = np.cumsum(once)
        taken_at: dict[int, int] = {}
        extra = 0
        for row, key in zip(repeated.tolist(), ids[repeated].tolist(), strict=True):
            taken = int(taken_before[row]) + extra
            at = taken_at.get(key)
            if at is not None and taken - at < limit:
                drop[row] = True
                continue
            taken_at[key] = taken + 1
            extra += 1
    keep = ~drop if drop.any() else None

    # 2. probable duplicates: same sender and signature, another id, within the window
    flags = np.zeros(n, dtype=bool)
    window_ms = int(window * 1000)
    if window_ms > 0:
        eligible = np.frombuffer(content.present, dtype=bool).copy()
        if keep is not None:
            eligible &= keep
        rows = np.flatnonzero(eligible)
        hashes = np.frombuffer(content.hashes, dtype=np.int64)
        candidates = rows[pd.Series(hashes[rows]).duplicated(keep=False).to_numpy()]
        if len(candidates):
            _flag_repeats(pieces, content, candidates, window_ms, flags)
    return keep, (flags if keep is None else flags[keep])


def _flag_repeats(pieces: list[Any], content: _ContentKeys, rows: Any, window_ms: int, flags: Any) -> None:
    """Walk the rows that may repeat a content in order, as the stream's detector does, setting ``flags``."""
    import numpy as np
    import pyarrow as pa

    take = pa.array(rows)

    def strings(j: int) -> list[Any]:
        return pa.chunked_array(pieces[j], type=pa.large_string()).take(take).to_pylist()

    senders, kinds, texts = strings(_I_FROM), strings(_I_TYPES), strings(_I_TEXT)
    create, create_missing = pieces[_I_CREATE]
    whens = (create[rows] if create_missing is None else np.where(create_missing[rows], 0, create[rows])).tolist()
    ids, id_missing = pieces[_I_ID]
    message_ids: list[Any] = ids[rows].tolist()
    if id_missing is not None:
        message_ids = [None if gone else v for v, gone in zip(message_ids, id_missing[rows].tolist(), strict=True)]
    media = content.media
    originals: dict[tuple[Any, Any], tuple[int, Any]] = {}
    for k, row in enumerate(rows.tolist()):
        signature = media[row] if row in media else P.content_signature(kinds[k], texts[k])
        key = (senders[k], signature)
        prior = originals.get(key)
        if prior is not None and prior[1] != message_ids[k] and abs(whens[k] - prior[0]) <= window_ms:
            flags[row] = True
        else:
            originals[key] = (whens[k], message_ids[k])


_I_RAW = P.COL["raw"]


def _quotes_by_id(df: pd.DataFrame) -> pd.DataFrame:
    """Give rows that quote by id only (``ref_msg`` with just ``svr_id``) the text of the quoted message when it
    is in the same input, as the live stream does from its history; one vectorised pass over the whole frame."""
    wanted = df["quoted"].isna() & df["quoted_svr_id"].notna()
    if not wanted.any():
        return df
    known = df.loc[df["message_id"].notna() & (df["text"] != ""), ["message_id", "text"]]
    texts = known.drop_duplicates("message_id", keep="last").set_index("message_id")["text"]
    df.loc[wanted, "quoted"] = df.loc[wanted, "quoted_svr_id"].map(texts)
    return df


def _page_batches(pages: Iterable[Any], raw: bool = True) -> Iterator[tuple[list[list[Any]], list[str | None]]]:
    for page in pages:
        if isinstance(page, (bytes, bytearray, memoryview)):
            decoded = P.decode_page(bytes(page), None, raw_spans=True, raw=raw)
        elif isinstance(page, str):
            decoded = P.decode_page(page.encode("utf-8"), None, raw_spans=True, raw=raw)
        elif isinstance(page, dict) or hasattr(page, "to_wire"):
            body = page.to_wire() if hasattr(page, "to_wire") else page
            msgs = body.get("msgs") or []
            columns, sigs, _ = P.decode_messages(msgs if isinstance(msgs, list) else [])
            if not raw:
                columns[_I_RAW] = [None] * len(sigs)
            yield columns, sigs
            continue
        else:
            raise E.UsageError(
                f"a getupdates page is its body (bytes or str), a decoded dict or a GetUpdatesResp, "
                f"not {type(page).__name__}"
            )
        yield decoded.columns, decoded.signatures


def frame_from_pages(
    pages: Iterable[Any],
    *,
    dedup: bool = True,
    duplicate_window: float = P.PollPolicy.duplicate_window,
    dedup_size: int | None = None,
    raw: bool = True,
) -> pd.DataFrame:
    """One row per message from raw getupdates pages (bodies as bytes/str, decoded dicts or GetUpdatesResp).

    The live stream's rules, applied to the whole input at once: a ``message_id`` seen before is dropped
    (``dedup``), and a repeat of the same sender and content under a new id within ``duplicate_window``
    seconds is flagged ``probable_duplicate``. Every id is remembered unless ``dedup_size`` bounds the memory
    of ids as the live stream's is (``PollPolicy.dedup_size``), to reproduce what a live feed showed.
    ``raw=False`` leaves the ``raw`` column empty: for big logs, where the messages' JSON text is most of
    the memory (about two thirds for plain text messages).

    >>> df = frame_from_pages(line.encode() for line in open("pages.jsonl"))   # doctest: +SKIP
    """
    df = _ingest(_page_batches(pages, raw), dedup=dedup, duplicate_window=duplicate_window, dedup_size=dedup_size)
    return _quotes_by_id(df)


def frame_from_messages(
    messages: Iterable[Any],
    *,
    dedup: bool = True,
    duplicate_window: float = P.PollPolicy.duplicate_window,
    dedup_size: int | None = None,
) -> pd.DataFrame:
    """One row per message from WeixinMessage objects, wire dicts or JSON text of single messages.

    Duplicates are handled as in :func:`frame_from_pages`.

    >>> df = frame_from_messages(client.get_updates().messages)   # doctest: +SKIP
    """

    def batches() -> Iterator[tuple[list[list[Any]], list[str | None]]]:
        chunk: list[Any] = []
        for msg in messages:
            chunk.append(msg)
            if len(chunk) >= 4096:
                columns, sigs, _ = P.decode_messages(chunk)
                yield columns, sigs
                chunk = []
        if chunk:
            columns, sigs, _ = P.decode_messages(chunk)
            yield columns, sigs

    return _quotes_by_id(_ingest(batches(), dedup=dedup, duplicate_window=duplicate_window, dedup_size=dedup_size))


# --- items -------------------------------------------------------------------------------------------

ITEM_COLUMNS = (
    "message_id",
    "seq",
    "from_user_id",
    "create_time",
    "item_index",
    "type",
    "msg_id",
    "text",
    "file_name",
    "size",
    "md5",
    "key_source",
    "has_full_url",
    "encode_type",
    "playtime_ms",
    "item",
)


def items_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per MessageItem of the messages in ``df`` (read from its ``raw`` column).

    ``item`` is the item's JSON; pass a row to ``client.download_media(row)`` to fetch its media.
    ``size`` is the plaintext size when the wire gives it (``file_item.len``), else the size field of the
    payload (``mid_size``, ``video_size``); ``key_source`` says which key rule applies.
    """
    from .protocol.inbound import key_source

    pd = _need_pandas()
    loads = json.loads
    rows: list[tuple[Any, ...]] = []
    cols = ["message_id", "seq", "from_user_id", "create_time", "raw"]
    for mid, seq, sender, created, raw in df[cols].itertuples(index=False, name=None):
        try:
            msg = loads(raw)
        except (TypeError, ValueError, RecursionError):
            continue  # a message that could not be read (decode_error) has no items to list
        items = msg.get("item_list") if isinstance(msg, dict) else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            field = P.C.ITEM_PAYLOAD_FIELD.get(kind) if isinstance(kind, int) else None
            found = item.get(field) if field else None
            payload: dict[str, Any] = found if isinstance(found, dict) else {}
            found_media = payload.get("media")
            media: dict[str, Any] = found_media if isinstance(found_media, dict) else {}
            size = payload.get("len")
            if isinstance(size, str) and size.isdigit():
                size = int(size)
            elif not isinstance(size, int):
                size = payload.get("mid_size") or payload.get("video_size") or payload.get("hd_size")
            text = P._item_text(item) or ""
            rows.append(
                (
                    mid,
                    seq,
                    sender,
                    created,
                    index,
                    P.item_type_name(kind),
                    P.read_uint64(item.get("msg_id")),
                    text,
                    P._str(payload.get("file_name")),
                    P._int(size),
                    P._str(payload.get("md5") or payload.get("video_md5")),
                    key_source(item) if type(kind) is int and kind in P.MEDIA_ITEM_TYPES else "none",
                    bool(media.get("full_url")),
                    P._int(payload.get("encode_type")),
                    P._int(payload.get("playtime")),
                    P.encode_message(item),
                )
            )
    data = {
        name: list(col) for name, col in zip(ITEM_COLUMNS, zip(*rows, strict=True) if rows else [()] * 16, strict=True)
    }
    out = pd.DataFrame(data, columns=list(ITEM_COLUMNS))
    for name in ("message_id", "msg_id"):
        out[name] = pd.array(out[name].tolist(), dtype="UInt64")
    for name in ("seq", "item_index", "size", "encode_type", "playtime_ms"):
        out[name] = pd.array(out[name].tolist(), dtype="Int64")
    for name in ("from_user_id", "text", "file_name", "md5", "item"):
        out[name] = pd.array(out[name].tolist(), dtype="str")
    out["create_time"] = pd.to_datetime(out["create_time"], utc=True).astype("datetime64[ms, UTC]")
    out["type"] = out["type"].astype("category")
    out["key_source"] = out["key_source"].astype("category")
    out["has_full_url"] = out["has_full_url"].astype(bool)
    return out


# --- display and redaction --------------------------------------------------------------------------


def redacted(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a message frame fit to show or share: ``context_token`` and secrets inside ``raw`` redacted
    (equal values still look equal)."""
    out = df.copy()
    if "context_token" in out:
        tokens = out["context_token"]
        uniques = {t: redact(t) for t in tokens.dropna().unique()}
        out["context_token"] = tokens.map(uniques).astype("str")
    if "raw" in out:
        out["raw"] = out["raw"].map(redact_text, na_action="ignore").astype("str")
    return out


def html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A small escaped HTML table (the live view's last messages)."""
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(f"<td style='text-align:left'>{html.escape(str(row.get(c, '')))}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# --- saving and reading logs --------------------------------------------------------------------------

PARTITION_COLUMNS = ("bot", "date")


def _bot_of(df: pd.DataFrame, bot_id: str | None) -> Any:
    from .store import safe_name

    pd = _need_pandas()
    if bot_id:
        return pd.Series([safe_name(bot_id)] * len(df), index=df.index, dtype="str")
    # Inbound messages are addressed to the bot; the bot's own messages come from it.
    bot = df["to_user_id"].where(df["message_type"].astype(str) != "bot", df["from_user_id"])
    return bot.fillna("unknown").map(lambda b: safe_name(b) if b.strip() else "unknown").astype("str")


def save_log(
    df: pd.DataFrame, path: str | os.PathLike[str], *, bot_id: str | None = None, redact_secrets: bool = True
) -> Path:
    """Save messages: ``*.jsonl`` appends one raw message per line; any other path is a Parquet dataset
    folder partitioned ``bot=<id>/date=<YYYY-MM-DD>/`` (new files are added; nothing is overwritten).

    With ``redact_secrets`` (default) context tokens and media keys are redacted, so the log can be shared;
    pass ``redact_secrets=False`` to keep them exact. DuckDB reads the dataset as it is:
    ``SELECT * FROM read_parquet('log/**/*.parquet', hive_partitioning=true)``.
    """
    target = Path(path)
    data = redacted(df) if redact_secrets else df
    if target.suffix.lower() in (".jsonl", ".ndjson"):
        from .journal import AppendLog

        out = AppendLog(target)  # starts on a fresh line after a torn one
        try:
            out.append(data["raw"].dropna())
        finally:
            out.close()  # fsync'd before returning
        return target
    if not _have_arrow():
        raise E.UsageError("saving Parquet needs pyarrow: pip install 'openclaw-nb[parquet]'")
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not len(data):
        target.mkdir(parents=True, exist_ok=True)
        return target
    table_df = data.assign(
        bot=_bot_of(data, bot_id),
        date=data["create_time"].dt.strftime("%Y-%m-%d").fillna("unknown").astype("str"),
    )
    table = pa.Table.from_pandas(table_df, preserve_index=False)
    pq.write_to_dataset(
        table,
        root_path=str(target),
        partition_cols=list(PARTITION_COLUMNS),
        basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet",
        existing_data_behavior="overwrite_or_ignore",
    )
    return target


def read_log(
    path: str | os.PathLike[str],
    *,
    bot: str | None = None,
    dedup: bool = True,
    duplicate_window: float = P.PollPolicy.duplicate_window,
) -> pd.DataFrame:
    """Read a log written by :func:`save_log` / ``feed.save`` back into a message frame (same dtypes).

    A JSONL file is re-flattened (``probable_duplicate`` recomputed); a Parquet dataset is read as saved,
    optionally only one ``bot``. Messages saved twice (same ``message_id``) are read once. A JSONL file whose
    last line was cut short (a crash mid-append) reads every whole line and warns (``TornLineWarning``).
    """
    pd = _need_pandas()
    source = Path(path)
    if not source.exists():
        raise E.UsageError(f"no log at {source}")
    if source.is_file() and source.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        from .journal import read_lines

        # Bytes, not text: a line with invalid UTF-8 is repaired on its own (U+FFFD), not fatal to the file.
        # A torn last line (a crash mid-append) is left out, with a warning.
        lines, _torn = read_lines(source)
        return frame_from_messages(lines, dedup=dedup, duplicate_window=duplicate_window)
    if not _have_arrow():
        raise E.UsageError("reading Parquet needs pyarrow: pip install 'openclaw-nb[parquet]'")
    import pyarrow as pa
    import pyarrow.dataset as ds

    from .store import safe_name

    dataset = ds.dataset(str(source), format="parquet", partitioning="hive")
    flt = (ds.field("bot") == safe_name(bot)) if bot else None
    table = dataset.to_table(filter=flt)
    keep = [c for c in COLUMNS if c in table.column_names]
    if not table.num_rows:
        return empty_frame()
    table = table.select(keep)
    mapping = {pa.uint64(): pd.UInt64Dtype(), pa.int64(): pd.Int64Dtype()}
    df = table.to_pandas(types_mapper=mapping.get)
    for name, names in CATEGORY_NAMES.items():
        df[name] = (
            df[name]
            .astype("category")
            .cat.set_categories(list(names.values()) + [c for c in df[name].cat.categories if c not in names.values()])
        )
    for name in TIME_COLUMNS:
        df[name] = df[name].astype("datetime64[ms, UTC]")
    for name in STR_COLUMNS:
        df[name] = df[name].astype("str")
    order = [c for c in ("create_time", "seq") if c in df]
    df = df.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    if dedup:
        has_id = df["message_id"].notna()
        df = df[~(df["message_id"].duplicated(keep="first") & has_id)].reset_index(drop=True)
    return df[[c for c in COLUMNS if c in df]]


# --- analysis helpers ---------------------------------------------------------------------------------


def messages_per_user(df: pd.DataFrame) -> pd.DataFrame:
    """Inbound messages per user: count, first and last time, media count, probable duplicates."""
    inbound = df[df["message_type"].astype(str) != "bot"]
    grouped = inbound.groupby("from_user_id", observed=True, sort=False)
    out = grouped.agg(
        messages=("seq", "size"),
        first=("create_time", "min"),
        last=("create_time", "max"),
        media=("has_media", "sum"),
        probable_duplicates=("probable_duplicate", "sum"),
    )
    return out.sort_values("messages", ascending=False)


def per_minute(df: pd.DataFrame, freq: str = "1min") -> pd.Series:
    """Messages per time bucket (``freq``: any pandas offset, e.g. ``"1min"``, ``"15s"``, ``"1h"``)."""
    times = df["create_time"].dropna()
    pd = _need_pandas()
    if times.empty:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="int64", name="messages")
    counts = pd.Series(1, index=pd.DatetimeIndex(times)).resample(freq).sum()
    counts.name = "messages"
    return counts


def timeline(df: pd.DataFrame, freq: str = "1min", ax: Any = None, by_user: bool = False) -> Any:
    """Plot messages per minute (one line per user with ``by_user``); returns the matplotlib Axes.

    Needs matplotlib (``pip install 'openclaw-nb[plot]'``).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise E.UsageError("timeline() plots with matplotlib: pip install 'openclaw-nb[plot]'") from None
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    if by_user:
        for user, group in df.groupby("from_user_id", observed=True):
            counts = per_minute(group, freq)
            if len(counts):  # a user whose messages carry no time has nothing to draw
                counts.plot(ax=ax, label=str(user))
        ax.legend(loc="upper left", fontsize="small")
    else:
        per_minute(df, freq).plot(ax=ax)
    ax.set_ylabel(f"messages per {freq}")
    ax.set_xlabel("time (UTC)")
    return ax


def _clock(when: Any, fmt: str) -> str:
    try:
        return str(when.strftime(fmt))
    except (AttributeError, ValueError):  # NaT: the message carried no create_time_ms
        return ""


class Conversation:
    """One user's messages as chat bubbles (``_repr_html_``) or as plain lines (``repr``)."""

    def __init__(self, rows: list[dict[str, Any]], user: str) -> None:
        self.rows = rows
        self.user = user

    def __repr__(self) -> str:
        lines = [f"conversation with {self.user} ({len(self.rows)} messages)"]
        for r in self.rows:
            who = "bot" if r["outgoing"] else "user"
            lines.append(
                f"{_clock(r['time'], '%Y-%m-%d %H:%M:%S'):19} {who:>4}: {r['text'] or '[' + r['item_types'] + ']'}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = [
            "<div style='font-family:sans-serif;max-width:640px'>",
            f"<div style='color:#666;margin-bottom:6px'>conversation with <b>{html.escape(self.user)}</b> "
            f"({len(self.rows)} messages)</div>",
        ]
        for r in self.rows:
            side = "flex-end" if r["outgoing"] else "flex-start"
            color = "#95ec69" if r["outgoing"] else "#f1f1f1"
            body = html.escape(r["text"]) if r["text"] else f"<i>[{html.escape(r['item_types'])}]</i>"
            if r["quoted"]:
                quote = html.escape(r["quoted"])
                body = f"<div style='color:#777;border-left:3px solid #ccc;padding-left:4px'>{quote}</div>{body}"
            flag = " <span title='probable duplicate'>⧉</span>" if r["dup"] else ""
            parts.append(
                f"<div style='display:flex;justify-content:{side};margin:3px 0'>"
                f"<div style='background:{color};border-radius:8px;padding:5px 9px;max-width:75%;white-space:pre-wrap'>"
                f"{body}<div style='font-size:70%;color:#888'>{_clock(r['time'], '%H:%M:%S')}{flag}</div></div></div>"
            )
        parts.append("</div>")
        return "".join(parts)


def conversation(df: pd.DataFrame, user: str, *, limit: int = 200) -> Conversation:
    """The last ``limit`` messages between the bot and ``user``: inbound on the left, the bot's on the right.

    >>> conversation(feed.frame, "alice@im.wechat")   # displays as chat bubbles in a notebook  # doctest: +SKIP
    """
    mine = df[(df["from_user_id"] == user) | (df["to_user_id"] == user)].tail(limit)
    rows = []
    for r in mine.itertuples(index=False):
        rows.append(
            {
                "outgoing": str(r.message_type) == "bot" or r.to_user_id == user,
                "time": r.create_time,
                "text": r.text if isinstance(r.text, str) else "",
                "item_types": r.item_types if isinstance(r.item_types, str) else "",
                "quoted": r.quoted if isinstance(r.quoted, str) else "",
                "dup": bool(r.probable_duplicate),
            }
        )
    return Conversation(rows, user)


def reply_latency(df: pd.DataFrame, sent: pd.DataFrame | None = None) -> pd.DataFrame:
    """For each inbound message, the bot's next message to that user and the delay.

    Bot messages come from ``df`` rows with ``message_type == "bot"`` and, when given, from ``sent``: any
    frame with ``to_user_id`` and a ``create_time`` (or ``time``) column, such as a log of sends.
    Columns: ``user``, ``inbound_time``, ``message_id``, ``reply_time``, ``latency`` (NaT when unanswered).
    """
    pd = _need_pandas()
    inbound = df[df["message_type"].astype(str) != "bot"][["from_user_id", "create_time", "message_id"]]
    inbound = inbound.rename(columns={"from_user_id": "user", "create_time": "inbound_time"}).dropna(
        subset=["inbound_time"]
    )
    replies = [df[df["message_type"].astype(str) == "bot"][["to_user_id", "create_time"]]]
    if sent is not None:
        time_col = "create_time" if "create_time" in sent else "time"
        replies.append(sent[["to_user_id", time_col]].rename(columns={time_col: "create_time"}))
    bot = pd.concat(replies, ignore_index=True).rename(columns={"to_user_id": "user", "create_time": "reply_time"})
    bot = bot.dropna(subset=["reply_time"])
    bot["reply_time"] = pd.to_datetime(bot["reply_time"], utc=True).astype("datetime64[ms, UTC]")
    bot["user"] = bot["user"].astype("str")
    inbound["user"] = inbound["user"].astype("str")
    left = inbound.sort_values("inbound_time", kind="stable")
    right = bot.sort_values("reply_time", kind="stable")
    merged = pd.merge_asof(
        left,
        right,
        left_on="inbound_time",
        right_on="reply_time",
        by="user",
        direction="forward",
        allow_exact_matches=True,
    )
    merged["latency"] = merged["reply_time"] - merged["inbound_time"]
    return merged[["user", "inbound_time", "message_id", "reply_time", "latency"]]
