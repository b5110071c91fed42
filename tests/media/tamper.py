"""A real HTTP proxy on 127.0.0.1 in front of the simulator that changes chosen answers on their way back.

For answers a real server may give but the simulator has no knob for: an upload's HTTP 200 without
``x-encrypted-param``, a ``getconfig`` without ``ret`` or with an empty ticket. Everything else passes through
unchanged, so the client still talks HTTP to a real server and the simulator still does the work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

#: Changes one answer: ``(status, headers, body)`` in, the same out.
Rewrite = Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class Rule:
    """Rewrite the answers to requests whose path ends with ``segment``, the next ``count`` times."""

    segment: str
    rewrite: Rewrite
    count: int


class Tamper:
    """``base_url`` forwards to ``target``; :meth:`change` arms a rewrite; ``seen`` lists the paths served."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.rules: list[Rule] = []
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._forward(self)

            def do_POST(self) -> None:
                proxy._forward(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: shutdown() waits up to one interval for the serving loop to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def change(self, segment: str, rewrite: Rewrite, count: int = 1) -> None:
        with self._lock:
            self.rules.append(Rule(segment, rewrite, count))

    def _rule_for(self, path: str) -> Rewrite | None:
        segment = path.split("?", 1)[0].rsplit("/", 1)[-1]
        with self._lock:
            self.seen.append(segment)
            for rule in self.rules:
                if rule.segment == segment and rule.count > 0:
                    rule.count -= 1
                    return rule.rewrite
        return None

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP}
        answer = self._http.request(handler.command, self.target + handler.path, headers=headers, content=body or None)
        status, out_headers, content = answer.status_code, dict(answer.headers), answer.content
        rewrite = self._rule_for(handler.path)
        if rewrite is not None:
            status, out_headers, content = rewrite(status, out_headers, content)
        handler.send_response(status)
        for name, value in out_headers.items():
            if name.lower() not in _HOP and name.lower() not in ("date", "server"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


@contextmanager
def tamper(target: str) -> Iterator[Tamper]:
    proxy = Tamper(target)
    try:
        yield proxy
    finally:
        proxy.close()
