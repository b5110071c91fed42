"""Property test: the recorder's JSON redaction equals a reference written here from the rules alone.

The rules (docs/protocol.md, "Secrets"): a member whose name is a secret's, in any case, has its value replaced by
``<redacted xxxx…(n)>`` (the first 4 hex digits of the SHA-256 of the value's text, then its length; a list item
by item; null and "" stay; a placeholder stays as it is); a secret query parameter in any string has its value,
URL-decoded, replaced the same way. Hypothesis draws bodies (secret names in odd cases, names that only look like
one, URLs, placeholders, escapes, text outside ASCII) and spellings (compact, spaced, indented, ASCII-escaped).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import unquote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openclaw_nb.protocol.redact import SECRET_FIELDS, redact_body_text, redact_json_text

_PLACEHOLDER = re.compile(r"<redacted [0-9a-f]{4}…\(\d+\)>")
_NAMES = "|".join(re.escape(name) for name in sorted(SECRET_FIELDS))
# A secret query parameter: after "?" or "&", a secret's name, "=", then a placeholder or the value's
# characters up to the next "&", quote, backslash, "#" or white space.
_QUERY = re.compile(r"(?<=[?&])(" + _NAMES + r")=(<redacted [0-9a-f]{4}…\(\d+\)>|[^&\"\\#\s]*)", re.IGNORECASE)


def ref_fingerprint(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if _PLACEHOLDER.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"<redacted {digest[:4]}…({len(text)})>"


def ref_query(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        value = m.group(2)
        if m.group(1).lower() not in SECRET_FIELDS or not value or _PLACEHOLDER.fullmatch(value):
            return m.group(0)
        return f"{m.group(1)}={ref_fingerprint(unquote_plus(value))}"

    return _QUERY.sub(one, text)


def reference(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.lower() in SECRET_FIELDS and item is not None and item != "":
                out[key] = [ref_fingerprint(x) for x in item] if isinstance(item, list) else ref_fingerprint(item)
            else:
                out[key] = reference(item)
        return out
    if isinstance(value, list):
        return [reference(item) for item in value]
    if isinstance(value, str):
        return ref_query(value)
    return value


def _any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )


SECRET_NAMES = st.sampled_from(sorted(SECRET_FIELDS))
NAMES = st.one_of(
    SECRET_NAMES,
    SECRET_NAMES.flatmap(_any_case),
    st.sampled_from(["ret", "msgs", "msg", "item_list", "media", "image_item", "text", "full_url", "url"]),
    st.sampled_from(["monkey", "keys", "filekey", "my_token", "token_x", "params", "to\u212aen", "tıcket"]),
    st.text(max_size=8),
)
URLS = st.builds(
    lambda name, value, sep, tail: f"http://cdn/x?a=1{sep}{name}={value}{tail}",
    st.one_of(
        SECRET_NAMES.flatmap(_any_case),
        # Only the Kelvin sign lowers to a letter of a name: "ı" and "ſ" do not make a secret's name.
        st.sampled_from(["to\u212aen", "typing_t\u0131cket", "local_token_li\u017ft", "upload_param_x"]),
    ),
    st.one_of(st.text(alphabet="abcXYZ019+%/=", max_size=12), st.just("<redacted abcd…(3)>")),
    st.sampled_from(["&", "?", "&amp;", ";"]),
    st.sampled_from(["", "&filekey=f", "#frag", " and more"]),
)
STRINGS = st.one_of(
    st.text(max_size=20),
    URLS,
    st.sampled_from(["", "<redacted abcd…(3)>", "the token and the key", "bad token=abc123", "日本語", "\ud800"]),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), STRINGS)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=5),
    max_leaves=20,
)
BODIES = st.one_of(
    st.dictionaries(NAMES, VALUES, min_size=1, max_size=6),
    # The protocol's own shapes: a page of messages with items and media, a send.
    st.builds(
        lambda msgs: {"ret": 0, "msgs": msgs, "get_updates_buf": "b"},
        st.lists(st.dictionaries(NAMES, VALUES, max_size=4).map(lambda m: {"context_token": "c", **m}), max_size=3),
    ),
    st.builds(
        lambda item, media: {"msg": {"context_token": "c", "item_list": [{"image_item": {**item, "media": media}}]}},
        st.dictionaries(NAMES, VALUES, max_size=3),
        st.dictionaries(st.sampled_from(["aes_key", "encrypt_query_param", "full_url", "Aes_Key"]), STRINGS),
    ),
    VALUES,
)
SPELLINGS = st.sampled_from(
    [
        {"separators": (",", ":"), "ensure_ascii": False},
        {},
        {"indent": 2, "ensure_ascii": False},
        {"separators": (" , ", " : ")},
    ]
)


def _names_anywhere(value: Any) -> bool:
    """Whether a secret's name shows in any key or string of value (then the free-text rules look too)."""
    stems = ("token", "key", "ticket", "authorization", "param")
    if isinstance(value, dict):
        return any(_names_anywhere(k) or _names_anywhere(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_names_anywhere(v) for v in value)
    return isinstance(value, str) and any(stem in value.lower() for stem in stems)


@settings(max_examples=800, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, spelling=SPELLINGS)
def test_json_redaction_equals_the_reference(body: Any, spelling: dict[str, Any]) -> None:
    text = json.dumps(body, **spelling)
    expected = reference(body)
    out = redact_json_text(text)
    assert json.loads(out) == expected
    if expected == body and not _names_anywhere(body) and "\\u" not in text:
        assert out == text  # nothing secret and no escape: kept as it came, byte for byte
    kept = redact_body_text(text, True)
    if kept is not None and not _names_anywhere(expected):
        assert json.loads(kept) == expected  # the free-text rules had nothing to add
    shown = "" if kept is None else _PLACEHOLDER.sub("", kept)
    for secret in _secret_strings(body):
        assert secret not in shown


def _secret_strings(value: Any) -> list[str]:
    """Secret values long enough to be told apart from other text, that no other string of the body holds."""
    found: list[str] = []
    plain: list[str] = []

    def walk(v: Any, secret: bool) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                plain.append(k)
                walk(item, secret or k.lower() in SECRET_FIELDS)
        elif isinstance(v, list):
            for item in v:
                walk(item, secret)
        elif isinstance(v, str):
            (found if secret else plain).append(v)

    walk(value, False)
    return [s for s in found if len(s) >= 6 and not _PLACEHOLDER.fullmatch(s) and not any(s in p for p in plain)]
