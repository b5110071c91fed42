"""Recorder overhead per request, with and without redaction (target: at most 10% of the request time).

Two measurements:

- **loopback**: an httpx.Client sends iLink-shaped requests to a small Starlette/uvicorn server running in
  its own process (so the server's CPU time is not the client's), once with no recorder, once through
  ``Recorder.wrap`` with ``redact=False`` and once with ``redact=True``. Modes are interleaved in rounds and
  each mode's time is compared with the recorder-less one of the same round, so drift of the machine hits
  all modes alike.
- **no network**: the same requests against a transport that answers from memory, so the recorder's own CPU
  cost per exchange is measured without loopback noise. The target figure is that cost as a share of the
  loopback request time.

Two request shapes: ``sendmessage`` (small JSON both ways) and a ``getupdates`` page of 3 messages, each a
text and an image (~2.5 KB of JSON with 12 context tokens, media keys and download parameters to redact).

    python -m benchmarks --only recorder [--quick]
    python benchmarks/bench_recorder.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from openclaw_nb.protocol.headers import ClientIdentity  # noqa: E402
from openclaw_nb.recorder import ATTEMPT_KEY, CALL_KEY, Recorder  # noqa: E402

TARGET_PCT = 10.0
TOKEN = "bench-" + "t" * 58


def _page(n: int = 3) -> dict[str, Any]:
    msgs = []
    for i in range(n):
        media = {
            "encrypt_query_param": f"dlparam{i:04d}" + "q" * 100,
            "aes_key": f"{i:02d}" + "a" * 42,
            "encrypt_type": 1,
        }
        msgs.append(
            {
                "seq": i + 1,
                "message_id": 2**63 + i,
                "from_user_id": "alice@im.wechat",
                "to_user_id": "bench@im.bot",
                "client_id": f"wx:1700000000000-{i:08x}",
                "create_time_ms": 1_700_000_000_000 + i,
                "update_time_ms": 1_700_000_000_000 + i,
                "message_type": 1,
                "message_state": 2,
                "context_token": "c" * 40 + str(i),
                "item_list": [
                    {"type": 1, "text_item": {"text": f"message number {i} " * 4}},
                    {"type": 2, "image_item": {"media": media, "aeskey": f"{i:02d}" + "f" * 30, "mid_size": 4096}},
                ],
            }
        )
    return {"ret": 0, "msgs": msgs, "get_updates_buf": "cursor-" + "x" * 60, "longpolling_timeout_ms": 35000}


PAGE = _page()
SEND_REPLY = {"ret": 0, "message_id": 2**63 + 99}


def _send_body(ident: ClientIdentity) -> dict[str, Any]:
    return {
        "msg": {
            "from_user_id": "",
            "to_user_id": "alice@im.wechat",
            "client_id": "openclaw-nb:1700000000000-0a1b2c3d",
            "message_type": 2,
            "message_state": 2,
            "context_token": "c" * 41,
            "item_list": [{"type": 1, "text_item": {"text": "hello from the benchmark"}}],
        },
        "base_info": ident.base_info(),
    }


# --- the server (runs as `python benchmarks/bench_recorder.py serve`) ----------------------------------------


def _serve() -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    page = json.dumps(PAGE).encode()
    reply = json.dumps(SEND_REPLY).encode()

    async def getupdates(request: Request) -> Response:
        await request.body()
        return Response(page, media_type="application/json")

    async def sendmessage(request: Request) -> Response:
        await request.body()
        return Response(reply, media_type="application/json")

    app = Starlette(
        routes=[
            Route("/ilink/bot/getupdates", getupdates, methods=["POST"]),
            Route("/ilink/bot/sendmessage", sendmessage, methods=["POST"]),
        ]
    )
    sock = socket.create_server(("127.0.0.1", 0))
    print(json.dumps({"base_url": f"http://127.0.0.1:{sock.getsockname()[1]}"}), flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


@contextlib.contextmanager
def _server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "serve"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark server did not start")
        yield json.loads(line)["base_url"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- measurement ----------------------------------------------------------------------------------------------


class _MemoryTransport(httpx.BaseTransport):
    """Answers from memory with a streamed body, like a network transport would (no pre-read content)."""

    def __init__(self) -> None:
        self._page = json.dumps(PAGE).encode()
        self._reply = json.dumps(SEND_REPLY).encode()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        body = self._page if request.url.path.endswith("getupdates") else self._reply
        return httpx.Response(
            200,
            headers=[("content-type", "application/json"), ("content-length", str(len(body)))],
            stream=httpx.ByteStream(body),
        )


def _make_client(mode: str, inner: Callable[[], httpx.BaseTransport]) -> tuple[httpx.Client, Recorder | None]:
    if mode == "off":
        return httpx.Client(transport=inner()), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rec = Recorder(maxlen=1000, redact=(mode == "redacted"))
    return httpx.Client(transport=rec.wrap(inner())), rec


def _requests(base: str, call: str) -> Callable[[httpx.Client], None]:
    ident = ClientIdentity()
    if call == "send_message":
        url, body = f"{base}/ilink/bot/sendmessage", _send_body(ident)
    else:
        url, body = f"{base}/ilink/bot/getupdates", {"get_updates_buf": "cursor", "base_info": ident.base_info()}
    content = json.dumps(body, separators=(",", ":")).encode()
    headers = ident.post_headers(TOKEN)
    ext = {CALL_KEY: call, ATTEMPT_KEY: 1}

    def send(client: httpx.Client) -> None:
        r = client.post(url, content=content, headers=headers, extensions=ext)
        r.raise_for_status()

    return send


def _measure(
    base: str, inner: Callable[[], httpx.BaseTransport], call: str, per_round: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Per mode and per request (µs): wall time and CPU time, plus the paired overhead.

    Modes run in rounds, each round all modes back to back in a random order, so drift of the machine hits
    all modes alike. ``wall`` is the median over rounds; ``paired`` is the median over rounds of the mode's
    wall time relative to the recorder-less one in the same round (in %), which cancels most of the drift.
    CPU time is the best (lowest) round, the one least disturbed by other processes, as timeit takes the
    minimum.
    """
    modes = ["off", "unredacted", "redacted"]
    clients = {m: _make_client(m, inner) for m in modes}
    send = _requests(base, call)
    wall: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    warmup = max(per_round // 5, 20)
    try:
        for client, _rec in clients.values():
            for _ in range(warmup):  # connections, caches, a full ring: measure the steady state
                send(client)
        order = list(modes)
        for _ in range(rounds):
            random.shuffle(order)
            for mode in order:
                client, _rec = clients[mode]
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(per_round):
                    send(client)
                wall[mode].append((time.perf_counter() - t0) / per_round * 1e6)
                cpu[mode].append((time.process_time() - c0) / per_round * 1e6)
    finally:
        for client, _rec in clients.values():
            client.close()
    recorded = clients["redacted"][1]
    assert recorded is not None and len(recorded) == min(recorded.maxlen, per_round * rounds + warmup)
    return {
        m: {
            "wall": statistics.median(wall[m]),
            "paired": statistics.median(100 * (w / o - 1) for w, o in zip(wall[m], wall["off"], strict=True)),
            "cpu": min(cpu[m]),
        }
        for m in modes
    }


def _fig(value: float, unit: str, target: str = "") -> dict[str, Any]:
    return {"value": round(value, 2), "unit": unit, "target": target}


def run(quick: bool) -> dict[str, Any]:
    """Figures for ``python -m benchmarks``: request time, and the recorder's overhead with and without redaction.

    The target figure divides the recorder's own CPU cost per exchange, measured without network where nothing
    else disturbs it, by the median loopback request time (the figure earlier runs reported). Beside it, the
    direct loopback measurement: a mode's wall time against no recorder in the same round (paired median).
    That one reads higher than the CPU share: over loopback the recorder's code runs with cold caches, between
    the server's turns on the same two cores.
    """
    loop_round, loop_rounds = (100, 12) if quick else (100, 60)
    mem_round, mem_rounds = (200, 20) if quick else (300, 60)
    figures: dict[str, Any] = {}
    with _server() as base:
        for call in ("send_message", "get_updates"):
            shape = "sendmessage" if call == "send_message" else "getupdates page of 3"
            loop = _measure(base, httpx.HTTPTransport, call, loop_round, loop_rounds)
            mem = _measure("http://bench", _MemoryTransport, call, mem_round, mem_rounds)
            request_time = loop["off"]["wall"]
            figures[f"{shape}: request time over loopback, no recorder"] = _fig(request_time, "µs")
            for mode, label in (("redacted", "redaction on"), ("unredacted", "redaction off")):
                target = f"<= {TARGET_PCT:.0f}" if mode == "redacted" else ""
                cost = mem[mode]["cpu"] - mem["off"]["cpu"]
                figures[f"{shape}: recorder CPU per exchange, {label}"] = _fig(cost, "µs")
                figures[f"{shape}: recorder overhead, {label} (CPU, share of request time)"] = _fig(
                    100 * cost / request_time, "%", target
                )
                figures[f"{shape}: recorder overhead, {label} (loopback wall time, paired median)"] = _fig(
                    loop[mode]["paired"], "%"
                )
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_recorder.py", description=__doc__)
    parser.add_argument("cmd", nargs="?", choices=["run", "serve"], default="run")
    parser.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        _serve()
        return {}
    figures = run(quick=args.quick)
    width = max(len(k) for k in figures)
    print(f"{'figure'.ljust(width)}  {'value':>10}  unit  target")
    print(f"{'-' * width}  {'-' * 10}  ----  ------")
    for name, fig in figures.items():
        print(f"{name.ljust(width)}  {fig['value']:>10.2f}  {fig['unit']:<4}  {fig['target']}")
    return figures


if __name__ == "__main__":
    main()
