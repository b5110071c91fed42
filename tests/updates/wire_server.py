"""A real HTTP server on 127.0.0.1 that answers ``getupdates`` with bodies written byte for byte by a test.

The simulator builds its answers from Python objects, so it can't send what no encoder writes: invalid UTF-8,
nesting deeper than a JSON encoder goes, integers of thousands of digits. Real servers and the proxies before
them can. This server serves such bodies over real HTTP: each queued page answers the poll whose cursor is the
page's ``after`` cursor; any other poll is held briefly (a long poll) and answered with an empty page that
echoes its cursor. Every other endpoint answers ``{"ret":0}``. It counts how often each page was served, so a
test can tell a page that was read once from one served again because the client could not read it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WireServer:
    def __init__(self, hold: float = 0.2) -> None:
        self.hold = hold
        self.pages: dict[str, bytes] = {}
        self.served: Counter[str] = Counter()
        self.polls = 0
        #: Answers of other endpoints by path suffix (``"sendmessage"``), byte for byte; ``{"ret":0}`` otherwise.
        self.answers: dict[str, bytes] = {}
        self._changed = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.startswith("/ilink/bot/getupdates"):
                    answer = server._answer(body.get("get_updates_buf") or "")
                else:
                    suffix = self.path.split("?")[0].rsplit("/", 1)[-1]
                    answer = server.answers.get(suffix, b'{"ret":0}')
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="wire-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, after: str, body: bytes | str) -> None:
        """Serve ``body`` (exactly these bytes) to the poll that sends cursor ``after`` ('' for the first)."""
        with self._changed:
            self.pages[after] = body.encode("utf-8") if isinstance(body, str) else body
            self._changed.notify_all()

    def _answer(self, cursor: str) -> bytes:
        with self._changed:
            self.polls += 1
            if cursor not in self.pages:
                self._changed.wait(self.hold)  # a long poll: answer at once when a page for this cursor comes
            page = self.pages.get(cursor)
            if page is not None:
                self.served[cursor] += 1
                return page
        return json.dumps({"ret": 0, "msgs": [], "get_updates_buf": cursor}).encode()

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def page(msgs: list[bytes | str], cursor: str) -> bytes:
    """A getupdates body from messages given as JSON texts (kept byte for byte) and the cursor it hands on."""
    parts = [m if isinstance(m, bytes) else m.encode("utf-8") for m in msgs]
    return b'{"ret":0,"msgs":[' + b",".join(parts) + b'],"get_updates_buf":' + json.dumps(cursor).encode() + b"}"
