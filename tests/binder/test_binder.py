"""The Binder files are enough: a fresh venv built only from binder/ (requirements.txt, then postBuild) has
JupyterLab 4 with the widgets extension enabled, and runs every notebook top to bottom with its checks.

It installs from the package index into a new venv (a pip cache makes repeat runs quicker), so it is the
slowest test of the suite; it is marked ``slow`` but runs in CI like everything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"
#: Generous: a cold pip cache downloads JupyterLab, pandas, pyarrow and matplotlib.
INSTALL_TIMEOUT = 900


def run(cmd: list[str], *, env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def test_binder_environment_runs_every_notebook(tmp_path: Path) -> None:
    venv = tmp_path / "binder-venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # As on Binder: the venv's bin first on PATH (postBuild calls plain `python`), nothing of ours leaking in.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "JUPYTER_PATH")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(BINDER / "requirements.txt")],
        env=env,
        timeout=INSTALL_TIMEOUT,
    )
    run(["bash", str(BINDER / "postBuild")], env=env, timeout=INSTALL_TIMEOUT)
    installed = time.perf_counter() - started

    versions = run(
        [
            str(python),
            "-c",
            "import jupyterlab as j, ipywidgets as w, openclaw_nb as o; print(j.__version__,w.__version__,o.__file__)",
        ],
        env=env,
        timeout=120,
    ).split()
    assert versions[0].startswith("4."), f"Binder would open JupyterLab {versions[0]}, not 4.x"
    assert versions[1].startswith("8."), f"ipywidgets {versions[1]}, not 8.x"
    assert Path(versions[2]).is_relative_to(REPO), "postBuild must install the package from this checkout"
    # jupyter prints the extension list on stderr
    listing = subprocess.run(
        [str(venv / "bin" / "jupyter"), "labextension", "list"], cwd=REPO, env=env, capture_output=True, text=True
    )
    extensions = listing.stdout + listing.stderr
    widgets = [line for line in extensions.splitlines() if "@jupyter-widgets/jupyterlab-manager" in line]
    assert widgets and "enabled" in widgets[0] and "OK" in widgets[0], extensions

    # The notebooks, each with its checks and time budget, in the Binder venv's own kernel.
    out = run([str(python), str(REPO / "tests" / "notebooks" / "nbrun.py")], env=env, timeout=600)
    print(out)
    print(f"binder venv installed in {installed:.0f} s; whole test {time.perf_counter() - started:.0f} s")
    assert out.count("ok ") == len(list((REPO / "notebooks").glob("*.ipynb"))), out
