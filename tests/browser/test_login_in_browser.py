"""The login widget in a real browser: JupyterLab serves notebooks/01-login.ipynb, Debian's Chromium runs it
through Playwright, and we look at what a person would see.

JupyterLab (the ``lab`` fixture of tests/browser/conftest.py) runs on 127.0.0.1 with this venv's kernel. The
notebook's cells up to ``client.login()`` are run with the keyboard, then the QR image must be on screen; Run →
"Run Selected Cell and All Below" lets the simulated phone scan and confirm, and the widget's status must turn
to the confirmed login. Screenshots of both moments go to tests/artifacts/ (ignored by git).

Skipped when Chromium or Playwright is missing, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import re

import pytest

from . import jupyterlab
from .jupyterlab import ARTIFACTS, KERNEL, UI, Lab, launch_chromium, wait_for_connected_kernel

NOTEBOOK = "01-login.ipynb"


def _cell_index(cell_id: str) -> int:
    return jupyterlab.cell_index(NOTEBOOK, cell_id)


def test_without_chromium_it_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jupyterlab, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        jupyterlab.need_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run it"):
        jupyterlab.need_browser()


@pytest.mark.browser
def test_qr_login_widget_in_chromium(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    login_index = _cell_index("login-widget")
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.set_default_timeout(UI * 1000)
            page.goto(lab.notebook_url(NOTEBOOK))
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            cells = notebook.locator(".jp-Cell")
            expect(cells.first).to_be_visible()
            # Cells run before the page's kernel connection exists are silently skipped: wait until the server
            # sees the page connected to an idle kernel.
            wait_for_connected_kernel(lab)

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
            last = cells.nth(jupyterlab.last_code_cell_index(NOTEBOOK)).locator(".jp-InputPrompt")
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
