"""Exact wire headers and base_info, as docs/protocol.md specifies them."""

from __future__ import annotations

import base64
import json

import pytest

from openclaw_nb import __version__
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.endpoints import ENDPOINTS, build_request
from openclaw_nb.protocol.headers import ClientIdentity, random_uin, sanitize_bot_agent


def test_uin_is_base64_of_decimal_uint32() -> None:
    seen = set()
    for _ in range(200):
        text = base64.b64decode(random_uin(), validate=True).decode("ascii")
        assert text.isdigit() and str(int(text)) == text  # decimal, no leading zeros
        assert 0 <= int(text) < 2**32
        seen.add(text)
    assert len(seen) > 190  # fresh per request


def test_pack_version() -> None:
    assert C.pack_version("1.0.11") == 65547
    assert C.pack_version("2.4.9") == (2 << 16) | (4 << 8) | 9
    assert C.pack_version("0.1.0.dev3") == 256
    assert C.pack_version("1.2") == (1 << 16) | (2 << 8)
    assert C.pack_version("3.1.4rc1") == (3 << 16) | (1 << 8) | 4


def test_post_headers_with_token() -> None:
    spec = build_request("get_updates", {"get_updates_buf": ""}, identity=ClientIdentity(), token="T0K")
    h = spec.headers
    assert h["Content-Type"] == "application/json"
    assert h["AuthorizationType"] == "ilink_bot_token"
    assert h["Authorization"] == "Bearer T0K"
    assert h["iLink-App-Id"] == "bot"
    # The protocol level (the official 2.4.9), not this package's version; the exact number is the rule.
    assert C.PROTOCOL_CLIENT_VERSION == "2.4.9"
    assert h["iLink-App-ClientVersion"] == "132105"
    assert "Content-Length" not in h and "content-length" not in {k.lower() for k in h if k != "Content-Type"}
    assert "SKRouteTag" not in h
    assert spec.method == "POST" and spec.path == "/ilink/bot/getupdates"
    body = json.loads(spec.content or b"")
    assert body == {
        "get_updates_buf": "",
        "base_info": {"channel_version": "2.4.9", "bot_agent": f"openclaw-nb/{__version__}"},
    }


def test_no_authorization_without_token_and_route_tag() -> None:
    ident = ClientIdentity(route_tag="rt-1", app_id="bot")
    spec = build_request("get_bot_qrcode", {"local_token_list": []}, identity=ident, token=None)
    assert "Authorization" not in spec.headers
    assert spec.headers["SKRouteTag"] == "rt-1"
    assert spec.params == {"bot_type": "3"}


def test_qr_fetch_is_unauthenticated_even_with_a_token() -> None:
    # The official client posts only {"local_token_list": [...]} there: no base_info, no bearer token.
    spec = build_request("get_bot_qrcode", {"local_token_list": ["old"]}, identity=ClientIdentity(), token="T")
    assert "Authorization" not in spec.headers
    assert spec.headers["AuthorizationType"] == "ilink_bot_token" and "X-WECHAT-UIN" in spec.headers
    assert json.loads(spec.content or b"") == {"local_token_list": ["old"]}
    other = build_request("get_updates", {"get_updates_buf": ""}, identity=ClientIdentity(), token="T")
    assert other.headers["Authorization"] == "Bearer T" and "base_info" in json.loads(other.content or b"")


def test_get_request_headers_only_app_and_version() -> None:
    ident = ClientIdentity()
    spec = build_request("get_qrcode_status", None, identity=ident, token="T", params={"qrcode": "q1"})
    assert spec.method == "GET" and spec.content is None
    assert set(spec.headers) == {"iLink-App-Id", "iLink-App-ClientVersion"}
    assert spec.params == {"qrcode": "q1"}


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("MyBot/1.2 (linux; x64) Other/2", "MyBot/1.2 (linux; x64) Other/2"),
        ("b@d/1 Good/1", "Good/1"),
        ("stray Good/1", "Good/1"),
        ("", "OpenClaw"),
        ("no-version", "OpenClaw"),
        ("A/1 (" + "c" * 65 + ")", "A/1"),
        ("A/1 (tab\there)", "A/1"),
        ("x" * 33 + "/1 B/2", "B/2"),
        ("A/" + "v" * 33, "OpenClaw"),
        ("A/1.0+local_b-c", "A/1.0+local_b-c"),
    ],
)
def test_bot_agent_sanitised(agent: str, expected: str) -> None:
    assert sanitize_bot_agent(agent) == expected


def test_bot_agent_total_capped_at_256_bytes() -> None:
    agent = " ".join(f"P{i}/1.0 (comment number {i})" for i in range(40))
    out = sanitize_bot_agent(agent)
    assert len(out.encode()) <= 256
    assert out.startswith("P0/1.0 (comment number 0) P1/1.0")


def test_every_endpoint_in_table_has_path_and_timeout() -> None:
    paths = {ep.path for ep in ENDPOINTS.values()}
    assert len(paths) == len(ENDPOINTS) == 9
    assert ENDPOINTS["get_updates"].long_poll and ENDPOINTS["get_qrcode_status"].long_poll
    assert ENDPOINTS["send_message"].timeout == 15 and ENDPOINTS["send_typing"].timeout == 10
    assert ENDPOINTS["notify_start"].path == "/ilink/bot/msg/notifystart"


def test_identity_is_the_protocol_level_and_client_version_overrides_it() -> None:
    # By default: the official release the protocol follows, in both places; bot_agent names this package.
    default = json.loads(build_request("notify_start", {}, identity=ClientIdentity(), token="T").content or b"")
    assert default["base_info"] == {"channel_version": "2.4.9", "bot_agent": f"openclaw-nb/{__version__}"}
    ident = ClientIdentity(client_version="1.0.11")
    spec = build_request("notify_start", {}, identity=ident, token="T")
    assert spec.headers["iLink-App-ClientVersion"] == "65547"
    assert json.loads(spec.content or b"")["base_info"] == {
        "channel_version": "1.0.11",
        "bot_agent": f"openclaw-nb/{__version__}",
    }
