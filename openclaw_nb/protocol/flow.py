"""Multi-step exchanges as generators, shared by the sync and async drivers.

Theory of operation: a flow is a generator that *yields* actions — :class:`Send` (an HTTP request to make) or
:class:`Sleep` (a pause, e.g. a retry back-off) — and *receives* an outcome for each ``Send``: a :class:`Reply`
(status, headers, body) or a :class:`Failure` (no usable answer: timeout, refused, reset). Its return value is
the result of the whole exchange, or it raises a typed error. The sync driver runs a flow with blocking calls
and ``time.sleep``; the async driver with ``await``. Every decision (retry or not, how long to wait, what a
timeout means) is made here once, in plain code that tests can drive by hand.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import errors as E
from . import constants as C
from .codec import http_status_error, parse_response
from .endpoints import Endpoint
from .headers import random_uin
from .models import ApiResponse, GetUpdatesResp, QrStatusResp
from .redact import redact_headers, redact_json, redact_url, snippet

#: A request body: bytes, or a zero-argument factory of byte chunks (re-callable so a retry can resend).
Body = bytes | Callable[[], Iterable[bytes]] | None


@dataclass(frozen=True)
class Send:
    """Make this HTTP request. ``base_url`` is prepended to ``path``; ``url`` (when set) is used as is."""

    call: str
    method: str
    base_url: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    content: Body
    timeout: float
    attempt: int = 1
    url: str | None = None
    #: For downloads: stop reading past this many bytes (the driver reports ``Reply.truncated``). None: the
    #: client's cap on API answers (``max_response_bytes``).
    max_bytes: int | None = None

    @property
    def full_url(self) -> str:
        return self.url or (self.base_url.rstrip("/") + self.path)

    def __repr__(self) -> str:
        # Headers carry the bearer token and params may carry CDN parameters: never shown whole.
        return (
            f"Send(call={self.call!r}, method={self.method!r}, url={redact_url(self.full_url)!r}, "
            f"params={redact_json(dict(self.params))!r}, headers={dict(redact_headers(self.headers.items()))!r}, "
            f"attempt={self.attempt}, timeout={self.timeout})"
        )


@dataclass(frozen=True)
class Sleep:
    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content: bytes
    #: The body was longer than ``cap`` bytes: reading stopped there, and ``content`` holds only its first
    #: bytes (enough for an error message; none when the declared ``Content-Length`` was already over it).
    truncated: bool = False
    cap: int | None = None


@dataclass(frozen=True)
class Failure:
    """No usable answer. ``not_sent``: the connection was never made (refused, DNS failure, connect timeout,
    no pooled connection in time), so the server cannot have seen the request; the driver decides this from
    its HTTP library's error, the only place that knows."""

    error: BaseException
    timeout: bool = False
    not_sent: bool = False


Action = Send | Sleep
Outcome = Reply | Failure | None
Flow = Generator[Action, Outcome, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry HTTP 429/5xx and transport failures (exponential back-off with jitter).

    ``attempts`` counts all tries (3 = one try and two retries). HTTP 429 and every 5xx but 501 (not
    implemented: retrying can't help) are retried. ``Retry-After`` is honoured; when the server asks for a
    longer wait than ``max_delay``, the call stops and says so rather than retrying early.
    ``RetryPolicy(attempts=1)`` turns retries off.

    ``sendmessage`` is different: a second try may deliver the message twice, so it is retried only when the
    request provably never reached the server (no connection could be made) or the server refused it with
    HTTP 429; after a timeout, a connection lost once the request was written, or a 5xx, the send stops with
    :class:`~openclaw_nb.errors.DeliveryUnknownError`. ``retry_sends=True`` retries those too, with the same
    ``client_id``, for a server known to de-duplicate by it.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0
    jitter: float = 0.25
    retry_sends: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise E.UsageError(
                f"RetryPolicy.attempts counts all tries: a whole number >= 1 (1 = no retries), got {self.attempts!r}"
            )
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise E.UsageError(f"RetryPolicy.{name} is a number of seconds >= 0, got {value!r}")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise E.UsageError(f"RetryPolicy.jitter is a fraction between 0 and 1, got {self.jitter!r}")
        if not isinstance(self.retry_sends, bool):
            raise E.UsageError(f"RetryPolicy.retry_sends is True or False, got {self.retry_sends!r}")

    @staticmethod
    def retryable(status: int) -> bool:
        return status == 429 or (status >= 500 and status != 501)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based).

        ``base_delay * 2**(attempt-1)``, capped at ``max_delay``, then spread by ``± jitter`` of itself (so many
        clients do not retry in step), and capped at ``max_delay`` again: jitter never makes a wait longer than
        the policy allows. A ``Retry-After`` from the server is used as is (no jitter), within ``max_delay``.
        """
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_delay))
        base = min(self.base_delay * 2.0 ** min(max(attempt - 1, 0), 1023), self.max_delay)
        return min(base * (1 + self.jitter * (2 * random.random() - 1)), self.max_delay)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date. ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_http_date_ms(value: str | None) -> int | None:
    """An HTTP ``Date`` header (``Sun, 06 Nov 1994 08:49:37 GMT``) as ms since the epoch; None if absent or
    unreadable. Real servers send one with every answer, and so does the simulator, on its simulated clock."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None  # RFC 9110: always GMT; a date without a zone can't be placed
    try:
        return int(when.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        return None


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def timeout_result(
    endpoint: Endpoint, params: Mapping[str, str], body: Mapping[str, Any] | None, why: str = "client_timeout"
) -> ApiResponse:
    """What a long poll's client-side timeout means: no messages and the same cursor, or QR status ``wait``.

    ``why`` lands in the result's ``extra`` (``client_timeout``, or the gateway or network error that was read
    as ``wait``), so a caller can tell "nobody scanned yet" from "the server is unreachable".
    """
    if endpoint.response_model is GetUpdatesResp:
        cursor = (body or {}).get("get_updates_buf", "")
        return GetUpdatesResp(ret=0, msgs=[], get_updates_buf=cursor, timed_out=True)
    if endpoint.response_model is QrStatusResp:
        extra: dict[str, Any] = {"client_timeout": True} if why == "client_timeout" else {"read_as_wait": why}
        return QrStatusResp(status=C.QrStatus.WAIT, extra=extra)
    return endpoint.response_model()


def api_call(
    endpoint: Endpoint,
    send: Send,
    policy: RetryPolicy,
    *,
    body: Mapping[str, Any] | None = None,
    gateway_errors_as_timeout: bool = False,
    client_id: str | None = None,
) -> Flow:
    """One API call with retries. Returns the parsed response model; raises typed errors.

    Long polls treat a client-side timeout as a normal empty answer. With ``gateway_errors_as_timeout``
    (QR status polls), HTTP 502/504 and network errors count as that empty answer too, as the official
    client does; the result's ``extra["read_as_wait"]`` names the error so a caller can show it.

    With ``client_id`` the call delivers a message (``sendmessage``), and a retry could deliver it twice: it is
    retried only after a failure that proves the server never saw it (no connection, or HTTP 429), unless
    ``policy.retry_sends``; otherwise it stops with :class:`~openclaw_nb.errors.DeliveryUnknownError`.
    """
    attempt = 1
    # Why an earlier try of a send may have delivered it (only with retry_sends, which retries anyway).
    maybe_delivered: str | None = None
    while True:
        outcome = yield _with_attempt(send, attempt)
        if isinstance(outcome, Failure):
            if endpoint.long_poll and outcome.timeout:
                return timeout_result(endpoint, send.params, body)
            if endpoint.long_poll and gateway_errors_as_timeout:
                return timeout_result(endpoint, send.params, body, _describe(outcome.error))
            problem = _describe(outcome.error)
            if client_id is not None and not outcome.not_sent:
                if not (policy.retry_sends and attempt < policy.attempts):
                    raise _delivery_unknown(endpoint, client_id, attempt, f"no answer: {problem}", maybe_delivered)
                maybe_delivered = problem
            if attempt < policy.attempts:
                yield Sleep(policy.delay(attempt), f"{endpoint.name}: {problem}")
                attempt += 1
                continue
            if client_id is not None and maybe_delivered:
                raise _delivery_unknown(endpoint, client_id, attempt, f"no answer: {problem}", maybe_delivered)
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            unsent = "; no connection was made, so the message was not sent" if client_id is not None else ""
            raise E.TransportError(
                f"{endpoint.name} could not get an answer from {send.base_url}{tries} "
                f"({problem}){unsent}; check that the server is reachable",
                endpoint=endpoint.name,
                attempts=attempt,
            ) from outcome.error
        assert isinstance(outcome, Reply), "drivers answer a Send with a Reply or a Failure"
        status = outcome.status
        if gateway_errors_as_timeout and status in (502, 504):
            return timeout_result(endpoint, send.params, body, f"HTTP {status}")
        retryable = policy.retryable(status)
        if client_id is not None and retryable and status != 429:
            # A 5xx may come after the server (or the backend behind a gateway) did the send.
            if not (policy.retry_sends and attempt < policy.attempts):
                said = outcome.headers.get(C.H_ERROR_MESSAGE) or snippet(outcome.content, 160)
                problem = f"HTTP {status}" + (f" ({said})" if said else "")
                raise _delivery_unknown(endpoint, client_id, attempt, problem, maybe_delivered, status)
            maybe_delivered = f"HTTP {status}"
        if retryable and attempt < policy.attempts:
            retry_after = parse_retry_after(outcome.headers.get("retry-after"))
            if retry_after is not None and retry_after > policy.max_delay:
                message = (
                    f"{endpoint.name} got HTTP {status} and the server asked to wait {retry_after:.0f} s "
                    f"before trying again (more than RetryPolicy.max_delay = {policy.max_delay:g} s); "
                    "wait that long, or raise max_delay to let the client wait"
                )
                if client_id is not None and maybe_delivered:
                    raise _delivery_unknown(endpoint, client_id, attempt, f"HTTP {status}", maybe_delivered, status)
                raise E.TransportError(message, endpoint=endpoint.name, status_code=status, attempts=attempt)
            yield Sleep(policy.delay(attempt, retry_after), f"{endpoint.name}: HTTP {status}")
            attempt += 1
            continue
        if status >= 300:
            if client_id is not None and maybe_delivered:
                raise _delivery_unknown(endpoint, client_id, attempt, f"HTTP {status}", maybe_delivered, status)
            raise http_status_error(endpoint, status, outcome.content, dict(outcome.headers), attempt)
        try:
            if outcome.truncated:
                raise too_large_error(endpoint, outcome.cap)
            return parse_response(endpoint, outcome.content)
        except E.ProtocolError as exc:
            if client_id is not None:
                exc.add_note(
                    f"the server answered HTTP {status}, so the message (client_id={client_id!r}) was probably "
                    "delivered; check before sending it again"
                )
            raise


def too_large_error(endpoint: Endpoint, cap: int | None) -> E.ProtocolError:
    """The error of an answer over the client's cap (``Reply.truncated``): names the limit and how to raise it."""
    limit = f"{cap:,} bytes" if cap is not None else "its limit"
    return E.ProtocolError(
        f"{endpoint.name}: the server's answer is larger than the client reads ({limit}), so it was not read; "
        "a real answer is far smaller. If this server is right to send that much, raise the limit: "
        "Client(..., max_response_bytes=...)",
        endpoint=endpoint.name,
    )


def _delivery_unknown(
    endpoint: Endpoint,
    client_id: str,
    attempts: int,
    problem: str,
    earlier: str | None = None,
    status: int | None = None,
) -> E.DeliveryUnknownError:
    """The error of a send whose fate is unknown: what happened, why it was not retried, how to try again."""
    if earlier:
        why = f" (try {attempts}; an earlier try ended with {earlier})."
    else:
        why = (
            ". It was not sent again: a second send may deliver it twice and use one more of the sends its "
            "context token allows (RetryPolicy(retry_sends=True) retries anyway)."
        )
    return E.DeliveryUnknownError(
        f"{endpoint.name}: {problem}; the message may or may not have been delivered{why} "
        f"To try again, send it with client_id={client_id!r}, so a server that de-duplicates keeps one copy.",
        client_id=client_id,
        endpoint=endpoint.name,
        status_code=status,
        attempts=attempts,
    )


def _with_attempt(send: Send, attempt: int) -> Send:
    """The same request for another try; ``X-WECHAT-UIN`` is fresh for every request, retries included."""
    if attempt == send.attempt:
        return send
    headers = send.headers
    if C.H_UIN in headers:
        headers = {**headers, C.H_UIN: random_uin()}
    return Send(
        send.call,
        send.method,
        send.base_url,
        send.path,
        send.params,
        headers,
        send.content,
        send.timeout,
        attempt,
        send.url,
        send.max_bytes,
    )


class _TryAgain(Exception):
    """Raised by a CDN flow's ``on_200``: this 200 answer is unusable, retry it like a 5xx."""


def _cdn_flow(send: Send, policy: RetryPolicy, on_200: Callable[[Reply, int], Any]) -> Flow:
    """The CDN's rules, shared by upload and download: HTTP 4xx fails at once with the server's
    ``x-error-message``; 5xx and transport errors retry, ``policy.attempts`` tries in all. ``on_200`` turns a
    200 answer into the result, raises, or raises :class:`_TryAgain` to have it retried like a 5xx."""
    call = send.call
    attempt = 1
    while True:
        outcome = yield _with_attempt(send, attempt)
        if isinstance(outcome, Reply):
            if outcome.status == 200:
                try:
                    return on_200(outcome, attempt)
                except _TryAgain as again:
                    problem = str(again)
            else:
                message = outcome.headers.get(C.H_ERROR_MESSAGE) or snippet(outcome.content)
                if 400 <= outcome.status < 500:
                    raise E.CdnError(
                        f"{call} rejected with HTTP {outcome.status}: {message or '(no message)'}",
                        endpoint=call,
                        status_code=outcome.status,
                        attempts=attempt,
                    )
                problem = f"HTTP {outcome.status}" + (f": {message}" if message else "")
        else:
            assert isinstance(outcome, Failure), "drivers answer a Send with a Reply or a Failure"
            problem = _describe(outcome.error)
        if attempt >= policy.attempts:
            raise E.CdnError(
                f"{call} failed after {attempt} attempts ({problem})",
                endpoint=call,
                status_code=outcome.status if isinstance(outcome, Reply) else None,
                attempts=attempt,
            )
        yield Sleep(policy.delay(attempt), f"{call}: {problem}")
        attempt += 1


def cdn_upload_flow(send: Send, policy: RetryPolicy) -> Flow:
    """Upload ciphertext to the CDN; return the ``x-encrypted-param`` download parameter.

    As the official client: HTTP 4xx fails at once with the server's ``x-error-message``; other failures
    (5xx, transport errors, and a 200 without the header, which leaves nothing to refer to) retry,
    ``policy.attempts`` tries in all.
    """

    def on_200(reply: Reply, attempt: int) -> str:
        param = reply.headers.get(C.H_ENCRYPTED_PARAM)
        if param:
            return param
        raise _TryAgain(f"HTTP 200 without the {C.H_ENCRYPTED_PARAM} header, so the upload cannot be referenced")

    return _cdn_flow(send, policy, on_200)


def cdn_download_flow(send: Send, policy: RetryPolicy) -> Flow:
    """Download ciphertext from the CDN, retrying 5xx/transport failures; returns the bytes."""

    def on_200(reply: Reply, attempt: int) -> bytes:
        if reply.truncated:
            raise E.CdnError(
                f"cdn_download stopped: the media is larger than the {send.max_bytes:,} byte cap "
                "(pass a larger max_bytes to download it)",
                endpoint="cdn_download",
                status_code=reply.status,
            )
        return reply.content

    return _cdn_flow(send, policy, on_200)
