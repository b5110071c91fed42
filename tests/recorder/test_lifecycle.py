"""What happens to an exchange once it is over: built, redacted and stored at once, in finish order; its raw
parts dropped; a failure to build it kept as a stand-in; a cancelled one recorded; a fork survived."""

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

from openclaw_nb.recorder import Recorder, capture

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


def test_an_exchange_is_stored_redacted_at_once_and_its_raw_parts_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    flights: list[Any] = []
    real_init = capture._InFlight.__init__

    def keep(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        flights.append(self)

    monkeypatch.setattr(capture._InFlight, "__init__", keep)
    rec = Recorder()
    with _client(rec) as http:
        _post(http, 1)
        assert [ex.response_body["n"] for ex in rec._ring] == [1]  # in the ring already, nothing pending
        _post(http, 2)
    assert [ex.response_body["n"] for ex in rec] == [1, 2]
    text = json.dumps([ex.to_dict() for ex in rec])
    assert TOKEN not in text and CONTEXT not in text
    assert len(flights) == 2
    for flight in flights:  # nothing unredacted outlives its exchange
        assert flight.resp_chunks is None and flight.req_content is None and flight.url == ""
        assert flight.req_headers == [] and flight.resp_headers == [] and flight.error is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_records_on_while_the_parent_was_busy_recording() -> None:
    """Forks land while another thread is recording; each child must see every exchange and record more."""
    rec = Recorder()
    http = _client(rec)
    stop = threading.Event()

    def traffic() -> None:  # keeps recording, so some forks land while the recorder's lock is held
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
                    code = 0 if len(rec) == min(inherited + 1, rec.maxlen) else 4
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
    """The request the recorder failed to build still succeeds, with the wire log on too."""

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
        assert len(rec) == 1 and rec[0].failed
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


def test_clear_forgets_everything_and_ids_go_on() -> None:
    rec = Recorder()
    with _client(rec) as http:
        _post(http, 1)
        rec.clear()
        _post(http, 2)
    assert [(ex.id, ex.response_body["n"]) for ex in rec] == [(2, 2)]


def test_wire_log_lines_come_at_once_and_in_order(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    with caplog.at_level(logging.DEBUG, "openclaw_nb.wire"), _client(rec) as http:
        for n in range(3):
            _post(http, n)
            assert len([r for r in caplog.records if r.name == "openclaw_nb.wire"]) == n + 1
    lines = [r.getMessage() for r in caplog.records if r.name == "openclaw_nb.wire"]
    assert [line.split()[0] for line in lines] == ["#1", "#2", "#3"]
