"""Scale figures: how long ``Accounts.load`` of 200 saved accounts takes (target < 2 s; it took 6-7.6 s when each
client built its own TLS context), and how much memory a huge getupdates answer costs the client: refused past
``max_response_bytes`` (the default) versus read whole when the cap is raised above it.

The big answer comes from a plain HTTP server on 127.0.0.1 (the simulator would need hundreds of thousands of
inbound messages to build one); memory is the tracemalloc peak during the one call, in MiB.
"""

from __future__ import annotations

import gc
import http.server
import json
import tempfile
import threading
import time
import tracemalloc
from typing import Any

ACCOUNTS = 200


def _fig(value: float, unit: str, target: str = "") -> dict[str, Any]:
    return {"value": value, "unit": unit, "target": target}


def _accounts_load(n: int) -> tuple[float, float]:
    """Seconds for ``Accounts.load`` of ``n`` saved accounts, and ms per client made after the first."""
    from openclaw_nb.accounts import Accounts
    from openclaw_nb.client import AsyncClient
    from openclaw_nb.store import Credentials, Store

    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        for i in range(n):
            bot = f"{i:016x}@im.bot"
            store.save_credentials(Credentials(bot_token=f"token-{i}", ilink_bot_id=bot, baseurl="http://127.0.0.1:9"))
        t0 = time.perf_counter()
        accounts = Accounts.load(home=home)
        load_s = time.perf_counter() - t0
        assert len(accounts) == n
        accounts.close()
    t0 = time.perf_counter()
    made = [AsyncClient("t", base_url="http://127.0.0.1:9") for _ in range(50)]
    per_client_ms = (time.perf_counter() - t0) / len(made) * 1000
    del made
    return load_s, per_client_ms


def _big_page(size: int) -> bytes:
    text = "x" * 100_000
    count = size // (len(text) + 200) + 1
    msgs = [
        {
            "seq": i,
            "message_id": i + 1,
            "from_user_id": "u@im.wechat",
            "message_type": 1,
            "item_list": [{"type": 1, "text_item": {"text": text}}],
        }
        for i in range(count)
    ]
    return json.dumps({"ret": 0, "msgs": msgs, "get_updates_buf": "c"}).encode()


def _serve(body: bytes, declared: bool = True) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``body`` to every POST, with its Content-Length or (``declared=False``) until the connection
    closes, so only reading tells its size."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if declared:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass  # the client refused it

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _peak_mib(base_url: str, **kw: Any) -> tuple[float, str]:
    from openclaw_nb import errors as E
    from openclaw_nb.client import Client

    with Client("t", base_url=base_url, record=False, **kw) as client:
        gc.collect()
        tracemalloc.start()
        try:
            outcome = f"{len(client.get_updates().messages)} messages"
        except E.ProtocolError:
            outcome = "refused"
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20, outcome


def run(quick: bool = False) -> dict[str, Any]:
    load_s, per_client_ms = _accounts_load(40 if quick else ACCOUNTS)
    size = (40 if quick else 200) * 2**20  # both over the default cap of 32 MiB
    body = _big_page(size)
    server, base_url = _serve(body)
    undeclared, plain_url = _serve(body, declared=False)
    try:
        capped, _ = _peak_mib(base_url)
        read_to_cap, _ = _peak_mib(plain_url)
        whole, outcome = _peak_mib(base_url, max_response_bytes=len(body) + 1)
    finally:
        for srv in (server, undeclared):
            srv.shutdown()
            srv.server_close()
    mib = len(body) / 2**20
    return {
        f"Accounts.load of {40 if quick else ACCOUNTS} accounts": _fig(load_s, "s", "< 2"),
        "AsyncClient() each": _fig(per_client_ms, "ms", "~0.1 (was ~25)"),
        f"getupdates answer of {mib:.0f} MiB, default cap (refused unread)": _fig(capped, "MiB peak", "~0"),
        "same, no Content-Length (read to the cap, refused)": _fig(read_to_cap, "MiB peak", "~32"),
        f"getupdates answer of {mib:.0f} MiB, cap raised ({outcome})": _fig(whole, "MiB peak"),
    }
