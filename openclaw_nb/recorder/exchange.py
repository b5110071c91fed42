"""One recorded HTTP exchange (:class:`Exchange`) and the two stand-ins for bodies that are not kept whole.

Owns the exchange's fields, how it prints (text, rich, HTML) and how it is written to and read back from
JSON (the JSONL log format). A recorder keeps each exchange's raw parts privately and redacts them the first time
anything that can hold a secret is looked at (a body, a header, the URL, the error, a print, an export, a pickle
or a copy); what every public attribute gives is redacted when the recorder redacts.
"""

from __future__ import annotations

import html
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

#: JSONL schema version written in every file's header line.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Binary:
    """A body kept as size and MD5 only (CDN ciphertext): enough to compare, nothing to leak."""

    size: int
    md5: str
    #: False when the body was not read to its end (the stream was closed early or failed).
    complete: bool = True

    def __str__(self) -> str:
        more = "" if self.complete else ", incomplete"
        return f"<{self.size} bytes, md5 {self.md5}{more}>"


@dataclass(frozen=True)
class Text:
    """A body that is text but not JSON (an error page, a plain message), redacted like free text."""

    text: str
    size: int

    def __str__(self) -> str:
        return self.text


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def decode_header_value(raw: bytes) -> str:
    """A raw header value as text: UTF-8 covers ASCII and the UTF-8 x-error-message of the CDN; anything else
    shows as replacement characters."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def header_dict(headers: Any) -> dict[str, str]:
    """Headers as a dict, from a dict or from the recorder's raw (name, value) list (bytes, or redacted text).

    Repeated headers are joined with ", " as HTTP allows (the iLink protocol repeats none).
    """
    if isinstance(headers, dict):
        return dict(headers)
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1")
        value = raw_value if isinstance(raw_value, str) else decode_header_value(raw_value)
        if name in out:
            out[name] = f"{out[name]}, {value}"
        else:
            out[name] = value
    return out


class JsonText:
    """A JSON body kept as its (already redacted) text and parsed only when someone looks at it.

    Parsing every body at record time would cost more than the request itself for a large ``getupdates``
    page, and a ring of parsed bodies is hundreds of thousands of objects for the garbage collector to walk
    on every collection. The text is one untracked object. Text that turns out not to be JSON reads as
    :class:`Text`.
    """

    __slots__ = ("size", "text")

    def __init__(self, text: str, size: int | None = None) -> None:
        self.text = text
        self.size = len(text.encode("utf-8")) if size is None else size

    def value(self) -> Any:
        try:
            return json.loads(self.text)
        except (ValueError, RecursionError):
            return Text(self.text, self.size)

    def __repr__(self) -> str:
        return f"JsonText({self.text!r})"


def _resolve(body: Any) -> Any:
    return body.value() if isinstance(body, JsonText) else body


_FIELDS = (
    "id",
    "started",
    "call",
    "method",
    "url",
    "request_headers",
    "request_body",
    "status",
    "response_headers",
    "response_body",
    "duration_ms",
    "error",
    "attempt",
    "wait_ms",
    "http_version",
    "reason",
    "request_size",
    "response_size",
    "redacted",
)


class Pending(Protocol):
    """What a recorded exchange keeps until it is first looked at: its raw parts, and how to redact them."""

    def values(self) -> tuple[Any, ...]:
        """Every field in ``_FIELDS`` order, redacted if the recorder redacts; drops the raw parts."""
        ...


# Settling an exchange (redacting its raw parts) happens once: two threads looking at it at the same time wait
# for one result. One lock for all exchanges costs nothing while nobody looks and no memory per exchange;
# reentrant because redaction may log, and a logging handler may look at another exchange.
_settle_lock = threading.RLock()


def _fresh_lock_in_child() -> None:
    global _settle_lock
    _settle_lock = threading.RLock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)

#: The fields that can hold a secret: read from the raw parts, redacted, the first time any of them is asked for.
_SECRET_FIELDS = frozenset({"url", "request_headers", "request_body", "response_headers", "response_body", "error"})


class Exchange:
    """One request and its response (or the error that replaced it), as it crossed the wire. Read-only.

    ``request_body`` / ``response_body`` are the parsed JSON value (parsed anew on each access, so changing
    it changes nothing recorded), a :class:`Binary` (size + md5), a :class:`Text`, or ``None`` when there was
    no body. ``request_headers`` / ``response_headers`` are likewise a fresh dict on each access. ``status``
    is ``None`` when no response arrived, and then ``error`` says why
    (``"ConnectError: [Errno 111] Connection refused"``).

    >>> ex = client.log[-1]
    >>> ex.call, ex.status, ex.response_body["ret"]        # doctest: +SKIP
    ('send_message', 200, 0)
    """

    # All fields live in one tuple, in _FIELDS order, read through the properties made below the class: the
    # recorder builds an Exchange per request, and one tuple costs a tenth of nineteen slots set one by one
    # past the read-only __setattr__. The recorder also leaves some work to the first look: ``started`` may be
    # kept as a POSIX timestamp and the headers as their raw list. An exchange fresh from a recorder has a
    # ``_raw`` (a Pending) and None in _v for the fields that can hold a secret; reading any of those, or
    # anything made of them, settles it first (see _settle): _v gets every field, redacted, and _raw goes.
    # ``_fp`` is the footprint the recorder counted for it (see log.footprint), None when not recorded.
    __slots__ = ("_fp", "_raw", "_v")

    _v: tuple[Any, ...]
    _raw: Pending | None
    _fp: int | None
    id: int
    call: str
    method: str
    url: str
    #: The bodies as kept: a JsonText where ``request_body`` / ``response_body`` give the parsed value.
    _request_body: Any
    _response_body: Any
    status: int | None
    duration_ms: float | None
    error: str | None
    attempt: int
    #: Time until the response headers arrived (HAR "wait"); ``None`` when no response arrived.
    wait_ms: float | None
    http_version: str
    reason: str
    #: Body sizes in bytes as sent / received on the wire (``None`` when unknown).
    request_size: int | None
    response_size: int | None
    redacted: bool

    def __init__(
        self,
        id: int,
        started: datetime,
        call: str,
        method: str,
        url: str,
        request_headers: dict[str, str] | None = None,
        request_body: Any = None,
        status: int | None = None,
        response_headers: dict[str, str] | None = None,
        response_body: Any = None,
        duration_ms: float | None = None,
        error: str | None = None,
        attempt: int = 1,
        wait_ms: float | None = None,
        http_version: str = "HTTP/1.1",
        reason: str = "",
        request_size: int | None = None,
        response_size: int | None = None,
        redacted: bool = True,
    ) -> None:
        object.__setattr__(
            self,
            "_v",
            (
                id,
                started,
                call,
                method,
                url,
                {} if request_headers is None else request_headers,
                request_body,
                status,
                {} if response_headers is None else response_headers,
                response_body,
                duration_ms,
                error,
                attempt,
                wait_ms,
                http_version,
                reason,
                request_size,
                response_size,
                redacted,
            ),
        )
        object.__setattr__(self, "_raw", None)
        object.__setattr__(self, "_fp", None)

    @classmethod
    def _of(cls, values: tuple[Any, ...]) -> Exchange:
        """An Exchange from all its fields in ``_FIELDS`` order, bodies as kept."""
        ex = object.__new__(cls)
        _set_v(ex, values)
        _set_raw(ex, None)
        _set_fp(ex, None)
        return ex

    @classmethod
    def _pending(cls, values: tuple[Any, ...], raw: Pending, footprint: int) -> Exchange:
        """An Exchange redacted when first looked at (the recorder's path): ``values`` in ``_FIELDS`` order with
        None for the fields that can hold a secret, ``raw`` to make them from, ``footprint`` what it holds."""
        ex = object.__new__(cls)
        _set_v(ex, values)
        _set_raw(ex, raw)
        _set_fp(ex, footprint)
        return ex

    def _settle(self) -> tuple[Any, ...]:
        """Every field, redacted from the raw parts on the first call (once, whichever thread asks)."""
        with _settle_lock:
            raw = self._raw
            if raw is not None:
                _set_v(self, raw.values())
                _set_raw(self, None)  # after _v: a reader that sees no _raw sees the settled fields
            return self._v

    def _values(self) -> tuple[Any, ...]:
        return self._v if self._raw is None else self._settle()

    def __reduce__(self) -> tuple[Any, ...]:
        # Redacted first: a pickle or a copy never carries the raw parts.
        return (Exchange._of, (self._values(),))

    def __getstate__(self) -> tuple[Any, ...]:
        # Not object's default (the slots, raw parts included): every field in _FIELDS order, redacted first.
        return self._values()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Exchange is read-only (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Exchange is read-only (cannot delete {name!r})")

    @property
    def started(self) -> datetime:
        value = self._v[1]
        return datetime.fromtimestamp(value, UTC) if isinstance(value, float) else value

    @property
    def request_headers(self) -> dict[str, str]:
        return header_dict(self._values()[5])

    @property
    def response_headers(self) -> dict[str, str]:
        return header_dict(self._values()[8])

    @property
    def request_body(self) -> Any:
        return _resolve(self._values()[6])

    @property
    def response_body(self) -> Any:
        return _resolve(self._values()[9])

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Exchange):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.id, self.started))

    # -- derived facts ---------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The URL path (no host, no query): ``/ilink/bot/sendmessage``."""
        return urlsplit(self.url).path

    @property
    def ret(self) -> int | None:
        """The business code of a JSON response: ``ret``, else ``errcode``, else ``None``."""
        body = self.response_body
        if not isinstance(body, dict):
            return None
        codes = [v for v in (body.get("ret"), body.get("errcode")) if isinstance(v, int) and not isinstance(v, bool)]
        for value in codes:
            if value:
                return value
        return codes[0] if codes else None

    @property
    def failed(self) -> bool:
        """No response, an HTTP status of 400 or more, or a non-zero ``ret``/``errcode`` in the JSON body."""
        if self.error is not None or self.status is None or self.status >= 400:
            return True
        body = self.response_body
        if isinstance(body, dict):
            for key in ("ret", "errcode"):
                value = body.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value != 0:
                    return True
        return False

    @property
    def outcome(self) -> str:
        """A few words for tables: ``200``, ``200 ret=-14``, ``ReadTimeout``."""
        if self.status is None:
            return (self.error or "no response").split(":", 1)[0]
        text = str(self.status)
        code = self.ret
        if code:
            text += f" ret={code}"
        if self.error:
            text += " " + self.error.split(":", 1)[0]
        return text

    # -- JSON (the JSONL line format) ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` turns it back into an equal Exchange."""
        return {
            "id": self.id,
            "started": _utc(self.started).isoformat(),
            "call": self.call,
            "method": self.method,
            "url": self.url,
            "attempt": self.attempt,
            "request_headers": self.request_headers,
            "request_body": _body_to_json(self.request_body),
            "request_size": self.request_size,
            "status": self.status,
            "reason": self.reason,
            "http_version": self.http_version,
            "response_headers": self.response_headers,
            "response_body": _body_to_json(self.response_body),
            "response_size": self.response_size,
            "duration_ms": self.duration_ms,
            "wait_ms": self.wait_ms,
            "error": self.error,
            "redacted": self.redacted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Exchange:
        """The inverse of :meth:`to_dict` (unknown keys are ignored, so newer files still load)."""
        return cls(
            id=int(data["id"]),
            started=_utc(datetime.fromisoformat(data["started"])),
            call=data["call"],
            method=data["method"],
            url=data["url"],
            attempt=int(data.get("attempt", 1)),
            request_headers=dict(data.get("request_headers") or {}),
            request_body=_body_from_json(data.get("request_body")),
            request_size=data.get("request_size"),
            status=data.get("status"),
            reason=data.get("reason", ""),
            http_version=data.get("http_version", "HTTP/1.1"),
            response_headers=dict(data.get("response_headers") or {}),
            response_body=_body_from_json(data.get("response_body")),
            response_size=data.get("response_size"),
            duration_ms=data.get("duration_ms"),
            wait_ms=data.get("wait_ms"),
            error=data.get("error"),
            redacted=bool(data.get("redacted", True)),
        )

    # -- display ---------------------------------------------------------------------------------------

    def headline(self) -> str:
        """``#12 send_message POST /ilink/bot/sendmessage → 200 ret=-2 (3.1 ms)``"""
        ms = f" ({self.duration_ms:.1f} ms)" if self.duration_ms is not None else ""
        again = f" attempt {self.attempt}" if self.attempt != 1 else ""
        return f"#{self.id} {self.call} {self.method} {self.path} → {self.outcome}{ms}{again}"

    def __str__(self) -> str:
        return self.__repr__()

    def __repr__(self) -> str:
        # Printed whole on purpose: `log[-1]` in a REPL should show everything that crossed the wire.
        lines = [
            f"Exchange {self.headline()}",
            f"  started   {_utc(self.started).isoformat(timespec='milliseconds')}",
            f"  url       {self.url}",
        ]
        if self.error:
            lines.append(f"  error     {self.error}")
        lines.append("  request")
        lines += _indent_headers(self.request_headers)
        lines += _indent_body(self.request_body)
        if self.status is not None:
            lines.append(f"  response  {self.status} {self.reason}".rstrip())
            lines += _indent_headers(self.response_headers)
            lines += _indent_body(self.response_body)
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.syntax import Syntax
        from rich.text import Text as RichText

        parts: list[Any] = [RichText(self.url, style="dim")]
        if self.error:
            parts.append(RichText(self.error, style="bold red"))
        parts.append(RichText("request", style="bold"))
        parts.append(Syntax(_pretty_section(self.request_headers, self.request_body), "json", word_wrap=True))
        if self.status is not None:
            parts.append(RichText(f"response {self.status} {self.reason}".rstrip(), style="bold"))
            parts.append(Syntax(_pretty_section(self.response_headers, self.response_body), "json", word_wrap=True))
        style = "red" if self.failed else "green"
        return Panel(Group(*parts), title=self.headline(), title_align="left", border_style=style)

    def _repr_html_(self) -> str:
        colour = "#b00020" if self.failed else "#1b5e20"
        rows = [
            ("started", _utc(self.started).isoformat(timespec="milliseconds")),
            ("url", self.url),
            ("attempt", str(self.attempt)),
        ]
        if self.error:
            rows.append(("error", self.error))
        table = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
            f"<code>{html.escape(v)}</code></td></tr>"
            for k, v in rows
        )
        out = [
            f"<div class='openclaw-exchange'><b style='color:{colour}'>{html.escape(self.headline())}</b>",
            f"<table>{table}</table>",
            _html_details("request", _pretty_section(self.request_headers, self.request_body), open_=True),
        ]
        if self.status is not None:
            out.append(
                _html_details(
                    f"response {self.status} {self.reason}".rstrip(),
                    _pretty_section(self.response_headers, self.response_body),
                    open_=True,
                )
            )
        out.append("</div>")
        return "".join(out)


def _field(index: int) -> property:
    def get(self: Exchange) -> Any:
        return self._v[index]

    return property(get)


def _secret_field(index: int) -> property:
    def get(self: Exchange) -> Any:
        return self._values()[index]

    return property(get)


for _index, _name in enumerate(_FIELDS):
    if _name in ("started", "request_headers", "response_headers"):
        continue  # properties of their own, in the class
    if _name in ("request_body", "response_body"):
        _name = "_" + _name
    setattr(Exchange, _name, (_secret_field if _name.lstrip("_") in _SECRET_FIELDS else _field)(_index))
del _index, _name

# The slots' own setters: past the read-only __setattr__ without object.__setattr__'s lookup on every exchange.
_slot = Exchange.__dict__
_set_v = _slot["_v"].__set__
_set_raw = _slot["_raw"].__set__
_set_fp = _slot["_fp"].__set__
del _slot


# -- helpers shared with the log views ------------------------------------------------------------------


def _body_to_json(body: Any) -> Any:
    # Tagged so that a JSON body which happens to look like {"size":..,"md5":..} is never confused
    # with a Binary stand-in.
    if body is None:
        return None
    if isinstance(body, Binary):
        return {"binary": {"size": body.size, "md5": body.md5, "complete": body.complete}}
    if isinstance(body, Text):
        return {"text": body.text, "size": body.size}
    return {"json": body}


def _body_from_json(data: Any) -> Any:
    if data is None:
        return None
    if "binary" in data:
        b = data["binary"]
        return Binary(int(b["size"]), str(b["md5"]), bool(b.get("complete", True)))
    if "text" in data:
        return Text(data["text"], int(data.get("size", len(data["text"].encode("utf-8")))))
    return data.get("json")


def body_text(body: Any, indent: int | None = 2) -> str:
    """A body as display text: pretty JSON, the text, or the binary summary."""
    if body is None:
        return ""
    if isinstance(body, (Binary, Text)):
        return str(body)
    return json.dumps(body, ensure_ascii=False, indent=indent)


def _pretty_section(headers: dict[str, str], body: Any) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in headers.items())
    text = body_text(body)
    return f"{head}\n\n{text}" if text else head


def _indent_headers(headers: dict[str, str]) -> list[str]:
    return [f"    {k}: {v}" for k, v in headers.items()]


def _indent_body(body: Any) -> list[str]:
    text = body_text(body)
    return ["    " + line for line in text.splitlines()] if text else []


def _html_details(summary: str, text: str, *, open_: bool = False) -> str:
    attr = " open" if open_ else ""
    return (
        f"<details{attr}><summary>{html.escape(summary)}</summary>"
        f"<pre style='white-space:pre-wrap;text-align:left;margin:0'>{html.escape(text)}</pre></details>"
    )
