"""``%wx_send --all``: a broadcast to the users the live feed has seen, in a real IPython shell against the
embedded simulator, showing the result table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from openclaw_nb.broadcast import BroadcastResult
from openclaw_nb.notebook import magics as M
from openclaw_nb.sim import Simulator

Fails = Callable[[str], str]


def connect_sim(ip: Any) -> Simulator:
    ip.run("%wx_connect --sim --long-poll 0.5")
    sim = ip.user_ns["sim"]
    assert isinstance(sim, Simulator) and sim.running
    return sim


def test_send_all_reaches_every_user_the_feed_has_seen(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    names = [f"pupil{i}" for i in range(6)]
    for name in names:
        ip.run(f"%wx_sim say {name} hi")
    ip.run("%wx_updates start")
    ip.user_ns["feed"] = ip.run("%wx_updates show")
    ip.run("feed.wait_rows(6)")
    sim.add_user("silent")  # known to the server, never wrote: not in the feed, so not sent to
    out.read()
    result = ip.run("%wx_send --all the class starts at 9 today")
    assert isinstance(result, BroadcastResult) and ip.user_ns["wx"].last_broadcast is result
    assert result.counts["sent"] == 6 and list(result.frame["user"]) == [f"{n}@im.wechat" for n in names]
    sent = Counter(e.to_user_id for e in sim.outbox if e.text == "the class starts at 9 today")
    assert sent == Counter(f"{n}@im.wechat" for n in names)
    shown = repr(result)
    assert "6 targets: 6 sent" in shown and "pupil5@im.wechat" in shown  # the table, in a terminal too
    assert "pupil0@im.wechat" in result._repr_html_()

    # The cell form sends the body as typed; quotes around a line's text are dropped as for one user.
    ip.run_cell('%%wx_send --all\nline one\n  line two\n').raise_error()
    ip.run('%wx_send --all "  spaced  "')
    texts = Counter(e.text for e in sim.outbox)
    assert texts["line one\n  line two"] == 6 and texts["  spaced  "] == 6
    ip.run("%wx_updates stop")


def test_send_all_says_what_is_missing(ip: Any, fails: Fails) -> None:
    assert "run %wx_connect first" in fails("%wx_send --all hello")
    connect_sim(ip)
    assert "run %wx_updates start" in fails("%wx_send --all hello")
    ip.run("%wx_updates start")
    assert "seen no user yet" in fails("%wx_send --all hello")
    assert "nothing to send" in fails("%wx_send --all")
    assert "does not go with --all" in fails("%wx_send --all --context-token T hello")
    assert "--all replaces USER" in fails("%wx_send alice --all hello")
    assert "the cell body is the message" in fails("%%wx_send --all hello\nbody\n")
    ip.run("%wx_updates stop")


def test_help_shows_send_all() -> None:
    examples = {name: example for name, _, example in M.HELP}
    assert examples["%wx_send --all"].startswith("%wx_send --all ")
    assert "--all" in (M.WxMagics.wx_send.__doc__ or "")
