"""HAR 1.2 export of a log, so a session opens in browser developer tools (Network → Import HAR).

Binary bodies are described (size + md5 in a comment), never included; failed exchanges get status 0 and an
``_error`` field as browsers write them. Our own extras are custom fields with a leading underscore.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from .._version import __version__
from .exchange import Binary, Exchange, Text, _utc


def _iso(ex: Exchange) -> str:
    return _utc(ex.started).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _header_list(headers: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers.items()]


def _query(url: str) -> list[dict[str, str]]:
    query = urlsplit(url).query
    out = []
    for part in query.split("&") if query else ():
        name, _, value = part.partition("=")
        out.append({"name": unquote_plus(name), "value": unquote_plus(value)})
    return out


def _wire_url(url: str) -> str:
    # Redaction placeholders are readable, not URL-safe ("<redacted 6b1f…(64)>"); quote them so that importers
    # that parse the URL strictly accept it. queryString keeps them readable.
    parts = urlsplit(url)
    if not parts.query or "<" not in parts.query:
        return url
    query = "&".join(
        f"{name}={quote(value, safe='%')}" if "<" in value else f"{name}={value}"
        for name, _, value in (p.partition("=") for p in parts.query.split("&"))
    )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _mime(headers: dict[str, str], default: str) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value
    return default


def _body_text(body: Any) -> str | None:
    if body is None or isinstance(body, Binary):
        return None
    if isinstance(body, Text):
        return body.text
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _size(value: int | None) -> int:
    return -1 if value is None else value


def entry(ex: Exchange) -> dict[str, Any]:
    """One HAR entry for one exchange."""
    request: dict[str, Any] = {
        "method": ex.method,
        "url": _wire_url(ex.url),
        "httpVersion": ex.http_version,
        "cookies": [],
        "headers": _header_list(ex.request_headers),
        "queryString": _query(ex.url),
        "headersSize": -1,
        "bodySize": _size(ex.request_size),
    }
    if ex.request_body is not None:
        post: dict[str, Any] = {"mimeType": _mime(ex.request_headers, "application/octet-stream")}
        text = _body_text(ex.request_body)
        post["text"] = text if text is not None else ""
        if isinstance(ex.request_body, Binary):
            post["comment"] = f"binary body not kept: {ex.request_body}"
        request["postData"] = post

    content: dict[str, Any] = {
        "size": 0,
        "mimeType": _mime(ex.response_headers, "x-unknown"),
    }
    # Compact JSON of the parsed body, so that a log reloaded from JSONL exports the same HAR.
    body = ex.response_body
    text = _body_text(body)
    if text is not None:
        content["text"] = text
        content["size"] = len(text.encode("utf-8"))
    elif isinstance(body, Binary):
        content["size"] = body.size
        content["comment"] = f"binary body not kept: {body}"
    elif ex.response_size is not None:
        content["size"] = ex.response_size

    location = next((v for k, v in ex.response_headers.items() if k.lower() == "location"), "")
    response: dict[str, Any] = {
        "status": ex.status if ex.status is not None else 0,
        "statusText": ex.reason if ex.status is not None else "",
        "httpVersion": ex.http_version,
        "cookies": [],
        "headers": _header_list(ex.response_headers),
        "content": content,
        "redirectURL": location,
        "headersSize": -1,
        "bodySize": _size(ex.response_size),
    }

    total = max(ex.duration_ms or 0.0, 0.0)
    wait = min(max(ex.wait_ms if ex.wait_ms is not None else total, 0.0), total)
    # HAR wants time == send + wait + receive; we measure "until headers" and "until the end of the body".
    timings = {"send": 0.0, "wait": round(wait, 3), "receive": round(total - wait, 3)}
    out: dict[str, Any] = {
        "startedDateTime": _iso(ex),
        "time": timings["send"] + timings["wait"] + timings["receive"],
        "request": request,
        "response": response,
        "cache": {},
        "timings": timings,
        "_id": ex.id,
        "_call": ex.call,
        "_attempt": ex.attempt,
        "_redacted": ex.redacted,
    }
    if ex.error:
        out["_error"] = ex.error
        out["comment"] = ex.error
    return out


def build_har(exchanges: Iterable[Exchange]) -> dict[str, Any]:
    """The HAR 1.2 document for these exchanges (sorted by start time, as the format prefers)."""
    items = sorted(exchanges, key=lambda ex: (_utc(ex.started), ex.id))
    redacted = all(ex.redacted for ex in items)
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "openclaw-nb", "version": __version__},
            "pages": [],
            "entries": [entry(ex) for ex in items],
            "comment": "secrets redacted by the recorder" if redacted else "NOT REDACTED: contains secrets",
        }
    }
