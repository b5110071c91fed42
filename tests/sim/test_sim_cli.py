"""``openclaw-nb sim`` as a real process: first stdout line, requests, clean exit on SIGTERM/SIGINT, and a
``--state`` file that lets a restarted simulator carry on."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from simhelpers import call

import openclaw_nb
from openclaw_nb import cli
from openclaw_nb.protocol import constants as C

REPO = Path(openclaw_nb.__file__).resolve().parent.parent
DEADLINE = 20.0


def read_line(proc: subprocess.Popen[bytes], timeout: float = DEADLINE) -> str:
    """The next stdout line, with a deadline (a hung process fails the test instead of hanging it)."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = end - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            raise AssertionError(f"no line from the simulator within {timeout} s; got {line!r}")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            raise AssertionError(
                f"the simulator exited early: {line!r}, stderr: {proc.stderr and proc.stderr.read()!r}"
            )
        line += chunk
    return line.decode().rstrip("\n")


@contextmanager
def sim_process(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "openclaw_nb.cli", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    try:
        yield proc, read_line(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=DEADLINE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sim_process_prints_url_serves_and_exits_cleanly(sig: int) -> None:
    with sim_process("--port", "0", "--long-poll-timeout", "0.2") as (proc, url):
        assert url.startswith("http://127.0.0.1:") and url.split(":")[-1].isdigit()
        state = httpx.get(url + "/_sim/state", timeout=10).json()
        assert state["base_url"] == url and state["config"]["long_poll_timeout"] == 0.2
        with httpx.Client(base_url=url, timeout=10) as http:
            assert call(http, "get_updates", {}, token="nope")["ret"] == C.RET_STALE_TOKEN
        assert stop(proc, sig) == 0
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


def test_sim_process_auto_confirm_and_knobs() -> None:
    args = ("--auto-confirm", "0", "--qr-expiry", "30", "--set", "duplicate_rate=1", "--set", "default_user=zoe")
    with sim_process(*args) as (proc, url), httpx.Client(base_url=url, timeout=10) as http:
        qrcode = call(http, "get_bot_qrcode", {"local_token_list": []})["qrcode"]
        confirmed = call(http, "get_qrcode_status", params={"qrcode": qrcode})
        assert confirmed["status"] == C.QrStatus.CONFIRMED and confirmed["ilink_user_id"] == "zoe@im.wechat"
        config = http.get("/_sim/config").json()
        assert config["qr_lifetime"] == 30 and config["duplicate_rate"] == 1
        assert stop(proc) == 0


def test_sim_process_state_file_carries_on_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim-state.json"
    with sim_process("--state", str(path), "--long-poll-timeout", "0.2") as (proc, url):
        with httpx.Client(base_url=url, timeout=10) as http:
            login = http.post("/_sim/bots", json={"user_id": "alice"}).json()
            token = login["bot_token"]
            http.post("/_sim/inbound", json={"from_user_id": "alice", "text": "first"}).raise_for_status()
            page = call(http, "get_updates", {"get_updates_buf": ""}, token=token)
            cursor, ctx = page["get_updates_buf"], page["msgs"][0]["context_token"]
            http.post("/_sim/inbound", json={"from_user_id": "alice", "text": "second"}).raise_for_status()
        assert stop(proc) == 0
    assert path.exists()
    with sim_process("--state", str(path), "--long-poll-timeout", "0.2") as (proc, url2):
        with httpx.Client(base_url=url2, timeout=10) as http:
            # Same token, same cursor: the undelivered message comes next, nothing is replayed.
            page = call(http, "get_updates", {"get_updates_buf": cursor}, token=token)
            assert [m["item_list"][0]["text_item"]["text"] for m in page["msgs"]] == ["second"]
            # The context token of before the restart is still good for a reply.
            sent = call(
                http,
                "send_message",
                {"msg": {"to_user_id": "alice@im.wechat", "context_token": ctx, "item_list": [{"type": 1}]}},
                token=token,
            )
            assert sent["ret"] == 0 and sent["message_id"] > 2**53
        assert stop(proc) == 0


def test_main_without_a_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "sim" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["sim", "--help"])
    assert exc.value.code == 0
    assert "--auto-confirm" in capsys.readouterr().out


def test_bad_knob_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sim", "--set", "no_such_knob=1"]) == 2
    assert "no_such_knob" in capsys.readouterr().err


def test_sim_defaults() -> None:
    # docs/protocol.md: long polls are held ~35 s (the official client's timeout); a QR code lives "roughly a
    # minute or more" on the server, and the official client gives one 5 minutes before it refreshes.
    args = cli.build_parser().parse_args(["sim"])
    assert args.long_poll_timeout == 35.0 == C.LONG_POLL_TIMEOUT
    assert args.qr_expiry == C.QR_LIFETIME and 60 <= args.qr_expiry <= C.QR_ACTIVE_SECONDS == 300
    assert args.host == "127.0.0.1" and args.port == 0 and args.auto_confirm is None and args.state is None
    # the same defaults as the simulator's own, so `openclaw-nb sim` and Simulator() behave alike
    from openclaw_nb.sim import SimConfig

    config = SimConfig()
    assert (config.long_poll_timeout, config.qr_lifetime, config.auto_confirm) == (35.0, args.qr_expiry, None)


def test_sim_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["sim", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 35)" in out and f"(default: {C.QR_LIFETIME:g})" in out


def test_sim_process_with_an_admin_token_guards_the_control_api() -> None:
    token = "admin-" + os.urandom(8).hex()
    with sim_process("--port", "0", "--admin-token", token) as (proc, url):
        lines = [read_line(proc) for _ in range(4)]
        assert any(line.startswith("# admin token:") for line in lines), lines
        assert token not in "\n".join(lines)  # a token the user chose is not echoed
        refused = httpx.get(url + "/_sim/state", timeout=10)
        assert refused.status_code == 401 and "X-Admin-Token" in refused.json()["error"]
        assert httpx.get(url + "/_sim/state", headers={"X-Admin-Token": token}, timeout=10).status_code == 200
        assert stop(proc) == 0
