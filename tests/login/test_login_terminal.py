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

from openclaw_nb.cli import main
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.login import LoginError, qr_matrix, qr_text
from openclaw_nb.protocol.login import Finished, LoginEvent, LoginState, Outcome
from openclaw_nb.sim import Simulator

from .conftest import FAST
from .helpers import Phone, typed
from .qrdecode import decode

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
    assert decode(read_plain_qr(qr_lines(text))) == url  # and a decoder reads the URL back from the blocks
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
        "token:    <redacted ",
        f"saved to: {result.saved_to}",
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
    assert decode(drawn) == url


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
    assert decode(read_plain_qr(qr_text(url, color=False).plain.splitlines())) == url


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
