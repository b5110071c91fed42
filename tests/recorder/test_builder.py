"""Finished exchanges are built (redacted, stored) by the recorder's builder thread, off the caller's path.

Whoever builds, the log is complete and in finish order the moment anyone looks, nothing unredacted enters the
ring, and the raw parts of an exchange are dropped as soon as it is built.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from openclaw_nb.recorder import Recorder
from openclaw_nb.recorder import log as log_module

TOKEN = "builder-test-token-0123456789abcdef"
CONTEXT = "ctx-secret-0123456789"


def _page_handler(request: httpx.Request) -> httpx.Response:
    n = json.loads(request.content)["n"]
    body = {"ret": 0, "n": n, "msgs": [{"context_token": f"{CONTEXT}-{n}", "item_list": []}]}
    return httpx.Response(200, json=body)


def _client(rec: Recorder) -> httpx.Client:
    return httpx.Client(transport=rec.wrap(httpx.MockTransport(_page_handler)))


def _post(http: httpx.Client, n: int) -> None:
    r = http.post(
        "http://sim.invalid/ilink/bot/getupdates", json={"n": n}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.json()["n"] == n


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    """The builder thread never runs: what it was asked to build is listed here instead."""
    asked: list[Recorder] = []
    monkeypatch.setattr(log_module._builder, "submit", asked.append)
    return asked


def test_a_finished_exchange_waits_for_the_builder_and_a_view_builds_it(held: list[Recorder]) -> None:
    rec = Recorder()
    with _client(rec) as http:
        _post(http, 1)
        _post(http, 2)
    # Handed over, not built: the ring is still empty and the builder was asked once for both.
    assert len(rec._pending) == 2 and len(rec._ring) == 0 and held == [rec]
    flights = list(rec._pending)
    assert [ex.response_body["n"] for ex in rec] == [1, 2]  # the view built them, in order
    assert not rec._pending and [ex.id for ex in rec._ring] == [1, 2]
    # Built means redacted, and the raw parts are gone from the hand-over objects.
    text = json.dumps([ex.to_dict() for ex in rec])
    assert TOKEN not in text and CONTEXT not in text
    for flight in flights:
        assert flight.resp_chunks is None and flight.req_content is None
        assert flight.req_headers == [] and flight.resp_headers == []


def test_every_view_sees_pending_exchanges(held: list[Recorder], tmp_path: Any) -> None:
    rec = Recorder(maxlen=2)
    views = {
        "len": lambda: len(rec),
        "last": lambda: rec[-1].response_body["n"],
        "frame": lambda: len(rec.frame()),
        "har": lambda: len(rec.to_har()["log"]["entries"]),
        "jsonl": lambda: len(load(rec.to_jsonl(tmp_path / "log.jsonl"))),
        "snapshot": lambda: len(rec.snapshot()),
        "dropped": lambda: rec.dropped,
    }

    def load(path: Any) -> Any:
        from openclaw_nb.recorder import load_log

        return load_log(path)

    seen = {}
    with _client(rec) as http:
        for n, (name, view) in enumerate(views.items(), 1):
            _post(http, n)
            assert rec._pending  # each view is the first to look
            seen[name] = view()
    assert seen == {"len": 1, "last": 2, "frame": 2, "har": 2, "jsonl": 2, "snapshot": 2, "dropped": 5}


def test_the_caller_builds_when_the_builder_falls_behind(held: list[Recorder]) -> None:
    rec = Recorder(maxlen=500)
    most = 0
    with _client(rec) as http:
        for n in range(log_module.MAX_PENDING * 3):
            _post(http, n)
            most = max(most, len(rec._pending))
    assert most == log_module.MAX_PENDING - 1  # never more waiting than that
    assert [ex.response_body["n"] for ex in rec] == list(range(log_module.MAX_PENDING * 3))


def test_the_builder_thread_builds_without_anyone_looking() -> None:
    rec = Recorder()
    with _client(rec) as http:
        for n in range(5):
            _post(http, n)
    deadline = time.monotonic() + 10
    while rec._pending and time.monotonic() < deadline:
        time.sleep(0.005)  # polling the builder's progress with a deadline, not waiting a fixed time
    assert not rec._pending, "the builder thread did not build the finished exchanges"
    assert [ex.id for ex in rec._ring] == [1, 2, 3, 4, 5]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_records_on_while_the_parent_was_busy_recording() -> None:
    """Forks land while the builder thread is mid-build; each child must see every exchange and record more."""
    rec = Recorder()
    http = _client(rec)
    stop = threading.Event()

    def traffic() -> None:  # keeps the builder thread busy, so some forks land mid-build
        n = 1000
        while not stop.is_set():
            _post(http, n)
            n += 1

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        for _ in range(8):
            pid = os.fork()
            if pid == 0:  # the child: only this thread exists here
                code = 3
                try:
                    inherited = len(rec)
                    with _client(rec) as child_http:
                        _post(child_http, -1)
                    deadline = time.monotonic() + 10
                    while rec._pending and time.monotonic() < deadline:
                        time.sleep(0.005)  # the child's own builder thread builds it
                    code = 0 if not rec._pending and len(rec) == min(inherited + 1, rec.maxlen) else 4
                    if code == 0 and rec[-1].response_body["n"] != -1:
                        code = 5
                finally:
                    os._exit(code)
            status = _wait_child(pid)
            assert status == 0, f"the forked child failed with {status} (3: hung or raised, 4/5: wrong log)"
    finally:
        stop.set()
        sender.join()
        http.close()


def _wait_child(pid: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)  # polling a child process with a deadline
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung (a lock held across fork?)")


def test_a_failing_build_is_reported_and_kept_as_a_stand_in(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from openclaw_nb.recorder import capture

    real_build = capture._InFlight.build
    calls = {"n": 0}

    def build(self: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"broken on purpose near {CONTEXT}")
        return real_build(self)

    monkeypatch.setattr(capture._InFlight, "build", build)
    rec = Recorder()
    with caplog.at_level(logging.ERROR, "openclaw_nb"), _client(rec) as http:
        _post(http, 1)
        _post(http, 2)
        first, second = list(rec)
    assert second.response_body["n"] == 2
    assert first.id == 1 and first.call == "get_updates" and first.status == 200 and first.failed
    assert "could not build this exchange (RuntimeError)" in (first.error or "")
    assert first.url == "" and first.response_body is None and first.request_headers == {}
    (record,) = [r for r in caplog.records if r.name == "openclaw_nb"]
    assert "exchange #1" in record.message and "RuntimeError" in record.message
    assert CONTEXT not in caplog.text  # the exception's text may quote what it was building: never logged


def test_a_failing_build_never_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built on the caller's thread (logger at DEBUG, or too many waiting): the request still succeeds."""
    from openclaw_nb.recorder import capture

    def build(self: Any) -> Any:
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(capture._InFlight, "build", build)
    rec = Recorder()
    wire = logging.getLogger("openclaw_nb.wire")
    old_level = wire.level
    wire.setLevel(logging.DEBUG)
    try:
        with _client(rec) as http:
            _post(http, 1)  # would raise if the build's error reached the caller
        assert not rec._pending and len(rec) == 1 and rec[0].failed
    finally:
        wire.setLevel(old_level)


def test_a_log_handler_that_sends_through_the_same_client_does_not_hang() -> None:
    rec = Recorder()
    http = _client(rec)
    sent: list[int] = []

    class Relay(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if not sent:  # a handler that reports through the bot it logs
                sent.append(1)
                _post(http, 99)

    wire = logging.getLogger("openclaw_nb.wire")
    handler = Relay()
    old_level = wire.level
    wire.setLevel(logging.DEBUG)
    wire.addHandler(handler)
    done = threading.Event()

    def run() -> None:
        _post(http, 1)
        done.set()

    try:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        assert done.wait(10), "recording deadlocked on its own log handler"
        assert sorted(ex.response_body["n"] for ex in rec) == [1, 99]
    finally:
        wire.removeHandler(handler)
        wire.setLevel(old_level)
        http.close()


def test_a_cancelled_request_is_recorded_as_failed() -> None:
    import asyncio

    async def main() -> Recorder:
        gate = asyncio.Event()

        async def slow(request: httpx.Request) -> httpx.Response:
            await gate.wait()  # never set: the request is cancelled while it waits
            return httpx.Response(200, json={})

        rec = Recorder()
        async with httpx.AsyncClient(transport=rec.wrap_async(httpx.MockTransport(slow))) as http:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(http.post("http://sim.invalid/ilink/bot/getupdates", json={}), 0.05)
        return rec

    rec = asyncio.run(main())
    (ex,) = list(rec)
    assert ex.failed and ex.status is None and (ex.error or "").startswith("CancelledError")


def test_clear_forgets_pending_exchanges_too(held: list[Recorder]) -> None:
    rec = Recorder()
    with _client(rec) as http:
        _post(http, 1)
        rec.clear()
        _post(http, 2)
    assert [ex.response_body["n"] for ex in rec] == [2]


def test_wire_log_lines_come_at_once_and_in_order(held: list[Recorder], caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    with caplog.at_level(logging.DEBUG, "openclaw_nb.wire"), _client(rec) as http:
        for n in range(3):
            _post(http, n)
            assert not rec._pending  # logging on: built by the caller, on the spot
    lines = [r.getMessage() for r in caplog.records if r.name == "openclaw_nb.wire"]
    assert [line.split()[0] for line in lines] == ["#1", "#2", "#3"]
    assert held == []
