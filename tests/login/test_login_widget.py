"""The login widget, headless: real ipywidgets objects (no frontend), driven by a login against the simulator.

What a person would see is read from the widgets' values: the PNG's modules are compared with the QR code
of the URL, status and countdown texts are read as they change, buttons are clicked with ``.click()``.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from openclaw_nb import login as login_mod
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.login import LoginError
from openclaw_nb.notebook.login_widget import QR_BORDER, QR_BOX_SIZE, LoginWidget, qr_png
from openclaw_nb.protocol.login import (
    Finished,
    LoginConfig,
    LoginCredentials,
    LoginResult,
    LoginSession,
    LoginState,
    Outcome,
    QrCode,
    QrIssued,
)
from openclaw_nb.protocol.redact import redact
from openclaw_nb.sim import Simulator

from .conftest import FAST
from .helpers import CountingTransport, Phone, faults_after_the_scan
from .qrscan import decode_png

TIMEOUT = 10.0


async def until(predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Poll ``predicate`` every few milliseconds until it is truthy; fail after ``timeout`` seconds."""

    async def poll() -> Any:
        while not (value := predicate()):
            await asyncio.sleep(0.005)
        return value

    return await asyncio.wait_for(poll(), timeout)


def png_modules(png: bytes) -> list[list[bool]]:
    """Read a QR PNG back into modules (True = dark) by sampling the centre of every module."""
    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    assert width == height and width % QR_BOX_SIZE == 0
    n = width // QR_BOX_SIZE
    half = QR_BOX_SIZE // 2
    return [
        [image.getpixel((x * QR_BOX_SIZE + half, y * QR_BOX_SIZE + half)) < 128 for x in range(n)] for y in range(n)
    ]


def expected_modules(data: str) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QR_BORDER)
    qr.add_data(data)
    qr.make(fit=True)
    return [list(row) for row in qr.get_matrix()]


def values(widget: LoginWidget) -> str:
    """Every text a person can see in the widget, joined."""
    return " ".join(
        str(w.value) for w in (widget.title, widget.link, widget.status, widget.countdown, widget.outcome, widget.code)
    )


def test_png_decodes_to_the_url() -> None:
    url = "http://127.0.0.1:1/_sim/scan/abc"
    png = qr_png(url)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert png_modules(png) == expected_modules(url)
    assert png_modules(png) != expected_modules(url + "x")
    # Decoded as a scanner would, without the encoder's help: a simulator URL and a real server's length.
    real = "https://liteapp.weixin.qq.com/q/7GiQu1?qrcode=" + "0123456789abcdef" * 3 + "&bot_type=3"
    for text in (url, "http://127.0.0.1:40123/_sim/scan/" + "0f" * 16, real):
        assert decode_png(qr_png(text)) == text


def test_widget_follows_a_login_with_a_verify_code(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(verify_code="864200", count=1)
    statuses: list[str] = []

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = await client.login(display="widget", **FAST)
            assert not handle.done()  # returned at once; the flow runs as a task
            widget = handle.widget
            assert isinstance(widget, LoginWidget)
            widget.status.observe(lambda change: statuses.append(change["new"]), names="value")

            url = await until(lambda: handle.qr_url)
            assert widget.image.layout.display != "none"
            assert png_modules(widget.image.value) == expected_modules(url)
            assert decode_png(widget.image.value) == url
            assert f'href="{url}"' in widget.link.value and 'target="_blank"' in widget.link.value
            assert "text-decoration:underline" in widget.link.value  # looks like a link in JupyterLab too
            async with httpx.AsyncClient() as browser:  # the link opens the simulator's scan page
                page = await browser.get(url)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert "Scan the QR code with WeChat (QR 1/3)" in widget.status.value
            await until(lambda: "expires in" in widget.countdown.value)
            assert widget._ticker is not None and not widget._ticker.done()
            assert widget.code_row.layout.display == "none"

            qrcode_id = sim.latest_qrcode
            sim.scan(qrcode_id)
            await until(lambda: widget.code_row.layout.display != "none")
            assert handle.status == LoginState.NEED_VERIFY_CODE
            widget.code.value = "000000"
            widget.submit.click()
            await until(lambda: "wrong" in widget.status.value)
            assert widget.code_row.layout.display != "none" and not widget.submit.disabled
            widget.code.value = "not digits"
            widget.submit.click()
            assert "digits" in widget.status.value  # refused locally, nothing sent
            widget.code.value = "864200"
            widget.submit.click()
            await until(lambda: "accepted" in widget.status.value)
            assert widget.code_row.layout.display == "none"
            assert handle.status == LoginState.SCANNED

            sim.confirm(qrcode_id)
            result = await asyncio.wait_for(handle, TIMEOUT)
            token = result.credentials.bot_token  # type: ignore[union-attr]
            assert client.token == token
            assert result.bot_id in widget.outcome.value and "owner@im.wechat" in widget.outcome.value
            assert html.escape(redact(token)) in widget.outcome.value and token not in values(widget)
            assert token not in widget._repr_mimebundle_()["text/plain"] and token not in repr(handle)
            assert widget.cancel_button.disabled and widget.image.layout.display == "none"
            assert widget.cancel_button.layout.display == "none"  # the login is over: no Cancel left
            assert widget.countdown.value == "" and widget.link.value == ""  # no link to a QR that is gone
            await until(lambda: widget._ticker is not None and widget._ticker.done())

    asyncio.run(main())
    # The status line went through these, in this order (other lines may come between).
    expected = [
        "Scan the QR code with WeChat",
        "The phone shows a number",
        "Verify code taken",
        "Checking the verify code",
        "That verify code was wrong",
        "Verify code taken",
        "Checking the verify code",
        "Verify code accepted",
        "Logged in as bot",
    ]
    it = iter(statuses)
    missing = [text for text in expected if not any(text in line for line in it)]
    assert not missing, statuses


def test_cancel_button_stops_the_flow(sim: Simulator, home: Path) -> None:
    counting = CountingTransport()

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False, transport=counting) as client:
            before = sim.state.request_counts["get_qrcode_status"]
            handle = await client.login(display="widget", **FAST)
            widget = handle.widget
            await until(lambda: sim.state.request_counts["get_qrcode_status"] > before)  # a poll is held
            widget.cancel_button.click()
            with pytest.raises(LoginError):
                await asyncio.wait_for(handle, TIMEOUT)
            assert handle.status == LoginState.CANCELLED and handle.result is not None
            assert handle.result.outcome == Outcome.CANCELLED
            assert "Login cancelled" in widget.status.value and "login()" in widget.outcome.value
            assert widget.cancel_button.disabled
            sent = len(counting.paths)
            # Nothing is left that could send another poll: no task but this one is alive on the loop.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
            assert others == [], f"tasks still scheduled after cancel: {others}"
            assert len(counting.paths) == sent and client.token is None

    asyncio.run(main())


def test_cancel_before_the_task_ever_ran(sim: Simulator, home: Path) -> None:
    # In a notebook: login() and a click on Cancel before the kernel's loop got round to the task.
    counting = CountingTransport()

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False, transport=counting) as client:
            handle = await client.login(display="widget", **FAST)
            handle.widget.cancel_button.click()
            with pytest.raises(LoginError) as info:
                await handle
            assert info.value.result.outcome == Outcome.CANCELLED
            assert handle.status == LoginState.CANCELLED and "Login cancelled" in handle.widget.status.value
            with pytest.raises(LoginError):
                handle.wait()
            assert counting.paths == []

    asyncio.run(main())


def test_sync_client_in_a_running_loop_uses_an_async_twin(sim: Simulator, home: Path) -> None:
    async def main() -> None:
        with Client(base_url=sim.base_url) as client:  # records into client.log
            handle = client.login(display="widget", on_event=Phone(sim), **FAST)
            assert not handle.done()
            result = await asyncio.wait_for(handle, TIMEOUT)
            # The credentials land on the sync client, and its protocol log saw the login's requests.
            assert client.token == result.credentials.bot_token  # type: ignore[union-attr]
            assert client.bot_id == result.bot_id
            calls = [ex.call for ex in client.log]
            assert "get_bot_qrcode" in calls and "get_qrcode_status" in calls
            assert client.get_updates(timeout=2).ret in (0, None)  # the sync client works with the token

    asyncio.run(main())


def test_handle_wait_blocks_in_a_running_loop(sim: Simulator, home: Path) -> None:
    async def main() -> LoginResult:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = client.start_login(on_event=Phone(sim), **FAST)
            assert handle.widget is None
            return handle.wait(timeout=TIMEOUT)  # a synchronous call inside the loop (nest_asyncio)

    assert asyncio.run(main()).ok


def test_text_fallback_and_countdown() -> None:
    clock = [100.0]
    session = LoginSession(LoginConfig(deadline=480), clock=lambda: clock[0])
    session.started_at = 100.0
    widget = LoginWidget(session)
    qr = QrCode("q1", "http://sim.test/_sim/scan/q1", 1, 3, issued_at=100.0, lifetime=300)
    session.emit(
        QrIssued(state=LoginState.WAITING, message="Scan the QR code with WeChat (QR 1/3)", qr=qr, reason="first")
    )
    assert "QR code 1/3 expires in 5:00" in widget.countdown.value and "gives up in 8:00" in widget.countdown.value
    clock[0] += 61
    widget.refresh_countdown()
    assert "expires in 3:59" in widget.countdown.value
    bundle = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    # The QR code as a static PNG next to the widget, for viewers of the saved notebook and HTML exports.
    assert decode_png(base64.b64decode(bundle["image/png"])) == qr.url
    text = bundle["text/plain"]
    assert "Scan the QR code with WeChat" in text and qr.url in text and "expires in 3:59" in text
    token = "t" * 64
    creds = LoginCredentials(token, "b@im.bot", "http://sim.test", "u@im.wechat")
    result = session.finish(LoginResult(ok=True, outcome=Outcome.CONFIRMED, credentials=creds))
    assert isinstance(session.events[-1], Finished)
    assert result.qr_codes == 1 and session.state == LoginState.CONFIRMED
    for shown in (repr(widget), widget._repr_mimebundle_()["text/plain"], values(widget)):
        assert token not in shown and "b@im.bot" in shown
    assert widget._repr_mimebundle_()["image/png"] == bundle["image/png"]  # the record of what was scanned
    widget.close()


def test_late_widget_catches_up_and_failure_says_what_to_do() -> None:
    session = LoginSession()
    qr = QrCode("q1", "http://sim.test/_sim/scan/q1", 2, 3, issued_at=session.clock(), lifetime=300)
    session.emit(QrIssued(state=LoginState.WAITING, message="refreshed 2/3", qr=qr, reason="expired"))
    widget = LoginWidget(session)  # created after the QR code was issued
    assert widget.image.value and "refreshed 2/3" in widget.status.value
    session.finish(
        LoginResult(ok=False, outcome=Outcome.EXPIRED, reason="The QR code expired 3 times", hint="Run login() again")
    )
    assert "expired 3 times" in widget.status.value and "Run login() again" in widget.outcome.value
    assert "Run login() again" in repr(widget)


def test_auto_display_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login_mod.env, "has_widgets", lambda: True)
    assert login_mod.choose_display("auto") == "terminal"  # no running loop: a script

    async def inside() -> str:
        return login_mod.choose_display("auto")

    assert asyncio.run(inside()) == "widget"
    monkeypatch.setattr(login_mod.env, "has_widgets", lambda: False)
    assert asyncio.run(inside()) == "terminal"
    with pytest.raises(Exception, match="display must be one of"):
        login_mod.choose_display("html")


class FakeDisplay:
    """Stands in for IPython's ``display`` / ``update_display`` in a kernel: records what is shown."""

    def __init__(self) -> None:
        self.shown: list[tuple[Any, dict[str, Any]]] = []
        self.updates: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def display(self, obj: Any, **kw: Any) -> Any:
        from IPython.display import DisplayHandle

        self.shown.append((obj, kw))
        return DisplayHandle("login-display-1")

    def update_display(self, obj: Any, **kw: Any) -> None:
        self.updates.append((obj, kw))


def test_text_fallback_is_updated_in_place(sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The widget is displayed before the login has a QR code; its display is then updated (same display id)
    # as the login goes on, so text-only frontends and nbconvert get the URL, each status and the result.
    import IPython.display

    fake = FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", fake.display)
    monkeypatch.setattr(IPython.display, "update_display", fake.update_display)

    async def main() -> LoginResult:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = await client.login(display="widget", on_event=Phone(sim, user="erin"), **FAST)
            ((shown, kw),) = fake.shown
            assert shown is handle.widget and kw == {"display_id": True}
            assert shown._repr_mimebundle_()["text/plain"] == "WeChat QR login: Fetching a QR code…"
            return await asyncio.wait_for(handle, TIMEOUT)

    result = asyncio.run(main())
    assert fake.updates and all(kw == {"raw": True, "display_id": "login-display-1"} for _, kw in fake.updates)
    texts = [bundle["text/plain"] for bundle, _ in fake.updates]
    assert all("application/vnd.jupyter.widget-view+json" in bundle for bundle, _ in fake.updates)
    url = sim.state.scan_url(sim.latest_qrcode or "")
    assert f"QR code 1/3: {url}" in texts[0] and "Scan the QR code with WeChat" in texts[0]
    assert any("Scanned: confirm the login on the phone" in t for t in texts)
    final = texts[-1]
    assert f"Logged in as bot {result.bot_id}, scanned by erin@im.wechat" in final and url in final
    assert len(texts) == len(set(texts))  # an update only when the text changed
    token = result.credentials.bot_token  # type: ignore[union-attr]
    assert all(token not in t for t in texts) and redact(token) in final


def test_countdown_agrees_with_the_simulators_expiry(sim: Simulator, home: Path) -> None:
    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = await client.login(display="widget", **FAST)
            await until(lambda: handle.qr_url)
            qr = handle.session.qr
            assert qr is not None
            on_server = sim.qrcodes[qr.qrcode]
            lifetime = on_server.expires_at - on_server.created_at
            assert qr.lifetime == lifetime  # the client's QR lifetime is the simulator's
            # Seen at the moment the code was issued, the widget counts down exactly that lifetime.
            handle.session.clock = lambda: qr.issued_at
            handle.widget.refresh_countdown()
            minutes, seconds = divmod(int(lifetime), 60)
            assert f"QR code 1/3 expires in {minutes}:{seconds:02d}" in handle.widget.countdown.value
            handle.cancel()
            with pytest.raises(LoginError):
                await handle

    asyncio.run(main())


def test_widget_shows_a_refreshed_qr_code(sim: Simulator, home: Path) -> None:
    statuses: list[str] = []
    images: list[bytes] = []

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = await client.login(display="widget", on_event=Phone(sim, expire=1), **FAST)
            widget = handle.widget
            widget.status.observe(lambda change: statuses.append(change["new"]), names="value")
            widget.image.observe(lambda change: images.append(change["new"]), names="value")
            result = await asyncio.wait_for(handle, TIMEOUT)
            assert result.ok and result.qr_codes == 2

    asyncio.run(main())
    assert any("The QR code expired: refreshed 2/3" in line for line in statuses), statuses
    assert [decode_png(png).rsplit("/", 1)[-1] for png in images][-1] == sim.latest_qrcode


def test_auto_display_from_the_running_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    # env.in_kernel()/has_widgets() themselves (not monkeypatched): a kernel's shell gets the widget; a
    # terminal IPython, or no IPython at all, gets the terminal view even with a running loop.
    def shell(name: str) -> Any:
        return type(name, (), {})()

    async def choice() -> str:
        return login_mod.choose_display("auto")

    for shell_type, expected in (
        ("ZMQInteractiveShell", "widget"),
        ("TerminalInteractiveShell", "terminal"),
        (None, "terminal"),
    ):
        monkeypatch.setattr(login_mod.env, "ipython", lambda t=shell_type: shell(t) if t else None)
        assert login_mod.env.in_kernel() is (shell_type == "ZMQInteractiveShell")
        assert asyncio.run(choice()) == expected, shell_type


def test_widget_shows_failed_polls_and_carries_on(sim: Simulator, home: Path) -> None:
    # A 524 and a 400 from the server after the scan: the status line says so (in amber), the login goes on,
    # and the line says when the server answers again.
    statuses: list[str] = []
    phone = Phone(sim, user="jules")

    async def main() -> LoginResult:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            on_event = faults_after_the_scan(sim, phone, "http_524", "http_400")
            handle = await client.login(display="widget", on_event=on_event, **FAST)
            handle.widget.status.observe(lambda change: statuses.append(change["new"]), names="value")
            return await asyncio.wait_for(handle, TIMEOUT)

    result = asyncio.run(main())
    assert result.ok and sim.faults == []
    failed = [line for line in statuses if "A status poll failed" in line]
    assert len(failed) == 2 and all('style="color:#9a6700"' in line for line in failed)
    assert "get_qrcode_status got HTTP 524" in failed[0] and "(2 in a row)" in failed[1] and "HTTP 400" in failed[1]
    expected = [
        "Scanned: confirm the login on the phone",
        "A status poll failed",
        "A status poll failed (2 in a row)",
        "The server answers again after 2 failed status polls: confirm the login on the phone",
        "Logged in as bot",
    ]
    it = iter(statuses)
    missing = [text for text in expected if not any(text in line for line in it)]
    assert not missing, statuses


def test_widget_verify_code_typed_once_and_answered_late(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(verify_code="314159", verify_late=2, count=1)
    statuses: list[str] = []

    async def main() -> LoginResult:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = await client.login(display="widget", **FAST)
            widget = handle.widget
            widget.status.observe(lambda change: statuses.append(change["new"]), names="value")
            await until(lambda: handle.qr_url)
            qrcode_id = sim.latest_qrcode
            sim.scan(qrcode_id)
            await until(lambda: widget.code_row.layout.display != "none")
            widget.code.value = "314159"
            widget.submit.click()
            await until(lambda: "accepted" in widget.status.value)
            sim.confirm(qrcode_id)
            return await asyncio.wait_for(handle, TIMEOUT)

    result = asyncio.run(main())
    assert result.ok
    assert not any("wrong" in line for line in statuses), statuses
    sent = [r["query"].get("verify_code") for r in sim.requests if r["endpoint"] == "get_qrcode_status"]
    assert [c for c in sent if c] == ["314159"] * 3


def test_widget_names_superseded_logins() -> None:
    session = LoginSession()
    widget = LoginWidget(session)
    creds = LoginCredentials("t" * 64, "new@im.bot", "http://sim.test", "u@im.wechat")
    session.finish(LoginResult(ok=True, outcome=Outcome.CONFIRMED, credentials=creds, superseded=("old@im.bot",)))
    shown = widget.outcome.value
    assert "supersedes" in shown and "old@im.bot (forget_superseded() removes them)" in shown
    session = LoginSession()
    widget = LoginWidget(session)
    session.finish(LoginResult(ok=True, outcome=Outcome.CONFIRMED, credentials=creds, forgotten=("old@im.bot",)))
    assert "old@im.bot (superseded)" in widget.outcome.value and "t" * 64 not in widget.outcome.value


def test_cancel_ends_a_login_whose_polls_keep_failing(sim: Simulator, home: Path) -> None:
    # Every status poll fails (a gateway that answers 524 to all of them): the login waits on, showing it,
    # until the user clicks Cancel.
    sim.add_fault(http_524=1.0, endpoints=["get_qrcode_status"])

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = await client.login(display="widget", **FAST)
            widget = handle.widget
            await until(lambda: "(3 in a row)" in widget.status.value)
            assert not handle.done() and handle.status == LoginState.WAITING
            widget.cancel_button.click()
            with pytest.raises(LoginError) as info:
                await asyncio.wait_for(handle, TIMEOUT)
            assert info.value.result.outcome == Outcome.CANCELLED
            assert "Login cancelled" in widget.status.value

    asyncio.run(main())
