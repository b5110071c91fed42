"""The inline QR login widget: stock ipywidgets parts (VBox of Image + HTML + Text + Button) driven by the
login session's events, with a plain-text fallback where no widget frontend is present.

It only shows and forwards: the flow (:mod:`openclaw_nb.protocol.login`) decides, the session carries the
typed verify code in and the events out, and the handle (:mod:`openclaw_nb.login`) runs the task.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
from collections.abc import Callable
from typing import Any

from .. import errors as E
from ..protocol.login import (
    Finished,
    LoginEvent,
    LoginSession,
    LoginState,
    PollFailed,
    QrIssued,
    VerifyCodeRequested,
)
from ..protocol.redact import redact

#: Pixels per QR module and quiet-zone modules of the PNG (4 is the QR standard's quiet zone).
QR_BOX_SIZE = 6
QR_BORDER = 4

_COLORS = {
    LoginState.CONFIRMED: "#1a7f37",
    LoginState.FAILED: "#cf222e",
    LoginState.CANCELLED: "#6e7781",
    LoginState.NEED_VERIFY_CODE: "#9a6700",
}
#: The colour of a failed status poll (the login goes on: a warning, not a failure).
_TROUBLE = "#9a6700"


def qr_png(data: str, *, box_size: int = QR_BOX_SIZE, border: int = QR_BORDER) -> bytes:
    """``data`` as a black-on-white QR code PNG, rendered locally (the URL never leaves the machine)."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    qr.add_data(data)
    qr.make(fit=True)
    image = qr.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _browser_url(url: str) -> str:
    """A simulator's scan page on the kernel's loopback, as the browser reaches it (through jupyter-server-proxy
    on JupyterHub/Binder); any other URL as it is. The simulator package is imported only for such a URL."""
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        return url
    from ..sim.links import browser_url

    return browser_url(url)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.999))
    return f"{seconds // 60}:{seconds % 60:02d}"


class LoginWidget:
    """Shows one login session: QR image, link, live status, QR countdown, verify-code box, Cancel.

    ``on_cancel`` is called by the Cancel button (the handle sets it to ``handle.cancel``).
    """

    def __init__(self, session: LoginSession, *, on_cancel: Callable[[], None] | None = None) -> None:
        import ipywidgets as w

        self.session = session
        self.on_cancel = on_cancel
        self.title = w.HTML("<b>WeChat QR login</b>")
        self.image = w.Image(format="png", layout=w.Layout(width="240px", height="240px", display="none"))
        self.link = w.HTML("")
        self.status = w.HTML("")
        self.countdown = w.HTML("")
        self.code = w.Text(placeholder="digits shown on the phone", description="Verify code:")
        self.submit = w.Button(description="Submit code", button_style="primary")
        self.code_row = w.HBox([self.code, self.submit], layout=w.Layout(display="none"))
        self.cancel_button = w.Button(description="Cancel", button_style="warning")
        self.outcome = w.HTML("")
        self.box = w.VBox(
            [
                self.title,
                self.image,
                self.link,
                self.status,
                self.countdown,
                self.code_row,
                self.cancel_button,
                self.outcome,
            ]
        )
        self.submit.on_click(self._on_submit)
        self.cancel_button.on_click(self._on_cancel)
        self._ticker: asyncio.Task[None] | None = None
        #: The latest QR code as a PNG: the image a saved notebook keeps next to the widget (see the bundle).
        self.qr_png: bytes | None = None
        self._set_status(session.message, session.state)
        self.unsubscribe = session.subscribe(self.on_event)
        # Catch up with what happened before the widget existed (a late widget still shows the QR code).
        for event in list(session.events):
            self.on_event(event)

    # --- session events ---

    def on_event(self, event: LoginEvent) -> None:
        if isinstance(event, QrIssued):
            self.image.value = self.qr_png = qr_png(event.qr.url)
            self.image.layout.display = ""
            url = html.escape(_browser_url(event.qr.url), quote=True)
            self.link.value = (
                # JupyterLab's widget CSS unstyles links: give this one the usual link look.
                f'<a href="{url}" target="_blank" rel="noopener noreferrer" '
                f'style="color:#1a73e8;text-decoration:underline">{url}</a>'
                "<br><small>Scan the code with WeChat, or open the link on the phone.</small>"
            )
        self.code_row.layout.display = "" if event.state == LoginState.NEED_VERIFY_CODE else "none"
        if isinstance(event, VerifyCodeRequested):
            self.code.value = ""
            self.code.disabled = self.submit.disabled = False
        if isinstance(event, Finished):
            self._finished(event)
        else:
            self._set_status(event.message, event.state, trouble=isinstance(event, PollFailed))
        self.refresh_countdown()

    def _set_status(self, message: str, state: str, *, trouble: bool = False) -> None:
        color = _TROUBLE if trouble else _COLORS.get(state, "inherit")
        self.status.value = f'<span style="color:{color}">{html.escape(message)}</span>'

    def _finished(self, event: Finished) -> None:
        result = event.result
        self._set_status(event.message, event.state)
        self.image.layout.display = "none"
        self.link.value = ""  # the QR it pointed to is gone too
        self.code_row.layout.display = "none"
        self.cancel_button.disabled = True
        self.cancel_button.layout.display = "none"  # nothing left to cancel
        self.countdown.value = ""
        if result.ok and result.credentials:
            creds = result.credentials
            rows = [
                ("bot id", creds.ilink_bot_id),
                ("scanned by", creds.ilink_user_id or "(not given)"),
                ("base url", creds.baseurl),
                ("token", redact(creds.bot_token)),
            ]
            if result.saved_to:
                rows.append(("saved to", result.saved_to))
            if result.superseded:
                rows.append(("supersedes", ", ".join(result.superseded) + " (forget_superseded() removes them)"))
            if result.forgotten:
                rows.append(("removed", ", ".join(result.forgotten) + " (superseded)"))
            cells = "".join(
                f"<tr><td><b>{html.escape(k)}</b></td><td><code>{html.escape(v)}</code></td></tr>" for k, v in rows
            )
            self.outcome.value = f"<table>{cells}</table>"
        else:
            hint = f"<br>{html.escape(result.hint)}" if result.hint else ""
            self.outcome.value = f"<span>{html.escape(result.reason)}{hint}</span>"
        self.stop_ticker()

    # --- countdown ---

    def refresh_countdown(self) -> None:
        """Show the time left before the QR code expires (and before the whole login gives up).

        The QR code's time is the server's word when it gave one, else the usual 5 minutes: the server decides
        when a code expires, and the login replaces it only then."""
        session = self.session
        qr_left = session.qr_seconds_left()
        if session.done or qr_left is None:
            self.countdown.value = ""
            return
        total_left = session.seconds_left()
        parts = []
        if session.state == LoginState.WAITING and session.qr is not None:
            qr = f"QR code {session.qr.number}/{session.qr.of}"
            if qr_left > 0:
                parts.append(f"{qr} expires in {_clock(qr_left)}")
            else:
                parts.append(f"{qr} is past its usual lifetime: a new one comes when the server expires it")
        if total_left is not None:
            parts.append(f"login gives up in {_clock(total_left)}")
        self.countdown.value = "<small>" + html.escape(" · ".join(parts)) + "</small>"

    def start_ticker(self) -> None:
        """Refresh the countdown about once a second, as a task on the running loop (no-op without one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._ticker is None or self._ticker.done():
            self._ticker = loop.create_task(self._tick())

    def stop_ticker(self) -> None:
        if self._ticker is not None and not self._ticker.done():
            self._ticker.cancel()

    async def _tick(self) -> None:
        while not self.session.done:
            self.refresh_countdown()
            await asyncio.sleep(1.0)

    # --- buttons ---

    def _on_submit(self, _button: Any = None) -> None:
        try:
            self.session.submit_code(self.code.value)
        except E.UsageError as exc:
            self._set_status(str(exc), LoginState.NEED_VERIFY_CODE)
            return
        self.code.disabled = self.submit.disabled = True
        self._set_status("Verify code taken: sending it with the next status poll…", self.session.state)

    def _on_cancel(self, _button: Any = None) -> None:
        self.cancel_button.disabled = True
        if self.on_cancel is not None:
            self.on_cancel()
        else:
            self.session.cancel()

    # --- display ---

    def text(self) -> str:
        """The widget's content as plain text (what nbconvert or a terminal shows)."""
        s = self.session
        lines = [f"WeChat QR login: {s.message}"]
        if s.qr is not None and not s.done:
            lines.append(f"QR code {s.qr.number}/{s.qr.of}: {s.qr.url}")
            left = s.qr_seconds_left()
            if left is not None and s.state == LoginState.WAITING:
                lines.append(f"expires in {_clock(left)}")
        if s.state == LoginState.NEED_VERIFY_CODE:
            lines.append("verify code needed: handle.submit_code('<digits shown on the phone>')")
        result = s.result
        if result is not None and result.ok and result.credentials:
            creds = result.credentials
            who = f"bot id {creds.ilink_bot_id}, scanned by {creds.ilink_user_id}"
            lines.append(f"{who}, token {redact(creds.bot_token)}")
        elif result is not None and result.hint:
            lines.append(result.hint)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget, its text, and the latest QR code as a static PNG: a frontend with widgets shows the
        widget; a saved notebook's viewer or an HTML export without widget state shows the image."""
        bundle = dict(self.box._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/plain"] = self.text()
        if self.qr_png is not None:
            bundle["image/png"] = base64.b64encode(self.qr_png).decode("ascii")
        return bundle

    def close(self) -> None:
        self.stop_ticker()
        self.unsubscribe()
        self.box.close()
