"""The message frame's schema: one row per message, the columns of :mod:`openclaw_nb.protocol.poll` given
their dtypes (``message_id``/``quoted_svr_id`` ``UInt64``, exact above 2^53; times ``datetime64[ms, UTC]``;
``message_type``/``message_state`` categories of readable names; strings ``str``), and the one path that turns
rows into those columns (numpy data and masks, Arrow string chunks) and columns into a DataFrame.
"""

from __future__ import annotations

import functools
import gc
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import errors as E
from ..protocol import poll as P

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


