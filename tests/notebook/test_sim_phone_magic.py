"""``%wx_sim phone``: the links a teacher hands out so people play simulated users in a browser. Each printed
link is fetched over real HTTP and must open that user's phone page; without users it is the join page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from openclaw_nb.sim import Simulator
from openclaw_nb.sim.server import SimulatorWarning

LINK = re.compile(r"^(\S+@im\.wechat): (http://127\.0\.0\.1:\d+/_sim/phone/\S+)$", re.M)


def test_wx_sim_phone_prints_a_working_link_per_user(ip: Any, out: Any) -> None:
    ip.run("%wx_connect --sim --long-poll 0.5")
    sim = ip.user_ns["sim"]
    assert isinstance(sim, Simulator)
    out.read()
    ip.run("%wx_sim phone alice bob@im.wechat")
    stdout, _ = out.read()
    links = dict(LINK.findall(stdout))
    assert sorted(links) == ["alice@im.wechat", "bob@im.wechat"], stdout
    assert links["alice@im.wechat"] == sim.phone_url("alice")
    for user, link in links.items():
        page = httpx.get(link, timeout=10)
        assert page.status_code == 200, (user, page.status_code)
        assert 'data-testid="phone"' in page.text and user.split("@")[0] in page.text
    assert "key" not in stdout, "an open simulator's links carry no key, so nothing to warn about"


def test_wx_sim_phone_without_users_prints_the_join_page(ip: Any, out: Any) -> None:
    ip.run("%wx_connect --sim --long-poll 0.5")
    out.read()
    ip.run("%wx_sim phone")
    stdout, _ = out.read()
    found = re.search(r"^phone pages: (http://127\.0\.0\.1:\d+/_sim/phone/) ", stdout, re.M)
    assert found, stdout
    picker = httpx.get(found.group(1), timeout=10)
    assert picker.status_code == 200 and 'data-testid="name"' in picker.text
    assert "class code" not in stdout  # no class mode: nothing to type


def test_wx_sim_phone_names_an_unexpanded_variable(ip: Any, fails: Any) -> None:
    ip.run("%wx_connect --sim --long-poll 0.5")
    assert "was not expanded" in fails("%wx_sim phone $nobody")


def test_wx_sim_phone_needs_the_simulator(ip: Any, fails: Any) -> None:
    assert "%wx_connect --sim" in fails("%wx_sim phone alice")


def test_class_mode_from_wx_connect_gives_keyed_links(ip: Any, out: Any) -> None:
    ip.run("%wx_connect --sim --long-poll 0.5 --class-code k7q-mxr")
    stdout, _ = out.read()
    sim = ip.user_ns["sim"]
    assert isinstance(sim, Simulator) and sim.class_code == "K7QMXR"
    assert f"class mode: people join at {sim.phone_url()} with the class code K7QMXR" in stdout, stdout
    ip.run("%wx_sim phone alice")
    stdout, _ = out.read()
    links = dict(LINK.findall(stdout))
    assert "?k=" in links["alice@im.wechat"] and "hand it to that person only" in stdout, stdout
    assert httpx.get(links["alice@im.wechat"], timeout=10).status_code == 200
    bare = links["alice@im.wechat"].split("?", 1)[0]
    # On loopback nobody types the class code, but without its key a user's page stays shut.
    assert httpx.get(bare, timeout=10).status_code == 403


def test_class_mode_for_the_room_listens_beyond_loopback_and_asks_for_the_code(ip: Any, out: Any) -> None:
    with pytest.warns(SimulatorWarning, match="beyond this machine's loopback interface"):
        ip.run("%wx_connect --sim --long-poll 0.5 --host 0.0.0.0 --class-code")
    sim = ip.user_ns["sim"]
    assert isinstance(sim, Simulator) and sim.host == "0.0.0.0" and sim.class_code_required
    code = sim.class_code
    assert code is not None and f"with the class code {code}" in out.read()[0]
    ip.run("%wx_sim phone")
    assert f"class code:  {code}" in out.read()[0]
    # Only loopback traffic here: the link is opened on 127.0.0.1, with and without the code it carries.
    link = urlsplit(sim.phone_url("alice"))
    local = f"http://127.0.0.1:{link.port}{link.path}"
    assert httpx.get(f"{local}?{link.query}", timeout=10).status_code == 200
    without_code = "&".join(part for part in link.query.split("&") if not part.startswith("code="))
    assert httpx.get(f"{local}?{without_code}", timeout=10).status_code == 401


def test_wx_connect_class_options_need_sim_and_a_valid_code(ip: Any, fails: Any) -> None:
    assert "--host and --class-code go with --sim" in fails("%wx_connect --class-code K7QMXR")
    assert "--host and --class-code go with --sim" in fails("%wx_connect --host 0.0.0.0")
    assert "class_code is 6 to 32 letters or digits" in fails("%wx_connect --sim --class-code ab")
