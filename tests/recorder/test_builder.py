"""Finished exchanges are built (redacted, stored) by the recorder's builder thread, off the caller's path.

Whoever builds, the log is complete and in finish order the moment anyone looks, nothing unredacted enters the
ring, and the raw parts of an exchange are dropped as soon as it is built.
"""

from __future__ import annotations

import json
import logging
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


def test_a_builder_started_in_another_process_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """After fork the builder thread is gone: a changed pid starts a new one (here faked with a stale pid)."""
    monkeypatch.setattr(log_module._builder, "_pid", -1)
    rec = Recorder()
    with _client(rec) as http:
        _post(http, 7)
    assert log_module._builder._pid > 0
    deadline = time.monotonic() + 10
    while rec._pending and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not rec._pending and rec[-1].response_body["n"] == 7


def test_a_failing_build_is_reported_and_the_next_exchanges_still_recorded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from openclaw_nb.recorder import capture

    real_build = capture._InFlight.build
    calls = {"n": 0}

    def build(self: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("broken on purpose")
        return real_build(self)

    monkeypatch.setattr(capture._InFlight, "build", build)
    rec = Recorder()
    with caplog.at_level(logging.ERROR, "openclaw_nb"), _client(rec) as http:
        _post(http, 1)
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.005)
        _post(http, 2)
        assert [ex.response_body["n"] for ex in rec] == [2]
    (record,) = [r for r in caplog.records if r.name == "openclaw_nb"]
    assert "could not build an exchange" in record.message and record.exc_info is not None


def test_a_failing_build_in_a_view_raises(held: list[Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    from openclaw_nb.recorder import capture

    def build(self: Any) -> Any:
        raise RuntimeError("broken on purpose")

    rec = Recorder()
    with _client(rec) as http:
        _post(http, 1)
    monkeypatch.setattr(capture._InFlight, "build", build)
    with pytest.raises(RuntimeError, match="broken on purpose"):
        len(rec)
    assert not rec._pending and len(rec) == 0  # not stuck on the broken one


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
