"""Media upload: throughput and peak memory of ``client.upload`` for 64 MiB and 256 MiB files.

Each measurement runs in a fresh subprocess, so its RSS high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` right before the upload) belongs to that upload alone; ``tracemalloc`` measures
Python allocations in a second upload. Two servers, each in its own process so they don't share the client's
CPU time or memory: a minimal HTTP sink that answers ``getuploadurl`` and swallows the CDN body (the client
side alone), and the simulator, whose CDN decrypts and checks every upload (end to end).

    python -m benchmarks --only media            # 64 and 256 MiB
    python -m benchmarks --only media --quick    # 8 and 32 MiB
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20
TARGET_MIBS = 250.0
TARGET_PEAK_MIB = 64.0
USER = "bench@im.wechat"


# --- the servers (each runs as `python -m benchmarks.bench_media serve-...`) --------------------------


def _serve_sink() -> None:
    """A minimal HTTP/1.1 server: JSON answers for the API, and a CDN upload that reads and drops the body.

    It checks that the body is exactly Content-Length bytes and refuses chunked uploads (411), so a client
    that stopped sending a length would show up here.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    print(json.dumps({"base_url": base, "cdn_base_url": base + "/c2c", "token": "sink-token", "user": USER}))
    sys.stdout.flush()

    def reply(conn: socket.socket, status: str, body: bytes, headers: dict[str, str]) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def handle(conn: socket.socket) -> None:
        rfile = conn.makefile("rb", buffering=MiB)
        sink = bytearray(MiB)
        with conn, rfile:
            while True:
                line = rfile.readline()
                if not line:
                    return
                path = line.split()[1].decode("latin-1")
                headers: dict[str, str] = {}
                while (h := rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if "content-length" not in headers:
                    reply(conn, "411 Length Required", b"", {"x-error-message": "no Content-Length"})
                    return
                left = int(headers["content-length"])
                view = memoryview(sink)
                while left:
                    n = rfile.readinto(view[: min(left, len(sink))])
                    if not n:
                        return
                    left -= n
                if "/upload" in path:
                    reply(conn, "200 OK", b"", {"x-encrypted-param": "download-param"})
                elif path.endswith("/getuploadurl"):
                    answer = {"ret": 0, "upload_param": "upload-param"}
                    reply(conn, "200 OK", json.dumps(answer).encode(), {"Content-Type": "application/json"})
                else:
                    reply(conn, "200 OK", b'{"ret": 0}', {"Content-Type": "application/json"})

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # run until the parent closes our stdin


def _serve_sim() -> None:
    from openclaw_nb.sim import Simulator

    with Simulator(long_poll_timeout=1.0) as sim:
        login = sim.login_bot("owner")
        user = sim.add_user(USER)
        print(
            json.dumps(
                {"base_url": sim.base_url, "cdn_base_url": sim.cdn_base_url, "token": login.bot_token, "user": user}
            )
        )
        sys.stdout.flush()
        sys.stdin.read()


@contextlib.contextmanager
def _server(kind: str) -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_media", f"serve-{kind}"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} server did not start")
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- one measurement (runs as `python -m benchmarks.bench_media measure ...`) ---------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)
        return True
    except OSError:
        return False


def _measure(server: dict[str, str], path: str, record: bool, use_async: bool) -> dict[str, Any]:
    from openclaw_nb.client import Client

    if use_async:
        import asyncio

        return asyncio.run(_async_measure(server, path, record))
    kw: dict[str, Any] = {"base_url": server["base_url"], "cdn_base_url": server["cdn_base_url"], "record": record}
    with Client(server["token"], **kw) as client:
        client.upload(b"warm-up", server["user"])  # imports, connections and code paths warmed
        return _sync_measure(client, path, os.path.getsize(path), server["user"])


def _sync_measure(client: Any, path: str, size: int, user: str) -> dict[str, Any]:
    gc.collect()
    baseline = _status_kib("VmRSS")
    reset = _reset_high_water_mark()
    times = []
    for _ in range(_repeats(size)):
        start = time.perf_counter()
        uploaded = client.upload(path, user, progress=False)
        times.append(time.perf_counter() - start)
        assert uploaded.rawsize == size
    peak = _status_kib("VmHWM")
    gc.collect()
    tracemalloc.start()
    client.upload(path, user, progress=False)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return _result(size, times, baseline, peak, reset) | {"tracemalloc_peak_mib": traced_peak / MiB}


async def _async_measure(server: dict[str, str], path: str, record: bool) -> dict[str, Any]:
    from openclaw_nb.client import AsyncClient

    size = os.path.getsize(path)
    kw: dict[str, Any] = {"base_url": server["base_url"], "cdn_base_url": server["cdn_base_url"], "record": record}
    async with AsyncClient(server["token"], **kw) as client:
        await client.upload(b"warm-up", server["user"])
        gc.collect()
        baseline = _status_kib("VmRSS")
        reset = _reset_high_water_mark()
        times = []
        for _ in range(_repeats(size)):
            start = time.perf_counter()
            await client.upload(path, server["user"], progress=False)
            times.append(time.perf_counter() - start)
        peak = _status_kib("VmHWM")
    return _result(size, times, baseline, peak, reset)


def _repeats(size: int) -> int:
    # Loopback on a small VM is noisy (a single run varies by +-20%): report the median of a few.
    return 5 if size <= 64 * MiB else 3


def _result(size: int, times: list[float], baseline_kib: int, peak_kib: int, reset: bool) -> dict[str, Any]:
    return {
        "mib_per_s": size / MiB / statistics.median(times),
        "best_mib_per_s": size / MiB / min(times),
        "runs": len(times),
        "rss_baseline_mib": baseline_kib / 1024,
        "rss_peak_above_baseline_mib": (peak_kib - baseline_kib) / 1024,
        "hwm_reset": reset,
        "ru_maxrss_mib": _ru_maxrss_mib(),
    }


def _ru_maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child(server: dict[str, str], path: str, *, record: bool = False, use_async: bool = False) -> dict[str, Any]:
    args = [sys.executable, "-m", "benchmarks.bench_media", "measure", json.dumps(server), path]
    args += ["--record"] if record else []
    args += ["--async"] if use_async else []
    done = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False
    )
    if done.returncode:
        raise RuntimeError(f"measurement failed: {done.stderr.strip().splitlines()[-1] if done.stderr else '?'}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the runner's entry point -------------------------------------------------------------------------


def _write_random(path: Path, size: int) -> None:
    # Chunked, so the parent never holds the file either.
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 8 * MiB)
            fh.write(os.urandom(n))
            left -= n


def _components(size: int = 64 * MiB) -> dict[str, float]:
    """The two CPU-bound steps alone, in this process, for context."""
    from openclaw_nb.protocol.crypto import CHUNK, encrypt_stream, new_key

    data = os.urandom(size)
    view = memoryview(data)
    chunks = [view[i : i + CHUNK] for i in range(0, size, CHUNK)]
    start = time.perf_counter()
    md5 = hashlib.md5()
    for chunk in chunks:
        md5.update(chunk)
    md5_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in encrypt_stream(iter(chunks), new_key()):
        pass
    enc_s = time.perf_counter() - start
    return {"md5": size / MiB / md5_s, "encrypt": size / MiB / enc_s}


def _fig(value: float, unit: str, target: str = "") -> dict[str, Any]:
    return {"value": round(value, 1), "unit": unit, "target": target}


def run(quick: bool) -> dict[str, Any]:
    sizes = [8, 32] if quick else [64, 256]
    figures: dict[str, Any] = {}
    comp = _components(16 * MiB if quick else 64 * MiB)
    figures["md5 alone"] = _fig(comp["md5"], "MiB/s")
    figures["AES-128-ECB encrypt_stream alone"] = _fig(comp["encrypt"], "MiB/s")
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-media-"))
        sink = stack.enter_context(_server("sink"))
        sim = stack.enter_context(_server("sim"))
        for mib in sizes:
            path = Path(tmp) / f"upload {mib} MiB.bin"
            _write_random(path, mib * MiB)
            client_side = _child(sink, str(path))
            recorded = _child(sink, str(path), record=True)
            via_async = _child(sink, str(path), use_async=True)
            end_to_end = _child(sim, str(path))
            path.unlink()
            median = f"median of {client_side['runs']}"
            figures[f"{mib} MiB upload, client side (sink), {median}"] = _fig(
                client_side["mib_per_s"], "MiB/s", f">= {TARGET_MIBS:.0f}"
            )
            figures[f"{mib} MiB upload, client side (sink), best"] = _fig(client_side["best_mib_per_s"], "MiB/s")
            figures[f"{mib} MiB upload, client side, recorder on, {median}"] = _fig(recorded["mib_per_s"], "MiB/s")
            figures[f"{mib} MiB upload, AsyncClient (sink), {median}"] = _fig(via_async["mib_per_s"], "MiB/s")
            figures[f"{mib} MiB upload, end to end (simulator), {median}"] = _fig(end_to_end["mib_per_s"], "MiB/s")
            peak = max(r["rss_peak_above_baseline_mib"] for r in (client_side, recorded, via_async, end_to_end))
            figures[f"{mib} MiB peak RSS above baseline (VmHWM)"] = _fig(peak, "MiB", f"<= {TARGET_PEAK_MIB:.0f}")
            figures[f"{mib} MiB peak traced allocations (tracemalloc)"] = _fig(
                max(client_side["tracemalloc_peak_mib"], end_to_end["tracemalloc_peak_mib"]),
                "MiB",
                f"<= {TARGET_PEAK_MIB:.0f}",
            )
            figures[f"{mib} MiB process baseline RSS"] = _fig(client_side["rss_baseline_mib"], "MiB")
            if not client_side["hwm_reset"]:
                figures[f"{mib} MiB note"] = "VmHWM could not be reset: the peak includes start-up (an over-estimate)"
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_media")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve-sink")
    sub.add_parser("serve-sim")
    measure = sub.add_parser("measure")
    measure.add_argument("server")
    measure.add_argument("path")
    measure.add_argument("--record", action="store_true")
    measure.add_argument("--async", dest="use_async", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "serve-sink":
        _serve_sink()
    elif args.cmd == "serve-sim":
        _serve_sim()
    else:
        print(json.dumps(_measure(json.loads(args.server), args.path, args.record, args.use_async)))


if __name__ == "__main__":
    main()
