"""The recorder's redaction paths give exactly what the slow, obviously right ones give.

``redact_json_text`` (parse, walk where the protocol puts secrets, count the names left, write) must agree with
``redact_json`` (a walk of the whole parsed value, into a copy) on every body; ``fingerprint`` with ``redact``;
the ``Bearer`` shortcut in ``redact_header`` with its regex; and the header classification cache in the capture
code with a fresh decode. A property test against a reference written from the rules alone is in
test_redaction_property.py.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import httpx
import pytest

from openclaw_nb.protocol import redact as redact_module
from openclaw_nb.protocol.redact import SECRET_FIELDS, fingerprint, redact, redact_header, redact_json, redact_json_text
from openclaw_nb.recorder import Binary, Text, capture
from openclaw_nb.recorder.exchange import header_dict

_PLAIN_NAMES = ["ret", "msgs", "text", "monkey", "keys", "my_token", "token_x", "filekey", "url", "tokens", "params"]
_VALUES = [
    "abc",
    "",
    "日本語",
    "emoji \U0001f600",
    'quote " and backslash \\',
    "line\nbreak\ttab",
    "\ud800 lone surrogate",
    "<redacted abcd…(3)>",
    "the word token and a key",
    "http://cdn/download?encrypted_query_param=a%2Bb&filekey=f",
    "http://cdn/upload?filekey=f&upload_param=x+y#frag",
    "?token=",
]


def _name(rng: random.Random) -> str:
    if rng.random() < 0.5:
        name = rng.choice(sorted(SECRET_FIELDS))
        return "".join(c.upper() if rng.random() < 0.2 else c for c in name)
    return rng.choice(_PLAIN_NAMES)


def _scalar(rng: random.Random) -> Any:
    return rng.choice([*_VALUES, 0, 12345, -1.5, True, False, None, rng.getrandbits(70)])


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.55:
        return _scalar(rng)
    if roll < 0.7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_name(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _spellings(value: Any, rng: random.Random) -> list[str]:
    return [
        json.dumps(value),
        json.dumps(value, separators=(",", ":")),
        json.dumps(value, indent=rng.choice([1, 2, "\t"])),
        json.dumps(value, ensure_ascii=False, separators=(" , ", " : ")),
    ]


def test_text_redaction_agrees_with_the_parsed_one_on_many_bodies() -> None:
    rng = random.Random(20261128)
    for _ in range(600):
        body = {_name(rng): _value(rng, 0) for _ in range(rng.randint(1, 6))}
        expected = redact_json(body)
        for text in _spellings(body, rng):
            assert json.loads(redact_json_text(text)) == expected, text


def _scalar_secrets(value: Any) -> bool:
    """Whether every secret member in value holds a scalar (then the scan rewrites nothing but those values)."""
    if isinstance(value, dict):
        return all(
            (not isinstance(v, (dict, list)) if k.lower() in SECRET_FIELDS else _scalar_secrets(v))
            for k, v in value.items()
        )
    if isinstance(value, list):
        return all(_scalar_secrets(v) for v in value)
    return True


def test_text_redaction_keeps_the_spelling_byte_for_byte() -> None:
    # In the wire's own spelling (compact, non-ASCII as is) the redacted text is exactly what dumping the
    # redacted value gives, so nothing outside the secret values moved. A redacted body in another spelling
    # is written compactly; one with nothing to redact and no secret's name anywhere is kept as it came.
    rng = random.Random(20261129)
    checked = 0
    while checked < 400:
        body = {_name(rng): _value(rng, 0) for _ in range(rng.randint(1, 6))}
        if not _scalar_secrets(body):
            continue
        checked += 1
        expected = redact_json(body)
        compact = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        assert redact_json_text(compact) == json.dumps(expected, ensure_ascii=False, separators=(",", ":")), compact
        for options in ({}, {"indent": 1}):
            text = json.dumps(body, ensure_ascii=False, **options)  # type: ignore[arg-type]
            out = redact_json_text(text)
            assert json.loads(out) == expected, text
            if out != text:
                assert out == json.dumps(expected, ensure_ascii=False, separators=(",", ":")), text
    for text in ('{"ret": 0, "msgs": []}', '{\n  "errmsg": "ok",\n  "n": 1\n}', '{"t": "你好"}'):
        assert redact_json_text(text) == text
    # Escapes are written out (one could spell a name the parse must see), and so is a repeated member (the
    # parse keeps the last; the first may hold a secret).
    assert redact_json_text('{"t": "\\u4f60\\u597d"}') == '{"t":"你好"}'
    assert redact_json_text('{"a": {"\\u0074oken": "abc"}, "a": 1}') == '{"a":1}'
    assert redact_json_text('{"context_token": "abc", "context_token": ""}') == '{"context_token":""}'


def test_the_fingerprint_is_hashlibs_sha256() -> None:
    for value in ("", "abc", "日本語", "\ud800 lone", "x" * 1000):
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        assert redact(value) == f"<redacted {digest[:4]}…({len(value)})>"
    # Nothing of the hand-written scanner or of CPython's private hash modules is left in the module.
    with open(redact_module.__file__, encoding="utf-8") as fh:
        source = fh.read()
    assert "from _sha" not in source and "import _sha" not in source
    assert not {"_SCAN", "_SHORTCUTS", "_MEMBERS", "_json_text_edits"} & set(vars(redact_module))


@pytest.mark.parametrize(
    "text",
    [
        '{"context_token": "ctx"}',
        '{"context_token":"ctx"}',
        '{"context_token" : "ctx"}',
        '{"context_token":\n  "ctx"}',
        '{\n  "a": 1,\n  "context_token": "ctx"}',
        '{"a": 1 , "context_token": "ctx"}',
        '{"context_token": "c\\"tx"}',
        '{"context_token": "c\\u00e9"}',
        '{"context_token": ""}',
        '{"context_token": null}',
        '{"context_token": 7}',
        '{"local_token_list": ["a", "b"]}',
        '{"aes_key": {"nested": "object"}}',
        '{"AES_KEY": "k", "AesKey": "k2"}',
        '{"note": "a \\"token\\": \\"abc\\" inside"}',
        '{"we\\"ird token": "kept"}',
        '["token", "key", {"typing_ticket": "t"}]',
        '{"\\u0074oken": "escaped name"}',
        '{"con\\u0074ext_token": "escaped name"}',
        '{"u": "http://c/x?filekey=f\\u0026encrypted_query_param=v1"}',
        '{"u": "http://c/x?upload_param=<redacted abcd…(3)>"}',
        '{"upload_param": "http://c/x?encrypted_query_param=v2"}',
    ],
)
def test_text_redaction_of_each_spelling(text: str) -> None:
    assert json.loads(redact_json_text(text)) == redact_json(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"context_token": "ctx", "aes_key"',
        '{"context_token": "ctx',
        '{"aes_key":',
        '{"context_token": "ctx", "aes_key":',
    ],
)
def test_text_cut_short_still_redacts_what_it_holds(text: str) -> None:
    assert "ctx" not in redact_json_text(text)


def test_an_escaped_secret_name_is_seen_through() -> None:
    # A JSON text may spell any character as an escape; the scan can't see "token" in "\u0074oken", so such
    # texts are parsed whole.
    for text in ('{"\\u0074oken": "abc"}', '{"Toke\\u006e": "abc"}', '{"to\\u212aen": "abc"}'):
        assert "abc" not in redact_json_text(text)
    # Escaped "&" (Go's encoder) and non-Latin text: the secret query parameter is found behind the escape.
    text = '{"u": "a?x=1\\u0026token=abc", "t": "\\u4f60\\u597d", "n": 1}'
    assert json.loads(redact_json_text(text)) == {"u": f"a?x=1&token={redact('abc')}", "t": "你好", "n": 1}


def test_redaction_keeps_everything_else() -> None:
    text = '{"ret": 0,\n "msgs": [{"context_token":"ctx", "text": "token key param", "aeskey": "k"}]}'
    expected = text.replace('"ctx"', f'"{redact("ctx")}"').replace('"k"', f'"{redact("k")}"')
    assert json.loads(redact_json_text(text)) == json.loads(expected)
    # In the wire's spelling, byte for byte.
    compact = json.dumps(json.loads(text), separators=(",", ":"))
    redacted = compact.replace('"ctx"', f'"{redact("ctx")}"').replace('"k"', f'"{redact("k")}"')
    assert redact_json_text(compact) == redacted


@pytest.mark.parametrize(
    "value", ["abc", "", "日本語", "\ud800", "<redacted abcd…(3)>", "<redacted not a placeholder", "x" * 200]
)
def test_fingerprint_is_redact(value: str) -> None:
    assert fingerprint(value) == redact(value)


@pytest.mark.parametrize(
    "value", ["Bearer abc", "Bearer  abc", "Bearer\tabc", "bearer abc", "Bearer ", "Bearer", "Basic abc", "abc"]
)
def test_bearer_shortcut_matches_the_general_rule(value: str) -> None:
    match = redact_module._AUTH_SCHEME.match(value)
    general = match.group(1) + redact(match.group(2)) if match else (redact(value) if value else value)
    assert redact_header("Authorization", value) == general


def test_header_names_are_classified_once_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "_NAME_KINDS", {})
    monkeypatch.setattr(capture, "_MAX_NAME_KINDS", 3)
    headers = httpx.Headers(
        [
            (b"Content-Type", b"application/json"),
            (b"Content-Encoding", b" GZip "),
            (b"Authorization", b"Bearer tok"),
            (b"X-Custom", b"caf\xe9"),
            (b"x-custom", b"second"),
            (b"X-Encrypted-Param", b"p"),
        ]
    )
    for _ in range(2):  # the second time from the cache
        kept, ctype, encoding = _kept_headers(headers, redact=True)
        assert ctype == "application/json" and encoding == "gzip"
        # Secret values are redacted text already; the rest stays raw bytes until someone looks.
        assert b"tok" not in repr(kept).encode() and all(isinstance(name, bytes) for name, _ in kept)
        out = header_dict(kept)
        assert out["Authorization"] == f"Bearer {redact('tok')}"
        assert out["X-Encrypted-Param"] == redact("p")
        # Not UTF-8 on the wire: shown with a replacement character, as before.
        assert out["X-Custom"] == "caf\ufffd" and out["x-custom"] == "second"
        assert out["Content-Encoding"] == " GZip " and list(out) == [name.decode() for name, _ in kept]
        assert len(capture._NAME_KINDS) == 3
    out = header_dict(_kept_headers(headers, redact=False)[0])
    assert out["Authorization"] == "Bearer tok" and out["X-Encrypted-Param"] == "p"
    # Repeated names are joined, as HTTP allows.
    assert header_dict([(b"A", b"1"), (b"A", "2")]) == {"A": "1, 2"}


@pytest.mark.parametrize(
    "text",
    [
        # ensure_ascii output: a non-ASCII character inside the value is an escape
        '{"upload_full_url":"https://cdn/x?encrypted_query_param=SECRET\\u00e9_TAIL&x=1"}',
        # an encoder that escapes "/"
        '{"full_url":"https:\\/\\/cdn\\/x?encrypted_query_param=SECRET\\/TAIL"}',
    ],
)
def test_a_query_value_with_escapes_is_redacted_whole(text: str) -> None:
    out = redact_json_text(text)
    assert "SECRET" not in out and "TAIL" not in out
    assert json.loads(out) == redact_json(json.loads(text))


def _kept_headers(headers: httpx.Headers, redact: bool) -> tuple[Any, str, str]:
    """The headers as the recorder keeps them: scanned on the wire, secret values redacted when built."""
    raw, ctype, encoding = capture._scan_headers(headers)
    return (capture._redact_headers(raw) if redact else raw), ctype, encoding


_SECRET = "SECRETVALUE0123456789"  # digits, like every real token


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps({"ret": 0, "local_token_list": [_SECRET, _SECRET + "b"]})),
        ("text/plain", json.dumps({"token": 'ab"' + _SECRET})),
        ("text/plain", json.dumps({"aes_key": {"v": _SECRET}})),
        ("text/html; charset=utf-8", json.dumps({"bot_token": _SECRET})),
        ("", json.dumps({"local_token_list": [_SECRET]})),
        ("application/json", '{"aes_key": {"v": "' + _SECRET + '"}'),  # broken JSON, an object under a secret
        ("text/plain", '{"local_token_list": ["' + _SECRET + '"'),  # cut short
        ("text/plain", '{"token": "ab\\"' + _SECRET + '", oops}'),  # broken JSON, an escaped quote in the value
        ("application/xml", "<x><token>" + _SECRET + "</token></x>"),
        ("text/plain", "see http://c/download?encrypted_query_param=" + _SECRET + "&filekey=1"),
        ("application/x-ndjson", json.dumps({"token": _SECRET}) + "\n" + json.dumps({"token": _SECRET})),
        # starts like JSON but is not: free-text rules still apply
        ("text/plain", "[INFO] request failed: bot_token=" + _SECRET),
        ("text/plain", "{oops} Authorization: Bearer " + _SECRET),
        ("text/plain", '{"ret":-1} context_token=' + _SECRET),
        ("application/json", "[1,2] token: " + _SECRET),
        # JSON holding a secret in prose, or as escaped JSON inside a string
        ("application/json", json.dumps({"errmsg": "bad token=" + _SECRET})),
        ("application/json", json.dumps({"errmsg": "Authorization: Bearer " + _SECRET})),
        ("application/json", json.dumps({"errmsg": json.dumps({"bot_token": _SECRET})})),
        ("application/json", json.dumps({"next": "/download?x=1&amp;encrypted_query_param=" + _SECRET})),
        # other spellings free-text redaction does not know
        ("text/plain", "{'bot_token': '" + _SECRET + "'}"),
        ("text/plain", "bot_token\t=\t" + _SECRET),
        ("text/plain", "context_token => " + _SECRET),
        ("text/html", '<input name="bot_token" value="' + _SECRET + '">'),
        ("text/xml", "<Token value='" + _SECRET + "'/>"),
        ("text/plain", "redirect=%2Fdownload%3Fencrypted_query_param%3D" + _SECRET),
        ("application/json", json.dumps({"errmsg": "upload_param " + _SECRET + " expired"})),
    ],
)
def test_text_bodies_never_keep_a_secret_whatever_their_type(content_type: str, body: str) -> None:
    kept = capture.decode_body(body.encode(), content_type, redact=True)
    shown = kept.text if hasattr(kept, "text") else str(kept)
    assert _SECRET not in shown
    if isinstance(kept, Binary):  # what free-text redaction can't vouch for is kept as size and md5
        assert kept.size == len(body.encode()) and kept.md5 == hashlib.md5(body.encode()).hexdigest()


def test_text_redaction_keeps_prose_that_only_names_a_secret() -> None:
    for text in ("invalid token, log in again", '{"errmsg": "token expired"', "token: <redacted 0000…(3)>"):
        kept = capture.decode_body(text.encode(), "text/plain", redact=True)
        assert isinstance(kept, Text) and kept.text == text
    for body in ('{"ret":-14,"errmsg":"token expired, log in again"}', '{"hint":"the token","n":"aes_key"}'):
        kept = capture.decode_body(body.encode(), "application/json", redact=True)
        assert kept.text == body  # a name in prose or as a value is no secret: the JSON is kept as sent
