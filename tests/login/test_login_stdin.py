"""The terminal's verify-code prompt on a real stdin (a pipe): it stops reading when the login ends, takes one
line per answer, and leaves the rest of stdin alone; the CLI in a subprocess exits normally (no abort at
interpreter exit from a reader thread left blocked in stdin's buffer).

The prompt's thread is caught by wrapping ``openclaw_nb.login._read_in_thread``; waits are polls with a
deadline or waits on events, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest
from rich.console import Console

import openclaw_nb.login as login_mod
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.login import LoginError, TerminalLoginView
from openclaw_nb.protocol.login import (
    LoginConfig,
    LoginResult,
    LoginSession,
    LoginState,
    Outcome,
    VerifyCodeRequested,
)
from openclaw_nb.sim import Simulator

from .conftest import FAST
from .helpers import Phone

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the prompt waits on stdin with select() on POSIX only")

PROMPT = "Verify code shown on the phone: "
#: Generous bound for things that happen within a fraction of a second (a slow CI machine must not fail).
PATIENCE = 20.0


def captured() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, color_system=None), out


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def piped_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TextIO, int]]:
    """``sys.stdin`` is the read end of a pipe that stays open; yields it and the write end's descriptor."""
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        yield stdin, write_fd
    finally:
        os.close(write_fd)
        stdin.close()


@pytest.fixture
def prompt_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads the verify-code prompts run in, as they start."""
    threads: list[threading.Thread] = []
    real = login_mod._read_in_thread

    def recording(*args: Any, **kw: Any) -> threading.Thread:
        thread = real(*args, **kw)
        assert isinstance(thread, threading.Thread), "_read_in_thread returns the prompt's thread"
        threads.append(thread)
        return thread

    monkeypatch.setattr(login_mod, "_read_in_thread", recording)
    return threads


def next_line(stdin: TextIO) -> str:
    """The next line of ``stdin``, read here; fails (instead of hanging) when nothing arrives."""
    ready, _, _ = select.select([stdin.fileno()], [], [], PATIENCE)
    assert ready, "the line written to stdin never reached the caller (a prompt thread took it?)"
    return stdin.readline()


def run_login(driver: str, sim: Simulator, console: Console, **options: Any) -> LoginResult:
    if driver == "sync":
        with Client(base_url=sim.base_url, record=False) as client:
            result: LoginResult = client.login(display="terminal", console=console, on_event=Phone(sim), **options)
            return result

    async def main() -> LoginResult:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            result: LoginResult = await client.login(
                display="terminal", console=console, on_event=Phone(sim), **options
            )
            return result

    return asyncio.run(main())


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_unanswered_prompt_on_an_open_pipe_stops_at_the_deadline(
    driver: str,
    sim: Simulator,
    home: Path,
    piped_stdin: tuple[TextIO, int],
    prompt_threads: list[threading.Thread],
) -> None:
    stdin, write_fd = piped_stdin
    sim.set_qr_scenario(verify_code="135790", count=1)
    console, out = captured()
    with pytest.raises(LoginError) as info:
        run_login(driver, sim, console, **{**FAST, "deadline": 1.0})
    assert info.value.result.outcome == Outcome.DEADLINE
    assert prompt_threads, "the login never asked for the verify code"
    wait_until(lambda: not any(t.is_alive() for t in prompt_threads), "the prompt thread to exit")
    text = out.getvalue()
    assert text.count(PROMPT) == 1  # asked once, never again after the login ended
    assert "✗ No confirmed login within 1 seconds" in text
    assert f"{PROMPT}\n[" in text  # the unanswered prompt's line is ended before the result line

    # Nothing reads stdin any more: the next line typed is the caller's.
    os.write(write_fd, b"print('hello')\n")
    assert next_line(stdin) == "print('hello')\n"


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_prompt_takes_one_line_per_answer_and_leaves_the_rest(
    driver: str,
    sim: Simulator,
    home: Path,
    piped_stdin: tuple[TextIO, int],
    prompt_threads: list[threading.Thread],
) -> None:
    # All three lines arrive in one chunk on a pipe that stays open: a reader that read stdin's buffered text
    # after select() would take them all at the first prompt, and then wait on an empty pipe for the second.
    stdin, write_fd = piped_stdin
    os.write(write_fd, "12ab\n135790\nnot for the login ✓\n".encode())
    sim.set_qr_scenario(verify_code="135790", count=1)
    console, out = captured()
    result = run_login(driver, sim, console, **FAST)
    assert result.ok
    text = out.getvalue()
    assert "digits only, as shown on the phone" in text and "Verify code accepted" in text
    assert text.count(PROMPT) == 2
    assert len(prompt_threads) == 1
    wait_until(lambda: not prompt_threads[0].is_alive(), "the prompt thread to exit")
    assert next_line(stdin) == "not for the login ✓\n"


def test_end_of_a_pipe_cancels(sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()  # one wrong answer, then end of input
    os.write(write_fd, b"12ab\n")
    os.close(write_fd)
    stdin = os.fdopen(read_fd, "r")
    monkeypatch.setattr(sys, "stdin", stdin)
    sim.set_qr_scenario(verify_code="135790", count=1)
    console, out = captured()
    try:
        with pytest.raises(LoginError) as info:
            run_login("sync", sim, console, **FAST)
    finally:
        stdin.close()
    assert info.value.result.outcome == Outcome.CANCELLED
    assert "digits only" in out.getvalue()
    assert "no input to read a verify code from: cancelling" in out.getvalue()


def test_a_line_read_ahead_by_an_earlier_input_is_used_at_end_of_input(
    sim: Simulator, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script reads stdin first (input() reads ahead into sys.stdin's buffer), then logs in; the code's line
    # is in that buffer, not in the pipe, which has ended.
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"yes\n135790\n")
    os.close(write_fd)
    stdin = os.fdopen(read_fd, "r")
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        assert stdin.readline() == "yes\n"
        sim.set_qr_scenario(verify_code="135790", count=1)
        console, out = captured()
        assert run_login("sync", sim, console, **FAST).ok
    finally:
        stdin.close()
    assert "Verify code accepted" in out.getvalue()


def test_read_code_stops_once_the_login_is_over() -> None:
    # An ask that cannot be stopped (the fallback): after its answer, a finished login is never asked again,
    # even when the answer was not digits.
    session = LoginSession(LoginConfig())
    console, out = captured()
    asks: list[str] = []

    def ask(prompt: str) -> str:
        asks.append(prompt)
        if len(asks) > 1:
            raise EOFError  # a prompt after the end: the assertion below says so (instead of asking forever)
        session.finish(LoginResult(ok=False, outcome=Outcome.DEADLINE, reason="too late"))
        return "not digits"

    view = TerminalLoginView(session, console, ask=ask)
    view.unsubscribe()  # drive _read_code here, not in a prompt thread
    session.emit(VerifyCodeRequested(state=LoginState.NEED_VERIFY_CODE, message="type it", wrong=False))
    assert view._read_code() is None
    assert len(asks) == 1 and "digits only" not in out.getvalue()
    assert view._read_code() is None and len(asks) == 1  # not asked at all any more


def test_read_code_does_not_hand_over_digits_typed_after_the_end() -> None:
    session = LoginSession(LoginConfig())
    console, _ = captured()

    def ask(prompt: str) -> str:
        session.cancel()
        return "135790"

    view = TerminalLoginView(session, console, ask=ask)
    view.unsubscribe()
    session.emit(VerifyCodeRequested(state=LoginState.NEED_VERIFY_CODE, message="type it", wrong=False))
    assert view._read_code() is None


# --- the CLI in a subprocess: what happens at interpreter exit ------------------------------------------


def start_cli(tmp_path: Path, args: list[str], code: str | None = None) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    # Files, not pipes, for the output: nobody has to drain them while the login runs.
    with out.open("wb") as stdout, err.open("wb") as stderr:
        command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "openclaw_nb", *args]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr)
    return proc, out, err


def finish(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()  # only now: stdin stayed open (and silent) the whole login


def test_cli_deadline_with_stdin_kept_open_exits_normally(sim: Simulator, home: Path, tmp_path: Path) -> None:
    sim.configure(auto_confirm=0.0)  # scanned at once, and this QR code asks for a verify code
    sim.set_qr_scenario(verify_code="135790", count=1)
    proc, out, err = start_cli(tmp_path, ["login", "--base-url", sim.base_url, "--deadline", "2", "--no-save"])
    rc = finish(proc)
    stderr = err.read_text(errors="replace")
    assert "Fatal Python error" not in stderr
    assert rc == 1, stderr  # the deadline's exit status (1), not an abort (134 / -6)
    stdout = out.read_text(errors="replace")
    assert PROMPT in stdout and "No confirmed login within 2 seconds" in stdout


#: The CLI with Python's own Ctrl-C handler, whatever the test runner left SIGINT set to (a shell that starts
#: jobs in the background sets it to "ignore", and Python then keeps it ignored).
CLI_WITH_CTRL_C = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from openclaw_nb.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_cli_ctrl_c_at_the_prompt_exits_130(sim: Simulator, home: Path, tmp_path: Path) -> None:
    sim.configure(auto_confirm=0.0)
    sim.set_qr_scenario(verify_code="135790", count=1)
    proc, out, err = start_cli(tmp_path, ["login", "--base-url", sim.base_url, "--no-save"], code=CLI_WITH_CTRL_C)
    try:
        wait_until(lambda: PROMPT in out.read_text(errors="replace") or proc.poll() is not None, "the prompt")
        assert proc.poll() is None, err.read_text(errors="replace")
        proc.send_signal(signal.SIGINT)
    finally:
        rc = finish(proc)
    stderr = err.read_text(errors="replace")
    assert "Fatal Python error" not in stderr
    assert rc == 130, stderr
    assert "Login cancelled (interrupted)" in out.read_text(errors="replace")
