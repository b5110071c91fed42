"""Message logs on disk: Parquet (or JSON Lines without pyarrow) partitioned by bot and date, written
atomically, read back with the frame's dtypes.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors as E
from ..protocol import poll as P

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
from .analysis import redacted
from .ingest import frame_from_messages
from .schema import CATEGORY_NAMES, COLUMNS, STR_COLUMNS, TIME_COLUMNS, _have_arrow, _need_pandas, empty_frame

# --- saving and reading logs --------------------------------------------------------------------------

PARTITION_COLUMNS = ("bot", "date")


def _bot_of(df: pd.DataFrame, bot_id: str | None) -> Any:
    from ..store import safe_name

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
        from ..journal import AppendLog

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
        from ..journal import read_lines

        # Bytes, not text: a line with invalid UTF-8 is repaired on its own (U+FFFD), not fatal to the file.
        # A torn last line (a crash mid-append) is left out, with a warning.
        lines, _torn = read_lines(source)
        return frame_from_messages(lines, dedup=dedup, duplicate_window=duplicate_window)
    if not _have_arrow():
        raise E.UsageError("reading Parquet needs pyarrow: pip install 'openclaw-nb[parquet]'")
    import pyarrow as pa
    import pyarrow.dataset as ds

    from ..store import safe_name

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


