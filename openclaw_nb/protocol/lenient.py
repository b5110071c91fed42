"""Reading JSON that a strict parser refuses, so one bad message never costs a page its good ones.

Theory of operation: :func:`loads` is ``json.loads`` with the two repairs that keep every byte's meaning it can
(invalid UTF-8 becomes U+FFFD; an integer too long for Python's int-from-text limit is kept as its digits, a
string) and says which it made. What still can't be read (nesting deeper than the parser's recursion limit, text
that is not JSON) raises :class:`Undecodable`. When a whole getupdates page can't be read, :func:`split_object`
and :func:`split_array` cut it into its members' and messages' JSON texts without building anything (a plain
loop over the text, no recursion), so each message is read on its own and only the bad one is flagged.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ProtocolError
from . import drift as D
from .redact import snippet


class Undecodable(ValueError):
    """A JSON text that can't be read at all; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _int_or_digits(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits(): keep the digits
        return text


def loads(data: bytes | bytearray | str, path: str = "") -> tuple[Any, list[D.Drift]]:
    """Decode one JSON text; returns ``(value, repairs)``, each repair a :class:`~.drift.Drift` at ``path``.

    >>> loads(b'{"a": "\\xff"}')[1][0].seen
    'invalid UTF-8, replaced with U+FFFD'
    """
    repairs: list[D.Drift] = []
    text: bytes | bytearray | str = data
    for _ in range(3):
        try:
            if repairs and any(r.seen.startswith("integer") for r in repairs):
                return json.loads(text, parse_int=_int_or_digits), repairs
            return json.loads(text), repairs
        except UnicodeDecodeError:
            if not isinstance(text, (bytes, bytearray)):
                raise Undecodable("not text") from None
            text = bytes(text).decode("utf-8", "replace")
            repairs.append(D.Drift(path, D.REPAIRED, "invalid UTF-8, replaced with U+FFFD", None))
        except RecursionError:
            raise Undecodable("nested too deeply to read") from None
        except ValueError as exc:
            if "integer string conversion" in str(exc) or "Exceeds the limit" in str(exc):
                repairs.append(D.Drift(path, D.REPAIRED, "integer of more than 4300 digits, kept as its digits", None))
                continue
            raise Undecodable(f"not JSON ({exc})") from None
    raise Undecodable("not JSON")  # pragma: no cover - each repair is made once


_WS = re.compile(r"[ \t\r\n]*")
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.S)
_SCALAR = re.compile(r'[^,\]}\s"]*')
_STRUCT = re.compile(r'["\[\]{}]')


def _value_end(text: str, i: int) -> int:
    """Index just past the JSON value that starts at ``text[i]`` (no whitespace before it)."""
    if i >= len(text):
        raise ValueError("a value is missing")
    c = text[i]
    if c == '"':
        m = _STRING.match(text, i)
        if m is None:
            raise ValueError("unterminated string")
        return m.end()
    if c not in "[{":
        end = _SCALAR.match(text, i).end()  # type: ignore[union-attr]
        if end == i:
            raise ValueError(f"unexpected {c!r}")
        return end
    depth = 0
    while True:
        m = _STRUCT.search(text, i)
        if m is None:
            raise ValueError("unterminated array or object")
        c = m.group()
        if c == '"':
            s = _STRING.match(text, m.start())
            if s is None:
                raise ValueError("unterminated string")
            i = s.end()
            continue
        depth += 1 if c in "[{" else -1
        i = m.end()
        if depth == 0:
            return i


def _skip(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]


def split_object(text: str) -> dict[str, str]:
    """The members of a JSON object as ``{name: the value's JSON text}``, values not decoded.

    Raises ValueError when ``text`` is not an object. A repeated name keeps its last value, as ``json.loads``.
    """
    i = _skip(text, 0)
    if not text.startswith("{", i):
        raise ValueError("not a JSON object")
    out: dict[str, str] = {}
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        return out
    while True:
        m = _STRING.match(text, i)
        if m is None:
            raise ValueError("a member name is missing")
        name = json.loads(m.group())
        i = _skip(text, m.end())
        if not text.startswith(":", i):
            raise ValueError("':' is missing")
        i = _skip(text, i + 1)
        end = _value_end(text, i)
        out[name] = text[i:end]
        i = _skip(text, end)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
            continue
        if text.startswith("}", i):
            return out
        raise ValueError("',' or '}' is missing")


def split_array(text: str) -> list[str]:
    """The elements of a JSON array as their JSON texts, not decoded. Raises ValueError for anything else."""
    i = _skip(text, 0)
    if not text.startswith("[", i):
        raise ValueError("not a JSON array")
    out: list[str] = []
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return out
    while True:
        end = _value_end(text, i)
        out.append(text[i:end])
        i = _skip(text, end)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
            continue
        if text.startswith("]", i):
            return out
        raise ValueError("',' or ']' is missing")


_MESSAGE_ID = re.compile(r'"message_id"\s*:\s*"?([0-9]{1,20})\b')


def find_message_id(text: str) -> int | None:
    """The first ``message_id`` named in an unreadable message's text (number or string of digits), if any."""
    m = _MESSAGE_ID.search(text)
    return int(m.group(1)) if m else None


def as_text(data: bytes | bytearray | str) -> str:
    """``data`` as text for the splitters: invalid UTF-8 becomes U+FFFD."""
    return data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def encode_message(msg: Any) -> str:
    """Compact JSON text of one message (big integers exact), used when the original bytes are not at hand.

    Half of a surrogate pair (which JSON can escape but UTF-8 cannot hold) is written back as its escape,
    so the text can always be saved and shown.
    """
    text = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii() and _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


#: One entry of ``msgs`` as read: the decoded value (or None when unreadable), its text, and why it is unreadable.
Entry = tuple[Any, Any, "str | None"]


def read_entry(text: Any, raw_spans: bool, findings: list[D.Drift] | None = None) -> Entry:
    """One entry of ``msgs`` from its JSON bytes or text, read leniently; repairs go to ``findings``."""
    data = text if isinstance(text, (str, bytes, bytearray)) else bytes(text)
    try:
        value, repairs = loads(data, "msgs[]")
    except Undecodable as exc:
        return None, text if raw_spans or isinstance(text, str) else as_text(data), exc.reason
    if repairs and findings is not None:
        findings.extend(repairs)
    raw = text if raw_spans or isinstance(text, str) else _span_text(data, value)
    return value, raw, None


def _span_text(span: Any, value: Any) -> str:
    try:
        return str(span, "utf-8")
    except UnicodeDecodeError:
        return encode_message(value)


def _piece(text: str, content: bytes | str) -> bytes | str:
    return text.encode("latin-1") if isinstance(content, (bytes, bytearray)) else text


def read_page(
    content: bytes, endpoint: str, *, raw_spans: bool = False
) -> tuple[dict[str, Any], list[Entry], list[D.Drift]]:
    """A getupdates body as ``(envelope members except msgs, entries of msgs, repairs)``, without the typed
    models: whatever a message holds, the others are read. Raises ProtocolError only when the body is not a
    JSON object (or ``msgs`` is not an array).

    The whole body is read at once when it can be; when it can't (a message nested deeper than any parser
    goes, an integer too long to convert...), it is cut into its members and messages and each is read alone.
    """
    try:
        data, repairs = loads(content, "<body>")
    except Undecodable as exc:
        return _read_split(content, endpoint, exc.reason, raw_spans)
    if repairs and isinstance(data, dict):
        # Read again member by member, so each repair is reported where it was made (msgs[], a member).
        return _read_split(content, endpoint, repairs[0].seen, raw_spans)
    findings: list[D.Drift] = []
    if not isinstance(data, dict):
        shown = snippet(content)
        raise ProtocolError(
            f"{endpoint} answered with JSON that is not an object: {shown}", endpoint=endpoint, snippet=shown
        )
    msgs = data.pop("msgs", None)
    if msgs is not None and not isinstance(msgs, list):
        raise ProtocolError(f"{endpoint} answered with 'msgs' that is not an array", endpoint=endpoint)
    entries: list[Entry] = []
    for msg in msgs or ():
        raw = encode_message(msg)
        entries.append((msg, raw.encode("utf-8") if raw_spans else raw, None))
    return data, entries, findings


def _read_split(
    content: bytes, endpoint: str, reason: str, raw_spans: bool
) -> tuple[dict[str, Any], list[Entry], list[D.Drift]]:
    # Cut the bytes, not a decoded text: latin-1 maps each byte to one character, and every character the cut
    # looks at is ASCII, so each piece encodes back to exactly its bytes and is read (and repaired) on its own.
    text = content.decode("latin-1") if isinstance(content, (bytes, bytearray)) else content
    try:
        members = split_object(text)
    except ValueError:
        shown = snippet(content)
        what = "not JSON" if reason.startswith("not JSON") else f"not a JSON object ({reason})"
        raise ProtocolError(
            f"{endpoint} answered with a body that is {what}: {shown or '<empty>'}",
            endpoint=endpoint,
            snippet=shown,
        ) from None
    findings: list[D.Drift] = []
    envelope: dict[str, Any] = {}
    for name, value_text in members.items():
        if name == "msgs":
            continue
        if isinstance(content, (bytes, bytearray)):
            name = name.encode("latin-1", "replace").decode("utf-8", "replace")
        try:
            envelope[name], repairs = loads(_piece(value_text, content), name)
            findings.extend(repairs)
        except Undecodable as exc:
            findings.append(D.Drift(name, D.UNDECODABLE, exc.reason, None))
    entries: list[Entry] = []
    msgs_text = members.get("msgs")
    if msgs_text is not None and msgs_text.strip() != "null":
        try:
            elements = split_array(msgs_text)
        except ValueError:
            raise ProtocolError(f"{endpoint} answered with 'msgs' that is not an array", endpoint=endpoint) from None
        for element in elements:
            entry = read_entry(_piece(element, content), False, findings)
            entries.append((entry[0], entry[1].encode("utf-8") if raw_spans else entry[1], entry[2]))
    return envelope, entries, findings
