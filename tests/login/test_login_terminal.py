"""The terminal login: a captured rich Console, stdin fed from a string, the simulator over real HTTP.

The QR code drawn in half blocks is read back into modules and compared with the QR code of the URL, so
"a phone could scan it" is checked, not assumed.
"""

from __future__ import annotations

import _thread
import asyncio
import io
import sys
import threading
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from openclaw_nb import login as login_mod
from openclaw_nb.cli import main
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.login import LoginError, qr_matrix, qr_text
from openclaw_nb.protocol.login import Finished, LoginEvent, LoginState, Outcome, Redirected, StatusChanged
from openclaw_nb.sim import Simulator

from .conftest import FAST
from .helpers import Phone, faults_after_the_scan, typed
from .qrscan import decode_modules

BLOCKS = set("█▀▄ ")


def captured(**kw: object) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, **kw), out  # type: ignore[arg-type]


def read_plain_qr(lines: list[str]) -> list[list[bool]]:
    """Half-block lines (light modules drawn) back into modules, True = dark."""
    rows: list[list[bool]] = []
    for line in lines:
        rows.append([ch not in "█▀" for ch in line])
        rows.append([ch not in "█▄" for ch in line])
    return rows


def qr_lines(output: str) -> list[str]:
    """The first run of lines made only of half-block characters."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line and set(line) <= BLOCKS and "█" in line)
    end = start
    while end < len(lines) and lines[end] and set(lines[end]) <= BLOCKS:
        end += 1
    return lines[start:end]


def assert_same_qr(drawn: list[list[bool]], url: str) -> None:
    expected = qr_matrix(url)
    assert drawn[: len(expected)] == expected
    assert all(not dark for row in drawn[len(expected) :] for dark in row)  # padding row is light


def test_terminal_login_with_fed_stdin(sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.set_qr_scenario(verify_code="135790", count=1)
    monkeypatch.setattr(sys, "stdin", io.StringIO("12ab\n000000\n135790\n"))
    console, out = captured(color_system=None)
    phone = Phone(sim, user="dora")
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="terminal", console=console, on_event=phone, **FAST)
        token = client.token
    text = out.getvalue()
    url = phone.events[0].qr.url  # type: ignore[attr-defined]
    assert_same_qr(read_plain_qr(qr_lines(text)), url)
    assert decode_modules(read_plain_qr(qr_lines(text))) == url  # and a decoder reads it back from the blocks
    lines = text.splitlines()
    assert url in lines  # the URL on a line of its own, below the QR code
    assert lines.index(url) > lines.index(qr_lines(text)[-1])
    for expected in (
        "Scan the QR code with WeChat (QR 1/3)",
        "The phone shows a number: type it here to continue",
        "Verify code shown on the phone: ",
        "digits only, as shown on the phone",
        "That verify code was wrong",
        "Verify code accepted: confirm the login on the phone",
        f"✓ Logged in as bot {result.bot_id}, scanned by dora@im.wechat",
        "token:      <redacted ",  # the values line up after the longest label, "scanned by:"
        "  bot id:     ",
        "  base url:   ",
        f"saved to:   {result.saved_to}",
    ):
        assert expected in text, expected
    assert token and token not in text
    assert text.index("That verify code was wrong") < text.index("Verify code accepted")


def test_colour_qr_reads_the_same() -> None:
    url = "http://127.0.0.1:8000/_sim/scan/0123456789abcdef"
    console, _ = captured(force_terminal=True, color_system="truecolor")
    rows: list[list[bool]] = [[], []]
    drawn: list[list[bool]] = []
    for segment in console.render(qr_text(url, color=True)):
        if segment.text == "\n":
            drawn.extend(rows)
            rows = [[], []]
            continue
        assert segment.style is not None
        for _ in segment.text:
            assert _ == "▀"
            # Upper half: the foreground colour; lower half: the background. Black = dark module.
            rows[0].append(segment.style.color.get_truecolor().red == 0)  # type: ignore[union-attr]
            rows[1].append(segment.style.bgcolor.get_truecolor().red == 0)  # type: ignore[union-attr]
    assert_same_qr(drawn, url)
    assert decode_modules(drawn) == url


def test_end_of_input_cancels(sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.set_qr_scenario(verify_code="135790", count=1)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    console, out = captured(color_system=None)
    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
        client.login(display="terminal", console=console, on_event=Phone(sim), **FAST)
    assert info.value.result.outcome == Outcome.CANCELLED
    assert "no input to read a verify code from: cancelling" in out.getvalue()
    assert "✗ Login cancelled" in out.getvalue()


def test_failure_is_printed_with_what_to_do(sim: Simulator, home: Path) -> None:
    console, out = captured(color_system=None)
    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError):
        client.login(display="terminal", console=console, on_event=Phone(sim, expire=9), **FAST)
    text = out.getvalue()
    assert "The QR code expired: refreshed 2/3" in text and "refreshed 3/3" in text
    assert "✗ The QR code expired 3 times" in text and "Run login() again" in text


def test_async_terminal_reads_the_code_off_the_loop(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(verify_code="4242", count=1)
    console, out = captured(color_system=None)

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            result = await client.login(
                display="terminal", console=console, on_event=Phone(sim), ask=typed(["4242"]), **FAST
            )
            assert result.ok and client.token

    asyncio.run(main())
    assert "Verify code accepted" in out.getvalue()


def test_terminal_qr_of_a_long_url_fits_80x24_and_decodes() -> None:
    # A real server's scan URL is about 90 characters; 100 must still fit a standard 80x24 terminal.
    url = "https://liteapp.weixin.qq.com/q/7GiQu1?qrcode=" + "0123456789abcdef" * 2 + "&bot_type=3&x="
    url += "y" * (100 - len(url))
    assert len(url) == 100
    for color in (False, True):
        lines = qr_text(url, color=color).plain.splitlines()
        assert len(lines) <= 24 and max(cell_len(line) for line in lines) <= 80, (len(lines), len(lines[0]))
    assert decode_modules(read_plain_qr(qr_text(url, color=False).plain.splitlines())) == url


def test_unanswered_prompt_ends_at_the_deadline(sim: Simulator, home: Path) -> None:
    # Nobody types the verify code: the prompt (in its own thread) must not hold the login past its deadline.
    sim.set_qr_scenario(verify_code="135790", count=1)
    released = threading.Event()
    timed_out: list[bool] = []

    def ask(prompt: str) -> str:
        if not released.wait(30):  # released when the login has ended
            timed_out.append(True)
        raise EOFError

    phone = Phone(sim)

    def on_event(event: LoginEvent) -> None:
        phone(event)
        if isinstance(event, Finished):
            released.set()

    console, out = captured(color_system=None)
    try:
        with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
            client.login(display="terminal", console=console, on_event=on_event, ask=ask, **{**FAST, "deadline": 2.0})
    finally:
        released.set()
    assert info.value.result.outcome == Outcome.DEADLINE and not timed_out
    assert LoginState.NEED_VERIFY_CODE in phone.states()
    assert "✗ No confirmed login within 2 seconds" in out.getvalue()


class CtrlCAtThePrompt(io.StringIO):
    """A stdin whose reader presses Ctrl-C (a KeyboardInterrupt in the main thread), then waits until
    ``released`` and reads end of input."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()
        self.asked = threading.Event()

    def readline(self, size: int | None = -1) -> str:
        self.asked.set()
        _thread.interrupt_main()
        self.released.wait(30)
        return ""


def test_ctrl_c_at_the_prompt_cancels(sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.set_qr_scenario(verify_code="135790", count=1)
    stdin = CtrlCAtThePrompt()
    monkeypatch.setattr(sys, "stdin", stdin)
    finished: list[Finished] = []
    phone = Phone(sim)

    def on_event(event: LoginEvent) -> None:
        phone(event)
        if isinstance(event, Finished):
            finished.append(event)

    console, out = captured(color_system=None)
    try:
        with Client(base_url=sim.base_url, record=False) as client, pytest.raises(KeyboardInterrupt):
            client.login(display="terminal", console=console, on_event=on_event, **FAST)
    finally:
        stdin.released.set()
    assert stdin.asked.is_set() and client.token is None
    (end,) = finished
    assert end.state == LoginState.CANCELLED and end.result.outcome == Outcome.CANCELLED
    assert "✗ Login cancelled (interrupted)" in out.getvalue()
    assert not (home / "accounts").exists()


def test_cli_login_exits_130_on_ctrl_c(
    sim: Simulator, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.configure(auto_confirm=0.0)  # scanned at once, and this QR code asks for a verify code
    sim.set_qr_scenario(verify_code="135790", count=1)
    stdin = CtrlCAtThePrompt()
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        assert main(["login", "--base-url", sim.base_url]) == 130
    finally:
        stdin.released.set()
    out = capsys.readouterr().out
    assert stdin.asked.is_set() and "Login cancelled (interrupted)" in out
    assert not home.exists()


def test_terminal_shows_failed_polls_without_flooding(
    sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four 524s and a 400 after the scan: the first failure is printed, the same error again only every
    # POLL_FAILURE_REMINDER polls, a new error at once; then the line that the server answers again.
    monkeypatch.setattr(login_mod, "POLL_FAILURE_REMINDER", 3)
    console, out = captured(color_system=None)
    phone = Phone(sim)
    on_event = faults_after_the_scan(sim, phone, *["http_524"] * 4, "http_400")
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="terminal", console=console, on_event=on_event, **FAST)
    assert result.ok and sim.faults == []
    lines = [line for line in out.getvalue().splitlines() if "A status poll failed" in line]
    assert len(lines) == 3, lines
    assert "A status poll failed: get_qrcode_status got HTTP 524" in lines[0]
    assert "A status poll failed (3 in a row): get_qrcode_status got HTTP 524" in lines[1]
    assert "A status poll failed (5 in a row): get_qrcode_status got HTTP 400" in lines[2]
    text = out.getvalue()
    assert "The server answers again after 5 failed status polls: confirm the login on the phone" in text
    assert text.index("answers again") < text.index("✓ Logged in as bot")


def test_terminal_login_redirected_then_expired_stays_on_the_redirect_host(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(redirect=True, count=1)
    console, out = captured(color_system=None)
    phone = Phone(sim, confirm=False)

    def on_event(event: LoginEvent) -> None:
        phone(event)
        if isinstance(event, Redirected):
            sim.expire(phone.qrcodes[-1])
        elif isinstance(event, StatusChanged) and event.state == LoginState.SCANNED:
            sim.confirm(phone.qrcodes[-1])

    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="terminal", console=console, on_event=on_event, **FAST)
    assert result.ok
    text = out.getvalue()
    host = sim.redirect_base_url.split("://", 1)[1]
    for expected in (
        f"Scanned: continuing on {host}; confirm the login on the phone",
        "The QR code expired: refreshed 2/3",
        "Scanned: confirm the login on the phone",
        f"✓ Logged in as bot {result.bot_id}",
        f"base url:   {sim.base_url}",
    ):
        assert expected in text, expected
    second = phone.qrcodes[1]
    roles = {r["host_role"] for r in sim.requests if r["query"].get("qrcode") == second}
    assert roles == {"redirect"}
