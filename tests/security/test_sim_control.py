"""The simulator safe to expose: an admin token for the control API off loopback, the bot token handed out
once, no bearer token in the request log. Every server here listens on 127.0.0.1 only."""

from __future__ import annotations

import hmac

import httpx
import pytest

from openclaw_nb.client import Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.sim import Simulator
from openclaw_nb.sim import app as app_module
from openclaw_nb.sim.server import needs_admin_token

from .conftest import config

#: Every control route, with a method it answers.
CONTROL_ROUTES = [
    ("GET", "/_sim/state"),
    ("POST", "/_sim/reset"),
    ("GET", "/_sim/config"),
    ("POST", "/_sim/bots"),
    ("POST", "/_sim/qr_scenario"),
    ("POST", "/_sim/inbound"),
    ("GET", "/_sim/outbox"),
    ("GET", "/_sim/faults"),
    ("POST", "/_sim/advance"),
    ("GET", "/_sim/requests"),
    ("GET", "/_sim/conformance"),
    ("GET", "/_sim/scan/abc"),
    ("GET", "/_sim/qrcodes/abc"),
]


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", False), ("localhost", False), ("::1", False), ("0.0.0.0", True), ("::", True), ("10.1.2.3", True)],
)
def test_off_loopback_turns_the_admin_token_on(host: str, expected: bool) -> None:
    assert needs_admin_token(host) is expected
    assert needs_admin_token(host, admin_token="chosen-token") is True  # chosen: always asked for
    assert needs_admin_token(host, require=False) is False  # an explicit choice wins
    assert needs_admin_token(host, require=True) is True


def test_control_api_needs_the_admin_token_when_required() -> None:
    with Simulator(config(), require_admin_token=True) as sim:
        token = sim.admin_token
        assert token and len(token) >= 24
        with httpx.Client(base_url=sim.base_url, timeout=5) as http:
            for method, path in CONTROL_ROUTES:
                refused = http.request(method, path, json={})
                assert refused.status_code == 401, (method, path)
                assert "X-Admin-Token" in refused.json()["error"] and token not in refused.text
                wrong = http.request(method, path, json={}, headers={"X-Admin-Token": token[:-1] + "x"})
                assert wrong.status_code == 401, (method, path)
            ok = http.post("/_sim/bots", json={"user_id": "alice"}, headers={"X-Admin-Token": token})
            assert ok.status_code == 200 and ok.json()["bot_token"]
            assert http.get("/_sim/state", params={"admin_token": token}).status_code == 200
            # The iLink API is not behind the admin token: a bot uses its own.
            sent = http.post(
                "/ilink/bot/getconfig",
                json={"ilink_user_id": "alice@im.wechat", "base_info": {}},
                headers={"Authorization": f"Bearer {ok.json()['bot_token']}", "AuthorizationType": "ilink_bot_token"},
            )
            assert sent.status_code == 200


def test_admin_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(app_module.hmac, "compare_digest", spy)
    with Simulator(config(), admin_token="my-admin-token-1234") as sim:
        assert sim.admin_token == "my-admin-token-1234"  # a chosen token turns the check on, on loopback too
        with httpx.Client(base_url=sim.base_url, timeout=5) as http:
            assert http.get("/_sim/state", headers={"X-Admin-Token": "guess"}).status_code == 401
            assert http.get("/_sim/state", headers={"X-Admin-Token": "my-admin-token-1234"}).status_code == 200
    assert calls == [(b"guess", b"my-admin-token-1234"), (b"my-admin-token-1234", b"my-admin-token-1234")]


def test_loopback_asks_for_no_admin_token(sim: Simulator) -> None:
    assert sim.admin_token is None
    assert httpx.get(sim.base_url + "/_sim/state", timeout=5).status_code == 200


def test_a_short_admin_token_is_refused() -> None:
    with pytest.raises(Exception, match="at least 8 characters"):
        Simulator(config(), admin_token="short")


def test_request_log_never_returns_bearer_tokens(sim: Simulator) -> None:
    login = sim.login_bot("alice")
    with Client(login.bot_token, base_url=sim.base_url, record=False) as client:
        client.notify_start()
    logged = httpx.get(sim.base_url + "/_sim/requests", timeout=5)
    assert logged.status_code == 200 and '"notify_start"' in logged.text
    assert login.bot_token not in logged.text
    (entry,) = [r for r in logged.json()["requests"] if r["endpoint"] == "notify_start"]
    assert entry["headers"]["authorization"].startswith("Bearer <redacted ")


def test_the_bot_token_is_handed_out_once(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.base_url, timeout=5) as http:
        qrcode = http.get("/ilink/bot/get_bot_qrcode", params={"bot_type": "3"}).json()["qrcode"]
        sim.confirm(qrcode, "alice")
        first = http.get("/ilink/bot/get_qrcode_status", params={"qrcode": qrcode}).json()
        assert first["status"] == C.QrStatus.CONFIRMED and first["bot_token"] == sim.bots[first["ilink_bot_id"]].token
        for _ in range(3):  # a stranger who saw the QR code, or the same client again
            later = http.get("/ilink/bot/get_qrcode_status", params={"qrcode": qrcode}).json()
            assert later["status"] == C.QrStatus.CONFIRMED and later["ilink_bot_id"] == first["ilink_bot_id"]
            assert "bot_token" not in later and first["bot_token"] not in str(later)
