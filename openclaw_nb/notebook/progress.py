"""The progress bar of Jupyter: an ipywidgets bar with a label in the current cell's output, the ``progress``
view of :mod:`openclaw_nb.progress` (which picks it, a rich bar or none).
"""

from __future__ import annotations

from ..progress import size_text

#: A widget bar is redrawn at most this many times per transfer: every update is a comm message to the browser.
_WIDGET_STEPS = 200


class WidgetProgress:
    """An ipywidgets bar with a label, displayed in the current cell's output."""

    def __init__(self, description: str, unit: str = "bytes") -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self._bar = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="50%"))
        self._label = widgets.HTML(value=_escape(description))
        self._description = description
        self._box = widgets.HBox([self._bar, self._label])
        self._done = 0
        self._total = 0
        self._step = 1
        self._shown = False
        self._display = display
        self._unit = unit

    def start(self, total: int) -> None:
        if not self._shown:
            self._display(self._box)
            self._shown = True
        self._total = max(total, 1)
        self._step = max(1, self._total // _WIDGET_STEPS)
        self._done = 0
        self._bar.max = self._total
        self._bar.value = 0

    def advance(self, nbytes: int) -> None:
        self._done += nbytes
        if self._done - self._bar.value >= self._step or self._done >= self._total:
            self._bar.value = min(self._done, self._total)
            self._label.value = _escape(f"{self._description}: {self._amount(self._done, self._total)}")

    def close(self, ok: bool) -> None:
        self._bar.bar_style = "success" if ok else "danger"
        if not ok:
            self._label.value = _escape(f"{self._description}: failed")


    def _amount(self, done: int, total: int) -> str:
        if self._unit == "bytes":
            return f"{size_text(done)} of {size_text(total)}"
        return f"{done:,} of {total:,} {self._unit}"


def _escape(text: str) -> str:
    import html

    return html.escape(text)
