"""The ``lab`` fixture of the browser tests: a JupyterLab server with the repository's notebooks (see
tests/browser/jupyterlab.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .jupyterlab import Lab, jupyterlab


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with jupyterlab(tmp_path) as server:
        yield server
