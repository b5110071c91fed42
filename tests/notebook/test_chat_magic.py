"""``%wx_chat`` in a real IPython shell (no widget front end): it joins the magics' feed or starts it, shows
the panel as text, replaces an earlier panel, and says what to do when something is missing."""

from __future__ import annotations

from typing import Any

from openclaw_nb.notebook import magics as M
from openclaw_nb.notebook.chat import ChatPanel
from openclaw_nb.sim import Simulator


def magics_of(ip: Any) -> M.WxMagics:
    found = ip.magics_manager.registry["WxMagics"]
    assert isinstance(found, M.WxMagics)
    return found


def test_wx_chat_shows_the_conversations_as_text_and_follows_the_feed(ip: Any, out: Any) -> None:
    ip.run("%wx_connect --sim --long-poll 0.5")
    sim = ip.user_ns["sim"]
    assert isinstance(sim, Simulator)
    ip.run("%wx_sim say alice hello from alice")
    ip.run("%wx_sim say bob bob says hi")
    ip.run("panel = %wx_chat alice --window 5")
    panel = ip.user_ns["panel"]
    assert isinstance(panel, ChatPanel) and panel.window == 5
    magics = magics_of(ip)
    assert magics.feed is not None and panel.feed is magics.feed and magics.feed.running
    panel.wait_shown(lambda p: len(p.conversations) == 2 and len(p.shown) == 1)
    assert panel.selected == "alice@im.wechat"
    out.read()
    ip.run("panel")  # displayed by the shell: the text view, not a widget's repr
    stdout, _ = out.read()
    assert "chat: 2 conversations, 2 messages" in stdout
    assert "▶ alice@im.wechat — 1 messages" in stdout and "← hello from alice" in stdout
    assert "bob@im.wechat — 1 messages, 1 unread" in stdout and "← bob says hi" in stdout
    assert "Box(" not in stdout

    # A second %wx_chat reads the same feed and retires the first panel.
    ip.run("again = %wx_chat")
    again = ip.user_ns["again"]
    assert again.feed is magics.feed and panel._closed and not again._closed
    assert again.selected == "bob@im.wechat"  # no user given: the latest conversation
    ip.run("%wx_sim say bob still there")
    again.wait_shown(lambda p: [m.text for m in p.shown] == ["bob says hi", "still there"])


def test_wx_chat_says_what_is_missing(ip: Any, fails: Any) -> None:
    assert "%wx_connect" in fails("%wx_chat")
    ip.run("%wx_connect --sim --long-poll 0.5")
    assert "--window is how many bubbles to show, 1 or more; got 0" in fails("%wx_chat --window 0")
    assert "unrecognized arguments: extra" in fails("%wx_chat alice extra")


def test_wx_chat_joins_a_feed_started_from_python(ip: Any) -> None:
    ip.run("%wx_connect --sim --long-poll 0.5")
    ip.run("mine = wx.stream()")
    ip.run("panel = %wx_chat")
    mine: Any = ip.user_ns["mine"]
    panel: Any = ip.user_ns["panel"]
    assert panel.feed is mine and magics_of(ip).feed is mine
    ip.run("%wx_sim say alice one poller")
    panel.wait_shown(lambda p: [m.text for m in p.shown] == ["one poller"])
    ip.run("%wx_updates stop")  # the magics stop the feed they share with the panel
    assert ip.user_ns["mine"].status.startswith("stopp")  # stopping (its long poll ends first) or stopped
