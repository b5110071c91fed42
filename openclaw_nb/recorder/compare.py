"""Comparing sessions: :func:`diff` of two logs call by call, and :func:`replay` of a log against a server.

Both compare exchanges the same way: method, path, query, headers and bodies, ignoring the *values* of
volatile fields (per-request random ids, timestamps, cursors, tokens, message ids) but not their presence or
JSON type, so a client that forgets ``context_token`` or sends ``message_id`` as a string is still caught.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus, urlsplit

import httpx

from ..protocol import constants as C
from ..protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH, ENDPOINTS
from ..protocol.headers import random_uin
from ..protocol.redact import SECRET_FIELDS, is_redacted, redact
from .capture import ATTEMPT_KEY, CALL_KEY
from .exchange import Binary, Exchange, Text
from .log import ExchangeLog, Recorder

if TYPE_CHECKING:
    import pandas as pd

#: JSON keys, query parameters and header names whose values change from session to session.
VOLATILE_FIELDS: frozenset[str] = frozenset(
    {
        # per-request or per-session randomness chosen by the client
        "x-wechat-uin",
        "client_id",
        "filekey",
        # cursors and server-issued ids
        "get_updates_buf",
        "sync_buf",
        "message_id",
        "msg_id",
        "svr_id",
        "seq",
        "session_id",
        "run_id",
        "qrcode",
        "qrcode_img_content",
        "baseurl",
        "full_url",
        "upload_full_url",
        # hashes of random ciphertext, and of media a replay re-enacts with stand-in bytes
        "md5",
        "video_md5",
        # timestamps (every *_time_ms / *_time key is volatile too)
        "timestamp",
        "date",
        "last-modified",
        "expires",
        "etag",
    }
    | SECRET_FIELDS
)

#: Headers left out of comparisons entirely: set by the HTTP stack, not by the protocol.
TRANSPORT_HEADERS: frozenset[str] = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "accept",
        "accept-encoding",
        "user-agent",
        "server",
        "date",
        "vary",
        "content-encoding",
    }
)


def _is_volatile_key(key: str, volatile: frozenset[str]) -> bool:
    k = key.lower()
    return k in volatile or k.endswith("_time_ms") or k.endswith("_time")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@dataclass(frozen=True)
class Difference:
    """One place where two exchanges (or two sessions) disagree.

    ``kind`` is ``changed`` (both have it, values differ), ``type`` (a volatile field changed JSON type),
    ``missing`` (only in A), ``extra`` (only in B), ``only_in_a`` / ``only_in_b`` (a whole exchange).
    """

    call: str
    n: int
    where: str
    kind: str
    a: Any = None
    b: Any = None
    id_a: int | None = None
    id_b: int | None = None

    def __str__(self) -> str:
        label = f"{self.call} #{self.n}"
        if self.kind == "only_in_a":
            return f"{label}: only in A (id {self.id_a})"
        if self.kind == "only_in_b":
            return f"{label}: only in B (id {self.id_b})"
        if self.kind == "missing":
            return f"{label} {self.where}: missing in B (A has {_short(self.a)})"
        if self.kind == "extra":
            return f"{label} {self.where}: extra in B ({_short(self.b)})"
        if self.kind == "type":
            return f"{label} {self.where}: type {_kind(self.a)} → {_kind(self.b)}"
        return f"{label} {self.where}: {_short(self.a)} → {_short(self.b)}"


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, (Binary, Text)):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Comparer:
    """Walks two exchanges side by side and yields ``(where, kind, a, b)`` for each disagreement.

    ``bindings`` maps a value of A to the values that count as equal in B: ids the two servers handed out
    (a bot id), learnt from the answers, so that every later mention of that id compares equal too.
    """

    def __init__(self, volatile: Iterable[str], ignore: Iterable[str]) -> None:
        self.volatile = frozenset(v.lower() for v in volatile)
        self.ignore = frozenset(i.lower() for i in ignore)
        self.bindings: dict[Any, set[Any]] = {}

    def bind(self, old: Any, new: Any) -> None:
        self.bindings.setdefault(old, set()).add(new)

    def ignored(self, path: str, key: str) -> bool:
        if key.lower() in self.ignore:
            return True
        return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in self.ignore)

    def exchange(self, a: Exchange, b: Exchange) -> Iterator[tuple[str, str, Any, Any]]:
        yield from self.leaf("request.method", "method", a.method, b.method)
        pa, pb = a.path, b.path
        if a.call.startswith("cdn_") or b.call.startswith("cdn_"):
            # CDN hosts mount the API under different prefixes (/c2c on the real one); compare the tail only.
            pa, pb = pa.rsplit("/", 1)[-1], pb.rsplit("/", 1)[-1]
        yield from self.leaf("request.path", "path", pa, pb)
        yield from self.mapping("request.query", _query_dict(a.url), _query_dict(b.url))
        yield from self.headers("request.headers", a.request_headers, b.request_headers)
        yield from self.body("request.body", a.request_body, b.request_body)
        if a.status is None or b.status is None:
            ea = (a.error or "").split(":", 1)[0] if a.status is None else None
            eb = (b.error or "").split(":", 1)[0] if b.status is None else None
            if ea != eb:
                yield ("response.error", "changed", ea, eb)
            if a.status != b.status:
                yield ("response.status", "changed", a.status, b.status)
            return
        yield from self.leaf("response.status", "status", a.status, b.status)
        yield from self.headers("response.headers", a.response_headers, b.response_headers)
        yield from self.body("response.body", a.response_body, b.response_body)

    def leaf(self, path: str, key: str, a: Any, b: Any) -> Iterator[tuple[str, str, Any, Any]]:
        if self.ignored(path, key):
            return
        if _is_volatile_key(key, self.volatile):
            if _kind(a) != _kind(b):
                yield (path, "type", a, b)
            return
        if _kind(a) != _kind(b) or (a != b and b not in self.bindings.get(a, ())):
            yield (path, "changed", a, b)

    def headers(self, path: str, a: dict[str, str], b: dict[str, str]) -> Iterator[tuple[str, str, Any, Any]]:
        la = {k.lower(): v for k, v in a.items() if k.lower() not in TRANSPORT_HEADERS}
        lb = {k.lower(): v for k, v in b.items() if k.lower() not in TRANSPORT_HEADERS}
        yield from self.mapping(path, la, lb)

    def mapping(self, path: str, a: dict[str, Any], b: dict[str, Any]) -> Iterator[tuple[str, str, Any, Any]]:
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}"
            if self.ignored(sub, key):
                continue
            if key not in b:
                yield (sub, "missing", a[key], None)
            elif key not in a:
                yield (sub, "extra", None, b[key])
            else:
                yield from self.value(sub, key, a[key], b[key])

    def value(self, path: str, key: str, a: Any, b: Any) -> Iterator[tuple[str, str, Any, Any]]:
        if isinstance(a, dict) and isinstance(b, dict):
            yield from self.mapping(path, a, b)
        elif isinstance(a, list) and isinstance(b, list) and not _is_volatile_key(key, self.volatile):
            for i in range(max(len(a), len(b))):
                sub = f"{path}[{i}]"
                if i >= len(b):
                    yield (sub, "missing", a[i], None)
                elif i >= len(a):
                    yield (sub, "extra", None, b[i])
                else:
                    yield from self.value(sub, key, a[i], b[i])
        else:
            yield from self.leaf(path, key, a, b)

    def body(self, path: str, a: Any, b: Any) -> Iterator[tuple[str, str, Any, Any]]:
        if isinstance(a, Binary) and isinstance(b, Binary):
            # Ciphertext of random keys differs every time; its size does not.
            yield from self.leaf(path + ".size", "size", a.size, b.size)
        elif isinstance(a, Text) and isinstance(b, Text):
            yield from self.leaf(path + ".text", "text", a.text, b.text)
        elif a is None and b is not None:
            yield (path, "extra", None, b)
        elif b is None and a is not None:
            yield (path, "missing", a, None)
        elif a is not None:
            yield from self.value(path, "body", a, b)


def _query_dict(url: str) -> dict[str, str]:
    query = urlsplit(url).query
    out: dict[str, str] = {}
    for part in query.split("&") if query else ():
        name, _, value = part.partition("=")
        out[unquote_plus(name)] = unquote_plus(value)
    return out


def _final_attempts(items: Sequence[Exchange]) -> list[Exchange]:
    """Drop attempts that were retried: the next exchange of the same call is the following attempt."""
    superseded: set[int] = set()
    last: dict[str, int] = {}
    for i, ex in enumerate(items):
        j = last.get(ex.call)
        if j is not None and ex.attempt == items[j].attempt + 1:
            superseded.add(j)
        last[ex.call] = i
    return [ex for i, ex in enumerate(items) if i not in superseded]


class DiffResult:
    """What :func:`diff` found: a list of :class:`Difference`, a DataFrame view and a readable repr."""

    def __init__(self, differences: list[Difference], compared: int, title: str = "sessions") -> None:
        self.differences = differences
        self.compared = compared
        self.title = title

    @property
    def same(self) -> bool:
        """True when nothing but volatile values differ."""
        return not self.differences

    def __len__(self) -> int:
        return len(self.differences)

    def __iter__(self) -> Iterator[Difference]:
        return iter(self.differences)

    def __getitem__(self, index: int) -> Difference:
        return self.differences[index]

    def frame(self) -> pd.DataFrame:
        """One row per difference: call, n (occurrence of that call), ids, where, kind, a, b."""
        import pandas as pd

        cols = ["call", "n", "id_a", "id_b", "where", "kind", "a", "b"]
        rows = [[getattr(d, c) for c in cols] for d in self.differences]
        df = pd.DataFrame(rows, columns=cols)
        return df.astype({"n": "int64", "id_a": "Int64", "id_b": "Int64", "a": object, "b": object})

    def _headline(self) -> str:
        if self.same:
            return f"{self.title} match: {self.compared} exchanges compared (volatile fields ignored)"
        n = len(self.differences)
        return f"{self.title} differ in {n} place{'s' if n != 1 else ''} ({self.compared} exchanges compared)"

    def __repr__(self) -> str:
        lines = [self._headline()]
        lines += [f"  {d}" for d in self.differences[:50]]
        if len(self.differences) > 50:
            lines.append(f"  … {len(self.differences) - 50} more (see .frame())")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = "#1b5e20" if self.same else "#b00020"
        out = [f"<div><b style='color:{colour}'>{html.escape(self._headline())}</b>"]
        if self.differences:
            out.append(
                "<table><thead><tr>"
                + "".join(f"<th style='text-align:left'>{h}</th>" for h in ("call", "n", "where", "kind", "A", "B"))
                + "</tr></thead><tbody>"
            )
            for d in self.differences:
                cells = [d.call, str(d.n), d.where, d.kind, _short(d.a, 120), _short(d.b, 120)]
                out.append(
                    "<tr>"
                    + "".join(f"<td style='text-align:left'><code>{html.escape(c)}</code></td>" for c in cells)
                    + "</tr>"
                )
            out.append("</tbody></table>")
        out.append("</div>")
        return "".join(out)


def _compare_pair(cmp: _Comparer, call: str, n: int, a: Exchange, b: Exchange) -> list[Difference]:
    return [Difference(call, n, where, kind, va, vb, a.id, b.id) for where, kind, va, vb in cmp.exchange(a, b)]


def diff(
    log_a: Iterable[Exchange],
    log_b: Iterable[Exchange],
    *,
    ignore: Iterable[str] = (),
    volatile: Iterable[str] = VOLATILE_FIELDS,
    retries: bool = False,
) -> DiffResult:
    """Compare two sessions call by call: the n-th ``send_message`` of A with the n-th of B, and so on.

    Volatile values (``VOLATILE_FIELDS``: ``X-WECHAT-UIN``, ``client_id``, timestamps, cursors, message ids,
    tokens) are not compared, but a volatile field present on one side only still counts. ``ignore`` adds
    names (JSON keys, headers, query parameters) or paths (``response.body.msgs``) to leave out entirely.
    Attempts that were retried are dropped unless ``retries=True``.

    >>> d = diff(client_a.log, client_b.log)
    >>> d.same, d.frame()                     # doctest: +SKIP
    """
    cmp = _Comparer(volatile, ignore)
    items_a, items_b = list(log_a), list(log_b)
    if not retries:
        items_a, items_b = _final_attempts(items_a), _final_attempts(items_b)
    by_call_a: dict[str, list[Exchange]] = defaultdict(list)
    by_call_b: dict[str, list[Exchange]] = defaultdict(list)
    for ex in items_a:
        by_call_a[ex.call].append(ex)
    for ex in items_b:
        by_call_b[ex.call].append(ex)
    # Calls in order of first appearance, A's first: the report reads like the session.
    order = list(dict.fromkeys([ex.call for ex in items_a] + [ex.call for ex in items_b]))
    pairs: list[tuple[str, int, Exchange | None, Exchange | None]] = []
    for call in order:
        xs, ys = by_call_a.get(call, []), by_call_b.get(call, [])
        for n in range(max(len(xs), len(ys))):
            pairs.append((call, n + 1, xs[n] if n < len(xs) else None, ys[n] if n < len(ys) else None))
    # Ids each server handed out (a bot id) are learnt first, so every mention of them compares equal.
    learner = _Rebinder()
    for _call, _n, x, y in pairs:
        if x is not None and y is not None:
            learner.learn(x.response_body, y.response_body)
    for old, new in learner.map.items():
        cmp.bind(old, new)
    differences: list[Difference] = []
    compared = 0
    for call, n, x, y in pairs:
        if y is None and x is not None:
            differences.append(Difference(call, n, "exchange", "only_in_a", id_a=x.id))
        elif x is None and y is not None:
            differences.append(Difference(call, n, "exchange", "only_in_b", id_b=y.id))
        elif x is not None and y is not None:
            compared += 1
            differences += _compare_pair(cmp, call, n, x, y)
    return DiffResult(differences, compared)


# -- replay ---------------------------------------------------------------------------------------------------

#: Values the server hands out that later requests send back; replay learns the new ones as it goes.
_CARRIED = SECRET_FIELDS | {
    "get_updates_buf",
    "sync_buf",
    "qrcode",
    "full_url",
    "upload_full_url",
    "baseurl",
    "ilink_bot_id",
}
#: Client-chosen secrets a redacted log cannot restore; replay makes up fresh random ones of the same length.
_CLIENT_SECRETS = frozenset({"aeskey", "aes_key"})
_NOT_RESENT = TRANSPORT_HEADERS | {"x-wechat-uin", "cookie"}


class ReplayResult(DiffResult):
    """What :func:`replay` found: the differences, the replayed session's own ``log``, and notes.

    ``notes`` lists what replay had to change or could not restore (redacted secrets, binary bodies), by
    exchange id.
    """

    def __init__(
        self, differences: list[Difference], compared: int, log: ExchangeLog, notes: list[tuple[int, str]]
    ) -> None:
        super().__init__(differences, compared, title="replay and recording")
        self.log = log
        self.notes = notes

    def __repr__(self) -> str:
        text = super().__repr__()
        if self.notes:
            text += "\nnotes:\n" + "\n".join(f"  #{i}: {note}" for i, note in self.notes[:20])
            if len(self.notes) > 20:
                text += f"\n  … {len(self.notes) - 20} more"
        return text


class _Rebinder:
    """Maps recorded values (placeholders included) to the values the replay server handed out instead."""

    def __init__(self) -> None:
        self.map: dict[str, str] = {}

    def learn(self, old: Any, new: Any, key: str = "") -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for k, v in old.items():
                if k in new:
                    self.learn(v, new[k], k)
        elif isinstance(old, list) and isinstance(new, list):
            for x, y in zip(old, new, strict=False):
                self.learn(x, y, key)
        elif key.lower() in _CARRIED and isinstance(old, str) and isinstance(new, str) and old and old != new:
            self.map[old] = new

    def fresh(self, placeholder: str) -> str:
        """A made-up value for a client-chosen secret, stable per placeholder, as long as the original."""
        if placeholder not in self.map:
            length = int(placeholder.rsplit("(", 1)[1].rstrip(")>"))
            if length == 44:
                # The official client sends media keys as base64 of a 32-character hex string.
                self.map[placeholder] = base64.b64encode(secrets.token_hex(16).encode()).decode()
            else:
                self.map[placeholder] = secrets.token_hex((length + 1) // 2)[:length]
        return self.map[placeholder]

    def text(self, value: str) -> str:
        if value in self.map:
            return self.map[value]
        for old, new in self.map.items():
            if old in value and is_redacted(old):
                value = value.replace(old, new)
        return value

    def body(self, value: Any, key: str, unresolved: list[str], path: str) -> Any:
        if isinstance(value, dict):
            return {k: self.body(v, k, unresolved, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            out = [self.body(v, key, unresolved, f"{path}[{i}]") for i, v in enumerate(value)]
            if key.lower() == "local_token_list":
                # Old tokens the replay server never issued: sending placeholders would only confuse it.
                out = [v for v in out if not is_redacted(v)]
            return out
        if isinstance(value, str):
            new = self.text(value)
            if is_redacted(new):
                if key.lower() in _CLIENT_SECRETS:
                    return self.fresh(new)
                if key.lower() != "local_token_list":
                    unresolved.append(path)
            return new
        return value


def _replay_url(ex: Exchange, rebind: _Rebinder, base_url: str, cdn_base_url: str) -> str:
    mapped = rebind.map.get(ex.url)
    if mapped is not None:
        # The client used a URL the server handed out (upload_full_url / full_url): use the new one.
        return mapped
    parts = urlsplit(ex.url)
    if ex.call in ENDPOINTS:
        target = base_url.rstrip("/") + ENDPOINTS[ex.call].path
    elif ex.call == "cdn_upload":
        target = cdn_base_url.rstrip("/") + CDN_UPLOAD_PATH
    elif ex.call == "cdn_download":
        target = cdn_base_url.rstrip("/") + CDN_DOWNLOAD_PATH
    else:
        target = base_url.rstrip("/") + parts.path
    if parts.query:
        pairs = []
        for part in parts.query.split("&"):
            name, eq, value = part.partition("=")
            new = rebind.text(unquote_plus(value))
            pairs.append(f"{name}={quote(new, safe='')}" if eq else name)
        target += "?" + "&".join(pairs)
    return target


class _SimStage:
    """Sets the scene on a simulator before each replayed request: a bot to talk to, and the inbound
    messages the recorded session received, re-enacted just before the ``getupdates`` that delivered them.

    A message with one media item is re-sent through the simulator's ``send_image``/``send_file``/... with
    zero bytes of the recorded size (the media itself was never recorded), so its download works in the
    replay too; other messages go in through ``inbound`` as recorded.
    """

    #: Fields the server assigns; the simulator fills in its own.
    _SERVER_FIELDS = ("seq", "message_id", "context_token", "to_user_id")

    def __init__(self, sim: Any, items: Sequence[Exchange]) -> None:
        self.sim = sim
        self.owner, self.recorded_bot = _recorded_identity(items)
        self._token: str | None = None
        #: Recorded value → the simulator's, for ids the stage itself created (the bot's).
        self.bound: dict[str, str] = {}

    def token(self) -> str:
        """The token of the simulator's latest bot, creating one (owned by the recorded user) if none exists."""
        bots = self.sim.bots
        if bots:
            return str(list(bots.values())[-1].token)
        if self._token is None:
            login = self.sim.login_bot(self.owner)
            self._token = str(login.bot_token)
            if self.recorded_bot:
                self.bound[self.recorded_bot] = str(login.ilink_bot_id)
        return self._token

    def before(self, ex: Exchange) -> None:
        body = ex.response_body
        if ex.call != "get_updates" or not isinstance(body, dict) or not isinstance(body.get("msgs"), list):
            return
        for msg in body["msgs"]:
            if not isinstance(msg, dict) or not isinstance(msg.get("from_user_id"), str):
                continue
            self.token()  # inbound messages need a bot
            items = msg.get("item_list")
            if (
                isinstance(items, list)
                and len(items) == 1
                and isinstance(items[0], dict)
                and self._media(msg, items[0])
            ):
                continue
            self.sim.inbound({k: v for k, v in msg.items() if k not in self._SERVER_FIELDS})

    def _media(self, msg: dict[str, Any], item: dict[str, Any]) -> bool:
        user = msg["from_user_id"]
        kind = item.get("type")

        def size(value: Any, ciphertext: bool) -> int:
            n = int(value) if isinstance(value, (int, str)) and str(value).isdigit() else 1024
            # ciphertext = (n // 16 + 1) * 16, so n - 1 plaintext bytes give back a ciphertext of n when n % 16 == 0
            return max(n - 1, 0) if ciphertext else n

        if kind == C.ItemType.IMAGE and isinstance(item.get("image_item"), dict):
            image = item["image_item"]
            media = image.get("media") if isinstance(image.get("media"), dict) else {}
            has_hex, has_b64 = bool(image.get("aeskey")), bool(media.get("aes_key"))
            fmt = "both" if has_hex and has_b64 else "hex" if has_hex else "media" if has_b64 else "none"
            self.sim.send_image(user, bytes(size(image.get("mid_size"), fmt != "none")), key_format=fmt)
        elif kind == C.ItemType.FILE and isinstance(item.get("file_item"), dict):
            f = item["file_item"]
            self.sim.send_file(user, bytes(size(f.get("len"), False)), str(f.get("file_name") or "file"))
        elif kind == C.ItemType.VIDEO and isinstance(item.get("video_item"), dict):
            v = item["video_item"]
            self.sim.send_video(user, bytes(size(v.get("video_size"), True)), play_length=v.get("play_length") or 1)
        elif kind == C.ItemType.VOICE and isinstance(item.get("voice_item"), dict):
            v = item["voice_item"]
            knobs = {k: v[k] for k in ("encode_type", "sample_rate") if isinstance(v.get(k), int)}
            if isinstance(v.get("playtime"), int):
                knobs["playtime_ms"] = v["playtime"]
            self.sim.send_voice(user, bytes(1024), v.get("text"), **knobs)
        else:
            return False
        return True


def _recorded_identity(items: Sequence[Exchange]) -> tuple[str | None, str | None]:
    """Whose session it was and which bot: from the confirmed QR login, else from the first inbound message."""
    owner = bot = None
    for ex in items:
        body = ex.response_body
        if isinstance(body, dict) and body.get("status") == "confirmed":
            owner = body.get("ilink_user_id") if isinstance(body.get("ilink_user_id"), str) else None
            bot = body.get("ilink_bot_id") if isinstance(body.get("ilink_bot_id"), str) else None
            break
    for ex in items:
        body = ex.response_body
        if ex.call == "get_updates" and isinstance(body, dict):
            for msg in body.get("msgs") or []:
                if isinstance(msg, dict):
                    owner = owner or (msg.get("from_user_id") if isinstance(msg.get("from_user_id"), str) else None)
                    bot = bot or (msg.get("to_user_id") if isinstance(msg.get("to_user_id"), str) else None)
    return owner, bot


def replay(
    log: Iterable[Exchange],
    base_url: str | None = None,
    *,
    cdn_base_url: str | None = None,
    token: str | None = None,
    simulator: Any = None,
    long_poll_timeout: float = 1.0,
    timeout: float = 15.0,
    transport: httpx.BaseTransport | None = None,
    ignore: Iterable[str] = (),
    volatile: Iterable[str] = VOLATILE_FIELDS,
    redact: bool = True,
) -> ReplayResult:
    """Send the recorded requests again, in order, to a server and compare its answers with the recorded ones.

    Targets: ``base_url`` (and ``cdn_base_url``) of any server; a running ``simulator``; or, with neither, a
    fresh embedded :class:`~openclaw_nb.sim.Simulator` (QR codes confirm at once, long polls last
    ``long_poll_timeout`` seconds) that is stopped afterwards. Against a simulator, replay also sets the scene:
    the inbound messages of the recording are re-enacted before the ``getupdates`` that delivered them, and a
    bot is created when the log starts after login.

    Values the server hands out (bot token, context tokens, typing tickets, upload parameters, cursors, QR
    ids, the bot id) are learnt from the replayed answers and substituted in later requests, so a redacted
    log replays as long as it holds the exchange that handed each value out. What a redacted log cannot
    restore, and what replay does instead (each case is listed in ``notes``):

    - the bot token of a log that starts after login: ``token=``, else a simulator bot's token, else the
      ``Authorization`` header is left out (the server answers -14, shown as a difference);
    - client-chosen media keys (``aeskey``/``aes_key``): fresh random ones of the same length;
    - binary bodies (only size and md5 were kept): zero bytes of the recorded size;
    - any other placeholder (say a context token the replay server never handed out) is sent as is.

    The replay's own log is redacted like any recorder's, whatever the input log says (a shared log marked
    unredacted must not make replay keep the caller's ``token=`` in clear); ``redact=False`` keeps the
    secrets and warns, as ``Recorder(redact=False)`` does.

    >>> result = replay(client.log)                       # against a fresh simulator
    >>> result.same, result.frame(), result.log.show()    # doctest: +SKIP
    """
    if not isinstance(redact, bool):
        raise TypeError(f"replay(redact=...) takes True (the default) or False, got {redact!r}")
    items = list(log)
    if base_url is None and simulator is None:
        try:
            from ..sim import Simulator
        except ImportError as exc:  # pragma: no cover - the simulator ships with the package
            raise RuntimeError("replay(log) without base_url needs openclaw_nb.sim; pass base_url=") from exc
        owner, _bot = _recorded_identity(items)
        # Uploads are not checked: replay can only send zero bytes where the ciphertext was.
        knobs: dict[str, Any] = {"auto_confirm": 0.0, "long_poll_timeout": long_poll_timeout, "check_uploads": False}
        if owner:
            knobs["default_user"] = owner
        with Simulator(**knobs) as sim:
            return _replay(
                items,
                sim.base_url,
                cdn_base_url or sim.cdn_base_url,
                token,
                _SimStage(sim, items),
                timeout,
                transport,
                ignore,
                volatile,
                redact,
            )
    if simulator is not None:
        stage = _SimStage(simulator, items)
        return _replay(
            items,
            base_url or simulator.base_url,
            cdn_base_url or simulator.cdn_base_url,
            token,
            stage,
            timeout,
            transport,
            ignore,
            volatile,
            redact,
        )
    assert base_url is not None
    return _replay(items, base_url, cdn_base_url or base_url, token, None, timeout, transport, ignore, volatile, redact)


def _replay(
    items: list[Exchange],
    base_url: str,
    cdn: str,
    token: str | None,
    stage: _SimStage | None,
    timeout: float,
    transport: httpx.BaseTransport | None,
    ignore: Iterable[str],
    volatile: Iterable[str],
    redacting: bool,
) -> ReplayResult:
    # Every replayed exchange is compared with its original: none may fall to a byte budget. Redaction is the
    # caller's choice only (never read from the input log); redact=False warns at the caller's replay() line.
    recorder = Recorder(maxlen=max(len(items), 1), redact=redacting, max_bytes=None, _stacklevel=4)
    rebind = _Rebinder()
    notes: list[tuple[int, str]] = []
    pairs: list[tuple[Exchange, Exchange]] = []
    inner = transport or httpx.HTTPTransport()
    with httpx.Client(transport=recorder.wrap(inner), timeout=timeout, follow_redirects=False) as http:
        for ex in items:
            if stage is not None:
                stage.before(ex)
                rebind.map.update(stage.bound)
            unresolved: list[str] = []
            headers: dict[str, str] = {}
            for name, value in ex.request_headers.items():
                lname = name.lower()
                if lname in _NOT_RESENT:
                    continue
                if lname == "authorization":
                    scheme, _, credential = value.partition(" ")
                    credential = rebind.text(credential)
                    if credential not in rebind.map.values():
                        # Not a token this replay obtained by logging in: an explicit token wins, then a
                        # simulator bot's; else the recorded one is kept (an unredacted one may still be valid).
                        if token:
                            credential = token
                        elif stage is not None:
                            credential = stage.token()
                            rebind.map.update(stage.bound)
                            notes.append((ex.id, "used the token of a simulator bot"))
                    value = f"{scheme} {credential}"
                else:
                    value = rebind.text(value)
                if "<redacted " in value:
                    # Not restorable, and not even sendable (headers are ASCII): leave the header out, as a
                    # client without the secret would.
                    unresolved.append(f"request.headers.{name} (left out)")
                    continue
                headers[name] = value
            if any(k.lower() == "x-wechat-uin" for k in ex.request_headers):
                headers[C.H_UIN] = random_uin()
            content: bytes | None = None
            body = ex.request_body
            if isinstance(body, Binary):
                content = bytes(body.size)
                notes.append((ex.id, f"binary body not recorded; sent {body.size} zero bytes"))
            elif isinstance(body, Text):
                content = body.text.encode("utf-8")
            elif body is not None:
                new_body = rebind.body(body, "", unresolved, "request.body")
                content = json.dumps(new_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            url = _replay_url(ex, rebind, base_url, cdn)
            if "<redacted" in url or "%3Credacted" in url:
                unresolved.append("request.url")
            if unresolved:
                notes.append((ex.id, "sent without the recorded secrets: " + ", ".join(unresolved)))
            request = http.build_request(
                ex.method,
                url,
                headers=headers,
                content=content,
                extensions={CALL_KEY: ex.call, ATTEMPT_KEY: ex.attempt},
            )
            try:
                response = http.send(request)
            except httpx.TransportError:
                pass  # recorded with its error; compared like any other answer
            else:
                _learn(rebind, ex, response)
            pairs.append((ex, recorder[-1]))
    cmp = _Comparer(volatile, ignore)
    for old, new in rebind.map.items():
        # The replay log may be redacted: the new value counts as equal in either form.
        cmp.bind(old, new)
        cmp.bind(old, redact(new))
    differences: list[Difference] = []
    seen: dict[str, int] = defaultdict(int)
    for original, replayed in pairs:
        seen[original.call] += 1
        differences += _compare_pair(cmp, original.call, seen[original.call], original, replayed)
    return ReplayResult(differences, len(pairs), recorder.snapshot(), notes)


def _learn(rebind: _Rebinder, ex: Exchange, response: httpx.Response) -> None:
    for name, value in ex.response_headers.items():
        if name.lower() == C.H_ENCRYPTED_PARAM:
            new = response.headers.get(name)
            if new and new != value:
                rebind.map[value] = new
    if isinstance(ex.response_body, (dict, list)):
        try:
            new_body = response.json()
        except ValueError:
            return
        rebind.learn(ex.response_body, new_body)


__all__ = ["VOLATILE_FIELDS", "DiffResult", "Difference", "ReplayResult", "diff", "replay"]
