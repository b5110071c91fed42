"""httpx, httpcore and hpack log lines carry no secret once a client exists: URLs with a CDN parameter,
x-encrypted-param headers, bearer tokens in HTTP/2 header tables."""

from __future__ import annotations

import logging
from urllib.parse import quote, quote_plus

import pytest

from openclaw_nb import logfilter
from openclaw_nb.client import Client
from openclaw_nb.sim import Simulator

IMAGE = bytes(range(256)) * 16


def test_installed_once_by_every_client(sim: Simulator) -> None:
    with Client(base_url=sim.base_url, record=False), Client(base_url=sim.base_url, record=False):
        pass
    assert logfilter.installed()
    for name in logfilter.LOGGERS:
        assert logging.getLogger(name).filters.count(logfilter.FILTER) == 1, name
    logfilter.install()
    assert logging.getLogger("httpx").filters.count(logfilter.FILTER) == 1


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('HTTP Request: GET http://h/download?encrypted_query_param=Zm9vYmFy%2Bc2VjcmV0 "HTTP/1.1 200 OK"', "Zm9v"),
        (
            "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', [(b'x-encrypted-param', "
            "b'cGFyYW0tc2VjcmV0LXZhbHVl')])",
            "cGFyYW0t",
        ),
        ("Adding (b'authorization', b'Bearer tok-0123456789abcdef') to the header table", "tok-0123"),
        ("Encoding (b'Authorization', 'Bearer tok-0123456789abcdef')", "tok-0123"),
        ('body {"context_token": "ctx-0123456789abcdef"}', "ctx-0123"),
    ],
)
def test_each_shape_of_a_secret_in_a_log_line(line: str, secret: str) -> None:
    out = logfilter.redact_log_message(line)
    assert secret not in out and "<redacted " in out


def test_a_line_without_secrets_is_left_alone() -> None:
    line = 'HTTP Request: POST http://127.0.0.1:1/ilink/bot/getupdates "HTTP/1.1 200 OK"'
    assert logfilter.redact_log_message(line) is line


def test_debug_logging_of_a_media_round_trip(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    login = sim.login_bot("alice")
    sim.say("alice", "hi")
    client = Client(login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, record=False)
    with caplog.at_level(logging.DEBUG), client:
        page = client.get_updates(timeout=2)
        user = page.msgs[0].from_user_id
        sent = client.send_image(IMAGE, user)
        sim.send_image("alice", IMAGE)
        item = client.get_updates(timeout=2).msgs[0].item_list[0]
        assert bytes(client.download_media(item)) == IMAGE
    media = item.image_item.media
    secrets = [login.bot_token, media.encrypt_query_param, sent.uploaded.encrypt_query_param]
    http_lines = [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert any("download" in r.getMessage() for r in http_lines)  # the lines that used to leak are there
    assert any("<redacted " in r.getMessage() for r in http_lines)
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            assert form not in caplog.text
