"""What the HTTP layer consults for each request: fault rules to play, the request log, and the comparison of
each request with what the official client sends (conformance).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ..protocol.conformance import Difference, check_request
from .base import SimBase
from .config import FAULT_KINDS
from .records import ConformanceEntry, FaultDecision, FaultRule


class FaultsRoom(SimBase):
    """Fault rules, the request log and conformance."""

    # --- faults ------------------------------------------------------------------------------------

    def add_fault(self, **knobs: Any) -> FaultRule:
        """Add a fault rule (see :class:`FaultRule`).

        >>> state.add_fault(http_500=1.0, count=2, endpoints=["get_updates"])  # doctest: +SKIP
        """
        rule = FaultRule.build(**knobs)
        with self._lock:
            self._fault_ids += 1
            rule.id = self._fault_ids
            self._faults.append(rule)
            self._changed()
            return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._changed()

    @property
    def faults(self) -> list[FaultRule]:
        with self._lock:
            return [dataclasses.replace(r) for r in self._faults]

    @property
    def has_faults(self) -> bool:
        return bool(self._faults)

    def draw_fault(self, endpoint: str | None) -> FaultDecision | None:
        """Decide what happens to one request for ``endpoint`` (None: control API, never faulted)."""
        if endpoint is None or not self._faults:
            return None
        with self._lock:
            decision = FaultDecision()
            for rule in list(self._faults):
                if rule.endpoints is not None and endpoint not in rule.endpoints:
                    continue
                fired = bool(rule.delay_ms)
                decision.delay += rule.delay_ms / 1000.0
                if decision.kind is None:  # the first rule that picks a misbehaviour wins
                    for kind in FAULT_KINDS:
                        rate = getattr(rule, kind)
                        if rate and (rate >= 1.0 or self._rng.random() < rate):
                            decision.kind = kind
                            decision.retry_after = rule.retry_after
                            decision.status = rule.http_4xx_status
                            fired = True
                            break
                if fired and rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._faults.remove(rule)
            return decision if decision.delay or decision.kind else None

    # --- request log -------------------------------------------------------------------------------

    def record_request(self, entry: dict[str, Any]) -> None:
        if self.config.record_requests:
            with self._lock:
                self._requests.append(entry)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The last ``record_requests`` requests: endpoint, method, query, headers, JSON body."""
        with self._lock:
            return list(self._requests) if self.config.record_requests else []

    # --- conformance -------------------------------------------------------------------------------

    def check_conformance(
        self,
        endpoint: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Iterable[str],
        body: Any = None,
    ) -> list[Difference]:
        """Compare one received request with what the official client sends for ``endpoint`` (see
        :mod:`openclaw_nb.protocol.conformance`) and keep the differences, if any, in :meth:`conformance`.
        ``body``: the parsed JSON body, None when none was read, anything else when it is not a JSON object."""
        if not self.config.conformance_log:
            return []
        differences = check_request(endpoint, method, headers, query, body)
        with self._lock:
            self._checked += 1
            if differences:
                entry = ConformanceEntry(self._checked, self.now_ms(), endpoint, method.upper(), path, differences)
                self._conformance.append(entry)
        return differences

    def conformance(self) -> list[ConformanceEntry]:
        """The last ``conformance_log`` requests that differ from what the official client sends, oldest
        first: missing or extra iLink headers, body keys the official request has not (or has), a method it
        does not use. Key names only, never values.

        >>> [e.texts for e in sim.conformance()]  # doctest: +SKIP
        [['header AuthorizationType is missing: the official client sends it']]
        """
        with self._lock:
            return list(self._conformance)

    @property
    def conformance_checked(self) -> int:
        """How many requests were compared with the official client's since the last reset."""
        return self._checked

    def clear_conformance(self) -> None:
        """Forget the differences seen so far (the count of checked requests starts again too)."""
        with self._lock:
            self._conformance.clear()
            self._checked = 0
