"""The update stream: wake latency, sustained rate through the live feed, append cost, bulk ingest.

All against the embedded simulator on loopback (uvicorn in a thread of this process, as a notebook user
runs it), with persistence on (cursor and context tokens written after every page, as in real use):

- wake latency: ``sim.say()`` → the row readable in ``feed.frame`` (the wait ends when the feed appended the
  row; the figure includes reading ``feed.frame`` once). Sync (feed thread) and async (feed task).
- sustained rate: the simulator holds a backlog and serves it as fast as it can (pages of 100); the time
  until every message is in the feed; no loss checked against the simulator's inbox. Also with a producer
  thread writing while the feed reads (both share one interpreter, so that figure is the pair's).
- append cost: the live path per page (decode + dedup + buffer append) around the 1,000th and the
  100,000th message; flat means no per-message concat.
- bulk ingest: 1M messages in raw getupdates pages (bytes, as recorded) → DataFrame, in a fresh subprocess
  so its RSS high-water mark (``VmHWM``, reset via ``/proc/self/clear_refs``) is the ingest's alone.

    python -m benchmarks --only updates [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
USERS = [f"user{i}@im.wechat" for i in range(8)]


def _fig(value: float, unit: str, target: str = "") -> dict[str, Any]:
    return {"value": value, "unit": unit, "target": target}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- wake latency ------------------------------------------------------------------------------------


def _wake_sync(n: int) -> tuple[list[float], list[float]]:
    """Per message: ms until the row is in the feed, and until a read of ``feed.frame`` returned it."""
    from openclaw_nb.client import Client
    from openclaw_nb.sim import Simulator

    rows: list[float] = []
    out: list[float] = []
    with Simulator(long_poll_timeout=30) as sim:
        login = sim.login_bot("bench")
        with Client(
            login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id, record=False
        ) as client:
            feed = client.stream()
            for i in range(n):
                pause = threading.Event()
                pause.wait(0.002)  # let the feed go back to its long poll: a message arrives to an idle feed
                t0 = time.perf_counter()
                sent = sim.say(USERS[i % len(USERS)], f"ping {i}", bot_id=login.bot_id)
                feed.wait_rows(i + 1, timeout=10)
                t1 = time.perf_counter()
                df = feed.frame
                t2 = time.perf_counter()
                assert int(df["message_id"].iloc[-1]) == sent["message_id"]
                rows.append((t1 - t0) * 1000)
                out.append((t2 - t0) * 1000)
            feed.stop()
    return rows, out


def _wake_async(n: int) -> tuple[list[float], list[float]]:
    from openclaw_nb.client import AsyncClient
    from openclaw_nb.sim import Simulator

    async def main(sim: Any, login: Any) -> tuple[list[float], list[float]]:
        rows: list[float] = []
        out: list[float] = []
        async with AsyncClient(
            login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id, record=False
        ) as client:
            feed = client.stream()
            for i in range(n):
                await asyncio.sleep(0.002)
                t0 = time.perf_counter()
                sent = sim.say(USERS[i % len(USERS)], f"ping {i}", bot_id=login.bot_id)
                await feed.until(i + 1)
                t1 = time.perf_counter()
                df = feed.frame
                t2 = time.perf_counter()
                assert int(df["message_id"].iloc[-1]) == sent["message_id"]
                rows.append((t1 - t0) * 1000)
                out.append((t2 - t0) * 1000)
            feed.stop()
            await feed.finished()
        return rows, out

    with Simulator(long_poll_timeout=30) as sim:
        login = sim.login_bot("bench")
        return asyncio.run(main(sim, login))


# --- sustained rate -------------------------------------------------------------------------------------


def _drain(n: int) -> tuple[float, bool]:
    """A backlog of ``n`` messages served as fast as the simulator can; messages/s into the feed."""
    from openclaw_nb.client import Client
    from openclaw_nb.sim import Simulator

    with Simulator(long_poll_timeout=30) as sim:
        login = sim.login_bot("bench")
        for i in range(n):
            sim.say(USERS[i % len(USERS)], f"backlog message {i}", bot_id=login.bot_id)
        expected = [m["message_id"] for m in sim.state._bots[login.bot_id].inbox]
        with Client(
            login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id, record=False
        ) as client:
            t0 = time.perf_counter()
            feed = client.stream()
            feed.wait_for(n, timeout=600)
            elapsed = time.perf_counter() - t0
            feed.stop()
            ok = feed.frame["message_id"].tolist() == expected
    return n / elapsed, ok


def _concurrent(n: int) -> tuple[float, float, bool]:
    """A producer thread writes ``n`` messages as fast as it can while the feed reads them."""
    from openclaw_nb.client import Client
    from openclaw_nb.sim import Simulator

    with Simulator(long_poll_timeout=30) as sim:
        login = sim.login_bot("bench")
        with Client(
            login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id, record=False
        ) as client:
            feed = client.stream()
            produced: list[float] = []

            def produce() -> None:
                start = time.perf_counter()
                for i in range(n):
                    sim.say(USERS[i % len(USERS)], f"live message {i}", bot_id=login.bot_id)
                produced.append(time.perf_counter() - start)

            t0 = time.perf_counter()
            thread = threading.Thread(target=produce)
            thread.start()
            feed.wait_for(n, timeout=600)
            elapsed = time.perf_counter() - t0
            thread.join()
            feed.stop()
            expected = [m["message_id"] for m in sim.state._bots[login.bot_id].inbox]
            ok = feed.frame["message_id"].tolist() == expected
    return n / elapsed, n / produced[0], ok


# --- append cost ----------------------------------------------------------------------------------------


def _pages(n: int, page_size: int = 100, seed: int = 1) -> list[bytes]:
    """Raw getupdates bodies shaped like the simulator's (one text item, 24-byte context tokens, uint64 ids)."""
    rng = random.Random(seed)
    base_ms = 1_700_000_000_000
    first_id = 2**63 + 12_345
    out = []
    for start in range(0, n, page_size):
        msgs = []
        for i in range(start, min(n, start + page_size)):
            t = base_ms + i * 3
            msgs.append(
                {
                    "seq": i + 1,
                    "message_id": first_id + 2 * i,
                    "from_user_id": USERS[i % len(USERS)],
                    "to_user_id": "0123456789abcdef@im.bot",
                    "client_id": f"wx:{t}-{i:08x}",
                    "create_time_ms": t,
                    "update_time_ms": t,
                    "delete_time_ms": 0,
                    "session_id": "",
                    "group_id": "",
                    "message_type": 1,
                    "message_state": 2,
                    "item_list": [
                        {
                            "type": 1,
                            "create_time_ms": t,
                            "update_time_ms": t,
                            "is_completed": True,
                            "msg_id": first_id + 2 * i + 1,
                            "text_item": {"text": f"hello number {i} " + "x" * (i % 20)},
                        }
                    ],
                    "context_token": base64.b64encode(rng.randbytes(24)).decode(),
                }
            )
        body = {"ret": 0, "msgs": msgs, "get_updates_buf": base64.b64encode(f"n:{start}".encode()).decode()}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def _append_cost(total: int) -> tuple[float, float]:
    """µs per message of the live path per page (decode, dedup, append) near the 1,000th and the last message."""
    from openclaw_nb.frames import MessageBuffer
    from openclaw_nb.protocol.flow import Reply
    from openclaw_nb.protocol.poll import PollState

    pages = _pages(total)
    state = PollState()
    buf = MessageBuffer()
    costs: list[float] = []
    for body in pages:
        t0 = time.perf_counter()
        page = state.receive(Reply(200, {}, body))
        buf.extend(page.columns)
        costs.append((time.perf_counter() - t0) / len(page) * 1e6)
    assert len(buf) == total
    per_page = 100

    def around(message: int) -> float:
        i = message // per_page
        return statistics.median(costs[max(0, i - 5) : i + 5])

    return around(1_000), around(total - 500)


# --- bulk ingest (child process) ------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _ingest_child(n: int, raw: bool = True) -> dict[str, Any]:
    from openclaw_nb.frames import frame_from_pages

    pages = _pages(n)
    size = sum(map(len, pages))
    # Import and warm the libraries first (pandas + pyarrow alone map ~100 MiB): the figure is the ingest's.
    frame_from_pages(pages[:1], raw=raw)
    gc.collect()
    reset = True
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
    except OSError:
        reset = False
    base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    df = frame_from_pages(pages, raw=raw)
    elapsed = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    assert len(df) == n and int(df["message_id"].iloc[-1]) == 2**63 + 12_345 + 2 * (n - 1)
    frame_mib = df.memory_usage(deep=True).sum() / 2**20
    return {
        "seconds": elapsed,
        "rate": n / elapsed,
        "peak_growth_mib": (peak - base) / 1024,
        "input_mib": size / 2**20,
        "frame_mib": frame_mib,
        "hwm_reset": reset,
    }


def _ingest(n: int, raw: bool = True) -> dict[str, Any]:
    code = f"import json, benchmarks.bench_updates as b; print(json.dumps(b._ingest_child({n}, {raw})))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=900
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the runner's entry point -----------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="openclaw-nb-bench-")
    old_home = os.environ.get("OPENCLAW_NB_HOME")
    os.environ["OPENCLAW_NB_HOME"] = home  # persistence on, into a scratch folder
    try:
        figures: dict[str, Any] = {}
        wake_n = 200 if quick else 1000
        for name, measure in (("sync", _wake_sync), ("async", _wake_async)):
            rows, read = measure(wake_n)
            rows, read = rows[20:], read[20:]  # the first few warm up connections and caches
            figures[f"wake latency {name}: row in feed, p50"] = _fig(_pct(rows, 0.5), "ms", "<= 3")
            figures[f"wake latency {name}: row in feed, p99"] = _fig(_pct(rows, 0.99), "ms", "<= 15")
            figures[f"wake latency {name}: incl. reading feed.frame, p50"] = _fig(_pct(read, 0.5), "ms", "<= 3")
            figures[f"wake latency {name}: incl. reading feed.frame, p99"] = _fig(_pct(read, 0.99), "ms", "<= 15")
        drain_n = 20_000 if quick else 100_000
        rate, ok = _drain(drain_n)
        figures[f"sustained rate, backlog of {drain_n:,}"] = _fig(rate, "msg/s", ">= 20,000")
        figures["sustained rate: no loss, in order"] = "yes" if ok else "NO"
        live_n = 10_000 if quick else 50_000
        rate, produced, ok = _concurrent(live_n)
        figures[f"with a producer thread, {live_n:,}"] = _fig(rate, "msg/s")
        figures["producer alone (sim.say)"] = _fig(produced, "msg/s")
        figures["with a producer: no loss, in order"] = "yes" if ok else "NO"
        first, last = _append_cost(20_000 if quick else 100_000)
        figures["live path per message near #1,000"] = _fig(first, "us")
        figures[f"live path per message near #{(20_000 if quick else 100_000):,}"] = _fig(last, "us", "flat")
        figures["append cost ratio (last / #1,000)"] = _fig(last / first, "x", "<= ~1")
        ingest_n = 100_000 if quick else 1_000_000
        ingest = _ingest(ingest_n)
        figures[f"bulk ingest {ingest_n:,} messages"] = _fig(ingest["rate"], "msg/s", ">= 200,000")
        figures["bulk ingest time"] = _fig(ingest["seconds"], "s")
        # raw=True keeps every message's JSON text, most of the frame: the target is the frame's own size + 25 %.
        raw_cap = 1.25 * ingest["frame_mib"]
        figures["bulk ingest peak memory growth"] = _fig(ingest["peak_growth_mib"], "MiB", f"<= {raw_cap:.0f}")
        figures["bulk ingest input pages"] = _fig(ingest["input_mib"], "MiB")
        figures["bulk ingest frame size"] = _fig(ingest["frame_mib"], "MiB")
        growth = ingest["peak_growth_mib"] / ingest["frame_mib"]
        figures["bulk ingest peak growth / frame size"] = _fig(growth, "x", "<= 1.25")
        if not ingest["hwm_reset"]:
            figures["bulk ingest note"] = "VmHWM could not be reset: the peak includes start-up"
        lean = _ingest(ingest_n, raw=False)
        figures[f"bulk ingest {ingest_n:,}, raw=False"] = _fig(lean["rate"], "msg/s", ">= 200,000")
        figures["bulk ingest raw=False peak memory growth"] = _fig(lean["peak_growth_mib"], "MiB", "<= 700")
        figures["bulk ingest raw=False frame size"] = _fig(lean["frame_mib"], "MiB")
        return figures
    finally:
        if old_home is None:
            os.environ.pop("OPENCLAW_NB_HOME", None)
        else:
            os.environ["OPENCLAW_NB_HOME"] = old_home


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
