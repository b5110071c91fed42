"""Secrets out of the HTTP libraries' own log lines.

With the root logger at INFO, httpx logs every request's URL (a CDN download's ``encrypted_query_param``
included); at DEBUG, httpcore logs response headers (``x-encrypted-param``) and hpack every HTTP/2 header it
encodes (``Authorization``). :func:`install` puts one filter on those loggers that rewrites each record's
message the way the recorder redacts (:mod:`openclaw_nb.protocol.redact`): secret query parameters, secret
headers and bearer tokens become ``<redacted 6b1f…(64)>``. Every client installs it when it is created; it is
never removed (another client may still be logging), and installing it again changes nothing.
"""

from __future__ import annotations

import logging
import re
import threading

from .protocol.redact import SECRET_FIELDS, SECRET_HEADERS, redact_header, redact_text

#: The loggers of the HTTP stack (a filter on a logger does not apply to its children, so each is named).
LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.connection_pool",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack",
    "hpack.hpack",
    "hpack.table",
    "h2",
    "h2.connection",
    "h11",
)

_SECRET_NAMES = SECRET_HEADERS | SECRET_FIELDS
# A header as httpcore and hpack show it: a tuple of two (byte) strings, ``(b'x-encrypted-param', b'...')``.
_HEADER_PAIR = re.compile(r"""\(\s*(b?)(['"])([A-Za-z0-9_:-]+)\2\s*,\s*(b?)(['"])((?:\\.|(?!\5).)*)\5\s*\)""")
# Cheap pre-check: a message with none of these can't hold a secret the redaction knows.
_STEMS = ("token", "key", "ticket", "authorization", "param", "bearer", "cookie")


def _pair(m: re.Match[str]) -> str:
    name = m.group(3)
    if name.lower() not in _SECRET_NAMES:
        return m.group(0)
    value = redact_header(name, m.group(6))
    return f"({m.group(1)}{m.group(2)}{name}{m.group(2)}, {m.group(4)}{m.group(5)}{value}{m.group(5)})"


def redact_log_message(message: str) -> str:
    """A log line with every secret it shows redacted: header tuples, ``name=value``, bearer tokens, JSON."""
    low = message.lower()
    if not any(stem in low for stem in _STEMS):
        return message
    return redact_text(_HEADER_PAIR.sub(_pair, message))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with its secrets redacted (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments don't fit its format: leave it to logging's own report
            return True
        redacted = redact_log_message(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


#: The one filter every client installs.
FILTER = RedactingFilter()
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Put :data:`FILTER` on the HTTP stack's loggers (and any child of theirs that exists already). Cheap
    after the first call."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        names = set(LOGGERS)
        for name in list(logging.root.manager.loggerDict):
            if name.split(".", 1)[0] in ("httpx", "httpcore", "hpack", "h2", "h11"):
                names.add(name)
        for name in sorted(names):
            logger = logging.getLogger(name)
            if FILTER not in logger.filters:
                logger.addFilter(FILTER)
        _installed = True


def installed() -> bool:
    """Whether every logger of :data:`LOGGERS` carries the filter."""
    return all(FILTER in logging.getLogger(name).filters for name in LOGGERS)
