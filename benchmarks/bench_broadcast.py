"""Broadcast throughput: 1,000 sends to 64 users with 64 in flight, against the simulator in its own process.

``AsyncClient.broadcast`` and ``Client.broadcast`` (16 broadcasts of 64 users: 1,024 sends) next to raw httpx
posting the same request bytes with 64 tasks: ``httpx.AsyncClient`` on its own engine (httpcore) and, when
installed, on aiohttp's (``httpx_aiohttp.AiohttpTransport``). Figures in messages/s; the simulator's CPU time
over each run's wall time is printed as its share of one core (near 100 %: the simulator is the limit). The
clients run with ``record=False`` (the recorder's cost is measured in bench_client / bench_recorder), and
the simulator's quota rules are off; the client's own count of sends per context token is reset between
rounds, as a user's new message would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from openclaw_nb.client import AsyncClient, BaseClient, Client, new_client_id
from openclaw_nb.protocol import models as m
from openclaw_nb.protocol.endpoints import build_request

from .bench_client import SIM_KNOBS, SimProcess

USERS = 64
IN_FLIGHT = 64
TEXT = "the class starts at 9 today"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _fresh_budget(client: BaseClient) -> None:
    for peer in client.peers.values():
        peer.sends_on_token = 0


def measure(quick: bool) -> dict[str, Any]:
    rounds = 4 if quick else 16
    repeats = 2 if quick else 7
    total = rounds * USERS
    with SimProcess(**SIM_KNOBS) as sim:
        pid = sim.proc.pid
        login = sim.login_bot()
        token, bot_id = login["bot_token"], login["ilink_bot_id"]
        users = [f"class{i:02d}@im.wechat" for i in range(USERS)]
        for user in users:
            sim.say(bot_id, user, "hi")
        with Client(token, base_url=sim.base_url, record=False) as sync:
            page = sync.get_updates()
            while len(sync.context_tokens) < USERS and page.messages:
                page = sync.get_updates()
            tokens = sync.context_tokens

            def body(user: str) -> tuple[str, bytes, dict[str, str]]:
                spec = build_request(
                    "send_message",
                    m.SendMessageReq(
                        msg=m.WeixinMessage(
                            from_user_id="",
                            to_user_id=user,
                            client_id=new_client_id(),
                            message_type=2,
                            message_state=2,
                            context_token=tokens[user],
                            item_list=[m.MessageItem.text(TEXT)],
                        )
                    ),
                    identity=sync.identity,
                    token=token,
                )
                assert isinstance(spec.content, bytes)
                return sim.base_url + spec.path, spec.content, spec.headers

            requests = [body(users[i % USERS]) for i in range(total)]

            def timed(run: Callable[[], Any]) -> tuple[float, float]:
                """One run: (sends/s, the simulator's CPU share in %)."""
                cpu0, start = _cpu_seconds(pid), time.perf_counter()
                run()
                wall = time.perf_counter() - start
                return total / wall, 100 * (_cpu_seconds(pid) - cpu0) / wall

            async def raw(transport: httpx.AsyncBaseTransport | None) -> None:
                async with httpx.AsyncClient(transport=transport) as http:
                    left = list(reversed(requests))

                    async def worker() -> None:
                        while left:
                            url, content, headers = left.pop()
                            (await http.post(url, content=content, headers=headers)).raise_for_status()

                    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

            def raw_run(make: Callable[[], httpx.AsyncBaseTransport | None]) -> Callable[[], None]:
                return lambda: asyncio.run(raw(make()))

            def sync_run() -> None:
                for _ in range(rounds):
                    _fresh_budget(sync)
                    result = sync.broadcast(users, TEXT, concurrency=IN_FLIGHT, progress=False)
                    assert result.sent == USERS, result.summary()

            async def async_broadcasts() -> None:
                async with AsyncClient(token, base_url=sim.base_url, record=False) as client:
                    client.peers.update(sync.peers)
                    for _ in range(rounds):
                        _fresh_budget(client)
                        result = await client.broadcast(users, TEXT, concurrency=IN_FLIGHT, progress=False)
                        assert result.sent == USERS, result.summary()

            runs: dict[str, Callable[[], None]] = {
                "raw httpx.AsyncClient (httpcore)": raw_run(lambda: None),
                "AsyncClient.broadcast": lambda: asyncio.run(async_broadcasts()),
                "Client.broadcast": sync_run,
            }
            if importlib.util.find_spec("httpx_aiohttp") is not None:
                from httpx_aiohttp import AiohttpTransport

                runs["raw httpx_aiohttp"] = raw_run(AiohttpTransport)
            sync_run()  # warm up the paths once
            # The runs alternate within a round, so a change in the shared machine's load hits all alike;
            # ratios are taken within rounds (median of the per-round ratios).
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
            for _ in range(repeats):
                for name, run in runs.items():
                    figures[name].append(timed(run))

    med = statistics.median
    out: dict[str, Any] = {}
    for name, results in figures.items():
        rate = med(r for r, _ in results)
        out[f"{name}, {total:,} sends / {USERS} users, {IN_FLIGHT} in flight"] = {"value": rate, "unit": "msg/s"}
        out[f"{name}: simulator CPU"] = {"value": med(c for _, c in results), "unit": "% of a core"}
    mine = [r for r, _ in figures["AsyncClient.broadcast"]]
    for raw_name in [name for name in figures if name.startswith("raw")]:
        ratios = [100 * a / b for a, (b, _) in zip(mine, figures[raw_name], strict=True)]
        out[f"AsyncClient.broadcast / {raw_name}"] = {
            "value": med(ratios),
            "unit": "%",
            "target": ">= 90" if "aiohttp" in raw_name else "",
        }
    out["runs"] = {"value": f"median of {repeats} alternating rounds", "unit": ""}
    return out


def run(quick: bool = False) -> dict[str, Any]:
    return measure(quick)


def main() -> None:
    for name, value in run(quick="--quick" in sys.argv).items():
        print(f"{name:70} {value}")


if __name__ == "__main__":
    main()
