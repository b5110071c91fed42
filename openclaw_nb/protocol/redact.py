"""How secrets look when shown: a short fingerprint and the length, never the value.

Equal values redact to equal strings, so a reader can still tell "same token" from "new token".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

_msgspec: Any
try:  # msgspec parses and writes JSON several times faster than the json module (optional)
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - the plain install
    _msgspec = None

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
    return fingerprint(value if isinstance(value, str) else str(value))


def fingerprint(text: str) -> str:
    """:func:`redact` for a string, with the fewest steps: the recorder calls it for every secret it records."""
    if text.startswith("<redacted ") and _PLACEHOLDER.fullmatch(text):
        # Already redacted: redacting twice must not change the fingerprint (logs get re-saved, re-loaded).
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # surrogatepass: a lone "\\ud800" escape
    return f"<redacted {digest[:4]}…({len(text)})>"


def redact_json_text(text: str) -> str:
    """A JSON text with every secret redacted as :func:`redact_json` would; text that is not JSON as free text.

    The text is kept as it was sent when nothing in it is secret; otherwise it is written anew, compactly.
    """
    out, _ = _redact_json_text(text)
    return redact_text(text) if out is None else out


def redact_body_text(text: str, is_json: bool) -> str | None:
    """A body's text as the recorder may keep it, or ``None`` when no redaction can vouch for it.

    JSON (by its Content-Type, ``is_json=True``, or because it starts like JSON) is parsed, walked and
    written again with its secrets redacted (see :func:`_redact_json_text`). Text that is not JSON, and JSON in
    which a secret's name also shows somewhere else (``"errmsg": "bad token=…"``), also goes through
    :func:`redact_text`, and is kept only if :func:`vouched` finds no secret left; otherwise the caller keeps
    its size and md5 only.
    """
    if is_json or text.lstrip()[:1] in ("{", "["):
        out, loose = _redact_json_text(text)
        if out is not None:
            if not loose:
                return out
            text = out
    kept = redact_text(text)
    return kept if vouched(kept) else None


# Every secret name holds exactly one of these stems, once: counting them in a text counts the secret names.
_STEMS = tuple(stem.encode() for stem in ("token", "key", "ticket", "authorization", "param"))
assert all(sum(name.count(stem.decode()) for stem in _STEMS) == 1 for name in SECRET_FIELDS)
_KELVIN = "\u212a".encode()  # the one character outside ASCII that lower() turns into a letter of a name ("k")


def _names_in(data: bytes) -> int:
    """How many times a secret's name (any case) shows in UTF-8 text: one stem per name."""
    if _KELVIN in data:
        low = data.decode("utf-8", "surrogatepass").lower().encode("utf-8", "surrogatepass")
    else:
        low = data.lower()  # ASCII letters only: many times faster than str.lower() on text that is not ASCII
    return sum(low.count(stem) for stem in _STEMS)


def _redact_json_text(text: str) -> tuple[str | None, bool]:
    """Parse, walk, write: the redacted JSON text (None: not JSON), and whether free-text rules must look too.

    The parsed value is redacted in place where the protocol puts secrets (:func:`_redact_messages`), then
    written again (compact, non-ASCII as is, every name spelled out). Every secret's name holds one stem
    (``token``, ``key``...), so counting stems in the written text proves it: as many as the names the walk
    met (members named like a secret, secret query parameters) and nothing else can hold a secret; more, and
    the whole value is walked (:func:`_redact_in_place`). If the names still don't add up, a secret's name
    shows somewhere else (in prose inside a string, as a value) and the second answer is true:
    :func:`redact_body_text` then runs the free-text rules over the result. A body with nothing to redact and
    no escapes is kept as it was sent.
    """
    parsed = _loads(text)
    if parsed is None:
        return None, True
    value, by_msgspec = parsed
    if isinstance(value, str):  # a body that is one JSON string: a URL, say
        redacted, names = _redact_query_params(value)
        value, changed, data = redacted, redacted != value, _dumps(redacted, by_msgspec)
        found = _names_in(data)
    else:
        names, changed = _redact_messages(value)
        data = _dumps(value, by_msgspec)
        found = _names_in(data)
        if found != names:
            names, more = _redact_in_place(value)
            if more:
                changed = True
                data = _dumps(value, by_msgspec)
                found = _names_in(data)
    loose = found > names
    if not (changed or loose) and "\\u" not in text and _names_in(text.encode("utf-8", "surrogatepass")) == found:
        # Nothing secret, and the text says no more than what was parsed from it (an escape or a repeated
        # member could hide a name the parse left out): the body as it was sent.
        return text, False
    return str(data, "utf-8", "surrogatepass"), loose


def _loads(text: str) -> tuple[Any, bool] | None:
    """The parsed JSON value and whether msgspec parsed it, or None for text that is not JSON."""
    if _msgspec is not None:
        try:
            return _msgspec.json.decode(text), True
        except (_msgspec.DecodeError, RecursionError, UnicodeEncodeError):
            pass  # a NaN, a lone surrogate, a number out of range: the json module may still read it
    try:
        return json.loads(text), False
    except (ValueError, RecursionError):
        return None


def _dumps(value: Any, by_msgspec: bool) -> bytes:
    """A parsed value written compactly as UTF-8, by the library that parsed it (each writes what it reads)."""
    if by_msgspec:
        return bytes(_msgspec.json.encode(value))
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _secret_value(item: Any) -> Any:
    """What a member named like a secret holds once redacted (a list item by item; nothing to hide stays)."""
    if item is None or item == "":
        return item
    if type(item) is str:
        return fingerprint(item)
    return [redact(x) for x in item] if type(item) is list else redact(item)


_ABSENT = object()
_MESSAGE_SECRETS = ("context_token",)
_ITEM_SECRETS = ("aeskey",)
_MEDIA_SECRETS = ("encrypt_query_param", "aes_key")
_MEDIA = ("media", "thumb_media")


def _redact_members(node: dict[str, Any], secrets: tuple[str, ...]) -> tuple[int, bool]:
    names = 0
    changed = False
    for name in secrets:
        item = node.get(name, _ABSENT)
        if item is not _ABSENT:
            names += 1
            new = _secret_value(item)
            if new != item:
                node[name] = new
                changed = True
    return names, changed


def _redact_messages(value: Any) -> tuple[int, bool]:
    """Redact in place where the protocol puts secrets: a page's or a send's messages, their items' media.

    Returns how many secret names it met and whether it changed anything. It looks nowhere else, so a caller
    must check that no other secret's name shows (see :func:`_redact_json_text`).
    """
    names = 0
    changed = False
    if type(value) is not dict:
        return 0, False
    msgs = value.get("msgs")
    if type(msgs) is not list:
        msgs = [value.get("msg")]
    for msg in msgs:
        if type(msg) is not dict:
            continue
        n, c = _redact_members(msg, _MESSAGE_SECRETS)
        names, changed = names + n, changed or c
        items = msg.get("item_list")
        for item in items if type(items) is list else ():
            for part in item.values() if type(item) is dict else ():
                if type(part) is not dict:
                    continue
                n, c = _redact_members(part, _ITEM_SECRETS)
                names, changed = names + n, changed or c
                for key in _MEDIA:
                    media = part.get(key)
                    if type(media) is dict:
                        n, c = _redact_members(media, _MEDIA_SECRETS)
                        names, changed = names + n, changed or c
                        url = media.get("full_url")
                        if type(url) is str and "?" in url:
                            new, n = _redact_query_params(url)
                            names, changed = names + n, changed or new != url
                            media["full_url"] = new
    return names, changed


#: Whether a member name (as spelled) is a secret's name, for the names met so far (a body's names come from
#: a small vocabulary; the cache stops growing at its bound).
_SECRET_NAME: dict[str, bool] = {}
_MAX_NAMES = 4096


def _redact_in_place(root: Any) -> tuple[int, bool]:
    """Redact a parsed JSON value in place, everywhere, as :func:`redact_json` redacts a copy.

    Returns how many secret names it met (members named like a secret, whatever their values, and secret query
    parameters in strings) and whether it changed anything. Objects and arrays are entered; a secret member's
    value is replaced whole, unentered. Already redacted values stay as they are.
    """
    names = 0
    changed = False
    known = _SECRET_NAME
    stack = [root]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            for key, item in node.items():
                secret = known.get(key)
                if secret is None:
                    secret = key.lower() in SECRET_FIELDS
                    if len(known) < _MAX_NAMES:
                        known[key] = secret
                if secret:
                    names += 1
                    new = _secret_value(item)
                elif type(item) is dict or type(item) is list:
                    stack.append(item)
                    continue
                elif type(item) is str and "?" in item:
                    new, n = _redact_query_params(item)
                    names += n
                else:
                    continue
                if new != item:
                    node[key] = new
                    changed = True
        elif type(node) is list:
            for i, item in enumerate(node):
                if type(item) is dict or type(item) is list:
                    stack.append(item)
                elif type(item) is str and "?" in item:
                    new, n = _redact_query_params(item)
                    names += n
                    if new != item:
                        node[i] = new
                        changed = True
    return names, changed


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
                out[key] = _redact_query_params(item)[0]
            else:
                out[key] = redact_json(item)
        return out
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str) and "?" in value:
        return _redact_query_params(value)[0]
    return value


# A secret query parameter inside any string (a URL, or prose quoting one); its value ends where a URL
# value would, and an already redacted value is left alone. redact_json_text applies the same rule.
_QUERY_PARAM = re.compile(
    r"(?<=[?&])("
    + "|".join(re.escape(f) for f in sorted(SECRET_FIELDS))
    + r")=(<redacted [0-9a-f]{4}…\(\d+\)>|[^&\"\\#\s]*)",
    re.IGNORECASE,
)


def _redact_query_params(text: str) -> tuple[str, int]:
    """The text with secret query parameters' values redacted, and how many such parameters it holds.

    A secret's name is one whose ``lower()`` is in :data:`SECRET_FIELDS`, as for members and URLs (the regex
    alone would also take a dotless "ı" for an "i").
    """
    names = 0

    def one(m: re.Match[str]) -> str:
        nonlocal names
        name, value = m.group(1), m.group(2)
        if name.lower() not in SECRET_FIELDS:
            return m.group(0)
        names += 1
        if not value or value.startswith("<redacted "):
            return m.group(0)
        return f"{name}={redact(unquote_plus(value))}"

    return _QUERY_PARAM.sub(one, text), names


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
        if value.startswith("Bearer ") and value[7:8].strip():
            return "Bearer " + fingerprint(value[7:])  # the usual spelling, on every request: no regex
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


_SECRET_NAMES = "|".join(re.escape(f) for f in sorted(SECRET_FIELDS))
_QUOTED_SECRET = re.compile(r'"(?:' + _SECRET_NAMES + r')"\s*:\s*', re.IGNORECASE)
# What may follow a secret member name in text redact_text has been through: a placeholder, an empty string or
# null, each ending where a JSON value ends.
_SAFE_VALUE = re.compile(r'(?:"<redacted [0-9a-f]{4}…\(\d+\)>"|""|null)(?=\s*(?:[,}\]]|$))')
_ELEMENT_SECRET = re.compile(r"<(?:" + _SECRET_NAMES + r")[\s/>]", re.IGNORECASE)
# A secret's name, then a separator (":", "=", "=>", or "=" escaped for a URL or JSON; quotes, escaped quotes
# and an HTML ` value=` around it), then a run of token characters that is not a placeholder.
_TOKEN_RUN = r"[A-Za-z0-9+/_.%-]"
_NAMED_VALUE = re.compile(
    r"(?:" + _SECRET_NAMES + r")(?:\\?[\"'])?(?:\s+value)?\s*(?::|=>?|%3d|\\u003d)\s*(?:\\?[\"'])?"
    r"(?!<redacted )" + _TOKEN_RUN + "{8,}",
    re.IGNORECASE,
)
# A secret's name, a space, and a long run of token characters holding a digit (``upload_param 1a2b3c…``).
_BARE_VALUE = re.compile(
    r"(?:" + _SECRET_NAMES + r")\s+(?=" + _TOKEN_RUN + r"*\d)" + _TOKEN_RUN + "{12,}", re.IGNORECASE
)


def vouched(text: str) -> bool:
    """Whether text that went through :func:`redact_text` shows no secret it may have missed.

    :func:`redact_text` knows ``"name": "value"``, ``name=value``, ``name: value`` and bearer tokens. It can't
    vouch for a secret member whose value is a list or an object or holds an escaped quote, an XML element or
    HTML ``value=`` named like a secret, ``name => value``, a URL-encoded ``name%3Dvalue``, or a secret's name
    followed by a long run of token characters: text holding one of those is kept by the recorder as size and
    md5 only.
    """
    for m in _QUOTED_SECRET.finditer(text):
        if not _SAFE_VALUE.match(text, m.end()):
            return False
    return not (_ELEMENT_SECRET.search(text) or _NAMED_VALUE.search(text) or _BARE_VALUE.search(text))


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
