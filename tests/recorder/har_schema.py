"""A JSON Schema (draft 2020-12) of HAR 1.2, written from the HAR 1.2 specification's field tables.

Required fields, types and the spec's hard rules that a schema can state: ``log.version``, the ``creator``,
every entry's request/response/cache/timings, non-negative ``send``/``wait``/``receive``, ``-1`` as the only
negative value of optional timings and sizes, ISO 8601 ``startedDateTime``, ``text`` or ``params`` in
``postData``, and custom fields only with a leading underscore. (Sum rules such as ``time`` = sum of timings
are checked in the tests.)
"""

from __future__ import annotations

from typing import Any

_ISO_8601 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"

# Spec objects may carry "comment" and custom fields ("_name"); nothing else beyond the listed ones.
_CUSTOM = {"^_": {}}


def _obj(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    props = {"comment": {"type": "string"}, **properties}
    return {
        "type": "object",
        "required": required,
        "properties": props,
        "patternProperties": _CUSTOM,
        "additionalProperties": False,
    }


_STR = {"type": "string"}
_SIZE = {"type": "integer", "minimum": -1}
_OPT_TIMING = {"type": "number", "minimum": -1}
_TIMING = {"type": "number", "minimum": 0}

_NAME_VALUE = _obj(["name", "value"], {"name": _STR, "value": _STR})

_COOKIE = _obj(
    ["name", "value"],
    {
        "name": _STR,
        "value": _STR,
        "path": _STR,
        "domain": _STR,
        "expires": {"type": ["string", "null"]},
        "httpOnly": {"type": "boolean"},
        "secure": {"type": "boolean"},
    },
)

_PARAM = _obj(["name"], {"name": _STR, "value": _STR, "fileName": _STR, "contentType": _STR})

_POST_DATA = {
    **_obj(["mimeType"], {"mimeType": _STR, "text": _STR, "params": {"type": "array", "items": _PARAM}}),
    # "text and params fields are mutually exclusive", and one of them is required.
    "oneOf": [
        {"required": ["text"], "not": {"required": ["params"]}},
        {"required": ["params"], "not": {"required": ["text"]}},
    ],
}

_REQUEST = _obj(
    ["method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"],
    {
        "method": {"type": "string", "minLength": 1},
        "url": {"type": "string", "pattern": "^[a-zA-Z][a-zA-Z0-9+.-]*://"},
        "httpVersion": _STR,
        "cookies": {"type": "array", "items": _COOKIE},
        "headers": {"type": "array", "items": _NAME_VALUE},
        "queryString": {"type": "array", "items": _NAME_VALUE},
        "postData": _POST_DATA,
        "headersSize": _SIZE,
        "bodySize": _SIZE,
    },
)

_CONTENT = _obj(
    ["size", "mimeType"],
    {
        "size": {"type": "integer", "minimum": -1},
        "compression": {"type": "integer"},
        "mimeType": _STR,
        "text": _STR,
        "encoding": _STR,
    },
)

_RESPONSE = _obj(
    ["status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL", "headersSize", "bodySize"],
    {
        "status": {"type": "integer", "minimum": 0},
        "statusText": _STR,
        "httpVersion": _STR,
        "cookies": {"type": "array", "items": _COOKIE},
        "headers": {"type": "array", "items": _NAME_VALUE},
        "content": _CONTENT,
        "redirectURL": _STR,
        "headersSize": _SIZE,
        "bodySize": _SIZE,
    },
)

_CACHE_ENTRY = {
    "oneOf": [
        {"type": "null"},
        _obj(
            ["lastAccess", "eTag", "hitCount"],
            {"expires": _STR, "lastAccess": _STR, "eTag": _STR, "hitCount": {"type": "integer", "minimum": 0}},
        ),
    ]
}

_CACHE = _obj([], {"beforeRequest": _CACHE_ENTRY, "afterRequest": _CACHE_ENTRY})

_TIMINGS = _obj(
    ["send", "wait", "receive"],
    {
        "blocked": _OPT_TIMING,
        "dns": _OPT_TIMING,
        "connect": _OPT_TIMING,
        "send": _TIMING,
        "wait": _TIMING,
        "receive": _TIMING,
        "ssl": _OPT_TIMING,
    },
)

_ENTRY = _obj(
    ["startedDateTime", "time", "request", "response", "cache", "timings"],
    {
        "pageref": _STR,
        "startedDateTime": {"type": "string", "pattern": _ISO_8601},
        "time": {"type": "number", "minimum": 0},
        "request": _REQUEST,
        "response": _RESPONSE,
        "cache": _CACHE,
        "timings": _TIMINGS,
        "serverIPAddress": _STR,
        "connection": _STR,
    },
)

_PAGE = _obj(
    ["startedDateTime", "id", "title", "pageTimings"],
    {
        "startedDateTime": {"type": "string", "pattern": _ISO_8601},
        "id": _STR,
        "title": _STR,
        "pageTimings": _obj([], {"onContentLoad": _OPT_TIMING, "onLoad": _OPT_TIMING}),
    },
)

_NAME_VERSION = _obj(["name", "version"], {"name": _STR, "version": _STR})

HAR_1_2_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "HAR 1.2",
    "type": "object",
    "required": ["log"],
    "properties": {
        "log": _obj(
            ["version", "creator", "entries"],
            {
                "version": {"const": "1.2"},
                "creator": _NAME_VERSION,
                "browser": _NAME_VERSION,
                "pages": {"type": "array", "items": _PAGE},
                "entries": {"type": "array", "items": _ENTRY},
            },
        )
    },
    "additionalProperties": False,
}
