"""A scripted WeChat user for login tests, and a transport that counts what a client sends."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx

from openclaw_nb.protocol.login import LoginEvent, LoginState, QrIssued, Redirected, StatusChanged
from openclaw_nb.sim import Simulator


class Phone:
    """Acts on the simulator when the login reports a step (it runs in the driver's thread, so the
    simulator's state changes before the flow's next poll, with no timing involved).

    ``expire``: how many QR codes to let expire before scanning one; ``scan``/``confirm``: whether to
    scan the code and confirm once it is scanned (or redirected).
    """

    def __init__(
        self, sim: Simulator, *, user: str | None = None, expire: int = 0, scan: bool = True, confirm: bool = True
    ) -> None:
        self.sim = sim
        self.user = user
        self.expire = expire
        self.scan = scan
        self.confirm = confirm
        self.qrcodes: list[str] = []
        self.events: list[LoginEvent] = []

    def __call__(self, event: LoginEvent) -> None:
        self.events.append(event)
        if isinstance(event, QrIssued):
            self.qrcodes.append(event.qr.qrcode)
            if len(self.qrcodes) <= self.expire:
                self.sim.expire(event.qr.qrcode)
            elif self.scan:
                self.sim.scan(event.qr.qrcode, self.user)
        elif self.confirm and (
            isinstance(event, Redirected) or (isinstance(event, StatusChanged) and event.state == LoginState.SCANNED)
        ):
            self.sim.confirm(self.qrcodes[-1])

    def states(self) -> list[str]:
        out: list[str] = []
        for ev in self.events:
            if not out or out[-1] != ev.state:
                out.append(ev.state)
        return out

    def messages(self) -> list[str]:
        return [ev.message for ev in self.events]


def faults_after_the_scan(sim: Simulator, phone: Phone, *kinds: str) -> Callable[[LoginEvent], None]:
    """An ``on_event`` that, once the code is scanned, makes the next status polls fail with the fault
    ``kinds`` (one poll each, in order), then lets ``phone`` confirm: the poll after the faulty ones brings
    "confirmed"."""

    def on_event(event: LoginEvent) -> None:
        if isinstance(event, StatusChanged) and event.state == LoginState.SCANNED and not sim.faults:
            for kind in kinds:
                sim.add_fault(**{kind: 1.0}, count=1, endpoints=["get_qrcode_status"])
        phone(event)

    return on_event


def typed(codes: Iterable[str]) -> Any:
    """An ``ask`` function that answers the verify-code prompts with ``codes`` in order."""
    it = iter(codes)
    return lambda prompt: next(it)


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts the requests an AsyncClient starts (by URL path) before passing them on."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
