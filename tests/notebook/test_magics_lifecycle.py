"""The magics' session lifecycle in a real IPython shell against the simulator over real HTTP on 127.0.0.1:
the feed of ``%wx_updates`` says notifystart / notifystop (on ``%wx_updates stop`` and ``%unload_ext``), and
``%%wx_typing`` keeps the indicator on while its cell runs, leaving no thread behind."""

from __future__ import annotations

import threading
from typing import Any

from openclaw_nb.live import Feed
from openclaw_nb.notebook import magics as M
from openclaw_nb.protocol import constants as C
from openclaw_nb.sim import Simulator

Fails = Any

#: A cell that waits (on the simulator, no sleeping) until the typing indicator was shown three times.
THREE_SHOWN = "sim.wait_for(lambda s: sum(e.status == 1 for e in s.typing_events) >= 3, 10)"


def connect_sim(ip: Any) -> Simulator:
    ip.run("%wx_connect --sim --long-poll 0.5")
    sim = ip.user_ns["sim"]
    assert isinstance(sim, Simulator) and sim.running
    return sim


def greet(ip: Any, user: str = "alice") -> None:
    ip.run(f"%wx_sim say {user} hi bot")
    ip.run("page = wx.get_updates()")
    assert [m.text for m in ip.user_ns["page"].messages] == ["hi bot"]


def kinds(sim: Simulator) -> list[str]:
    return [n.kind for n in sim.notifications]


def typing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "openclaw-nb-typing"]


# --- %wx_updates and notify ----------------------------------------------------------------------------


def test_updates_start_and_stop_notify_the_server(ip: Any) -> None:
    sim = connect_sim(ip)
    feed = ip.run("%wx_updates start")
    assert isinstance(feed, Feed)
    ip.run("%wx_sim say alice first")
    feed.wait_rows(1)
    assert kinds(sim) == ["start"]
    ip.run("%wx_updates stop")
    feed.wait(timeout=10)
    assert kinds(sim) == ["start", "stop"]


def test_unload_ext_sends_notifystop_before_the_simulator_stops(ip: Any) -> None:
    sim = connect_sim(ip)
    feed = ip.run("%wx_updates start")
    sim.wait_for(lambda s: s.waiters(), 10)  # the feed's long poll is held
    assert kinds(sim) == ["start"]
    ip.run("%unload_ext openclaw_nb")
    assert not sim.running
    assert kinds(sim) == ["start", "stop"]
    feed.wait(timeout=10)
    assert not [e for e in feed.events if e.kind == "notify"]  # nothing failed on the way out


# --- %%wx_typing ---------------------------------------------------------------------------------------


def test_typing_cell_keeps_the_indicator_on_and_leaves_no_thread(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    before = threading.active_count()
    out.read()
    ip.run(f"%%wx_typing alice --every 0.02\n{THREE_SHOWN}\nresult = 42")
    assert ip.user_ns["result"] == 42  # the cell ran in the notebook's namespace
    assert typing_threads() == [] and threading.active_count() == before
    seen = [e.status for e in sim.typing_events]
    assert seen[-1] == C.TypingStatus.CANCEL and seen.count(C.TypingStatus.TYPING) >= 3
    stdout, _ = out.read()
    assert "typing indicator hidden for alice@im.wechat" in stdout


def test_typing_cell_hides_the_indicator_when_the_cell_fails(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    result = ip.run_cell(f"%%wx_typing alice --every 0.02\n{THREE_SHOWN}\n1 / 0")
    assert not result.success  # "Run all" stops here
    stdout, stderr = out.read()
    assert "ZeroDivisionError" in stdout + stderr  # the cell's traceback, as any cell shows it
    assert (
        "UsageError: %%wx_typing: the cell failed (see above); the typing indicator for alice@im.wechat is hidden"
        in stderr
    )
    assert typing_threads() == []
    assert sim.typing_events[-1].status == C.TypingStatus.CANCEL


def test_typing_cell_options_are_checked(ip: Any, fails: Fails) -> None:
    connect_sim(ip)
    greet(ip)
    assert "--every is a number of seconds >= 0" in fails("%%wx_typing alice --every -1\npass")
    assert "--cancel is for the line form" in fails("%%wx_typing alice --cancel\npass")
    assert "wx_typing" in M.WxMagics.magics["cell"]
