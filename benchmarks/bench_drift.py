"""What the wire drift report costs: decoding getupdates pages with and without drift, msgspec and stdlib.

The report's promise is "zero extra parsing when nothing drifts": with msgspec a page of known, well-typed fields
is decoded once, strictly, into structs that refuse unknown fields, and only the enum values are looked at. A page
with drift takes the lenient path, where each message is read alone and compared with the models. Without msgspec
every message is compared, by a check that builds nothing. Figures are µs per message, best of a few runs.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from .bench_updates import _pages

N = 20_000


def _per_message(pages: list[bytes], fn: Any, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        for body in pages:
            fn(body)
        best = min(best, time.perf_counter() - t0)
    return best / N * 1e6


def _with_drift(pages: list[bytes]) -> list[bytes]:
    """The same pages, each message with one field the models do not know (a newer server's)."""
    out = []
    for body in pages:
        page = json.loads(body)
        for msg in page["msgs"]:
            msg["future_flag"] = 1
        out.append(json.dumps(page, separators=(",", ":")).encode())
    return out


def _fig(value: float, unit: str, target: str = "") -> dict[str, Any]:
    return {"value": value, "unit": unit, "target": target}


def run(quick: bool = False) -> dict[str, Any]:
    from openclaw_nb.protocol import poll as P

    pages = _pages(N)
    drifting = _with_drift(pages)
    figures: dict[str, Any] = {}
    runs = 3 if quick else 5
    saved = P.USE_MSGSPEC
    try:
        for name, use in (("msgspec", True), ("stdlib", False)):
            if use and P._msgspec is None:
                figures["msgspec"] = "not installed"
                continue
            P.USE_MSGSPEC = use
            clean = _per_message(pages, lambda b: P.decode_page(b, 1), runs)
            drifted = _per_message(drifting, lambda b: P.decode_page(b, 1), runs)
            assert not P.decode_page(pages[0], 1).drift and P.decode_page(drifting[0], 1).drift
            figures[f"decode, no drift ({name})"] = _fig(clean, "us/msg")
            figures[f"decode, one unknown field per message ({name})"] = _fig(drifted, "us/msg")
            if use:
                # The typed decode alone, without the report's look at enum values and with no row building:
                # what a page costs msgspec at all, to show the report adds no parsing.
                decoder = P._typed_decoder
                bare = _per_message(pages, decoder.decode, runs)
                figures["strict typed decode alone (msgspec)"] = _fig(bare, "us/msg")
        P.USE_MSGSPEC = False
        msgs = [m for body in pages for m in json.loads(body)["msgs"]]
        t0 = time.perf_counter()
        found: list[Any] = []
        for m in msgs:
            P.message_drift(m, found)
        figures["drift check per message (stdlib path)"] = _fig((time.perf_counter() - t0) / len(msgs) * 1e6, "us")
        assert not found
    finally:
        P.USE_MSGSPEC = saved
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
