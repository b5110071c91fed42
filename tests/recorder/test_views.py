"""Views of a log: indexing, frame(), show(), filter(), summary(); the ring buffer; lazy pandas."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest
from rich.table import Table

from openclaw_nb.recorder import Exchange, ExchangeLog, Recorder
from openclaw_nb.recorder.log import FRAME_DTYPES

from .helpers import LoopbackServer, SessionSecrets


def _ex(i: int, call: str = "send_message", status: int | None = 200, ret: int = 0, ms: float = 1.0) -> Exchange:
    started = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC) + timedelta(seconds=i)
    return Exchange(
        id=i,
        started=started,
        call=call,
        method="POST",
        url=f"http://h/ilink/bot/{call}",
        response_body={"ret": ret} if status is not None else None,
        status=status,
        duration_ms=ms,
        error=None if status is not None else "ReadTimeout: timed out",
    )


def test_importing_the_recorder_does_not_import_pandas() -> None:
    # (rich is not checked: httpx itself imports it when it is installed, for its command line.)
    code = "import sys, openclaw_nb.recorder; sys.exit(1 if 'pandas' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_ring_buffer_is_bounded(server: LoopbackServer) -> None:
    rec = Recorder(maxlen=3)
    with httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http:
        for _ in range(5):
            http.post(f"{server.base_url}/ilink/bot/sendtyping", json={"status": 1})
    assert len(rec) == 3 and rec.maxlen == 3 and rec.dropped == 2
    assert [ex.id for ex in rec] == [3, 4, 5]
    rec.clear()
    assert len(rec) == 0
    with pytest.raises(ValueError):
        Recorder(maxlen=0)


def test_indexing_and_slicing(recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets]) -> None:
    rec = recorded_session[0]
    last = rec[-1]
    assert isinstance(last, Exchange) and last.id == 10 and last.call == "send_message"
    tail = rec[-3:]
    assert isinstance(tail, ExchangeLog) and [ex.id for ex in tail] == [8, 9, 10]
    assert tail[0] is rec.by_id(8)
    with pytest.raises(KeyError):
        rec.by_id(999)
    # An exchange pretty-prints whole: headline, url, headers, body.
    text = repr(last)
    assert text.startswith("Exchange #10 send_message POST /ilink/bot/sendmessage → 200")
    assert "Authorization: Bearer <redacted " in text and '"text": "hi there"' in text
    html = last._repr_html_()
    assert "<details open>" in html and "hi there" in html
    assert "send_message" in str(last)


def test_frame(recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets]) -> None:
    rec = recorded_session[0]
    df = rec.frame()
    assert list(df.columns) == list(FRAME_DTYPES)
    assert len(df) == 10 and df.index.name == "id" and list(df.index) == list(range(1, 11))
    assert str(df["started"].dtype) == "datetime64[us, UTC]"
    assert df["status"].dtype == "Int64" and df["ret"].dtype == "Int64" and df["duration_ms"].dtype == "float64"
    assert df.loc[1, "call"] == "get_bot_qrcode"
    assert pd.isna(df.loc[7, "ret"])  # the CDN answers without a JSON body
    assert df.loc[10, "request_body"]["msg"]["item_list"][0]["text_item"]["text"] == "hi there"
    # Big ids stay exact inside the body column.
    assert df.loc[3, "response_body"]["msgs"][0]["message_id"] > 2**63
    empty = Recorder().frame()
    assert empty.empty and list(empty.columns) == list(FRAME_DTYPES)
    assert str(empty["started"].dtype) == "datetime64[us, UTC]"


def test_show_renders_three_ways(recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets]) -> None:
    rec = recorded_session[0]
    table = rec.show(4)
    text = repr(table)
    assert "last 4 of 10 exchanges" in text
    assert "cdn_download" in text and "cdn_upload" in text and "get_upload_url" not in text
    assert isinstance(table.__rich__(), Table)
    html = table._repr_html_()
    assert html.count("<tr>") == 5 and html.count("<details>") == 8
    assert "&lt;redacted " in html
    assert "protocol log: 10 exchanges" in repr(rec)
    assert rec._repr_html_().count("<details>") == 20


def test_filter() -> None:
    log = ExchangeLog(
        [
            _ex(1, "get_updates"),
            _ex(2, "send_message", ret=-2),
            _ex(3, "send_message"),
            _ex(4, "cdn_upload", status=500),
            _ex(5, "get_updates", status=None),
        ]
    )
    assert [ex.id for ex in log.filter(call="send_message")] == [2, 3]
    assert [ex.id for ex in log.filter(call=["get_updates", "cdn_upload"])] == [1, 4, 5]
    assert [ex.id for ex in log.filter(status=500)] == [4]
    assert [ex.id for ex in log.filter(status=[200])] == [1, 2, 3]
    assert [ex.id for ex in log.filter(errors_only=True)] == [2, 4, 5]
    assert [ex.id for ex in log.filter(since="2024-05-01T12:00:03Z")] == [3, 4, 5]
    assert [ex.id for ex in log.filter(until=datetime(2024, 5, 1, 12, 0, 2))] == [1, 2]
    assert [ex.id for ex in log.filter(since=timedelta(minutes=1))] == []
    assert [ex.id for ex in log.filter(where=lambda ex: ex.id % 2 == 0)] == [2, 4]
    chained = log.filter(call="send_message").filter(errors_only=True)
    assert [ex.id for ex in chained] == [2]
    assert isinstance(chained.frame(), pd.DataFrame) and len(chained.summary()) == 1


def test_summary() -> None:
    log = ExchangeLog(
        [_ex(1, "get_updates", ms=10.0), _ex(2, "get_updates", status=None, ms=35000.0)]
        + [_ex(10 + i, "send_message", ms=float(i), ret=-2 if i == 0 else 0) for i in range(100)]
    )
    s = log.summary()
    assert list(s.index) == ["get_updates", "send_message"]
    assert list(s.columns) == ["count", "errors", "error_rate", "p50_ms", "p99_ms", "max_ms"]
    assert s.loc["send_message", "count"] == 100 and s.loc["send_message", "errors"] == 1
    assert s.loc["send_message", "error_rate"] == pytest.approx(0.01)
    assert s.loc["send_message", "p50_ms"] == pytest.approx(49.5)
    assert s.loc["send_message", "p99_ms"] == pytest.approx(98.01)
    assert s.loc["get_updates", "error_rate"] == 0.5
    assert Recorder().summary().empty


def test_exchanges_are_read_only_and_bodies_parse_on_access(
    recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets],
) -> None:
    from openclaw_nb.recorder.exchange import JsonText

    ex = recorded_session[0][2]
    with pytest.raises(AttributeError):
        ex.status = 500  # type: ignore[misc]
    # Kept as redacted text at record time; each access parses a fresh copy, so edits change nothing.
    assert isinstance(ex._response_body, JsonText)
    body = ex.response_body
    body["ret"] = 99
    assert ex.response_body["ret"] == 0 and ex.ret == 0
    assert hash(ex) == hash(recorded_session[0].by_id(ex.id))


def test_the_recorders_fast_constructor_fills_the_same_fields() -> None:
    import pickle

    from openclaw_nb.recorder.exchange import _FIELDS, JsonText

    started = datetime(2024, 5, 1, tzinfo=UTC)
    # A distinct value per field, so a field read from the wrong place shows.
    fields = {
        "id": 7,
        "started": started,
        "call": "get_updates",
        "method": "POST",
        "url": "http://h/ilink/bot/getupdates",
        "request_headers": {"a": "1"},
        "request_body": JsonText('{"q": 1}'),
        "status": 200,
        "response_headers": {"b": "2"},
        "response_body": JsonText('{"ret": 0}'),
        "duration_ms": 3.5,
        "error": "boom",
        "attempt": 2,
        "wait_ms": 1.5,
        "http_version": "HTTP/2",
        "reason": "OK",
        "request_size": 8,
        "response_size": 10,
        "redacted": False,
    }
    assert tuple(fields) == _FIELDS
    fast = Exchange._of(tuple(fields.values()))
    assert fast == Exchange(**fields)
    for name, value in fields.items():
        expected = value.value() if isinstance(value, JsonText) else value
        assert getattr(fast, name) == expected, name
    assert fast._request_body is fields["request_body"] and fast._response_body is fields["response_body"]
    assert pickle.loads(pickle.dumps(fast)) == fast
    with pytest.raises(AttributeError):
        fast.call = "x"  # type: ignore[misc]
