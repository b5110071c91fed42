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

# The fingerprint is SHA-256 (its first 4 hex digits). CPython's own implementation gives the same digest as
# hashlib's OpenSSL one, and for a token-sized value it is faster: OpenSSL 3 spends more setting up a hash
# object than hashing a few dozen bytes. Builds without it (FIPS) use hashlib's.
try:
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]  # CPython 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]  # 3.11
    except ImportError:
        _sha256 = hashlib.sha256

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
    try:
        data = text.encode()
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")  # a lone surrogate from a JSON escape
    return f"<redacted {_sha256(data).hexdigest()[:4]}…({len(text)})>"


class _NeedsParse(Exception):
    pass


_DECODER = json.JSONDecoder()
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_WS = " \t\r\n"
# Every secret name contains exactly one of these stems, so five scans of the text find them all, as member
# names ("context_token":) or as query parameters (?encrypted_query_param=) inside string values.
_STEMS = ("token", "key", "ticket", "authorization", "param")
_NO_STEMS = (-1,) * len(_STEMS)
assert all(sum(stem in name for stem in _STEMS) == 1 for name in SECRET_FIELDS)
_QUERY_VALUE = re.compile(r'[^&"\\#\s]*')


# An escape that decodes to a character of a secret name: an ASCII letter, "_", "-", or the Kelvin sign that
# lower() turns into "k". Escaped "&", "<", ">" (Go's encoder writes \u0026 and friends) and non-Latin text
# don't match, so they keep the fast path.
_ESCAPED_NAME_CHAR = re.compile(r"\\u(?:00(?:[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|2[dD])|212[aA])")


# For each stem, the secret names that contain it and where: (name, offset of the stem in the name).
_CANDIDATES = {
    stem: tuple(sorted(((name, name.index(stem)) for name in SECRET_FIELDS if stem in name), key=lambda c: -len(c[0])))
    for stem in _STEMS
}
# The same as member names in quotes, each with how far before the stem its opening quote is: most common first
# for the scan below (a getupdates page has a context_token, an aes_key, an aeskey and a download parameter
# per image; the rest is rare).
_COMMON = ("context_token", "aes_key", "aeskey", "encrypt_query_param", "typing_ticket", "upload_param")
_MEMBERS = {
    stem: tuple(
        (f'"{name}"', offset + 1)
        for name, offset in sorted(
            candidates, key=lambda c: (c[0] not in _COMMON, _COMMON.index(c[0]) if c[0] in _COMMON else 0, c[0])
        )
    )
    for stem, candidates in _CANDIDATES.items()
}


# Shortcuts for the secret members that come in numbers, in the order a stem's hits meet them (a media object
# opens with encrypt_query_param, then aes_key; an image's aeskey follows its media object): (member name,
# the character before its opening quote). A shortcut is the text from that character to the value's opening
# quote, in JSON's compact spelling or json.dumps' default one; a match also proves the name is a member name,
# since a quote right after "," or "{" can't be inside a string, where quotes are escaped. Shortcuts only save
# steps: every other spelling and name is found by the general path.
_SHORTCUTS = (
    ("context_token", ","),
    ("context_token", "{"),
    ("aes_key", ","),
    ("aeskey", ","),
    ("encrypt_query_param", "{"),
    ("encrypt_query_param", ","),
    ("typing_ticket", ","),
    ("typing_ticket", "{"),
    ("upload_param", ","),
    ("thumb_upload_param", ","),
    ("upload_param", "{"),
    ("aes_key", "{"),
    ("aeskey", "{"),
)


def _shortcut(name: str, sep: str, spaced: bool) -> str:
    """``,"name":"`` (compact) or ``, "name": "`` (json.dumps' default; ``{"name": "`` after a brace)."""
    if spaced:
        return f'{sep}{" " if sep == "," else ""}"{name}": "'
    return f'{sep}"{name}":"'


# Per spelling and per stem: (stem, the shortcuts holding it as (text, where the stem is in it, its length), and
# for the general path (its length, the quoted member names holding it, the bare names holding it)).
_SCAN = {
    spaced: tuple(
        (
            stem,
            tuple(
                (form, form.index(stem), len(form))
                for form in (_shortcut(name, sep, spaced) for name, sep in _SHORTCUTS if stem in name)
            ),
            (len(stem), members, _CANDIDATES[stem]),
        )
        for stem, members in _MEMBERS.items()
    )
    for spaced in (False, True)
}
assert all(tuple(entry[0] for entry in scan) == _STEMS for scan in _SCAN.values())  # the order of firsts below


def _json_text_edits(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int, str]], bool]:
    """Where the secrets in a JSON text are; raises _NeedsParse for shapes it can't vouch for.

    Returns the spans (start, end) of secret string values written without escapes, to be fingerprinted as
    they stand, (start, end, replacement) edits for every other secret, and whether a secret's name showed
    anywhere else (in prose inside a string, as a plain value): then the text is not known to be clean, and
    :func:`redact_body_text` looks again. This runs on every recorded body, so a secret member in the text's
    usual spelling (``,"name":"value"``) costs one ``startswith`` and one ``find``; anything else goes to
    :func:`_other_hit`.
    """
    plain = "\\" not in text  # then no string value has an escape, and a quote always ends one
    if not plain and "\\u" in text and _ESCAPED_NAME_CHAR.search(text):
        raise _NeedsParse  # a name could be spelled with escapes ("\\u0074oken"): only a parse sees through them
    low = text.lower()
    find = low.find
    spans: list[tuple[int, int]] = []
    edits: list[tuple[int, int, str]] = []
    firsts = tuple(map(find, _STEMS))  # where each stem first shows: most bodies hold none of them
    if firsts == _NO_STEMS:
        return spans, edits, False
    if len(low) != len(text):
        raise _NeedsParse  # lower() changed the length (rare Unicode): positions would not line up
    span = spans.append
    loose = False
    startswith = low.startswith
    tfind = text.find
    # The spelling of the first member decides which shortcuts are tried first.
    colon = text.find('":', 0, 256)
    try:
        for (stem, forms, general), pos in zip(_SCAN[text[colon + 2 : colon + 3] == " "], firsts, strict=True):
            while pos >= 0:
                for form, back, skip in forms:
                    # No check that pos >= back: with a start before 0, startswith looks at the text's last
                    # characters (or its whole), too few to hold a form that holds the stem at pos.
                    if startswith(form, pos - back):
                        j = pos - back + skip  # the value's first character
                        break
                else:
                    found = len(edits)
                    pos = find(stem, _other_hit(text, low, pos, general, edits))
                    loose = loose or len(edits) == found  # a name, but nothing redacted there
                    continue
                end = tfind('"', j)
                if end > j and (plain or tfind("\\", j, end) < 0):
                    span((j, end))
                    pos = find(stem, end + 1)
                elif end == j:
                    pos = find(stem, end + 1)  # an empty string: nothing to hide
                elif end < 0:
                    raise _NeedsParse  # the text ends inside the value
                else:
                    pos = find(stem, _value_edit(text, j - 1, edits))
    except IndexError:
        raise _NeedsParse from None  # the text ends inside a member: leave it to the general path
    return spans, edits, loose


def _other_hit(
    text: str,
    low: str,
    pos: int,
    general: tuple[int, tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]],
    edits: list[tuple[int, int, str]],
) -> int:
    """A stem at pos that is not a secret member in the usual spelling: redact whatever it is; where to go on."""
    slen, members, candidates = general
    for quoted, back in members:
        b = pos - back  # where the name's opening quote would be
        if b > 0 and low.startswith(quoted, b):
            break
    else:
        return _query_edit(text, low, pos, pos + slen, candidates, edits)
    e = b + len(quoted)
    # A member name follows "{" or "," (a quote inside a string value is always escaped, so no name can start
    # right after one).
    c = text[b - 1]
    if not (c in "{," or (c == " " and b > 1 and text[b - 2] in "{,") or (c in _WS and _after_open(text, b))):
        return e
    # Whitespace before the colon or after it, escapes, a list, a number, null.
    j = _colon(text, e)
    return e if j < 0 else _value_edit(text, j, edits)


def _after_open(text: str, quote: int) -> bool:
    """Whether the string opening at text[quote] follows "{" or "," (whitespace between), as a member name does."""
    i = quote - 1
    while i >= 0 and text[i] in _WS:
        i -= 1
    return i >= 0 and text[i] in "{,"


def _colon(text: str, j: int) -> int:
    """Where the value starts after a member name that ends at text[j - 1], or -1 if no ":" follows it."""
    n = len(text)
    while j < n and text[j] in _WS:
        j += 1
    if j >= n or text[j] != ":":
        return -1
    j += 1
    while j < n and text[j] in _WS:
        j += 1
    return j


def _query_edit(
    text: str, low: str, pos: int, nxt: int, candidates: tuple[tuple[str, int], ...], edits: list[tuple[int, int, str]]
) -> int:
    """Redact a secret query parameter (``?upload_param=...``) inside a string value whose name has a stem at pos."""
    n = len(text)
    for name, offset in candidates:
        b = pos - offset
        e = b + len(name)
        if b <= 0 or e >= n or text[e] != "=" or not low.startswith(name, b):
            continue
        # "&" may be escaped as \u0026 by some encoders.
        if text[b - 1] in "?&" or low[b - 6 : b] == "\\u0026":
            m = _QUERY_VALUE.match(text, e + 1)
            end = m.end() if m else e + 1
            if end < n and text[end] == "\\" and low[end : end + 6] != "\\u0026":
                # An escape inside the value (\u00e9, \/): only the decoded string shows where it ends.
                raise _NeedsParse
            if end > e + 1 and not text.startswith("<redacted ", e + 1):
                edits.append((e + 1, end, fingerprint(unquote_plus(text[e + 1 : end]))))
            return end
    return nxt


def _value_edit(text: str, j: int, edits: list[tuple[int, int, str]]) -> int:
    """Redact the member value starting at text[j] (a string with escapes, or not a string); returns its end."""
    if j < len(text) and text[j] == '"':
        value, end = _scanstring(text, j + 1)
        if value:
            edits.append((j, end, '"' + fingerprint(value) + '"'))
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
    out, _ = _redact_json_text(text)
    return redact_text(text) if out is None else out


def redact_body_text(text: str, is_json: bool) -> str | None:
    """A body's text as the recorder may keep it, or ``None`` when no redaction can vouch for it.

    JSON (by its Content-Type, ``is_json=True``, or because it starts like JSON) is redacted member by member.
    Text that is not JSON, and JSON in which a secret's name also shows somewhere else (``"errmsg": "bad
    token=…"``), also goes through :func:`redact_text`, and is kept only if :func:`vouched` finds no secret
    left; otherwise the caller keeps its size and md5 only.
    """
    if is_json or text.lstrip()[:1] in ("{", "["):
        out, loose = _redact_json_text(text)
        if out is not None:
            if not loose:
                return out
            text = out
    kept = redact_text(text)
    return kept if vouched(kept) else None


def _redact_json_text(text: str) -> tuple[str | None, bool]:
    """The redacted JSON text (None: not JSON) and whether a secret's name showed outside the members redacted."""
    try:
        spans, edits, loose = _json_text_edits(text)
    except (_NeedsParse, ValueError):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return None, True
        # The parse sees members, not prose inside strings: look again at what it gives.
        return json.dumps(redact_json(parsed), ensure_ascii=False, separators=(",", ":")), True
    if not spans and not edits:
        return text, loose
    for start, end in spans:
        edits.append((start, end, fingerprint(text[start:end])))
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
    return "".join(out), loose


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
