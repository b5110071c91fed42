"""One hierarchy of errors: local misuse (``UsageError``) versus remote or protocol failures.

Every message is a sentence that names the endpoint and what to do next. No message ever contains a
whole token: bodies are shown through :func:`openclaw_nb.protocol.redact.snippet`.
"""

from __future__ import annotations

from typing import Any


class OpenClawError(Exception):
    """Base class of every error this package raises."""


class UsageError(OpenClawError, ValueError):
    """The caller passed something wrong; nothing was sent. The message says what to pass instead."""


class RemoteError(OpenClawError):
    """Something went wrong on the other side of the wire (or on the wire itself)."""

    endpoint: str

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        super().__init__(message)
        self.endpoint = endpoint


class TransportError(RemoteError):
    """The request did not get a usable HTTP answer: connection refused or reset, timeout, HTTP 4xx/5xx."""

    def __init__(self, message: str, *, endpoint: str = "", status_code: int | None = None, attempts: int = 1) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status_code = status_code
        self.attempts = attempts


class DeliveryUnknownError(TransportError):
    """A ``sendmessage`` went out but no usable answer came back (a timeout, a connection dropped after the
    request was written, an HTTP 5xx): the message may or may not have been delivered.

    It is not sent again by itself, because a second send may deliver it twice and use one more of the sends
    the context token allows (whether the server de-duplicates by ``client_id`` is not known). ``client_id``
    is the id the message went out with: to try again, pass it back (``send_text(..., client_id=...)``), so a
    server that does de-duplicate can recognise the message.
    """

    def __init__(
        self,
        message: str,
        *,
        client_id: str,
        endpoint: str = "",
        status_code: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status_code=status_code, attempts=attempts)
        self.client_id = client_id


class ProtocolError(RemoteError):
    """The server answered, but not in the shape the protocol promises (not JSON, not an object, wrong types)."""

    def __init__(self, message: str, *, endpoint: str = "", snippet: str = "") -> None:
        super().__init__(message, endpoint=endpoint)
        self.snippet = snippet


class ApiError(RemoteError):
    """A business error: HTTP 200 with ``ret`` and/or ``errcode`` non-zero."""

    hint = ""

    def __init__(
        self,
        endpoint: str,
        ret: int | None,
        errcode: int | None,
        errmsg: str = "",
        *,
        hint: str = "",
        raw: dict[str, Any] | None = None,
    ) -> None:
        self.ret = ret
        self.errcode = errcode
        self.errmsg = errmsg
        self.raw = raw if raw is not None else {}
        if hint:
            self.hint = hint
        codes = ", ".join(
            f"{name}={value}" for name, value in (("ret", ret), ("errcode", errcode)) if value is not None
        )
        message = f"{endpoint} failed ({codes}"
        message += f", errmsg={errmsg!r})" if errmsg else ")"
        if self.hint:
            message += f": {self.hint}"
        super().__init__(message, endpoint=endpoint)

    @property
    def code(self) -> int:
        """The non-zero code, ``ret`` first, then ``errcode``."""
        return self.ret or self.errcode or 0


class StaleTokenError(ApiError):
    """``-14``: the bot token is stale or was taken over by another client. Waiting does not help."""

    hint = (
        "the bot token is stale (-14): it expired, was rotated, or the bot was bound by another client. "
        "Log in again with client.login() (or `openclaw-nb login`)"
    )


class SendRejectedError(ApiError):
    """``-2`` on ``sendmessage``: quota on the context token, the 24 h window, rate limit or text too long."""

    hint = (
        "the server refused the send (-2): the usual causes are 10 sends already made on the user's context "
        "token, more than 24 h since the user's last message, rate limiting, or text over about 16 KiB; "
        "send_text() explains which applies from what the client has seen"
    )


class InvalidArgumentsError(ApiError):
    """``-3``: the server rejected the arguments, most often an unknown ``to_user_id``."""

    hint = (
        "the server rejected the arguments (-3); on sendmessage this is most often a wrong to_user_id "
        "(users look like ...@im.wechat)"
    )


class NotYetContactedError(ApiError):
    """``-4`` from ``getconfig``: the user has not written to the bot yet, so there is no typing ticket."""

    hint = "the user has not written to the bot yet (-4): a typing ticket exists only after the user's first message"


class CdnError(TransportError):
    """The CDN refused an upload or download; ``message`` carries its ``x-error-message``."""
