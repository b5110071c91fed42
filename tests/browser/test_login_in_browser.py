"""The login widget in a real browser: JupyterLab serves notebooks/01-login.ipynb, Debian's Chromium runs it
through Playwright, and we look at what a person would see.

JupyterLab runs on 127.0.0.1 with a token, a free port and every settings/workspace/runtime dir in a temp
folder; its kernel is this venv's Python. The notebook's cells up to ``client.login()`` are run with the
keyboard, then the QR image must be on screen; Run → "Run Selected Cell and All Below" lets the simulated
phone scan and confirm, and the widget's status must turn to the confirmed login. Screenshots of both moments
go to tests/artifacts/ (ignored by git).

Skipped when Chromium or Playwright is missing, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "01-login.ipynb"
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

#: JupyterLab settings that keep the test deterministic: every cell in the DOM (no virtual scrolling, so
#: off-screen cells can be found), and no news or update checks (they go to the network and pop toasts).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _need_browser() -> None:
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    _need_browser()
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
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
    port = _free_port()
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


def _wait_for_connected_kernel(lab: Lab) -> None:
    deadline = time.monotonic() + UI
    headers = {"Authorization": f"token {lab.token}"}
    while True:
        kernels = httpx.get(f"{lab.url}/api/kernels", headers=headers, timeout=5).json()
        if any(k.get("connections", 0) >= 1 and k.get("execution_state") == "idle" for k in kernels):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no kernel connected to the page after {UI} s: {kernels}\n{lab.log.read_text()[-3000:]}"
            )
        time.sleep(0.1)  # the server's kernel list has no push notification to wait on


def _last_code_cell_index() -> int:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


def _cell_index(cell_id: str) -> int:
    """Index of a cell by its id (the checks of tests/notebooks rely on the same ids)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for i, c in enumerate(nb.cells):
        if c.get("id") == cell_id:
            return i
    raise AssertionError(f"01-login.ipynb lost its cell with id {cell_id!r}")


def test_without_chromium_it_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _need_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run it"):
        _need_browser()


@pytest.mark.browser
def test_qr_login_widget_in_chromium(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    login_index = _cell_index("login-widget")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.set_default_timeout(UI * 1000)
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            cells = notebook.locator(".jp-Cell")
            expect(cells.first).to_be_visible()
            # Cells run before the page's kernel connection exists are silently skipped: wait until the server
            # sees the page connected to an idle kernel.
            _wait_for_connected_kernel(lab)

            # Run the cells up to and including client.login() with Shift+Enter, as a person would.
            cells.first.click()
            page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and selects the next
            for _ in range(login_index + 1):
                page.keyboard.press("Shift+Enter")
            login_cell = cells.nth(login_index)
            qr = login_cell.locator(".jp-OutputArea-output img")
            expect(qr).to_be_visible(timeout=KERNEL * 1000)
            size = qr.evaluate("img => [img.naturalWidth, img.naturalHeight, img.clientWidth, img.clientHeight]")
            assert min(size) > 0, f"the QR image has no size: {size}"
            status = login_cell.locator(".jp-OutputArea-output")
            expect(status).to_contain_text("Scan the QR code with WeChat")
            login_cell.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser-01-login-qr.png"))

            # The rest of the notebook: the simulated phone scans and confirms, the login finishes.
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run Selected Cell and All Below").first.click()
            expect(status).to_contain_text("Logged in as bot", timeout=KERNEL * 1000)
            expect(status).to_contain_text("scanned by")
            expect(qr).to_be_hidden()  # the widget puts the credentials table where the QR code was
            phone = cells.nth(_cell_index("login-phone")).locator(".jp-OutputArea-output")
            expect(phone).to_contain_text("status: confirmed")
            # The whole notebook ran (the last cell, which stops the simulator, has its execution count) and
            # nothing wrote to stderr: JupyterLab shows tracebacks with the stderr MIME type too.
            last = cells.nth(_last_code_cell_index()).locator(".jp-InputPrompt")
            expect(last).to_have_text(re.compile(r"\[\d+\]:"), timeout=KERNEL * 1000)
            stderr = notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            expect(stderr).to_have_count(0)
            login_cell.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser-01-login-confirmed.png"))
        except Exception:
            # What the page looked like when it went wrong, to read with the test's error.
            page.screenshot(path=str(ARTIFACTS / "browser-01-login-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
