"""Helpers of the reliability tests: child processes killed with SIGKILL (a consumer, the simulator), and
waiting on a condition with a deadline (never a sleep)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openclaw_nb.journal import read_lines

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("consumer_child.py")


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.005)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_with(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["OPENCLAW_NB_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def kill(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


class Consumer:
    """consumer_child.py in a process of its own (see its docstring)."""

    def __init__(self, mode: str, base_url: str, token: str, bot_id: str, home: Path, out: Path) -> None:
        self.args = [sys.executable, str(CHILD), mode, base_url, token, bot_id, str(out)]
        self.home = home
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        err = open(self.out.with_suffix(".stderr"), "ab")  # noqa: SIM115 (the child holds it)
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env_with(self.home), stdout=err, stderr=err)
        err.close()
        self.starts += 1

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)


class SimProcess:
    """``openclaw-nb sim --state PATH`` on a fixed loopback port (the same after a restart)."""

    def __init__(self, state: Path, *knobs: str, long_poll: float = 0.3) -> None:
        self.state = state
        self.port = free_port()
        self.args = [
            sys.executable,
            "-m",
            "openclaw_nb",
            "sim",
            "--port",
            str(self.port),
            "--state",
            str(state),
            "--long-poll-timeout",
            str(long_poll),
            "--seed",
            "7",
            *(arg for knob in knobs for arg in ("--set", knob)),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        err = open(self.state.with_suffix(".stderr"), "ab")  # noqa: SIM115 (the child holds it)
        proc = subprocess.Popen(
            self.args, cwd=ROOT, env=env_with(self.state.parent), stdout=subprocess.PIPE, stderr=err
        )
        err.close()
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        assert ready, "the simulator process did not print its base URL"
        line = proc.stdout.readline().decode().strip()
        assert line == self.base_url, line
        self.proc = proc

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.proc = None


def json_lines(path: Path) -> tuple[list[Any], int]:
    """The JSON values of a JSONL file's whole lines, and how many whole lines were not JSON."""
    if not path.exists():
        return [], 0
    lines, _torn = read_lines(path, warn=False)
    values, bad = [], 0
    for line in lines:
        try:
            values.append(json.loads(line))
        except ValueError:
            bad += 1
    return values, bad
