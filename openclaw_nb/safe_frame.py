"""A message frame that keeps its secrets but never shows them: :class:`MessageFrame`.

``feed.frame`` and ``feed.items_frame()`` are. Their data is exact (``context_token`` is what a reply needs),
but their displays — the text ``repr`` in a terminal, the HTML table Jupyter renders, ``to_string``/``to_html``
— show ``context_token`` and the secrets inside ``raw`` and ``item`` redacted, as
:func:`openclaw_nb.frames.redacted` does. Frames derived from one (``feed.frame.tail()``, a filter) display the
same way; ``pd.DataFrame(feed.frame)`` is a plain frame again.

Imports pandas: the feed imports this module only when it builds a frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .protocol.redact import redact, redact_text

#: Columns whose values a display redacts: the context token, and the JSON of a message (``raw``) or of one
#: of its items (``item``, in ``items_frame()``), which hold media keys and download parameters.
SECRET_COLUMNS = ("context_token", "raw", "item")


def _shown_positions(n: int) -> list[int] | None:
    """The row positions a display of ``n`` rows shows (None: all of them), per pandas' display options."""
    max_rows = pd.get_option("display.max_rows")
    if max_rows is None or n <= max_rows:
        return None
    min_rows = pd.get_option("display.min_rows") or max_rows
    half = min(max_rows, min_rows) // 2 + 1
    return [*range(half), *range(max(half, n - half), n)]


def display_copy(df: pd.DataFrame, *, every_row: bool = False) -> pd.DataFrame:
    """A plain frame to display in place of ``df``: the secret columns redacted in the rows a display shows
    (the rest is never shown, so it is not worth redacting a million rows to print ten), or in every row."""
    out = pd.DataFrame(df, copy=False)  # a plain DataFrame over the same data
    present = [c for c in SECRET_COLUMNS if c in out.columns]
    if not present:
        return out
    out = out.copy(deep=False)
    rows = None if every_row else _shown_positions(len(out))
    for name in present:
        column = out[name].astype(object)
        positions: Sequence[int]
        if rows is None:
            values = column.tolist()
            positions = range(len(values))
        else:
            values = [column.iat[i] for i in rows]
            positions = rows
        fix = redact if name == "context_token" else redact_text
        cache: dict[Any, str] = {}
        shown = column.copy()
        for pos, value in zip(positions, values, strict=True):
            if isinstance(value, str) and value:
                if value not in cache:
                    cache[value] = fix(value)
                shown.iat[pos] = cache[value]
        out[name] = shown
    return out


class MessageFrame(pd.DataFrame):
    """A DataFrame whose displays redact :data:`SECRET_COLUMNS` (its data does not: see the module)."""

    @property
    def _constructor(self) -> Any:
        return MessageFrame

    def __repr__(self) -> str:
        return repr(display_copy(self))

    def _repr_html_(self) -> str | None:
        return display_copy(self)._repr_html_()

    def _repr_latex_(self) -> str | None:
        return display_copy(self)._repr_latex_()

    def to_string(self, *args: Any, **kwargs: Any) -> Any:
        return display_copy(self, every_row=True).to_string(*args, **kwargs)

    def to_html(self, *args: Any, **kwargs: Any) -> Any:
        return display_copy(self, every_row=True).to_html(*args, **kwargs)

    def to_markdown(self, *args: Any, **kwargs: Any) -> Any:
        return display_copy(self, every_row=True).to_markdown(*args, **kwargs)


def safe_frame(df: pd.DataFrame) -> MessageFrame:
    """``df`` as a :class:`MessageFrame` (the same data, no copy)."""
    return df if isinstance(df, MessageFrame) else MessageFrame(df, copy=False)
