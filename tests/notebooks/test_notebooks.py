"""Every notebook runs top to bottom against the embedded simulator and shows what it should; and none is
committed with outputs. (Run times are printed, not asserted; ``benchmarks/`` owns timing.)"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from . import nbrun

NOTEBOOKS = nbrun.notebooks()


def test_there_are_notebooks_and_each_has_checks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert "01-login.ipynb" in names
    assert sorted(nbrun.CHECKS) == names, "add output checks for new notebooks in tests/notebooks/nbrun.py"


def test_output_text_glues_a_print_split_across_stream_chunks() -> None:
    cell = {
        "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "52"},
            {"output_type": "stream", "name": "stdout", "text": " rows read back\n"},
            {"output_type": "stream", "name": "stderr", "text": "warn\n"},
            {"output_type": "execute_result", "data": {"text/plain": ["a", "b"]}},
            {"output_type": "stream", "name": "stdout", "text": ["x", "y"]},
        ]
    }
    assert nbrun.text(cell) == "52 rows read back\n\nwarn\n\nab\nxy"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [c.get("id") for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in nb.metadata, "widget state is an output too: clear it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless_and_shows_its_results(path: Path, tmp_path: Path) -> None:
    with nbrun.kernel_env(tmp_path / "home"):
        seconds = nbrun.run_and_check(path, tmp_path)
    print(f"{path.name}: {seconds:.1f} s")
    # Simulator logins are never saved to the data folder.
    assert not list((tmp_path / "home" / "openclaw_nb").glob("accounts/*.json"))
