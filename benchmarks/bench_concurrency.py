"""Concurrent ``AsyncClient.send_text`` against the simulator: requests/s by requests in flight, per engine.

For 1, 8, 16, 64 and 256 sends in flight (that many tasks sending one after another), on both HTTP engines
(httpcore and aiohttp's) and several connection-pool sizes, with raw ``httpx.AsyncClient`` and raw
``httpx_aiohttp`` posting the same request bytes as references; each figure is the median of 3 rounds that
alternate between the configurations. The simulator runs in its own process; its CPU time over each run's
wall time is printed as its share of one core (near 100 %: the simulator is the limit, not the client).
A second part repeats 16, 64 and 256 in flight with the simulator's ``latency_ms`` knob at 20 ms, where the
pool's size bounds the rate (at most connections / latency requests/s).
``DEFAULT_LIMITS`` in ``openclaw_nb/client.py`` is chosen from these figures. The client runs with
``record=False``: the recorder's cost is measured in bench_client and bench_recorder.
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from openclaw_nb.client import AsyncClient, Client, new_client_id, shared_ssl_context
from openclaw_nb.engine import aiohttp_available, async_transport

from .bench_client import SIM_KNOBS, SimProcess

IN_FLIGHT = (1, 8, 16, 64, 256)
POOLS = (16, 64, 256)
#: The second part: each API request waits this long in the simulator (its latency_ms knob), as on a network.
LATENCY_MS = 20
LATENCY_IN_FLIGHT = (16, 64, 256)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


async def _rate(one: Callable[[], Awaitable[Any]], in_flight: int, total: int, sim_pid: int) -> tuple[float, float]:
    """``total`` calls of ``one`` with ``in_flight`` tasks: (calls/s, the simulator's CPU share in %)."""
    left = [total]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await one()

    for _ in range(min(in_flight, 16)):  # warm the pool and the server's paths
        await one()
    cpu0, start = _cpu_seconds(sim_pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall = time.perf_counter() - start
    return total / wall, 100 * (_cpu_seconds(sim_pid) - cpu0) / wall


def measure(quick: bool) -> dict[str, Any]:
    total = 300 if quick else 1000
    rounds = 1 if quick else 3
    pools = (16, 64) if quick else POOLS
    engines = ["httpcore", "aiohttp"] if aiohttp_available() else ["httpcore"]
    figures: dict[str, Any] = {}
    with SimProcess(**SIM_KNOBS) as sim:
        login = sim.login_bot()
        token, bot_id = login["bot_token"], login["ilink_bot_id"]
        user = "bench@im.wechat"
        sim.say(bot_id, user, "hi")
        with Client(token, base_url=sim.base_url, record=False) as client:
            client.get_updates()
            peers = dict(client.peers)
            from openclaw_nb.protocol import models as m
            from openclaw_nb.protocol.endpoints import build_request

            spec = build_request(
                "send_message",
                m.SendMessageReq(
                    msg=m.WeixinMessage(
                        from_user_id="",
                        to_user_id=user,
                        client_id=new_client_id(),
                        message_type=2,
                        message_state=2,
                        context_token=client.context_tokens[user],
                        item_list=[m.MessageItem.text("benchmark text")],
                    )
                ),
                identity=client.identity,
                token=token,
            )
        url = sim.base_url + spec.path
        pid = sim.proc.pid

        async def measure_all(in_flight: tuple[int, ...], tag: str) -> dict[str, list[tuple[float, float]]]:
            """Every configuration at each number in flight, ``rounds`` times, alternating: a change in the
            load of a shared machine hits all of them alike."""
            from contextlib import AsyncExitStack

            runs: dict[str, list[tuple[float, float]]] = {}
            async with AsyncExitStack() as stack:
                calls: dict[str, Callable[[], Awaitable[Any]]] = {}

                def raw(label: str, http: httpx.AsyncClient) -> None:
                    stack.push_async_callback(http.aclose)

                    async def one() -> None:
                        (await http.post(url, content=spec.content, headers=spec.headers)).raise_for_status()

                    calls[label] = one

                raw("raw httpx.AsyncClient", httpx.AsyncClient())
                if aiohttp_available():
                    from httpx_aiohttp import AiohttpTransport

                    raw("raw httpx_aiohttp", httpx.AsyncClient(transport=AiohttpTransport()))
                for engine in engines:
                    for pool in pools:
                        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
                        transport = async_transport(engine, limits, shared_ssl_context())
                        aclient = AsyncClient(token, base_url=sim.base_url, record=False, transport=transport)
                        stack.push_async_callback(aclient.aclose)
                        aclient.peers.update(peers)
                        calls[f"AsyncClient {engine}, pool {pool}"] = functools.partial(
                            aclient.send_text, user, "benchmark text"
                        )
                for k in in_flight:
                    for _ in range(rounds):
                        for label, one in calls.items():
                            rate = await _rate(one, k, total, pid)
                            runs.setdefault(f"{label}, {k} in flight{tag}", []).append(rate)
            return runs

        runs = asyncio.run(measure_all(IN_FLIGHT, ""))
        # A real network's round trip: now the pool's size bounds the rate (connections / latency).
        sim.control.post("/_sim/config", json={"latency_ms": LATENCY_MS}).raise_for_status()
        runs.update(asyncio.run(measure_all(LATENCY_IN_FLIGHT, f", {LATENCY_MS} ms latency")))
        for name, results in runs.items():
            figures[name] = {
                "value": statistics.median(r for r, _ in results),
                "unit": "req/s",
                "sim_cpu_percent": round(statistics.median(c for _, c in results)),
            }
    figures["runs"] = {"value": f"median of {rounds} rounds x {total} sends, one user, record=False", "unit": ""}
    return figures


def run(quick: bool = False) -> dict[str, Any]:
    return measure(quick)


def main() -> None:
    for name, value in run(quick="--quick" in sys.argv).items():
        print(f"{name:55} {value}")


if __name__ == "__main__":
    main()
