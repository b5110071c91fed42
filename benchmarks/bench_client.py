"""Client overhead and simulator capacity, on loopback.

- ``send_text`` sequential throughput of ``Client`` and ``AsyncClient`` against the simulator, compared with raw
  ``httpx.Client`` / ``httpx.AsyncClient`` posting the same bytes (target: >= 80 %). The simulator runs in its
  own process (``openclaw-nb sim``), so it does not compete with the measured client for the GIL.
- The simulator under a mixed load (getupdates, sendmessage, getconfig, sendtyping, notifystart) from
  several load-generator processes over keep-alive connections (target: >= 5,000 requests/s).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from openclaw_nb.client import AsyncClient, Client

SIM_KNOBS: dict[str, Any] = {
    # The benchmark measures speed, not the quota rules: lift them so every send is accepted, and store
    # every send (no client_id deduplication), so raw posts of one body cost the server what client sends do.
    "sends_per_context_token": None,
    "reply_window_seconds": None,
    "dedupe_client_id": False,
    "long_poll_timeout": 2.0,
}


class SimProcess:
    """``openclaw-nb sim`` in its own process, so the server does not share the measured client's GIL."""

    def __init__(self, **knobs: Any) -> None:
        args = [sys.executable, "-m", "openclaw_nb.cli", "sim", "--port", "0"]
        for name, value in knobs.items():
            args += ["--set", f"{name}={json.dumps(value)}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.close()
            raise RuntimeError("the simulator process did not print its base URL")
        self.port = int(self.base_url.rsplit(":", 1)[1].split("/")[0])
        self.control = httpx.Client(base_url=self.base_url)

    def login_bot(self) -> dict[str, str]:
        return dict(self.control.post("/_sim/bots", json={"user_id": "benchowner"}).raise_for_status().json())

    def say(self, bot_id: str, user: str, text: str) -> dict[str, Any]:
        body = {"bot_id": bot_id, "from_user_id": user, "text": text}
        stored = self.control.post("/_sim/inbound", json=body).raise_for_status().json()
        return dict(stored.get("msg") or stored)

    def close(self) -> None:
        if hasattr(self, "control"):
            self.control.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _round_rates(loops: dict[str, Any], n: int, rounds: int) -> dict[str, list[float]]:
    """Each loop's rate in each round. Loops alternate within a round, so a change in machine load hits all of
    them alike; comparing within rounds (median of the per-round ratios) keeps the noise of a shared VM out."""
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, fn in loops.items():
            start = time.perf_counter()
            fn(n)
            rates[name].append(n / (time.perf_counter() - start))
    return rates


def _ratio(part: list[float], whole: list[float]) -> float:
    return 100 * statistics.median(p / w for p, w in zip(part, whole, strict=True))


def client_overhead(quick: bool) -> dict[str, Any]:
    n = 100 if quick else 300
    rounds = 4 if quick else 15
    with SimProcess(**SIM_KNOBS) as sim:
        login = sim.login_bot()
        token_, bot_id = login["bot_token"], login["ilink_bot_id"]
        user = "bench@im.wechat"
        sim.say(bot_id, user, "hi")
        with Client(token_, base_url=sim.base_url, record=False) as client:
            client.get_updates()
            token = client.context_tokens[user]
            # the exact bytes and headers the client sends, for the raw baseline
            from openclaw_nb.client import new_client_id
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
                        context_token=token,
                        item_list=[m.MessageItem.text("benchmark text")],
                    )
                ),
                identity=client.identity,
                token=token_,
            )
            url = sim.base_url + spec.path

            with httpx.Client() as raw:

                def raw_loop(k: int) -> None:
                    for _ in range(k):
                        raw.post(url, content=spec.content, headers=spec.headers).raise_for_status()

                def client_loop(k: int) -> None:
                    for _ in range(k):
                        client.send_text(user, "benchmark text")

                with Client(token_, base_url=sim.base_url) as recorded:
                    recorded.peers.update(client.peers)

                    def recorded_loop(k: int) -> None:
                        for _ in range(k):
                            recorded.send_text(user, "benchmark text")

                    loops = {"raw": raw_loop, "client": client_loop, "recorded": recorded_loop}
                    for fn in loops.values():
                        fn(50)
                    rates = _round_rates(loops, n, rounds)

        async def async_rates() -> tuple[float, float]:
            async with (
                httpx.AsyncClient() as raw,
                AsyncClient(token_, base_url=sim.base_url, record=False) as aclient,
            ):
                aclient.peers.update(client.peers)

                async def timed(factories: list[Any]) -> list[list[float]]:
                    out: list[list[float]] = [[] for _ in factories]
                    for _ in range(rounds):
                        for i, factory in enumerate(factories):
                            start = time.perf_counter()
                            for _ in range(n):
                                await factory()
                            out[i].append(n / (time.perf_counter() - start))
                    return out

                async def raw_one() -> None:
                    (await raw.post(url, content=spec.content, headers=spec.headers)).raise_for_status()

                async def client_one() -> None:
                    await aclient.send_text(user, "benchmark text")

                for _ in range(50):
                    await raw_one()
                    await client_one()
                raw_best, client_best = await timed([raw_one, client_one])
                return raw_best, client_best

        raw_async, async_rate = asyncio.run(async_rates())
    med = statistics.median
    return {
        "raw httpx.Client sendmessage, median": {"value": med(rates["raw"]), "unit": "req/s"},
        "Client.send_text, median": {"value": med(rates["client"]), "unit": "req/s"},
        "Client.send_text / raw (median of rounds)": {
            "value": _ratio(rates["client"], rates["raw"]),
            "unit": "%",
            "target": ">= 80",
        },
        "Client.send_text, recorder on / raw": {"value": _ratio(rates["recorded"], rates["raw"]), "unit": "%"},
        "raw httpx.AsyncClient sendmessage, median": {"value": med(raw_async), "unit": "req/s"},
        "AsyncClient.send_text, median": {"value": med(async_rate), "unit": "req/s"},
        "AsyncClient.send_text / raw (median of rounds)": {
            "value": _ratio(async_rate, raw_async),
            "unit": "%",
            "target": ">= 80",
        },
        "rounds": {"value": f"{rounds} x {n} requests each, alternating", "unit": ""},
    }


# --- simulator capacity --------------------------------------------------------------------------


def _requests(token: str, user: str, ticket: str, ctx: str) -> list[bytes]:
    """Raw HTTP/1.1 requests of a mixed load, built once; the generator only writes and reads bytes."""
    base = {"base_info": {"channel_version": "0.1.0", "bot_agent": "bench/1"}}
    bodies = [
        ("/ilink/bot/getupdates", {"get_updates_buf": "", **base}),
        (
            "/ilink/bot/sendmessage",
            {
                "msg": {
                    "to_user_id": user,
                    "message_type": 2,
                    "message_state": 2,
                    "context_token": ctx,
                    "item_list": [{"type": 1, "text_item": {"text": "load"}}],
                },
                **base,
            },
        ),
        ("/ilink/bot/getconfig", {"ilink_user_id": user, "context_token": ctx, **base}),
        ("/ilink/bot/sendtyping", {"ilink_user_id": user, "typing_ticket": ticket, "status": 1, **base}),
        ("/ilink/bot/msg/notifystart", base),
    ]
    out = []
    for path, body in bodies:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"AuthorizationType: ilink_bot_token\r\nAuthorization: Bearer {token}\r\n"
            f"X-WECHAT-UIN: MTIzNDU2Nzg5MA==\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        out.append(head + data)
    return out


async def _load(port: int, requests: list[bytes], connections: int, seconds: float) -> tuple[int, int]:
    """Keep ``connections`` keep-alive connections busy for ``seconds``; count answers and non-200s."""
    done = 0
    bad = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < deadline:
            writer.write(requests[i % len(requests)])
            i += 1
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done += 1
            if b" 200 " not in status_line:
                bad += 1
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return done, bad


def _load_process(port: int, requests: list[bytes], connections: int, seconds: float, out: Any) -> None:
    out.put(asyncio.run(_load(port, requests, connections, seconds)))


def simulator_capacity(quick: bool) -> dict[str, Any]:
    seconds = 2.0 if quick else 5.0
    procs = 2
    connections = 8
    with SimProcess(**SIM_KNOBS) as sim:
        login = sim.login_bot()
        token, bot_id = login["bot_token"], login["ilink_bot_id"]
        user = "loaduser@im.wechat"
        ctx = sim.say(bot_id, user, "hi")["context_token"]
        headers = {"Authorization": f"Bearer {token}"}
        ticket = sim.control.post(
            "/ilink/bot/getconfig", json={"ilink_user_id": user, "context_token": ctx}, headers=headers
        ).json()["typing_ticket"]
        requests = _requests(token, user, ticket, ctx)
        queue: Any = mp.Queue()
        workers = [
            mp.Process(target=_load_process, args=(sim.port, requests, connections, seconds, queue))
            for _ in range(procs)
        ]
        for w in workers:
            w.start()
        results = [queue.get(timeout=seconds + 30) for _ in workers]
        for w in workers:
            w.join(timeout=10)
    total = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    return {
        "simulator mixed load": {"value": total / seconds, "unit": "req/s", "target": ">= 5000"},
        "load": {"value": f"{procs} processes x {connections} connections, {seconds:.0f} s", "unit": ""},
        "non-200 answers": {"value": bad, "unit": "count"},
    }


def run(quick: bool = False) -> dict[str, Any]:
    figures = client_overhead(quick)
    figures.update(simulator_capacity(quick))
    return figures


def main() -> None:
    for name, value in run(quick="--quick" in sys.argv).items():
        print(f"{name:40} {value}")


if __name__ == "__main__":
    main()
