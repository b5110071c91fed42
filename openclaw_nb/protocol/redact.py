"""How secrets look when shown: a short fingerprint and the length, never the value.

Equal values redact to equal strings, so a reader can still tell "same token" from "new token".
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

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


def redact(value: object) -> str:
    """``<redacted 6b1f…(64)>``: the first 4 hex digits of a SHA-256 of the value, then its length."""
    text = value if isinstance(value, str) else str(value)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:4]
    return f"<redacted {digest}…({len(text)})>"


def redact_json(value: Any) -> Any:
    """A copy of a JSON value with every secret field's value replaced by :func:`redact`."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_FIELDS and item not in (None, ""):
                if isinstance(item, list):
                    out[key] = [redact(x) for x in item]
                else:
                    out[key] = redact(item)
            else:
                out[key] = redact_json(item)
        return out
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value


_SECRET_IN_TEXT = re.compile(
    r'("(?:' + "|".join(re.escape(f) for f in sorted(SECRET_FIELDS)) + r')"\s*:\s*")([^"]*)(")',
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer\s+)(\S+)")


def redact_text(text: str) -> str:
    """Redact secrets inside text that may be broken JSON (error snippets) or carry a bearer token."""
    text = _SECRET_IN_TEXT.sub(lambda m: m.group(1) + redact(m.group(2)) + m.group(3), text)
    return _BEARER.sub(lambda m: m.group(1) + redact(m.group(2)), text)


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
