"""The notebooks' plots read well: notebook 03's timeline legend sits beside the lines, not over them, and the
counts of notebooks 03 and 04 have whole-number ticks. Each plotting cell's own code is run here, as the notebook
has it, on a small frame (the notebooks themselves run in tests/notebooks/test_notebooks.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import nbformat
import pandas as pd
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from openclaw_nb import frames

from . import nbrun

matplotlib.use("Agg")

#: Messages per user in the test frame: small counts, where default ticks would be 0.5, 1.5, ...
COUNTS = {"alice@im.wechat": 3, "bob@im.wechat": 2, "carol@im.wechat": 4}


def cell_code(notebook: str, cell_id: str) -> str:
    nb = nbformat.read(nbrun.NOTEBOOKS / notebook, as_version=4)
    return TransformerManager().transform_cell(nbrun.cell(nb, cell_id).source)


def small_frame(counts: dict[str, int] = COUNTS) -> pd.DataFrame:
    rows = []
    start = pd.Timestamp("2026-01-05 09:00", tz="UTC")
    for i, (user, count) in enumerate(counts.items()):
        rows += [(user, start + pd.Timedelta(minutes=7 * i + 3 * j)) for j in range(count)]
    return pd.DataFrame(rows, columns=["from_user_id", "create_time"])


def whole_numbers(ticks: Any) -> bool:
    return all(float(t).is_integer() for t in ticks)


def test_notebook_03_timeline_legend_beside_the_lines_and_integer_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    namespace: dict[str, Any] = {"frames": frames, "df": small_frame()}
    exec(compile(cell_code("03-message-analysis.ipynb", "analysis-timeline"), "analysis-timeline", "exec"), namespace)
    ax = namespace["ax"]
    fig = ax.figure
    try:
        fig.canvas.draw()
        legend = ax.get_legend()
        assert legend is not None and len(legend.get_texts()) == len(COUNTS)
        box = legend.get_window_extent()
        assert not box.overlaps(ax.get_window_extent()), "the legend covers the plot"
        assert box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, "the legend is cut off by the figure's edge"
        for line in ax.get_lines():
            points = line.get_transform().transform(line.get_xydata())
            assert not any(box.contains(x, y) for x, y in points)
        assert whole_numbers(ax.get_yticks()), list(ax.get_yticks())
    finally:
        plt.close(fig)


class _Shell:
    """What the cell's magics reach through get_ipython(): %wx_updates frame gives the test frame."""

    def run_line_magic(self, name: str, line: str) -> Any:
        assert (name, line) == ("wx_updates", "frame"), (name, line)
        return small_frame({"alice@im.wechat": 2, "bob@im.wechat": 1, "carol@im.wechat": 1})  # ticks 0.25 apart


def test_notebook_04_chart_has_integer_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import figure

    made: list[Any] = []

    class Recorded(figure.Figure):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(figure, "Figure", Recorded)
    namespace: dict[str, Any] = {"get_ipython": _Shell}
    exec(compile(cell_code("04-teaching-demo.ipynb", "teach-09"), "teach-09", "exec"), namespace)
    try:
        path = namespace["stats_chart"]()
        assert Path(path).read_bytes().startswith(b"\x89PNG")
        (fig,) = made
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.get_xticklabels()] == ["alice", "bob", "carol"]
        assert whole_numbers(ax.get_yticks()), list(ax.get_yticks())
    finally:
        namespace["scratch"].cleanup()
