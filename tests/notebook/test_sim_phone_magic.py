"""``%wx_sim phone``: the links a teacher hands out so people play simulated users in a browser. Each printed
link is fetched over real HTTP and must open that user's phone page; without users it is the join page."""

from __future__ import annotations

import re
from typing import Any

import httpx

from openclaw_nb.sim import Simulator

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


def test_wx_sim_phone_in_class_mode_gives_keyed_links_and_the_code(ip: Any, out: Any) -> None:
    from openclaw_nb.notebook.magics import WxMagics

    magics = ip.magics_manager.registry["WxMagics"]
    assert isinstance(magics, WxMagics)
    with Simulator(long_poll_timeout=0.5, class_code="k7q-mxr", require_class_code=True) as classroom:
        magics.sim = classroom  # what %wx_connect --sim would bind, with class mode on
        out.read()
        ip.run("%wx_sim phone")
        stdout, _ = out.read()
        assert "class code:  K7QMXR" in stdout, stdout
        ip.run("%wx_sim phone alice")
        stdout, _ = out.read()
        links = dict(LINK.findall(stdout))
        assert "?k=" in links["alice@im.wechat"] and "hand it to that person only" in stdout, stdout
        assert httpx.get(links["alice@im.wechat"], timeout=10).status_code == 200
        bare = links["alice@im.wechat"].split("?", 1)[0]
        assert httpx.get(bare, timeout=10).status_code == 401, "without its key the page must stay shut"
        magics.sim = None
