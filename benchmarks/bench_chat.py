"""The chat panel over a live feed of 100,000 messages: first paint, and a new message on screen.

The feed is filled the way the live stream fills it: raw ``getupdates`` pages (shaped like the simulator's, 40
users) go through the poll state's decoding and ``feed._take``, pages of 100. Two states of the feed are
measured, since a panel may open either way: every row still in the feed's column lists (nobody read
``feed.frame`` yet), and every row in the built frame (someone did).

- first paint: ``ChatPanel(client, feed=feed)`` plus building its widget tree (the conversation list and the
  selected conversation's last 50 bubbles); median of 5 fresh panels.
- new message shown: a one-message page appended to the feed (``feed._take``) until its bubble is in the
  panel's widget tree, woken by the panel's redraw signal (``panel.wait_shown``), for the selected
  conversation; p50 and p99 of 200.

No network is involved: the client is never asked to send anything.

    python -m benchmarks --only chat [--quick]
"""

from __future__ import annotations

import base64
import json
import random
import statistics
import tempfile
import time
from typing import Any

USERS = [f"student{i:02d}@im.wechat" for i in range(40)]
FIRST_ID = 2**63 + 12_345


def _fig(value: float, unit: str, target: str = "") -> dict[str, Any]:
    return {"value": value, "unit": unit, "target": target}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _page(start: int, n: int, rng: random.Random, user: str | None = None) -> bytes:
    msgs = []
    for i in range(start, start + n):
        t = 1_700_000_000_000 + i * 3
        msgs.append(
            {
                "seq": i + 1,
                "message_id": FIRST_ID + 2 * i,
                "from_user_id": user or USERS[i % len(USERS)],
                "to_user_id": "0123456789abcdef@im.bot",
                "client_id": f"wx:{t}-{i:08x}",
                "create_time_ms": t,
                "update_time_ms": t,
                "message_type": 1,
                "message_state": 2,
                "item_list": [
                    {
                        "type": 1,
                        "create_time_ms": t,
                        "msg_id": FIRST_ID + 2 * i + 1,
                        "text_item": {"text": f"hello number {i} " + "x" * (i % 20)},
                    }
                ],
                "context_token": base64.b64encode(rng.randbytes(24)).decode(),
            }
        )
    body = {"ret": 0, "msgs": msgs, "get_updates_buf": base64.b64encode(f"n:{start}".encode()).decode()}
    return json.dumps(body, separators=(",", ":")).encode()


def _feed(client: Any, n: int, built: bool) -> Any:
    from openclaw_nb.protocol.flow import Reply

    feed = client._new_feed(None, False, None, None)
    state = feed._stream.state
    rng = random.Random(7)
    for start in range(0, n, 100):
        feed._take(state.receive(Reply(200, {}, _page(start, 100, rng))), persist=False)
    if built:
        feed.frame  # noqa: B018 - every row into the built frame
    return feed


def _first_paint(client: Any, feed: Any, rounds: int = 5) -> tuple[float, int]:
    from openclaw_nb.notebook.chat import ChatPanel

    times = []
    shown = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        panel = ChatPanel(client, feed=feed, window=50)
        panel.widget  # noqa: B018 - the widget tree is the paint
        times.append((time.perf_counter() - t0) * 1000)
        shown = len(panel.bubble_widgets)
        panel.close()
    return statistics.median(times), shown


def _new_message(client: Any, feed: Any, n: int) -> list[float]:
    from openclaw_nb.notebook.chat import ChatPanel
    from openclaw_nb.protocol.flow import Reply

    panel = ChatPanel(client, feed=feed, window=50)
    panel.widget  # noqa: B018
    user = panel.selected
    state = feed._stream.state
    rng = random.Random(9)
    start = len(feed)
    out = []
    try:
        for i in range(n):
            page = state.receive(Reply(200, {}, _page(start + i, 1, rng, user)))
            wanted = FIRST_ID + 2 * (start + i)
            t0 = time.perf_counter()
            feed._take(page, persist=False)
            panel.wait_shown(message_id=wanted, timeout=10)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        panel.close()
    return out


def run(quick: bool = False) -> dict[str, Any]:
    import os

    from openclaw_nb.client import Client

    home = tempfile.mkdtemp(prefix="openclaw-nb-bench-")
    os.environ.setdefault("OPENCLAW_NB_HOME", home)
    n = 20_000 if quick else 100_000
    figures: dict[str, Any] = {}
    # Never contacted: everything measured here is local (a loopback address all the same).
    with Client("bench-token-" + "0" * 20, base_url="http://127.0.0.1:9", record=False) as client:
        for built, label in ((False, "rows in the feed's lists"), (True, "rows in the built frame")):
            feed = _feed(client, n, built)
            paint, shown = _first_paint(client, feed)
            figures[f"first paint, {n:,} messages, {label}"] = _fig(paint, "ms", "<= 300")
            figures[f"bubbles in the widget tree ({label})"] = _fig(shown, "", "50")
            latencies = _new_message(client, feed, 50 if quick else 200)[5:]
            figures[f"new message shown, {label}, p50"] = _fig(_pct(latencies, 0.5), "ms", "<= 50")
            figures[f"new message shown, {label}, p99"] = _fig(_pct(latencies, 0.99), "ms", "<= 50")
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
