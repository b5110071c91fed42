"""Links a browser can open: straight to the simulator on a laptop, the LAN address on every interface, and
jupyter-server-proxy paths on JupyterHub/Binder (for the phone pages and the login widget's scan link)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from openclaw_nb.sim import links
from openclaw_nb.sim.links import browser_url, proxy_prefix, public_url

HUB = {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann/"}


@dataclass
class FakeSim:
    """What public_url reads of a running simulator."""

    host: str
    port: int
    base_url: str


def test_proxy_prefix_follows_the_hub_and_the_override() -> None:
    assert proxy_prefix({}) is None
    assert proxy_prefix(HUB) == "/user/ann/proxy/"
    assert proxy_prefix({"JUPYTERHUB_SERVICE_PREFIX": "user/ann"}) == "/user/ann/proxy/"
    assert proxy_prefix({**HUB, "OPENCLAW_NB_PROXY": "0"}) is None
    assert proxy_prefix({"OPENCLAW_NB_PROXY": "1"}) == "/proxy/"  # a local Jupyter with jupyter-server-proxy


def test_browser_url_proxies_loopback_simulator_urls_only() -> None:
    scan = "http://127.0.0.1:8123/_sim/scan/ab12?admin_token=t"
    assert browser_url(scan, {}) == scan
    assert browser_url(scan, HUB) == "/user/ann/proxy/8123/_sim/scan/ab12?admin_token=t"
    assert browser_url("http://localhost:9/_sim/phone/", HUB) == "/user/ann/proxy/9/_sim/phone/"
    public = {**HUB, "JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/"}
    assert browser_url(scan, public) == "https://hub.example.org/user/ann/proxy/8123/_sim/scan/ab12?admin_token=t"
    for other in ("https://liteapp.weixin.qq.com/q/x?qrcode=1", "http://192.168.1.5:8123/_sim/phone/"):
        assert browser_url(other, HUB) == other  # a real server, or an address the browser reaches itself


def test_public_url_picks_the_address_a_person_can_open(monkeypatch: pytest.MonkeyPatch) -> None:
    local = FakeSim("127.0.0.1", 8123, "http://127.0.0.1:8123")
    assert public_url(local, "/_sim/phone/", {}) == "http://127.0.0.1:8123/_sim/phone/"
    assert public_url(local, "_sim/phone/alice", HUB) == "/user/ann/proxy/8123/_sim/phone/alice"
    monkeypatch.setattr(links, "lan_address", lambda: "192.168.1.20")
    everywhere = FakeSim("0.0.0.0", 8123, "http://127.0.0.1:8123")
    assert public_url(everywhere, "/_sim/phone/", HUB) == "http://192.168.1.20:8123/_sim/phone/"
    monkeypatch.setattr(links, "lan_address", lambda: "127.0.0.1")  # no network: the loopback link again
    assert public_url(everywhere, "/_sim/phone/", {}) == "http://127.0.0.1:8123/_sim/phone/"
    one = FakeSim("10.0.0.7", 8123, "http://10.0.0.7:8123")
    assert public_url(one, "/_sim/phone/", HUB) == "http://10.0.0.7:8123/_sim/phone/"
    with pytest.raises(RuntimeError, match="not running"):
        public_url(FakeSim("127.0.0.1", 0, ""), "/")


def test_lan_address_is_an_ipv4_address() -> None:
    address = links.lan_address()  # from the routing table; no packet leaves
    assert address.count(".") == 3 and all(part.isdigit() for part in address.split("."))


def test_the_login_widget_links_the_scan_page_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ipywidgets")
    from openclaw_nb.notebook.login_widget import LoginWidget
    from openclaw_nb.protocol.login import LoginSession, LoginState, QrCode, QrIssued

    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ann/")
    monkeypatch.delenv("OPENCLAW_NB_PROXY", raising=False)
    session = LoginSession()
    widget = LoginWidget(session)
    qr = QrCode("q1", "http://127.0.0.1:8123/_sim/scan/q1", 1, 3, issued_at=session.clock(), lifetime=300)
    session.emit(QrIssued(state=LoginState.WAITING, message="scan", qr=qr, reason="first"))
    assert 'href="/user/ann/proxy/8123/_sim/scan/q1"' in widget.link.value
    real = QrCode("q2", "https://liteapp.weixin.qq.com/q/x?qrcode=2", 2, 3, issued_at=session.clock(), lifetime=300)
    session.emit(QrIssued(state=LoginState.WAITING, message="scan", qr=real, reason="expired"))
    assert 'href="https://liteapp.weixin.qq.com/q/x?qrcode=2"' in widget.link.value
    widget.close()
