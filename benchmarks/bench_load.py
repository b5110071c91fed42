"""Load figures (issue 15): 200 accounts on one event loop, each with its async ``updates()`` persisting (cursor,
context tokens, pending messages) and its recorder on, while users write at a steady rate.

Reported: startup (``Accounts.load`` until every stream has its first message; target < 2 s), the event loop's
lag (a ticker task that asks to wake every 10 ms records how late it wakes; p99 target < 50 ms) and delivery
latency (from the moment a message was posted to the simulator to the moment the loop body got it; p50, p99).

The simulator runs as a process of its own on 127.0.0.1 (no ``--state``), so its work does not compete with the
loop for this interpreter; the messages are posted from a thread of this process, as a steady trickle.
``python -m benchmarks.bench_load [RATE [SECONDS]]`` (default 200 messages/s for 20 s);
``BENCH_LOAD_PERSIST=0`` runs the same load without persistence, for comparison.

On 2 shared cores, 200 messages/s for 15 s: with the files written on the loop (before), lag p99 650 ms and
latency p50 1.5 s; written by 4 worker threads (after), lag p99 23-24 ms and latency p50 0.95-1.25 s (the fsyncs,
up to four per page, bound it); without persistence, lag p99 13 ms and latency p50 2 ms.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ACCOUNTS = 200
RATE = 200.0  # messages per second over all accounts (one a second per account)
SECONDS = 20.0
TICK = 0.010
PERSIST = os.environ.get("BENCH_LOAD_PERSIST", "1") != "0"  # 0: the same load without persistence, to compare


def _fig(value: float, unit: str, target: str = "") -> dict[str, Any]:
    return {"value": value, "unit": unit, "target": target}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_sim(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(os.environ, OPENCLAW_NB_HOME=str(home / "sim"))
    args = [sys.executable, "-m", "openclaw_nb", "sim", "--port", str(port), "--long-poll-timeout", "1"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        proc.kill()
        raise RuntimeError("the simulator process did not start")
    return proc, proc.stdout.readline().decode().strip()


def _load(bots: int, seconds: float, rate: float) -> dict[str, Any]:
    """``rate``: messages per second over all accounts, for ``seconds``."""
    from openclaw_nb.accounts import Accounts
    from openclaw_nb.protocol.poll import PollPolicy
    from openclaw_nb.store import Credentials, Store

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        proc, base_url = _start_sim(home)
        try:
            store = Store(home / "client")
            users: dict[str, str] = {}
            with httpx.Client(base_url=base_url, timeout=30) as http:
                for i in range(bots):
                    login = http.post("/_sim/bots", json={"user_id": f"owner-{i}"}).json()
                    users[login["ilink_bot_id"]] = f"owner-{i}"
                    store.save_credentials(
                        Credentials(
                            bot_token=login["bot_token"],
                            ilink_bot_id=login["ilink_bot_id"],
                            baseurl=base_url,
                            ilink_user_id=f"owner-{i}",
                        )
                    )
                for bot, user in users.items():  # one message each waits: startup ends when all are in hand
                    http.post("/_sim/inbound", json={"bot_id": bot, "from_user_id": user, "text": f"{time.time()!r}"})
            return _measure(Accounts, store, users, base_url, seconds, rate, PollPolicy)
        finally:
            proc.terminate()
            proc.wait(30)
            assert proc.stdout is not None
            proc.stdout.close()


def _measure(
    accounts_cls: Any, store: Any, users: dict[str, str], base_url: str, seconds: float, rate: float, policy_cls: Any
) -> dict[str, Any]:
    latencies: list[float] = []
    lags: list[float] = []
    done = threading.Event()
    posted = 0

    def produce() -> None:
        nonlocal posted
        bots = list(users)
        start = time.monotonic()
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while not done.is_set():
                due = start + posted / rate
                if due - start > seconds:
                    break
                wait = due - time.monotonic()
                if wait > 0 and done.wait(wait):
                    break
                bot = bots[posted % len(bots)]
                body = {"bot_id": bot, "from_user_id": users[bot], "text": f"{time.time()!r}"}
                http.post("/_sim/inbound", json=body)
                posted += 1

    t0 = time.perf_counter()
    accounts = accounts_cls.load(home=store.root)
    first: dict[str, float] = {}

    async def main() -> float:
        startup_done = asyncio.Event()
        stop = asyncio.Event()
        startup = 0.0

        async def consume(bot: str) -> None:
            nonlocal startup
            updates = accounts[bot].updates(policy=policy_cls(retry_delay=0.05), store=store, persist=PERSIST)
            async with updates:
                async for msg in updates:
                    now = time.time()
                    if bot not in first:
                        first[bot] = now
                        if len(first) == len(users):
                            startup = time.perf_counter() - t0
                            startup_done.set()
                    else:
                        latencies.append(now - float(msg.text or "nan"))
                    if stop.is_set():
                        updates.ack()
                        break

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                due = loop.time() + TICK
                await asyncio.sleep(TICK)
                lags.append(loop.time() - due)

        tasks = [asyncio.create_task(consume(bot)) for bot in users]
        await asyncio.wait_for(startup_done.wait(), 120)
        tick = asyncio.create_task(ticker())
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        await asyncio.to_thread(producer.join)
        # Let the last messages arrive (each stream polls at most one long poll more), then stop.
        await asyncio.to_thread(_settle, posted_count=lambda: posted, got=lambda: len(latencies), limit=10.0)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, tick, return_exceptions=True)
        return startup

    try:
        startup = accounts._run(main())
    finally:
        done.set()
        accounts.close()
    return {
        "startup": startup,
        "lag_p50_ms": _pct(lags, 0.5) * 1000,
        "lag_p99_ms": _pct(lags, 0.99) * 1000,
        "lag_max_ms": max(lags, default=float("nan")) * 1000,
        "lat_p50": _pct(latencies, 0.5),
        "lat_p99": _pct(latencies, 0.99),
        "posted": posted,
        "delivered": len(latencies),
    }


def _settle(posted_count: Any, got: Any, limit: float) -> None:
    """Wait (in a worker thread) until every posted message was delivered, or ``limit`` seconds."""
    deadline = time.monotonic() + limit
    stalled = threading.Event()
    while got() < posted_count() and time.monotonic() < deadline:
        stalled.wait(0.05)


def run(quick: bool = False, rate: float = RATE, seconds: float = SECONDS) -> dict[str, Any]:
    bots = 40 if quick else ACCOUNTS
    r = _load(bots, seconds=5 if quick else seconds, rate=rate / 2 if quick else rate)
    return {
        f"steady inbound rate over {bots} accounts": _fig(rate / 2 if quick else rate, "messages/s"),
        f"{bots} accounts on one loop, {'persisting' if PERSIST else 'no persistence'}: startup (load + first "
        "message each)": _fig(r["startup"], "s", "< 2"),
        "event-loop lag p50": _fig(r["lag_p50_ms"], "ms"),
        "event-loop lag p99": _fig(r["lag_p99_ms"], "ms", "< 50"),
        "event-loop lag max": _fig(r["lag_max_ms"], "ms"),
        f"delivery latency p50 ({r['delivered']} of {r['posted']} messages)": _fig(r["lat_p50"], "s"),
        "delivery latency p99": _fig(r["lat_p99"], "s"),
    }


if __name__ == "__main__":  # python -m benchmarks.bench_load [--quick] [RATE [SECONDS]]
    numbers = [float(a) for a in sys.argv[1:] if not a.startswith("-")]
    for name, fig in run("--quick" in sys.argv, *numbers).items():
        print(f"{name}: {fig['value']:.3f} {fig['unit']} (target {fig['target'] or '-'})")
