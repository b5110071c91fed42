"""What a notebook does with a message frame: one row per item, a redacted copy to show or share, small
HTML tables, and the analysis helpers (messages per user, per minute, a timeline, one conversation, reply
latency).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import errors as E
from ..protocol import poll as P
from ..protocol.redact import redact, redact_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
from .schema import _need_pandas

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
    from ..protocol.inbound import key_source

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
