"""HAR 1.2 export (schema-valid, devtools-shaped) and the JSONL round trip."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from openclaw_nb.recorder import Binary, Exchange, ExchangeLog, Recorder, Text, load_log

from .har_schema import HAR_1_2_SCHEMA
from .helpers import LoopbackServer, SessionSecrets


@pytest.fixture
def session_with_errors(
    recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets], closed_port: int
) -> Recorder:
    """The whole session plus a timeout, a connection error and a 404 text body."""
    rec, server, _sec = recorded_session
    with httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(f"{server.base_url}/hold", json={"get_updates_buf": "x"}, timeout=0.2)
        with pytest.raises(httpx.ConnectError):
            http.get(f"http://127.0.0.1:{closed_port}/ilink/bot/get_qrcode_status?qrcode=q")
        http.get(f"{server.cdn_base_url}/download", params={"encrypted_query_param": "nope"})
    return rec


def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(HAR_1_2_SCHEMA)
    cls.check_schema(HAR_1_2_SCHEMA)
    return cls(HAR_1_2_SCHEMA, format_checker=cls.FORMAT_CHECKER)


def test_har_is_valid_har_1_2(session_with_errors: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "session.har"
    har = session_with_errors.to_har(path)
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk == har
    errors = sorted(_validator().iter_errors(on_disk), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]

    log = on_disk["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "openclaw-nb"
    entries = log["entries"]
    assert len(entries) == len(session_with_errors) == 13
    starts = [datetime.fromisoformat(e["startedDateTime"].replace("Z", "+00:00")) for e in entries]
    assert starts == sorted(starts)
    for e in entries:
        t = e["timings"]
        # HAR: time is the sum of the non -1 timings.
        assert e["time"] == pytest.approx(sum(v for k, v in t.items() if k != "comment" and v != -1))


def test_har_entry_contents(session_with_errors: Recorder) -> None:
    entries = {e["_id"]: e for e in session_with_errors.to_har()["log"]["entries"]}
    qr = entries[1]
    assert qr["_call"] == "get_bot_qrcode" and qr["request"]["method"] == "POST"
    assert {"name": "bot_type", "value": "3"} in qr["request"]["queryString"]
    assert qr["request"]["postData"]["mimeType"] == "application/json"
    assert json.loads(qr["request"]["postData"]["text"])["local_token_list"][0].startswith("<redacted ")
    assert qr["response"]["status"] == 200 and qr["response"]["statusText"] == "OK"
    assert json.loads(qr["response"]["content"]["text"])["qrcode"]

    upload = entries[7]
    assert upload["_call"] == "cdn_upload"
    post = upload["request"]["postData"]
    assert post["text"] == "" and "md5" in post["comment"]
    assert upload["request"]["bodySize"] == session_with_errors.by_id(7).request_body.size
    # Placeholders are readable in queryString and percent-quoted in the URL, so strict parsers accept it.
    q = {p["name"]: p["value"] for p in upload["request"]["queryString"]}
    assert q["encrypted_query_param"].startswith("<redacted ")
    assert "<" not in upload["request"]["url"] and " " not in upload["request"]["url"]

    download = entries[9]
    content = download["response"]["content"]
    assert "text" not in content and content["size"] == download["response"]["bodySize"] > 0
    assert content["mimeType"] == "application/octet-stream"

    timeout, refused, missing = entries[11], entries[12], entries[13]
    assert timeout["response"]["status"] == 0 and timeout["_error"].startswith("ReadTimeout")
    assert refused["_error"].startswith("ConnectError") and refused["_call"] == "get_qrcode_status"
    assert missing["response"]["status"] == 404 and missing["response"]["content"]["text"] == "not found"


def test_har_schema_rejects_broken_documents(session_with_errors: Recorder) -> None:
    # The schema has teeth: each of these breaks a rule of HAR 1.2.
    har = session_with_errors.to_har()
    validator = _validator()
    breakages = [
        lambda h: h["log"].pop("creator"),
        lambda h: h["log"].__setitem__("version", "1.1"),
        lambda h: h["log"]["entries"][0]["timings"].pop("wait"),
        lambda h: h["log"]["entries"][0]["timings"].__setitem__("receive", -1),
        lambda h: h["log"]["entries"][0]["request"].pop("queryString"),
        lambda h: h["log"]["entries"][0]["response"]["content"].pop("mimeType"),
        lambda h: h["log"]["entries"][0].__setitem__("startedDateTime", "yesterday"),
        lambda h: h["log"]["entries"][0].__setitem__("call", "custom fields need an underscore"),
        lambda h: h["log"]["entries"][0]["request"]["postData"].__setitem__("params", []),
    ]
    assert validator.is_valid(har)
    for i, breakage in enumerate(breakages):
        broken: dict[str, Any] = copy.deepcopy(har)
        breakage(broken)
        assert not validator.is_valid(broken), f"breakage {i} was not caught"


def test_jsonl_round_trip(session_with_errors: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    session_with_errors.to_jsonl(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["openclaw_nb_log"] == 1 and len(lines) == 14
    loaded = load_log(path)
    assert isinstance(loaded, ExchangeLog) and loaded.redacted
    original = session_with_errors.snapshot()
    assert loaded == original
    assert list(loaded) == list(original)
    for a, b in zip(loaded, original, strict=True):
        assert a == b and type(a.request_body) is type(b.request_body)
    # uint64 ids above 2^53 survive exactly.
    updates = loaded.filter(call="get_updates")[0]
    assert updates.response_body["msgs"][0]["message_id"] > 2**63
    assert isinstance(loaded.by_id(7).request_body, Binary)
    assert isinstance(loaded[-1].response_body, Text)
    # A loaded log has every view, and saving it again gives the same exchanges.
    again = tmp_path / "again.jsonl"
    loaded.to_jsonl(again)
    assert again.read_text(encoding="utf-8").splitlines()[1:] == lines[1:]
    assert loaded.to_har()["log"]["entries"] == original.to_har()["log"]["entries"]
    assert loaded.frame().equals(original.frame())


def test_jsonl_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"openclaw_nb_log": 1}\n{"id": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_log(bad)
    newer = tmp_path / "newer.jsonl"
    newer.write_text('{"openclaw_nb_log": 99}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="newer"):
        load_log(newer)


def test_json_body_shaped_like_a_stand_in_is_kept_as_json() -> None:
    ex = Exchange(
        1,
        datetime.fromisoformat("2024-01-01T00:00:00+00:00"),
        "x",
        "POST",
        "http://h/x",
        request_body={"binary": {"size": 1, "md5": "00"}},
        response_body={"text": "hi", "size": 2},
    )
    back = Exchange.from_dict(json.loads(json.dumps(ex.to_dict())))
    assert back == ex and isinstance(back.request_body, dict) and isinstance(back.response_body, dict)


def test_exports_carry_the_wire_drift(tmp_path: Path) -> None:
    # A shared session shows what the server sent that was new: the drift report travels in HAR and JSONL.
    from openclaw_nb import Client, Simulator

    with Simulator(long_poll_timeout=0.2, unknown_fields=True) as sim:
        bot = sim.login_bot()
        with Client(bot.bot_token, base_url=sim.base_url, bot_id=bot.bot_id) as client:
            sim.say("alice", "hello")
            client.get_updates()
            expected = {(e.path, e.kind) for e in client.drift_log.entries()}
            har = client.log.to_har(tmp_path / "s.har")
            client.log.to_jsonl(tmp_path / "s.jsonl")
            sliced = client.log.filter(call="get_updates")
    assert ("msgs[].future_flag", "unknown field") in expected
    _validator().validate(har)
    assert {(d["path"], d["kind"]) for d in har["log"]["_drift"]} == expected
    header = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert {(d["path"], d["kind"]) for d in header["drift"]} == expected
    loaded = load_log(tmp_path / "s.jsonl")
    assert {(d["path"], d["kind"]) for d in loaded.drift} == expected
    assert {(d["path"], d["kind"]) for d in loaded.to_har()["log"]["_drift"]} == expected  # and on again
    assert {(d["path"], d["kind"]) for d in sliced.to_har()["log"]["_drift"]} == expected
    assert bot.bot_token not in (tmp_path / "s.jsonl").read_text()
