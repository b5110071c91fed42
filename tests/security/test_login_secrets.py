"""Login and secrets: the bot token goes only to an https base URL (or the login's own host), and a client
that lost the one answer carrying the token is told to scan again."""

from __future__ import annotations

from pathlib import Path

import pytest
from login.helpers import Phone  # tests/login: the scripted phone

from openclaw_nb.client import Client
from openclaw_nb.login import LoginError
from openclaw_nb.protocol.login import LoginEvent, LoginState, Outcome, StatusChanged, acceptable_base
from openclaw_nb.sim import Simulator

from .conftest import FAST


@pytest.mark.parametrize(
    ("baseurl", "ok"),
    [
        ("https://ilinkai.weixin.qq.com", True),
        ("https://other.example:8443/api", True),
        ("http://127.0.0.1:9999", True),  # the login's host, another port: a local simulator's second host
        ("http://127.0.0.1", True),
        ("http://evil.example", False),
        ("http://10.0.0.5:8080", False),
        ("ftp://127.0.0.1", False),
        ("https://", False),
        ("not a url", False),
        ("http://127.0.0.1:99999999", False),
    ],
)
def test_which_base_urls_a_login_adopts(baseurl: str, ok: bool) -> None:
    assert acceptable_base(baseurl, "http://127.0.0.1:5000") is ok


def test_https_login_adopts_no_plain_http() -> None:
    assert not acceptable_base("http://api.example", "https://api.example")
    assert acceptable_base("https://api2.example", "https://api.example")


def test_a_plain_http_baseurl_elsewhere_fails_the_login(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(baseurl="http://203.0.113.9:8080", count=1)
    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
        client.login(display="none", on_event=Phone(sim), **FAST)
    result = info.value.result
    assert result.outcome == Outcome.ERROR and "http://203.0.113.9:8080" in result.reason
    assert "https://" in result.reason and "not sent there" in result.reason
    (bot,) = sim.bots.values()
    assert client.token is None and client.base_url == sim.base_url
    assert bot.token not in str(info.value) and bot.token not in repr(result)
    assert not (home / "accounts").exists()  # nothing saved


def test_a_lost_confirmed_answer_says_to_scan_again(sim: Simulator, home: Path) -> None:
    phone = Phone(sim)

    def on_event(event: LoginEvent) -> None:
        if isinstance(event, StatusChanged) and event.state == LoginState.SCANNED:
            # The poll that brings "confirmed" (and the token, handed out once) loses its answer.
            sim.add_fault(lost_response=1.0, count=1, endpoints=["get_qrcode_status"])
        phone(event)

    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
        client.login(display="none", on_event=on_event, **FAST)
    assert sim.faults == []  # the fault was met
    result = info.value.result
    assert result.outcome == Outcome.ERROR and "sent no bot_token" in result.reason
    assert "only once" in result.reason and "scan it again" in result.hint
    assert client.token is None
