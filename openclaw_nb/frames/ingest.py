"""Bulk ingest: many getupdates pages or messages at once into one frame (batched, duplicates flagged,
ID-only quotes resolved in one pass at the end).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .. import errors as E
from ..protocol import poll as P

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
from .schema import (
    COLUMNS,
    _Columns,
    _gc_paused,
    _have_arrow,
    _need_pandas,
    _pandas_arrays,
    _pandas_frame,
    _pieces,
    _wrap,
    concat_frames,
    empty_frame,
)

#: Rows per Arrow batch in bulk ingest: big enough to amortise per-batch costs, small enough to keep the
#: transient Python objects of one batch cheap.
BATCH_ROWS = 1 << 14


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


