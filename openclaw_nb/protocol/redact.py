"""How secrets look when shown: a short fingerprint and the length, never the value.

Equal values redact to equal strings, so a reader can still tell "same token" from "new token".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

#: Field names whose values are secrets wherever they appear in a JSON body.
SECRET_FIELDS = frozenset(
    {
        "bot_token",
        "token",
        "context_token",
        "typing_ticket",
        "aeskey",
        "aes_key",
        "local_token_list",
        "authorization",
        "upload_param",
        "thumb_upload_param",
        "encrypt_query_param",
        "encrypted_query_param",
        "x-encrypted-param",
    }
)


#: Header names (lower-case) whose values are secrets. ``Authorization`` keeps its scheme (``Bearer``) visible.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-encrypted-param"})

# ``filekey`` is deliberately not a secret: it is a random file id that is useless without the upload or
# download parameter, and the client sends it in the clear in the getuploadurl body anyway.
# QR code ids are not secrets either: they are shown to the user as a URL to scan.


_PLACEHOLDER = re.compile(r"<redacted [0-9a-f]{4}…\(\d+\)>")


def is_redacted(value: object) -> bool:
    """True for a string that is exactly a redaction placeholder such as ``<redacted 6b1f…(64)>``."""
    return isinstance(value, str) and _PLACEHOLDER.fullmatch(value) is not None


def redact(value: object) -> str:
    """``<redacted 6b1f…(64)>``: the first 4 hex digits of a SHA-256 of the value, then its length."""
    text = value if isinstance(value, str) else str(value)
    if text.startswith("<redacted ") and _PLACEHOLDER.fullmatch(text):
        # Already redacted: redacting twice must not change the fingerprint (logs get re-saved, re-loaded).
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:4]
    return f"<redacted {digest}…({len(text)})>"


class _NeedsParse(Exception):
    pass


_DECODER = json.JSONDecoder()
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_WS = " \t\r\n"
# Every secret name contains one of these stems, so five scans of the text find them all, as member names
# ("context_token":) or as query parameters (?encrypted_query_param=) inside string values.
_STEMS = ("token", "key", "ticket", "authorization", "param")
assert all(any(stem in name for stem in _STEMS) for name in SECRET_FIELDS)
_QUERY_VALUE = re.compile(r'[^&"\\#\s]*')


# For each stem, the secret names that contain it and where: (name, offset of the stem in the name).
_CANDIDATES = {
    stem: tuple(sorted(((name, name.index(stem)) for name in SECRET_FIELDS if stem in name), key=lambda c: -len(c[0])))
    for stem in _STEMS
}


def _json_text_edits(text: str) -> list[tuple[int, int, str]]:
    """(start, end, replacement) for every secret in a JSON text; raises _NeedsParse for shapes it can't vouch for."""
    low = text.lower()
    n = len(text)
    if len(low) != n:
        raise _NeedsParse  # lower() changed the length (rare Unicode): positions would not line up
    edits: list[tuple[int, int, str]] = []
    for stem, candidates in _CANDIDATES.items():
        pos = low.find(stem)
        while pos >= 0:
            nxt = pos + len(stem)
            for name, offset in candidates:
                b = pos - offset
                e = b + len(name)
                if b <= 0 or e >= n or not low.startswith(name, b):
                    continue
                before, after = text[b - 1], text[e]
                if after == '"' and before == '"':
                    nxt = _member_edit(text, b - 1, e + 1, edits)
                elif after == "=" and (before in "?&" or low[b - 6 : b] == "\\u0026"):
                    # a query parameter inside a string value ("&" may be escaped as \u0026 by some encoders)
                    m = _QUERY_VALUE.match(text, e + 1)
                    end = m.end() if m else e + 1
                    if end > e + 1 and not text.startswith("<redacted ", e + 1):
                        edits.append((e + 1, end, redact(unquote_plus(text[e + 1 : end]))))
                    nxt = end
                else:
                    continue
                break
            pos = low.find(stem, nxt)
    return edits


def _member_edit(text: str, quote: int, after: int, edits: list[tuple[int, int, str]]) -> int:
    """Redact the value of the member whose name spans text[quote:after], if it is a member name at all."""
    n = len(text)
    i = quote - 1
    while i >= 0 and text[i] in _WS:
        i -= 1
    j = after
    while j < n and text[j] in _WS:
        j += 1
    # A member name follows "{" or "," (a quote inside a string value is always escaped) and precedes ":".
    if i < 0 or text[i] not in "{," or j >= n or text[j] != ":":
        return after
    j += 1
    while j < n and text[j] in _WS:
        j += 1
    if j < n and text[j] == '"':
        # The common case, a string: the C scanner alone, without raw_decode's detour.
        value, end = _scanstring(text, j + 1)
        if value:
            edits.append((j, end, '"' + redact(value) + '"'))
        return end
    value, end = _DECODER.raw_decode(text, j)
    if isinstance(value, dict):
        raise _NeedsParse
    if isinstance(value, list):
        if any(isinstance(x, (dict, list)) for x in value):
            raise _NeedsParse
        edits.append((j, end, json.dumps([redact(x) for x in value], ensure_ascii=False)))
    elif value is not None and value != "":
        edits.append((j, end, '"' + redact(value) + '"'))
    return end


def redact_json_text(text: str) -> str:
    """A JSON text with every secret redacted as :func:`redact_json` would, without parsing it whole.

    The recorder calls this on every body: finding the few secret members with ``str.find`` and decoding only
    their values is several times cheaper than parsing and walking a whole ``getupdates`` page (and leaves
    no parsed objects behind for the garbage collector). Secret query parameters inside any string value are
    redacted too. Shapes it can't vouch for (an object under a secret key) fall back to a full parse.
    """
    try:
        edits = _json_text_edits(text)
    except (_NeedsParse, ValueError):
        try:
            return json.dumps(redact_json(json.loads(text)), ensure_ascii=False, separators=(",", ":"))
        except (ValueError, RecursionError):
            return redact_text(text)
    if not edits:
        return text
    edits.sort()
    out: list[str] = []
    pos = 0
    for start, end, replacement in edits:
        if start < pos:
            continue  # inside a value already replaced whole (a secret member whose value is a URL)
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact_json(value: Any) -> Any:
    """A copy of a JSON value with every secret field's value replaced by :func:`redact`."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_FIELDS and item not in (None, ""):
                if isinstance(item, list):
                    out[key] = [redact(x) for x in item]
                else:
                    out[key] = redact(item)
            elif isinstance(item, str) and "?" in item:
                # upload_full_url / full_url embed the upload or download parameter in their query.
                out[key] = _redact_query_params(item)
            else:
                out[key] = redact_json(item)
        return out
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str) and "?" in value:
        return _redact_query_params(value)
    return value


# A secret query parameter inside any string (a URL, or prose quoting one); its value ends where a URL
# value would, and an already redacted value is left alone. redact_json_text applies the same rule.
_QUERY_PARAM = re.compile(
    r"(?<=[?&])("
    + "|".join(re.escape(f) for f in sorted(SECRET_FIELDS))
    + r")=(<redacted [0-9a-f]{4}…\(\d+\)>|[^&\"\\#\s]*)",
    re.IGNORECASE,
)


def _redact_query_params(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        value = m.group(2)
        if not value or value.startswith("<redacted "):
            return m.group(0)
        return f"{m.group(1)}={redact(unquote_plus(value))}"

    return _QUERY_PARAM.sub(one, text)


_SECRET_IN_TEXT = re.compile(
    r'("(?:' + "|".join(re.escape(f) for f in sorted(SECRET_FIELDS)) + r')"\s*:\s*")([^"]*)("?)',
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer\s+)([^\s<]\S*)")
# ``name=value`` in query strings and free text (``token=abc``), and ``name: value`` as in header dumps.
_SECRET_IN_QUERY = re.compile(
    r"((?<![\w-])(?:"
    + "|".join(re.escape(f) for f in sorted(SECRET_FIELDS))
    + r")(?:=|:\s*))(?!Bearer\s)([^&\s\"'#<>,;]+)",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"(\S+\s+)(\S.*)", re.DOTALL)


def redact_url(url: str) -> str:
    """The URL with the values of secret query parameters redacted; everything else is kept byte for byte.

    The value is URL-decoded before fingerprinting, so ``?encrypted_query_param=a%2Bb`` redacts like the
    ``upload_param`` ``"a+b"`` it came from: equal values look equal in URLs and in bodies.
    """
    head, sep, query = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = query.partition("#")
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and value and unquote_plus(name).lower() in SECRET_FIELDS:
            parts[i] = f"{name}={redact(unquote_plus(value))}"
            changed = True
    if not changed:
        return url
    return head + sep + "&".join(parts) + hash_sep + fragment


def redact_header(name: str, value: str) -> str:
    """One header value as it may be shown: ``Authorization: Bearer <redacted 6b1f…(64)>``."""
    lname = name.lower()
    if lname not in SECRET_HEADERS and lname not in SECRET_FIELDS:
        return value
    if lname in ("authorization", "proxy-authorization"):
        m = _AUTH_SCHEME.match(value)
        if m:
            return m.group(1) + redact(m.group(2))
    return redact(value) if value else value


def redact_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs with secret values redacted (names and order kept)."""
    return [(name, redact_header(name, value)) for name, value in items]


def redact_text(text: str) -> str:
    """Redact secrets inside text that may be broken JSON (error snippets) or carry a bearer token."""
    text = _SECRET_IN_TEXT.sub(lambda m: m.group(1) + redact(m.group(2)) + m.group(3), text)
    text = _BEARER.sub(lambda m: m.group(1) + redact(m.group(2)), text)
    return _SECRET_IN_QUERY.sub(lambda m: m.group(1) + redact(unquote_plus(m.group(2))), text)


def snippet(body: bytes | str, limit: int = 200) -> str:
    """A short, redacted, printable excerpt of a response body for error messages."""
    if isinstance(body, bytes):
        text = body[: limit * 4].decode("utf-8", "replace")
    else:
        text = body
    try:
        text = json.dumps(redact_json(json.loads(text)), ensure_ascii=False)
    except (ValueError, RecursionError):
        text = redact_text(text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
