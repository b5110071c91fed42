"""Redaction when an exchange is first looked at: nothing on the request path redacts, yet no public surface,
export, pickle or copy of an exchange ever holds a secret, two threads looking at once get one result, and the
byte budget bounds what unviewed exchanges hold. Against the simulator over loopback HTTP."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb import Client
from openclaw_nb.recorder import Exchange, capture, footprint
from openclaw_nb.sim import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(long_poll_timeout=0.01) as s:
        yield s


def _session(sim: Simulator, user: str, **kw: Any) -> tuple[Client, list[str]]:
    """A client that polled a page holding a context token and replied on it; the secrets that crossed."""
    login = sim.login_bot(user)
    client = Client(login.bot_token, base_url=sim.base_url, bot_id=login.bot_id, **kw)
    sim.say(user, "hello")
    page: Any = client.get_updates()
    token = _context_token(page)
    client.send_text(page.msgs[0].from_user_id, "hi back", context_token=token)
    return client, [login.bot_token, token]


def _context_token(page: Any) -> str:
    token = page.msgs[0].context_token
    assert isinstance(token, str) and len(token) > 8
    return token


def _pending(client: Client) -> list[Exchange]:
    """The exchanges as the ring holds them, not looked at (indexing the ring settles nothing)."""
    return list(client.log._ring)


def _assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


def test_nothing_is_redacted_on_the_request_path(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = {"n": 0}
    real_build = capture._InFlight.build

    def counting_build(self: Any) -> Any:
        builds["n"] += 1
        return real_build(self)

    monkeypatch.setattr(capture._InFlight, "build", counting_build)
    client, _ = _session(sim, "lazy-path")
    with client:
        pending = _pending(client)
        assert len(pending) >= 2 and builds["n"] == 0
        ex = client.log[-1]
        # What holds no secret reads without redacting anything.
        assert (ex.id, ex.call, ex.method, ex.status, ex.attempt) == (pending[-1].id, "send_message", "POST", 200, 1)
        assert ex.duration_ms is not None and ex.request_size and ex.response_size is not None
        assert ex._raw is not None and builds["n"] == 0
        assert ex.response_body == {"ret": 0} or isinstance(ex.response_body, dict)
        assert ex._raw is None and builds["n"] == 1


def test_an_exchange_never_looked_at_exports_redacted(sim: Simulator, tmp_path: Path) -> None:
    client, secrets = _session(sim, "lazy-export")
    with client:
        assert all(ex._raw is not None for ex in _pending(client))
        jsonl = client.log.to_jsonl(tmp_path / "log.jsonl").read_text(encoding="utf-8")
        _assert_clean(jsonl, secrets)
        assert "get_updates" in jsonl and "send_message" in jsonl
        har = json.dumps(client.log.to_har())
        _assert_clean(har, secrets)
    for user in ("lazy-frame", "lazy-show", "lazy-snapshot"):
        client, secrets = _session(sim, user)
        with client:
            assert all(ex._raw is not None for ex in _pending(client))
            if user == "lazy-frame":
                text = client.log.frame().to_string()
            elif user == "lazy-show":
                text = repr(client.log) + client.log._repr_html_()
            else:
                snap = client.log.snapshot()
                text = "\n".join(repr(ex) for ex in snap) + json.dumps([ex.to_dict() for ex in snap[-1:]])
            _assert_clean(text, secrets)
            assert "send_message" in text


def test_every_public_attribute_of_a_fresh_exchange_is_redacted(sim: Simulator) -> None:
    names = [name for name in dir(Exchange) if not name.startswith("_")]
    assert {"url", "request_headers", "request_body", "response_headers", "response_body", "error"} <= set(names)
    client, secrets = _session(sim, "lazy-dir")
    n = 0

    def fresh() -> tuple[Exchange, list[str]]:
        # A new poll: the bot token in its request, a new context token in its answer, nothing looked at.
        nonlocal n
        n += 1
        sim.say("lazy-dir", f"message {n}")
        token = _context_token(client.get_updates())
        ex = client.log[-1]
        assert ex._raw is not None and ex.call == "get_updates"
        return ex, [secrets[0], token]

    with client:
        for name in names:
            ex, planted = fresh()
            value = getattr(ex, name)  # this attribute is the first look
            if callable(value):
                try:
                    value = value()
                except TypeError:  # a method that needs arguments (from_dict): nothing of this exchange in it
                    continue
            _assert_clean(repr(value) + str(value), planted)
        for looks in (repr, str, lambda ex: ex._repr_html_(), lambda ex: json.dumps(ex.to_dict())):
            ex, planted = fresh()
            text = looks(ex)
            assert "get_updates" in text
            _assert_clean(text, planted)


def test_pickling_or_copying_an_unviewed_exchange_gives_a_redacted_one(sim: Simulator) -> None:
    client, secrets = _session(sim, "lazy-pickle")
    with client:
        for ex in _pending(client):
            assert ex._raw is not None
            data = pickle.dumps(ex)
            _assert_clean(data.decode("latin-1"), secrets)
            assert ex._raw is None  # pickling settled it
            back = pickle.loads(data)
            assert back == ex and back._raw is None
            _assert_clean(repr(back), secrets)
        for clone in (copy.copy, copy.deepcopy):
            sim.say("lazy-pickle", "copy me")
            planted = [secrets[0], _context_token(client.get_updates())]
            ex = client.log[-1]
            assert ex._raw is not None
            other = clone(ex)
            assert other._raw is None and other == ex
            _assert_clean(repr(other) + pickle.dumps(other).decode("latin-1"), planted)


def test_two_threads_looking_at_once_get_one_result(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    client, secrets = _session(sim, "lazy-threads")
    entered = threading.Event()
    second_entered = threading.Event()
    builds: list[str] = []
    real_build = capture._InFlight.build

    def slow_build(self: Any) -> Any:
        builds.append(threading.current_thread().name)
        if entered.is_set():
            second_entered.set()
        else:
            entered.set()
            # Give the other thread every chance to start a second build: without a lock it would, and set
            # second_entered. With one it waits for this build, so this wait runs to its deadline.
            second_entered.wait(timeout=0.5)
        return real_build(self)

    monkeypatch.setattr(capture._InFlight, "build", slow_build)
    with client:
        ex = client.log[-1]
        assert ex._raw is not None
        results: dict[str, Any] = {}

        def look(name: str) -> None:
            if name == "second":
                entered.wait(timeout=10)
            results[name] = (ex.request_body, ex._v)

        threads = [threading.Thread(target=look, args=(n,), name=n) for n in ("first", "second")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
    assert len(builds) == 1 and not second_entered.is_set()
    assert results["first"][1] is results["second"][1]  # one settled tuple, shared
    assert results["first"][0] == results["second"][0]
    _assert_clean(json.dumps(results["first"][0]), secrets)
    assert results["first"][0]["msg"]["context_token"] != secrets[1]


def test_the_budget_bounds_memory_while_nothing_is_looked_at(sim: Simulator) -> None:
    budget = 60_000
    login = sim.login_bot("lazy-budget")
    with Client(login.bot_token, base_url=sim.base_url, bot_id=login.bot_id, log_bytes=budget) as client:
        for _ in range(3):  # warm up what the recorder and client fill once
            client.get_updates()
        for i in range(120):
            sim.say("lazy-budget", f"a long message {i} " * 60)
            client.get_updates()
            assert client.log.bytes <= budget
        kept = _pending(client)
        assert client.log.dropped > 0 and len(kept) < 120
        assert all(ex._raw is not None for ex in kept)  # none looked at: the budget counted raw parts
        for ex in kept:  # each counts at least its raw response body
            chunks = ex._raw.resp_chunks  # type: ignore[union-attr]
            assert footprint(ex) >= sum(len(c) for c in chunks or ()) > 1000
        assert client.log.bytes == sum(footprint(ex) for ex in kept)
        del kept, ex
        # What the unviewed exchanges really hold: the memory that forgetting them gives back (the simulator runs
        # in this process, so the process's growth would count its messages too).
        gc.collect()
        tracemalloc.start()
        try:
            sim.say("lazy-budget", "one more " * 60)
            client.get_updates()  # recorded while traced, like the rest of the ring after it
            for i in range(40):
                sim.say("lazy-budget", f"a long message {i} " * 60)
                client.get_updates()
            assert all(ex._raw is not None for ex in client.log._ring)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
            counted = client.log.bytes
            client.log.clear()
            gc.collect()
            held -= tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert counted <= budget
        assert 0.6 * held <= counted <= 1.5 * held, (counted, held)


def test_a_failure_reported_after_the_end_changes_nothing_recorded(sim: Simulator) -> None:
    client, _ = _session(sim, "lazy-late")
    with client:
        ex = client.log[-1]
        flight = ex._raw
        assert isinstance(flight, capture._InFlight) and flight.done
        flight.fail(RuntimeError("a late error"))  # the raw parts wait for the first look: they must not change
        assert ex.error is None and ex.status == 200 and not ex.failed
