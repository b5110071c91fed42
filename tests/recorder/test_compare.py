"""diff() ignores volatile fields and catches real differences; replay() re-sends a session to a fresh server."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest

from openclaw_nb.recorder import VOLATILE_FIELDS, Exchange, ExchangeLog, Recorder, diff, load_log, replay

from .helpers import LoopbackServer, run_session

ServerFactory = Callable[..., LoopbackServer]


def _record(server: LoopbackServer, *, redact: bool = True, text: str = "hi there") -> Recorder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rec = Recorder(redact=redact)
    with httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http:
        run_session(http, server.base_url, text=text)
    return rec


def test_two_sessions_against_two_servers_match(server_factory: ServerFactory) -> None:
    # Different servers: different tokens, cursors, message ids, ports, UINs, client ids, times, durations.
    a = _record(server_factory())
    b = _record(server_factory())
    assert a[2].request_headers["X-WECHAT-UIN"] != b[2].request_headers["X-WECHAT-UIN"]
    assert a[2].response_body["get_updates_buf"] != b[2].response_body["get_updates_buf"]
    result = diff(a, b)
    assert result.same, repr(result)
    assert result.compared == 10 and len(result) == 0
    assert "match: 10 exchanges compared" in repr(result)
    assert result.frame().empty


def test_diff_catches_a_changed_value(server_factory: ServerFactory) -> None:
    result = diff(_record(server_factory()), _record(server_factory(variant="text")))
    assert not result.same
    (d,) = result.differences
    assert d.call == "get_updates" and d.n == 1 and d.kind == "changed"
    assert d.where == "response.body.msgs[0].item_list[0].text_item.text"
    assert (d.a, d.b) == ("hello", "HELLO")
    assert 'get_updates #1 response.body.msgs[0].item_list[0].text_item.text: "hello" → "HELLO"' in repr(result)


def test_diff_catches_missing_and_extra_fields(server_factory: ServerFactory) -> None:
    base = _record(server_factory())
    missing = diff(base, _record(server_factory(variant="missing")))
    kinds = {(d.call, d.n, d.where, d.kind) for d in missing}
    # message_id is volatile, but its absence is not.
    assert kinds == {
        ("send_message", 1, "response.body.message_id", "missing"),
        ("send_message", 2, "response.body.message_id", "missing"),
    }
    extra = diff(base, _record(server_factory(variant="extra")))
    assert [(d.where, d.kind, d.b) for d in extra] == [("response.body.new_field", "extra", True)]


def test_diff_catches_a_different_status_and_request(server_factory: ServerFactory) -> None:
    srv = server_factory()
    a = _record(srv)
    b = _record(server_factory(variant="status"), text="bye")
    result = diff(a, b)
    found = {(d.call, d.where, d.kind, d.a, d.b) for d in result}
    assert ("cdn_upload", "response.status", "changed", 200, 500) in found
    assert ("send_message", "request.body.msg.item_list[0].text_item.text", "changed", "hi there", "bye") in found
    df = result.frame()
    assert list(df.columns) == ["call", "n", "id_a", "id_b", "where", "kind", "a", "b"]
    assert df["n"].dtype == "int64" and "cdn_upload" in set(df["call"])
    assert "<table>" in result._repr_html_()


def test_diff_reports_unmatched_exchanges_and_respects_ignore() -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)

    def ex(i: int, call: str, body: dict, attempt: int = 1) -> Exchange:
        return Exchange(i, t, call, "POST", f"http://h/{call}", status=200, response_body=body, attempt=attempt)

    a = ExchangeLog([ex(1, "get_updates", {"ret": 0}), ex(2, "send_message", {"ret": 0, "x": 1})])
    b = ExchangeLog(
        [
            ex(1, "get_updates", {"ret": -1}),
            ex(2, "get_updates", {"ret": 0}, attempt=2),  # a retry: the final attempt is compared
            ex(3, "send_message", {"ret": 0, "x": 2}),
            ex(4, "send_typing", {"ret": 0}),
        ]
    )
    result = diff(a, b)
    assert [(d.call, d.where, d.kind) for d in result] == [
        ("send_message", "response.body.x", "changed"),
        ("send_typing", "exchange", "only_in_b"),
    ]
    with_retries = diff(a, b, retries=True)
    assert ("get_updates", "response.body.ret", "changed") in [(d.call, d.where, d.kind) for d in with_retries]
    assert diff(a, b, ignore=["x", "send_typing"]).differences[0].kind == "only_in_b"
    assert [d.where for d in diff(a, b, ignore=["response.body.x"])] == ["exchange"]
    # Volatile values compared when asked to.
    assert "message_id" in VOLATILE_FIELDS
    c = ExchangeLog([ex(1, "send_message", {"message_id": 1})])
    d = ExchangeLog([ex(1, "send_message", {"message_id": 2})])
    assert diff(c, d).same and not diff(c, d, volatile=()).same
    # ... but a volatile field that changes JSON type is a real difference (ids must stay integers).
    e = ExchangeLog([ex(1, "send_message", {"message_id": "2"})])
    assert [x.kind for x in diff(c, e)] == ["type"]


def test_replay_of_a_redacted_log_against_a_fresh_server(server_factory: ServerFactory, tmp_path: Path) -> None:
    original = _record(server_factory())
    path = tmp_path / "session.jsonl"
    original.to_jsonl(path)
    fresh = server_factory()
    result = replay(load_log(path), fresh.base_url, cdn_base_url=fresh.cdn_base_url)
    # The fresh server hands out new tokens; replay rebinds them, so every call succeeds as it did.
    assert result.same, repr(result)
    assert result.compared == 10
    assert [ex.call for ex in result.log] == [ex.call for ex in original]
    assert all(not ex.failed for ex in result.log), result.log.frame()[["call", "status", "ret"]]
    # The replayed session is redacted too, and it used the fresh server's secrets.
    assert result.log.redacted
    assert result.log[2].request_headers["Authorization"].startswith("Bearer <redacted ")
    assert result.log[2].request_headers["Authorization"] != original[2].request_headers["Authorization"]
    notes = dict(result.notes)
    assert "zero bytes" in notes[7]  # the upload body was not recorded
    assert isinstance(result.frame(), pd.DataFrame)


def test_replay_reports_what_changed_on_the_server(server_factory: ServerFactory) -> None:
    original = _record(server_factory())
    changed = server_factory(variant="missing")
    result = replay(original, changed.base_url, cdn_base_url=changed.cdn_base_url)
    assert [(d.call, d.where, d.kind) for d in result] == [
        ("send_message", "response.body.message_id", "missing"),
        ("send_message", "response.body.message_id", "missing"),
    ]
    assert "replay and recording differ in 2 places" in repr(result)


def test_replay_without_the_login_needs_a_token(server_factory: ServerFactory) -> None:
    original = _record(server_factory())
    after_login = original[2:4]  # get_updates, get_config: the log starts after the QR login
    fresh = server_factory()
    blind = replay(after_login, fresh.base_url)
    assert blind.log[0].response_body["ret"] == -14
    assert any("Authorization" in note for _, note in blind.notes)
    assert not blind.same
    ok = replay(after_login, fresh.base_url, token=fresh.state.bot_token)
    assert ok.same, repr(ok)


def test_replay_of_an_unredacted_log(server_factory: ServerFactory) -> None:
    original = _record(server_factory(), redact=False)
    fresh = server_factory()
    # Keeping secrets is the caller's explicit choice, and it warns at the caller's line like the recorder.
    with pytest.warns(UserWarning, match=r"redact=False") as caught:
        result = replay(original, fresh.base_url, cdn_base_url=fresh.cdn_base_url, redact=False)
    assert any(w.filename == __file__ for w in caught)
    assert result.same, repr(result)
    assert not result.log.redacted
    assert result.log[2].request_headers["Authorization"] == f"Bearer {fresh.state.bot_token}"


def test_replay_redacts_even_when_the_input_log_is_unredacted(server_factory: ServerFactory, tmp_path: Path) -> None:
    # A log someone shared, marked unredacted: replaying it with one's own token must not record that token.
    original = _record(server_factory(), redact=False)
    path = tmp_path / "shared.jsonl"
    original[2:4].to_jsonl(path)  # get_updates, get_config: starts after login, so token= is what gets sent
    shared = load_log(path)
    assert not shared.redacted
    fresh = server_factory()
    mine = fresh.state.bot_token
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no warning: nothing is kept in clear
        result = replay(shared, fresh.base_url, token=mine)
    assert result.same, repr(result)
    assert result.log.redacted and all(ex.redacted for ex in result.log)
    assert result.log[0].request_headers["Authorization"].startswith("Bearer <redacted ")
    assert mine not in repr(result.log[0])
    assert mine not in result.log.to_jsonl(tmp_path / "replayed.jsonl").read_text()
    with pytest.raises(TypeError, match=r"redact=.*True.*False"):
        replay(shared, fresh.base_url, token=mine, redact="no")  # type: ignore[arg-type]


def test_replay_records_transport_errors(closed_port: int) -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    log = ExchangeLog([Exchange(1, t, "notify_start", "POST", "http://h/ilink/bot/msg/notifystart", status=200)])
    result = replay(log, f"http://127.0.0.1:{closed_port}")
    assert result.log[0].error is not None and result.log[0].error.startswith("ConnectError")
    assert next((d.where, d.kind) for d in result) == ("response.error", "changed")


@pytest.mark.parametrize("bad", [None])
def test_diff_accepts_plain_lists(bad: object) -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    one = [Exchange(1, t, "x", "GET", "http://h/x", status=200)]
    assert diff(one, list(one)).same
