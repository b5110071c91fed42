"""Response checking without I/O: bytes in, a typed model or a typed error out.

Never lets a bare KeyError/TypeError/AttributeError escape from server data: every shape problem becomes a
:class:`~openclaw_nb.errors.ProtocolError` naming the endpoint, with a short redacted snippet of the body.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .. import errors as E
from . import constants as C
from . import drift as D
from .endpoints import ENDPOINTS, Endpoint
from .lenient import as_text, encode_message, find_message_id, read_page
from .models import ApiResponse, GetUpdatesResp, WeixinMessage
from .redact import snippet


def _name(endpoint: Endpoint | str) -> str:
    return endpoint if isinstance(endpoint, str) else endpoint.name


def decode_body(endpoint: Endpoint | str, content: bytes) -> dict[str, Any]:
    """Decode a JSON object, or raise ProtocolError naming the endpoint and quoting a redacted snippet."""
    name = _name(endpoint)
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        shown = snippet(content)
        raise E.ProtocolError(
            f"{name} answered with a body that is not JSON: {shown or '<empty>'}",
            endpoint=name,
            snippet=shown,
        ) from None
    if not isinstance(data, dict):
        shown = snippet(content)
        raise E.ProtocolError(f"{name} answered with JSON that is not an object: {shown}", endpoint=name, snippet=shown)
    return data


_INT_TEXT = re.compile(r"-?[0-9]+")


def _code(name: str, data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # Some gateways send codes as numeric strings; accept those, reject anything else.
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            return int(value)
        shown = snippet(json.dumps(data, ensure_ascii=False))
        raise E.ProtocolError(f"{name} answered with a non-integer {key!r}: {shown}", endpoint=name, snippet=shown)
    return value


def api_error(
    endpoint: Endpoint | str, ret: int | None, errcode: int | None, errmsg: str, raw: dict[str, Any]
) -> E.ApiError:
    """The typed error for a non-zero ``ret``/``errcode``."""
    name = _name(endpoint)
    # ret and errcode may disagree (ret=-1, errcode=-14): the more specific meaning wins.
    codes = {ret, errcode}
    cls: type[E.ApiError] = E.ApiError
    if C.RET_STALE_TOKEN in codes:
        cls = E.StaleTokenError
    elif C.RET_INVALID_ARGS in codes:
        cls = E.InvalidArgumentsError
    elif C.RET_NOT_YET_CONTACTED in codes and name == "get_config":
        cls = E.NotYetContactedError
    elif C.RET_SEND_REJECTED in codes and name == "send_message":
        cls = E.SendRejectedError
    return cls(name, ret, errcode, errmsg, raw=raw)


def check_envelope(endpoint: Endpoint | str, data: dict[str, Any]) -> None:
    """Raise the typed ApiError when ``ret`` or ``errcode`` is non-zero."""
    name = _name(endpoint)
    ret = _code(name, data, "ret")
    errcode = _code(name, data, "errcode")
    if ret or errcode:
        errmsg = data.get("errmsg")
        raise api_error(name, ret, errcode, errmsg if isinstance(errmsg, str) else "", data)


def parse_response(endpoint: Endpoint | str, content: bytes) -> ApiResponse:
    """Decode, check the envelope and build the endpoint's response model (``.raw`` keeps the JSON).

    Only a body that is not a JSON object is a ProtocolError: known fields of unexpected types are kept as sent
    and reported as drift (see :mod:`.drift`). A getupdates page is read message by message when it has to be,
    so one unreadable message never costs the others (it comes back with ``decode_error`` set).
    """
    ep = ENDPOINTS[endpoint] if isinstance(endpoint, str) else endpoint
    if ep.response_model is GetUpdatesResp:
        return _parse_updates(ep, content)
    data = decode_body(ep, content)
    return parse_data(ep, data)


def parse_data(endpoint: Endpoint | str, data: dict[str, Any]) -> ApiResponse:
    ep = ENDPOINTS[endpoint] if isinstance(endpoint, str) else endpoint
    check_envelope(ep, data)
    findings: list[D.Drift] = []
    try:
        resp = ep.response_model.from_wire(data, drift=findings)
    except RecursionError:
        raise E.ProtocolError(
            f"{ep.name} answered with JSON nested too deeply to read (quotes inside quotes hundreds of levels deep)",
            endpoint=ep.name,
        ) from None
    D.report(ep.name, findings)
    return resp


def updates_cursor(endpoint: str, get_updates_buf: Any, sync_buf: Any) -> str:
    """The cursor a getupdates page hands on ('' when it has none, so the current one stays). A cursor that is
    not a string can't be sent back, and taking the page's messages without it would take them again on the
    next poll, so that page is a ProtocolError (the poll loop backs off and reports it)."""
    for name, value in (("get_updates_buf", get_updates_buf), ("sync_buf", sync_buf)):
        if value is not None and not isinstance(value, str):
            shown = snippet(json.dumps(value, ensure_ascii=False, default=str), 60)
            raise E.ProtocolError(
                f"{endpoint} answered with a {name} that is not a string cursor ({D.json_type(value)}: {shown}); "
                "the page can't be acknowledged, so it is not read",
                endpoint=endpoint,
                snippet=shown,
            )
    return get_updates_buf or sync_buf or ""


def _parse_updates(ep: Endpoint, content: bytes) -> GetUpdatesResp:
    envelope, entries, findings = read_page(content, ep.name)
    check_envelope(ep, envelope)
    updates_cursor(ep.name, envelope.get("get_updates_buf"), envelope.get("sync_buf"))
    resp = GetUpdatesResp.from_wire(envelope, drift=findings)
    messages: list[WeixinMessage] = []
    sent: list[Any] = []
    for value, raw, problem in entries:
        if problem is None and isinstance(value, dict):
            try:
                messages.append(WeixinMessage._from_wire(value, "msgs[]", findings, False))
                sent.append(value)
                continue
            except RecursionError:
                problem = "nested too deeply to read"
        elif problem is None:
            problem = f"not a JSON object ({D.json_type(value)})"
            raw = encode_message(value)
        findings.append(D.Drift("msgs[]", D.UNDECODABLE, problem, None))
        messages.append(unreadable_message(raw, problem))
        sent.append(raw)
    if entries or "msgs" in envelope:
        resp.msgs = messages
    resp.raw = {**envelope, "msgs": sent}
    D.report(ep.name, findings)
    return resp


def unreadable_message(raw: Any, problem: str) -> WeixinMessage:
    """The stand-in for an entry of ``msgs`` that can't be read: the id found in its text, why, and the text."""
    text = raw if isinstance(raw, str) else as_text(bytes(raw)) if raw is not None else ""
    msg = WeixinMessage(message_id=find_message_id(text))
    msg.decode_error, msg.raw_text = problem, text
    return msg


def http_status_error(
    endpoint: Endpoint | str,
    status: int,
    content: bytes,
    headers: dict[str, str] | None = None,
    attempts: int = 1,
) -> E.TransportError:
    """An HTTP 4xx/5xx as a TransportError that names the endpoint and quotes the server's message."""
    name = _name(endpoint)
    detail = ""
    if headers:
        detail = headers.get(C.H_ERROR_MESSAGE, "") or ""
    if not detail:
        detail = snippet(content, 160)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    hint = ""
    if status == 429:
        hint = "; the server is rate limiting, slow down"
    elif status >= 500:
        hint = "; the server had a problem, try again later"
    elif status in (401, 403):
        hint = "; the token may be wrong, log in again"
    elif status == 404:
        hint = "; no such path on this server: check base_url (and cdn_base_url for CDN calls)"
    elif 300 <= status < 400:
        hint = "; the server redirected, which the iLink API does not do: check base_url"
    msg = f"{name} got HTTP {status}{tries}" + (f": {detail}" if detail else "") + hint
    return E.TransportError(msg, endpoint=name, status_code=status, attempts=attempts)
