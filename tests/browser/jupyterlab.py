"""What the browser tests share: a JupyterLab server in a temp dir whose kernel is this venv's Python, the
Chromium that Playwright drives, and small helpers to run a notebook's cells with the keyboard.

JupyterLab runs on 127.0.0.1 with a token, a free port and every settings/workspace/runtime dir in a temp
folder; the repository's notebooks are copied into its root. Without Chromium or Playwright the tests skip,
except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds to wait for JupyterLab to answer, for the notebook to open, and for the kernel to do its part.
SERVER_START = 90.0
UI = 60.0
KERNEL = 60.0

#: JupyterLab settings that keep the tests deterministic: every cell in the DOM (no virtual scrolling, so
#: off-screen cells can be found), and no news or update checks (they go to the network and pop toasts).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def need_browser() -> None:
    """Skip without Chromium or Playwright; under CI their absence fails the test instead."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[test]')")
    if not missing:
        return
    reason = "the browser test needs " + " and ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must run it (.ci/run installs chromium)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"


@contextmanager
def jupyterlab(tmp_path: Path) -> Iterator[Lab]:
    """A JupyterLab server serving a copy of notebooks/ until the block ends (then it and its kernels stop)."""
    need_browser()
    root = tmp_path / "root"
    root.mkdir()
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)
    settings = tmp_path / "settings"
    for name, value in LAB_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value), encoding="utf-8")
    # The kernel is this venv's Python, whatever kernelspecs the machine has.
    spec = tmp_path / "jupyter-path" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    token = os.urandom(16).hex()
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_PATH": str(tmp_path / "jupyter-path"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "OPENCLAW_NB_HOME": str(tmp_path / "openclaw_nb"),
    }
    log = tmp_path / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI and these machines run as root; the server only listens on loopback
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/status", params={"token": token}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not answer in {SERVER_START} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)  # polling a subprocess's port: there is no event to wait on
        yield Lab(url, token, root, log)
    finally:
        # SIGTERM lets the server shut its kernels down (and with them the kernel's simulator); the process
        # group also catches a kernel that outlives the server.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_connected_kernel(lab: Lab) -> None:
    """Cells run before the page's kernel connection exists are silently skipped: wait until the server sees
    a page connected to an idle kernel."""
    deadline = time.monotonic() + UI
    headers = {"Authorization": f"token {lab.token}"}
    while True:
        answer = httpx.get(f"{lab.url}/api/kernels", headers=headers, timeout=5)
        # A busy server may answer an error object instead of the list for a moment: ask again.
        kernels = answer.json() if answer.status_code == 200 else answer.text
        if isinstance(kernels, list) and any(
            k.get("connections", 0) >= 1 and k.get("execution_state") == "idle" for k in kernels
        ):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no kernel connected to the page after {UI} s: {kernels}\n{lab.log.read_text()[-3000:]}"
            )
        time.sleep(0.1)  # the server's kernel list has no push notification to wait on


def cell_index(notebook: str, cell_id: str) -> int:
    """Index of a cell by its id (the checks of tests/notebooks rely on the same ids)."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    for i, c in enumerate(nb.cells):
        if c.get("id") == cell_id:
            return i
    raise AssertionError(f"{notebook} lost its cell with id {cell_id!r}")


def last_code_cell_index(notebook: str) -> int:
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    return max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


def launch_chromium(pw: Any) -> Any:
    """Debian's Chromium, headless, through Playwright."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
