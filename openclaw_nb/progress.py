"""Progress bars: an ipywidgets bar in Jupyter (the notebook layer's ``progress`` view), a rich bar in a
terminal, nothing when disabled or piped.

Uploads count bytes (only transfers above :data:`THRESHOLD` show a bar by default; small ones finish before a
bar would help); a broadcast counts messages (``unit="messages"``). IPython, ipywidgets and rich are imported
only when a bar is actually shown.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, cast

from . import env

#: Transfers above this many bytes show a progress bar unless told otherwise.
THRESHOLD = 1 << 20


class Progress(Protocol):
    """What an upload reports to. ``start`` may be called again (a retry starts over)."""

    def start(self, total: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def close(self, ok: bool) -> None: ...


class NullProgress:
    """Shows nothing."""

    def start(self, total: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def close(self, ok: bool) -> None:
        pass


class RichProgress:
    """A rich bar on stderr with speed and time left (bytes, or messages with ``unit="messages"``)."""

    def __init__(self, description: str, unit: str = "bytes") -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as _Bar

        if unit == "bytes":
            columns: tuple[Any, ...] = (DownloadColumn(), TransferSpeedColumn())
        else:
            columns = (MofNCompleteColumn(),)
        self._bar = _Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            *columns,
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._description = description
        self._task: Any = None

    def start(self, total: int) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(self._description, total=total)
        else:
            self._bar.reset(self._task, total=total, description=f"{self._description} (retry)")

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, nbytes)

    def close(self, ok: bool) -> None:
        if self._task is not None:
            if not ok:
                self._bar.update(self._task, description=f"{self._description} [red]failed[/red]")
            self._bar.stop()


def size_text(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,} B"


def make_progress(total: int, description: str, enabled: bool | None = None, unit: str = "bytes") -> Progress:
    """The bar for a transfer of ``total`` bytes: ``enabled=None`` shows one above 1 MiB in Jupyter (widget)
    or on a terminal (rich); ``True`` always shows one; ``False`` never does. Any other ``unit`` (such as
    ``"messages"``) counts things instead, and ``enabled=None`` shows it whatever the total."""
    if enabled is False or (enabled is None and unit == "bytes" and total <= THRESHOLD):
        return NullProgress()
    # A byte bar is made with the description alone, as before units existed (callers may subclass them).
    extra = () if unit == "bytes" else (unit,)
    if env.has_widgets():
        return cast(Progress, env.view("progress")(description, *extra))
    if enabled or sys.stderr.isatty():
        return RichProgress(description, *extra)
    return NullProgress()
