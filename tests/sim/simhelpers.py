"""Helpers of the simulator tests (a uniquely named module, so test files can import it by name)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from openclaw_nb.protocol.endpoints import build_request
from openclaw_nb.protocol.headers import ClientIdentity
from openclaw_nb.sim import SimConfig

#: Short long-poll windows keep the suite fast.
SHORT_POLL = 0.3
#: Failure bound of anything a test waits for (client timeouts are a little longer).
LONG_POLL = 10.0
#: Server window of tests that check a wake-up: longer than any failure bound, so an answer that arrives
#: at all must come from the wake-up, never from the end of the window.
HOLD = 60.0
IDENTITY = ClientIdentity()


def sim_config(**knobs: Any) -> SimConfig:
    return SimConfig(long_poll_timeout=SHORT_POLL, seed=1234).replace(**knobs)


def call(
    http: httpx.Client,
    endpoint: str,
    payload: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    params: dict[str, str] | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Send one iLink request as the official client does; assert HTTP 200 and return the JSON body."""
    spec = build_request(endpoint, payload, identity=IDENTITY, token=token, params=params)
    url = (base_url or "") + spec.path
    response = http.request(spec.method, url, params=spec.params, headers=spec.headers, content=spec.content)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class Background:
    """Run a blocking call in a thread and collect its result (for held long polls)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                self.result = fn()
            except BaseException as exc:
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def get(self, timeout: float = LONG_POLL + 5) -> Any:
        assert self.done.wait(timeout), "the background call did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def text_msg(to: str, context_token: str | None, text: str = "hi", client_id: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "from_user_id": "",
        "to_user_id": to,
        "message_type": 2,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": text}}],
    }
    if context_token is not None:
        msg["context_token"] = context_token
    if client_id is not None:
        msg["client_id"] = client_id
    return {"msg": msg}
