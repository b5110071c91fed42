"""The README's QR login with the magics, run as "Run All" does in a real kernel: the cells back to back, no wait
in between. %wx_sim scan comes before the QR fetch has answered and waits for it; %wx_sim confirm waits for the
login to end, so the next cell finds `wx` logged in."""

from __future__ import annotations

from pathlib import Path

import nbformat

from . import nbrun

CELLS = [
    "%load_ext openclaw_nb",
    "%wx_connect --sim --qr",
    "%wx_login",
    "%wx_sim scan",
    "%wx_sim confirm",
    "print('logged in:', wx.bot_id, bool(wx.token))",
]


def test_qr_login_cells_run_back_to_back_in_a_kernel(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    path = tmp_path / "run-all.ipynb"
    nbformat.write(nb, path)
    with nbrun.kernel_env(tmp_path / "home"):
        done, _ = nbrun.execute(path, tmp_path)  # raises on any failed cell
    shown = [nbrun.text(cell) for cell in done.cells]
    assert nbrun.WIDGET_MIME in nbrun.mimes(done.cells[2]), "the login widget"
    assert shown[3].startswith("QR code ") and shown[3].strip().endswith(": scaned"), shown[3]
    assert ": confirmed; Logged in as bot " in shown[4], shown[4]
    bot = shown[4].split("Logged in as bot ", 1)[1].split(",", 1)[0]
    assert shown[5].strip() == f"logged in: {bot} True"
