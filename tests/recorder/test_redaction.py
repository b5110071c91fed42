"""No secret from a recorded session appears in any view or export; redaction is stable and explicit."""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from rich.console import Console

from openclaw_nb.protocol.redact import (
    is_redacted,
    redact,
    redact_header,
    redact_json,
    redact_json_text,
    redact_text,
    redact_url,
)
from openclaw_nb.recorder import Recorder, load_log

from .helpers import LoopbackServer, SessionSecrets, run_session


def _forms(secret: str) -> list[str]:
    # The raw value and the ways it could be spelled in a URL or a JSON string.
    return sorted({secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]})


def _rich_text(obj: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(obj)
    return buf.getvalue()


def _every_output(rec: Recorder, tmp_path: Path) -> dict[str, str]:
    frame = rec.frame()
    out = {
        "repr(log)": repr(rec),
        "log html": rec._repr_html_(),
        "show text": repr(rec.show(100)),
        "show html": rec.show(100)._repr_html_(),
        "show rich": _rich_text(rec.show(100)),
        "frame csv": frame.to_csv(),
        "frame json": frame.to_json(orient="records", date_format="iso", default_handler=str),
        "summary": rec.summary().to_csv(),
    }
    for ex in rec:
        out[f"exchange {ex.id} repr"] = repr(ex)
        out[f"exchange {ex.id} html"] = ex._repr_html_()
        out[f"exchange {ex.id} rich"] = _rich_text(ex)
    har = tmp_path / "s.har"
    rec.to_har(har)
    out["har"] = har.read_text(encoding="utf-8")
    jsonl = tmp_path / "s.jsonl"
    rec.to_jsonl(jsonl)
    out["jsonl"] = jsonl.read_text(encoding="utf-8")
    out["reloaded"] = repr(load_log(jsonl))
    return out


def test_no_secret_in_any_output(
    recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets], tmp_path: Path
) -> None:
    rec, _server, sec = recorded_session
    outputs = _every_output(rec, tmp_path)
    assert len(sec.all) == 10
    leaks = [
        (where, secret)
        for secret in sec.all
        for form in _forms(secret)
        for where, text in outputs.items()
        if form in text
    ]
    assert not leaks, leaks
    # ... and the outputs are not empty shells: the redaction placeholders are there.
    assert "<redacted " in outputs["har"] and "&lt;redacted " in outputs["show html"]


def test_wire_log_line_is_redacted(server: LoopbackServer, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rec = Recorder(redact=False)  # even an unredacted recorder logs redacted lines
    with (
        caplog.at_level(logging.DEBUG, logger="openclaw_nb.wire"),
        httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http,
    ):
        sec = run_session(http, server.base_url)
    lines = [r for r in caplog.records if r.name == "openclaw_nb.wire"]
    assert len(lines) == len(rec) == 10
    assert all(r.levelno == logging.DEBUG for r in lines)
    text = "\n".join(r.getMessage() for r in lines)
    assert "send_message POST" in text and "cdn_upload" in text
    for secret in [*sec.all, *server.state.secrets]:
        for form in _forms(secret):
            assert form not in text


def test_equal_values_look_equal(recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets]) -> None:
    rec, server, _sec = recorded_session
    updates = rec.filter(call="get_updates")[0]
    sends = rec.filter(call="send_message")
    ctx_seen = updates.response_body["msgs"][0]["context_token"]
    assert ctx_seen == redact(server.state.context_token)
    assert all(ex.request_body["msg"]["context_token"] == ctx_seen for ex in sends)
    # The bot token handed out at login is the one in every later Authorization header.
    login = rec.filter(call="get_qrcode_status")[0]
    token_seen = login.response_body["bot_token"]
    assert rec.filter(call="get_updates")[0].request_headers["Authorization"] == f"Bearer {token_seen}"
    # The download parameter from the CDN's x-encrypted-param header is the one the image message carries.
    upload = rec.filter(call="cdn_upload")[0]
    media = sends[0].request_body["msg"]["item_list"][0]["image_item"]["media"]
    assert media["encrypt_query_param"] == upload.response_headers["x-encrypted-param"]
    # The upload URL is the redacted upload_full_url the server handed out.
    assert upload.url == rec.filter(call="get_upload_url")[0].response_body["upload_full_url"]


def test_what_stays_visible(recorded_session: tuple[Recorder, LoopbackServer, SessionSecrets]) -> None:
    rec, server, _sec = recorded_session
    qr = rec.filter(call="get_qrcode_status")[0]
    assert server.state.qrcode in qr.url  # QR ids are not secrets
    up = rec.filter(call="get_upload_url")[0]
    assert len(up.request_body["filekey"]) == 32 and not is_redacted(up.request_body["filekey"])
    assert is_redacted(up.request_body["aeskey"])
    assert all(is_redacted(t) for t in rec[0].request_body["local_token_list"])
    assert rec.filter(call="send_typing")[0].request_body["ilink_user_id"] == "u1@im.wechat"


def test_unredacted_recorder_warns_once_and_keeps_values(server: LoopbackServer) -> None:
    with pytest.warns(UserWarning, match="redact=False") as warned:
        rec = Recorder(redact=False)
    assert len(warned) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recording must not warn again
        with httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http:
            run_session(http, server.base_url)
    login = rec.filter(call="get_qrcode_status")[0]
    assert login.response_body["bot_token"] == server.state.bot_token
    assert rec[2].request_headers["Authorization"] == f"Bearer {server.state.bot_token}"
    assert not rec[0].redacted


def test_redaction_helpers() -> None:
    placeholder = redact("abc")
    assert placeholder.startswith("<redacted ") and placeholder.endswith("…(3)>")
    assert redact(placeholder) == placeholder  # idempotent: re-saving a log changes nothing
    assert redact_header("Authorization", "Bearer abc") == f"Bearer {placeholder}"
    assert redact_header("authorization", f"Bearer {placeholder}") == f"Bearer {placeholder}"
    assert redact_header("Content-Type", "application/json") == "application/json"
    assert redact_header("x-encrypted-param", "abc") == placeholder
    url = "https://cdn/c2c/upload?encrypted_query_param=a%2Bb%2F&filekey=0a1b"
    assert redact_url(url) == f"https://cdn/c2c/upload?encrypted_query_param={redact('a+b/')}&filekey=0a1b"
    assert redact_url("https://h/p?qrcode=x") == "https://h/p?qrcode=x"
    nested = {"msgs": [{"item_list": [{"image_item": {"aeskey": "k", "media": {"aes_key": "q", "full_url": url}}}]}]}
    red = redact_json(nested)
    image = red["msgs"][0]["item_list"][0]["image_item"]
    assert image["aeskey"] == redact("k") and image["media"]["aes_key"] == redact("q")
    assert "a%2Bb" not in image["media"]["full_url"] and "filekey=0a1b" in image["media"]["full_url"]
    assert redact_text("oops token=abc; Bearer xyz") == f"oops token={placeholder}; Bearer {redact('xyz')}"


@pytest.mark.parametrize(
    "body",
    [
        {
            "ret": 0,
            "msgs": [
                {
                    "context_token": "ctx",
                    "item_list": [
                        {
                            "image_item": {
                                "aeskey": "k",
                                "media": {
                                    "aes_key": "q",
                                    "encrypt_query_param": "p",
                                    "full_url": "http://c/download?encrypted_query_param=a%2Bb&x=1",
                                },
                            }
                        }
                    ],
                }
            ],
        },
        {"token": 'quote " and backslash \\ inside', "nested": {"bot_token": 12345, "typing_ticket": True}},
        {"local_token_list": ["a", "b", "a"], "Token": "Upper", "AES_KEY": "k2"},
        {"token": "", "bot_token": None, "context_token": {"an": "object"}},
        {"aeskey": [1, {"a": 2}]},
        [{"typing_ticket": "t"}, {"upload_param": "u"}],
        {"msg": 'the words "token": "abc" inside a string, and ?upload_param=zz in text'},
        {"upload_full_url": "http://c/upload?encrypted_query_param=<redacted abcd…(3)>&filekey=f"},
        {"url": "http://c/x?encrypted_query_param=v1\u0026filekey=f", "text": "日本語 token"},
        {"filekey": "visible", "monkey": "key-ish but not secret", "x-encrypted-param": "h"},
    ],
)
def test_text_redaction_matches_the_parsed_one(body: object) -> None:
    for text in (json.dumps(body), json.dumps(body, indent=2), json.dumps(body, ensure_ascii=False)):
        assert json.loads(redact_json_text(text)) == redact_json(body)


def test_text_redaction_of_odd_text() -> None:
    # Not JSON at all: redacted as free text rather than passed through.
    assert redact_json_text('{"token": "abc", broken') == '{"token": "' + redact("abc") + '", broken'
    assert redact_json_text("") == ""
    assert redact_json_text('{"ret":0}') == '{"ret":0}'
    # Encoders that escape "&" as \u0026 (Go's does) still have their query parameters found.
    escaped = '{"u": "http://c/x?filekey=f\\u0026encrypted_query_param=v1"}'
    assert json.loads(redact_json_text(escaped)) == redact_json(json.loads(escaped))
    assert "v1" not in redact_json_text(escaped)
