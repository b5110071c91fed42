"""The two drivers, ``Client`` (httpx.Client) and ``AsyncClient`` (httpx.AsyncClient), over one shared base.

``BaseClient`` holds everything that does no I/O: configuration, credentials, the per-user context-token
map and reply budget, and the flows (generators from :mod:`openclaw_nb.protocol.flow`) behind every method.
The drivers only run flows: the sync one with blocking calls, the async one with ``await``. Each public
method is therefore one line in each driver, with the same name and arguments.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx

from . import errors as E
from ._version import __version__
from .broadcast import AsyncBroadcastMixin, BroadcastMixin
from .engine import async_transport, resolve_engine
from .live import AsyncLiveMixin, LiveMixin
from .logfilter import install as install_log_filter
from .login import AsyncLoginMixin, LoginMixin
from .media import AsyncMediaMixin, MediaMixin
from .protocol import constants as C
from .protocol import models as m
from .protocol.drift import DriftLog, collecting
from .protocol.endpoints import (
    CDN_DOWNLOAD_PATH,
    CDN_DOWNLOAD_TIMEOUT,
    CDN_UPLOAD_PATH,
    CDN_UPLOAD_TIMEOUT,
    ENDPOINTS,
    build_request,
)
from .protocol.flow import (
    Body,
    Failure,
    Flow,
    Reply,
    RetryPolicy,
    Send,
    Sleep,
    api_call,
    cdn_download_flow,
    cdn_upload_flow,
    parse_http_date_ms,
)
from .protocol.headers import DEFAULT_BOT_AGENT, ClientIdentity
from .protocol.media import SplitSendResp, split_text
from .protocol.models import new_client_id
from .protocol.poll import QuoteHistory, long_poll_window_ms
from .protocol.redact import redact, redact_url
from .protocol.text import TEXT_CHUNK_CHARS, apply_markdown
from .recorder.log import DEFAULT_MAX_BYTES as DEFAULT_LOG_BYTES
from .recorder.log import LogBudget
from .updates import AsyncUpdatesMixin, UpdatesMixin

log = logging.getLogger("openclaw_nb")
T = TypeVar("T")
M = TypeVar("M", bound=m.WireModel)
F = TypeVar("F", bound=Callable[..., Any])

#: Request extensions read by the recorder: the logical call and the 1-based attempt number.
EXT_CALL = "openclaw_nb.call"
EXT_ATTEMPT = "openclaw_nb.attempt"
#: Errors raised before a connection to the server existed, so the server cannot have seen the request: refused,
#: DNS failure and TLS handshake failure (ConnectError), connect timeout, no pooled connection in time.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Connection pool bounds, chosen by benchmarks/bench_concurrency.py (figures in the README's benchmark table).
#: httpcore's async pool (and the sync client's) keeps 16: more connections make httpcore slower, not faster
#: (64 sends in flight over 20 ms of simulated latency: 317, 207, 194 req/s with 16, 64, 256 connections).
#: How many of its latest sends a client keeps for views opened later (the chat panel's bot side).
SENT_KEPT = 10_000
DEFAULT_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)
#: aiohttp's pool gains from more connections once the network has latency (the same: 578, 1,523, 1,354 req/s;
#: on loopback, where a round trip costs nothing, the size hardly matters); 64, since 256 adds nothing below 256
#: sends in flight and would open four times the connections to the server.
AIOHTTP_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)
#: The pool bounds of each async engine.
ENGINE_LIMITS = {"httpcore": DEFAULT_LIMITS, "aiohttp": AIOHTTP_LIMITS}
USER_AGENT = {"User-Agent": f"openclaw-nb/{__version__}"}


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The one TLS context of every client this process makes (unless given its own transport).

    Building one loads the CA bundle and costs ~25 ms: a context per client made ``Accounts.load`` of 200
    accounts take seconds, even for ``http://`` URLs. A context is safe to share between clients and threads.
    It is httpx's default (certifi's CAs, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured), made once: set
    those variables before the first client.
    """
    return httpx.create_ssl_context()


@dataclass
class Peer:
    """What the client knows about one user: the things that decide whether a send can succeed."""

    user_id: str
    context_token: str | None = None
    #: ``create_time_ms`` of the user's latest inbound message (the 24 h reply window starts there).
    last_inbound_ms: int | None = None
    #: Sends made on the current ``context_token`` (a token allows at most 10).
    sends_on_token: int = 0
    last_error: str | None = None

    def __repr__(self) -> str:
        token = redact(self.context_token) if self.context_token else None
        return (
            f"Peer(user_id={self.user_id!r}, context_token={token}, last_inbound_ms={self.last_inbound_ms}, "
            f"sends_on_token={self.sends_on_token})"
        )


def _named_keywords(init: F) -> F:
    """A constructor whose mistyped keyword says which names exist (and the nearest one), instead of Python's
    bare "unexpected keyword argument". ``functools.wraps`` keeps the real signature for ``help()``,
    ``inspect.signature`` and tab completion."""
    import difflib
    import inspect

    params = inspect.signature(init).parameters
    names = [name for name in params if name != "self"]

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        for key in kwargs:
            if key not in params or key == "self":
                near = difflib.get_close_matches(key, names, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise TypeError(
                    f"{type(self).__name__}() has no parameter {key!r}: {hint}its parameters are {', '.join(names)}"
                )
        init(self, *args, **kwargs)

    return cast(F, checked)


def _require_user(value: object, what: str = "to") -> str:
    if not isinstance(value, str) or not value.strip():
        raise E.UsageError(
            f"{what} must be a non-empty user id string such as 'abc@im.wechat', got {value!r}; "
            "user ids come from message.from_user_id"
        )
    return value


class BaseClient:
    """Configuration, credentials, per-user state and the flows; no I/O. Use :class:`Client` or :class:`AsyncClient`."""

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str = C.DEFAULT_BASE_URL,
        cdn_base_url: str = C.DEFAULT_CDN_BASE_URL,
        bot_id: str | None = None,
        app_id: str = C.DEFAULT_APP_ID,
        client_version: str = C.PROTOCOL_CLIENT_VERSION,
        bot_agent: str = DEFAULT_BOT_AGENT,
        route_tag: str | None = None,
        retry: RetryPolicy | None = None,
        record: bool = True,
        log_size: int = 1000,
        redact: bool = True,
        log_bytes: int | LogBudget | None = DEFAULT_LOG_BYTES,
        max_response_bytes: int = C.MAX_API_RESPONSE_BYTES,
    ) -> None:
        if token is not None and (not isinstance(token, str) or not token):
            raise E.UsageError("token must be a non-empty string (the bot_token from a QR login) or None")
        for name, url in (("base_url", base_url), ("cdn_base_url", cdn_base_url)):
            _check_url(name, url)
        # httpx and httpcore log URLs and headers at INFO/DEBUG: their lines go out with secrets redacted.
        install_log_filter()
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.cdn_base_url = cdn_base_url.rstrip("/")
        self.bot_id = bot_id
        self.identity = ClientIdentity(
            app_id=app_id, client_version=client_version, bot_agent=bot_agent, route_tag=route_tag
        )
        self.retry = retry or RetryPolicy()
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) or max_response_bytes < 1024:
            raise E.UsageError(
                f"max_response_bytes is the largest API answer to read, in bytes (an int >= 1024; default "
                f"{C.MAX_API_RESPONSE_BYTES:,}), got {max_response_bytes!r}"
            )
        #: The largest API answer (JSON body) read, in bytes; a larger one fails with a ProtocolError. Media
        #: downloads have their own cap (``max_bytes`` of the download calls).
        self.max_response_bytes = max_response_bytes
        #: The getupdates cursor, replaced only by non-empty values the server returns.
        self.cursor = ""
        self._window_ms = C.DEFAULT_LONGPOLLING_TIMEOUT_MS
        self._window_warned = False
        self.peers: dict[str, Peer] = {}
        #: Every unknown field, unexpected type and unknown enum value the server sent (see ``drift``).
        self.drift_log = DriftLog()
        #: Texts of recent messages by id, to show what an ID-only quote quotes (shared with the streams).
        self.history = QuoteHistory()
        #: Called with each message this client sent successfully (its wire dict, secrets included, and the
        #: answer), on the thread or loop that sent it: how a chat panel shows sends made anywhere (a magic, a
        #: cell). A listener must be quick and must not raise (a failure is logged and the send still counts).
        self._sent_listeners: list[Callable[[dict[str, Any], m.SendMessageResp], None]] = []
        #: The last ``SENT_KEPT`` messages this client sent successfully, oldest first: (server time in s, wire
        #: dict, answer), each once (a retried send once), from every path that sends (send_text, send_media,
        #: broadcast's twin). How a chat panel opened after some replies shows them. Secrets inside: keep private.
        self._sent_recent: deque[tuple[float, dict[str, Any], m.SendMessageResp]] = deque(maxlen=SENT_KEPT)
        # How far the server's clock is ahead of this computer's (s), from the Date of its answers: the 24 h
        # reply window counts from message times the server stamped. 0 while the two agree within 2 s.
        self._clock_offset = 0.0
        self._last_date: str | None = None
        self.log: Any = None
        if record:
            from .recorder import Recorder

            # stacklevel: Recorder.__init__ <- BaseClient.__init__ <- Client.__init__ <- its keyword check
            # (_named_keywords) <- the user's line; a bare BaseClient is made on the user's line itself.
            self.log = Recorder(
                maxlen=log_size,
                redact=redact,
                max_bytes=log_bytes,
                _stacklevel=3 if type(self) is BaseClient else 5,
            )
            self.log.drift = self.drift_log  # exported with the exchanges (HAR and JSONL)

    # --- the server's clock ----------------------------------------------------------------------

    def server_now(self) -> float:
        """The time on the server's clock (epoch seconds), as its last ``Date`` header showed it.

        Message times (``create_time_ms``) are stamped by the server, so the 24 h reply window is measured on
        its clock. The simulator's clock moves with ``sim.advance(...)``; a real server's should agree with a
        well-set computer, and then this is ``time.time()``.
        """
        return time.time() + self._clock_offset

    def _since_last_message(self, last_inbound_ms: int) -> str:
        """How long ago the user's last message was, for a -2 explanation.

        The message's ``create_time_ms`` was stamped by the server's clock, so it is compared with the server's
        clock (:meth:`server_now`, kept from the ``Date`` of every answer, the rejecting one included), not this
        computer's: the two may differ by hours (a simulator's clock moved by ``sim.advance``, a wrong system
        clock). A server that never sent a ``Date`` leaves only the local clock, and the text says so. Never
        negative: ``Date`` has whole seconds, and clocks disagree.
        """
        window = C.REPLY_WINDOW_SECONDS / 3600
        clock = "" if self._last_date is not None else " by this computer's clock"
        hours = max(0.0, (self.server_now() * 1000 - last_inbound_ms) / 3_600_000)
        if hours >= window:
            return f"{hours:.1f} h since the user's last message{clock} (replies allowed within {window:.0f} h)"
        return f"{hours:.1f} h since the user's last message{clock} (within the {window:.0f} h reply window)"

    def _note_date(self, headers: httpx.Headers) -> None:
        value = headers.get("date")
        if value is None or value == self._last_date:
            return  # Date changes once a second: parse only a new one
        self._last_date = value
        server_ms = parse_http_date_ms(value)
        if server_ms is None:
            return
        offset = server_ms / 1000 - time.time()
        # Date has whole seconds and the answer took time to arrive: closer than 2 s is the same clock.
        self._clock_offset = offset if abs(offset) >= 2.0 else 0.0

    # --- credentials and per-user state ------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The bot token (never shown whole: see ``repr``)."""
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        self._token = value

    def use_credentials(self, token: str, *, base_url: str | None = None, bot_id: str | None = None) -> None:
        """Switch to a bot token (and the ``baseurl`` the login returned)."""
        if not isinstance(token, str) or not token:
            raise E.UsageError("token must be a non-empty string")
        if base_url is not None:
            _check_url("base_url", base_url)
        self._token = token
        if base_url:
            self.base_url = base_url.rstrip("/")
        if bot_id:
            self.bot_id = bot_id

    @property
    def longpolling_timeout_ms(self) -> int:
        """The server's long-poll window from its latest answer (``longpolling_timeout_ms``), in ms.

        A poll's own timeout is this plus ``constants.LONG_POLL_GRACE``. Values from the server are not
        trusted blindly: zero, negative and non-numeric ones are ignored, and anything above
        ``constants.MAX_LONGPOLLING_TIMEOUT_MS`` (120 s) is clamped to it, with one warning per client.
        """
        return self._window_ms

    @longpolling_timeout_ms.setter
    def longpolling_timeout_ms(self, value: int) -> None:
        self._follow_window(value)

    def _follow_window(self, value: object) -> None:
        window, problem = long_poll_window_ms(value)
        if window is not None:
            self._window_ms = window
        if problem:
            if not self._window_warned:
                self._window_warned = True
                log.warning("get_updates: %s (this warning is shown once per client)", problem)
            else:
                log.debug("get_updates: %s", problem)

    @property
    def context_tokens(self) -> dict[str, str]:
        """The latest ``context_token`` per user, as fed by :meth:`get_updates` (a copy)."""
        return {uid: p.context_token for uid, p in self.peers.items() if p.context_token}

    def peer(self, user_id: str) -> Peer:
        peer = self.peers.get(user_id)
        if peer is None:
            peer = self.peers[user_id] = Peer(user_id)
        return peer

    @property
    def drift(self) -> Any:
        """What the server sent that the models did not expect, as a DataFrame: one row per endpoint, field path
        and finding (unknown field, unexpected type, unknown value, repaired, undecodable), with how often,
        when first and last, and a redacted example. Nothing listed here stopped a call: it was kept as sent.

        >>> client.drift[["endpoint", "path", "kind", "seen", "count"]]      # doctest: +SKIP
        """
        return self.drift_log.frame()

    def remember_message(self, msg: m.WeixinMessage) -> None:
        """Feed one inbound message into the per-user map (latest context token, time of last message) and the
        recent history that ID-only quotes are resolved from."""
        self.history.fill(msg)
        if msg.message_id is not None:
            self.history.add(msg.message_id, msg.text)
        if msg.message_type == C.MessageType.BOT or not msg.from_user_id:
            return
        peer = self.peer(msg.from_user_id)
        when = msg.create_time_ms
        newer = when is None or peer.last_inbound_ms is None or when >= peer.last_inbound_ms
        # A late re-delivery (at-least-once) carries an older token: it must not replace the latest one.
        if newer and msg.context_token and msg.context_token != peer.context_token:
            peer.context_token = msg.context_token
            peer.sends_on_token = 0
        if when is not None and (peer.last_inbound_ms is None or when >= peer.last_inbound_ms):
            peer.last_inbound_ms = when

    def __repr__(self) -> str:
        token = redact(self._token) if self._token else None
        return f"{type(self).__name__}(base_url={self.base_url!r}, bot_id={self.bot_id!r}, token={token})"

    # --- building sends ----------------------------------------------------------------------------

    def _api_send(
        self,
        name: str,
        payload: m.WireModel | Mapping[str, Any] | None,
        *,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
        base_url: str | None = None,
    ) -> tuple[Send, dict[str, Any] | None]:
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise E.UsageError(f"timeout is a number of seconds > 0, got {timeout!r}")
        spec = build_request(name, payload, identity=self.identity, token=self._token, params=params, timeout=timeout)
        send = Send(
            call=name,
            method=spec.method,
            base_url=(base_url or self.base_url).rstrip("/"),
            path=spec.path,
            params=spec.params,
            headers=spec.headers,
            content=spec.content,
            timeout=spec.timeout,
        )
        return send, spec.body

    def _call(self, name: str, payload: m.WireModel | Mapping[str, Any] | None = None, **kw: Any) -> Flow:
        send, body = self._api_send(name, payload, **kw)
        return api_call(ENDPOINTS[name], send, self.retry, body=body)

    # --- flows behind the public methods (identical for both drivers) ------------------------------

    def _get_bot_qrcode_flow(self, local_token_list: Iterable[str] | None) -> Flow:
        tokens = [t for t in (local_token_list or []) if isinstance(t, str) and t][: C.MAX_LOCAL_TOKENS]
        return self._call("get_bot_qrcode", m.GetBotQrcodeReq(local_token_list=tokens))

    def _get_qrcode_status_flow(
        self,
        qrcode: str,
        verify_code: str | None,
        base_url: str | None,
        timeout: float | None,
        retry: RetryPolicy | None = None,
    ) -> Flow:
        if not isinstance(qrcode, str) or not qrcode:
            raise E.UsageError("qrcode must be the non-empty 'qrcode' value returned by get_bot_qrcode()")
        params = {"qrcode": qrcode}
        if verify_code is not None:
            code = str(verify_code).strip()
            if not code.isdigit():
                raise E.UsageError(f"verify_code must be the digits shown on the phone, got {verify_code!r}")
            params["verify_code"] = code
        send, _ = self._api_send(
            "get_qrcode_status",
            None,
            params=params,
            base_url=base_url,
            timeout=timeout or C.LONG_POLL_TIMEOUT + C.LONG_POLL_GRACE,
        )
        # ``retry``: the login polls with one try each (its flow decides when to poll again, as the official client).
        policy = retry or self.retry
        return api_call(ENDPOINTS["get_qrcode_status"], send, policy, gateway_errors_as_timeout=True)

    def _get_updates_flow(self, get_updates_buf: str | None, timeout: float | None) -> Flow:
        use_own = get_updates_buf is None
        cursor = self.cursor if use_own else get_updates_buf
        if not isinstance(cursor, str):
            raise E.UsageError("get_updates_buf must be the string cursor from the previous page ('' at first)")
        if timeout is None:
            timeout = self.longpolling_timeout_ms / 1000 + C.LONG_POLL_GRACE
        resp = cast(
            m.GetUpdatesResp,
            (yield from self._call("get_updates", m.GetUpdatesReq(get_updates_buf=cursor), timeout=timeout)),
        )
        # As sent: a wrongly typed window is kept in ``extra`` by the model, and ignored here with a warning.
        self._follow_window(resp.raw.get("longpolling_timeout_ms") if resp.raw else resp.longpolling_timeout_ms)
        if use_own and resp.cursor:
            self.cursor = resp.cursor
        for msg in resp.messages:
            self.remember_message(msg)
        return resp

    def _send_message_flow(self, msg: m.WeixinMessage | Mapping[str, Any]) -> Flow:
        message = msg if isinstance(msg, m.WeixinMessage) else _as_model(m.WeixinMessage, msg, "send_message(msg)")
        _require_user(message.to_user_id, "msg.to_user_id")
        if not message.client_id:
            message.client_id = new_client_id()
        if message.from_user_id is None:
            message.from_user_id = ""  # the official client always sends it, empty
        return self._post_message_flow(message.to_wire())

    def _post_message_flow(self, wire: dict[str, Any]) -> Flow:
        """``sendmessage`` with a checked message as wire JSON (``client_id`` set).

        Not retried once the request may have reached the server (see ``RetryPolicy.retry_sends``): a timeout
        or a 5xx raises DeliveryUnknownError with the ``client_id``. A retry, when allowed, sends the same
        bytes, so the same ``client_id``.
        """
        send, body = self._api_send("send_message", {"msg": wire})
        flow = api_call(ENDPOINTS["send_message"], send, self.retry, body=body, client_id=wire["client_id"])
        resp = cast(m.SendMessageResp, (yield from flow))
        resp.client_id = wire["client_id"]
        if resp.message_id is not None:
            # The bot's own messages can be quoted by id too (the official client keeps its sends for that).
            self.history.add(resp.message_id, m.WeixinMessage.from_wire(wire).text)
        self._sent_recent.append((self.server_now(), wire, resp))
        for listener in list(self._sent_listeners):
            try:
                listener(wire, resp)
            except Exception as exc:  # a view's bug must not turn a delivered message into an error
                log.warning("a send listener failed: %s: %s", type(exc).__name__, exc)
        return resp

    def _send_text_flow(
        self,
        to: str | None,
        text: object,
        context_token: str | None,
        chat_id: str | None,
        client_id: str | None,
        max_bytes: int | None = None,
        send_what_fits: bool = False,
        *,
        max_chars: int | None = TEXT_CHUNK_CHARS,
        markdown: str | None = None,
        run_id: str | None = None,
    ) -> Flow:
        user = _resolve_to(to, chat_id)
        if not isinstance(text, str):
            raise E.UsageError(f"text must be a str, got {type(text).__name__}; use str(value) to send it as text")
        if not text:
            raise E.UsageError("text is empty; pass the message to send")
        _check_ids(context_token=context_token, client_id=client_id, run_id=run_id)
        try:
            filtered = apply_markdown(text, markdown)
        except ValueError as exc:
            raise E.UsageError(str(exc)) from None
        if markdown is not None and not filtered.strip():
            raise E.UsageError(
                "the text is empty after the Markdown filter (it held only images or markers), so nothing was sent"
            )
        # Long text (issue 5): each part of a split is its own message, and a split send is checked against
        # the context token's reply budget before the first part goes out, so it is never cut off halfway.
        parts = _split_for_send(filtered, max_bytes, max_chars)
        peer = self.peer(user)
        token = self._reply_token(peer, context_token)
        if len(parts) == 1:
            return (yield from self._send_item_flow(peer, m.MessageItem.text(filtered), token, client_id, run_id))
        size = f"{len(filtered):,} characters, {len(filtered.encode('utf-8')):,} bytes of UTF-8"
        what = f"the text ({size}) splits into {len(parts)} messages and"
        sendable = self._sends_allowed(peer, token, len(parts), what, send_what_fits=send_what_fits)
        answers: list[m.SendMessageResp] = []
        for i, part in enumerate(parts[:sendable]):
            part_id = f"{client_id}-{i + 1}" if client_id else None
            item = m.MessageItem.text(part)
            try:
                answers.append((yield from self._send_item_flow(peer, item, token, part_id, run_id)))
            except E.OpenClawError as exc:
                if answers:
                    exc.add_note(f"parts 1-{len(answers)} of {len(parts)} were sent before this failure")
                raise
        resp = SplitSendResp.from_wire(answers[-1].to_wire())
        resp.raw, resp.client_id = answers[-1].raw, answers[-1].client_id
        resp.parts, resp.unsent = answers, parts[sendable:]
        return resp

    def _reply_token(self, peer: Peer, context_token: str | None) -> str | None:
        """The context token to echo: the one given, else the latest from the user (warns when there is none)."""
        token = context_token or peer.context_token
        if not token:
            log.warning(
                "sending to %s without a context_token: the server usually rejects replies without one "
                "(receive a message from the user first with get_updates())",
                peer.user_id,
            )
        return token

    def _sends_allowed(
        self, peer: Peer, token: str | None, needed: int, what: str, *, send_what_fits: bool = False
    ) -> int:
        """How many of ``needed`` messages to send on ``token``; raises UsageError (nothing sent) when they
        don't fit in the sends left, unless told to send what fits."""
        if not token or token != peer.context_token:
            return needed  # a token this client did not receive: its budget is unknown here
        left = max(0, C.SENDS_PER_CONTEXT_TOKEN - peer.sends_on_token)
        if needed <= left:
            return needed
        if send_what_fits and left:
            log.warning(
                "sending the first %d of %d messages to %s (the context token's budget)", left, needed, peer.user_id
            )
            return left
        fits = f"pass send_what_fits=True to send the first {left}, or " if left else ""
        raise E.UsageError(
            f"{what} only {left} of {C.SENDS_PER_CONTEXT_TOKEN} sends are left on {peer.user_id}'s context token, "
            f"so nothing was sent; {fits}wait for the user's next message (a new context token allows "
            f"{C.SENDS_PER_CONTEXT_TOKEN} more)"
        )

    def _send_item_flow(
        self, peer: Peer, item: m.MessageItem, token: str | None, client_id: str | None, run_id: str | None = None
    ) -> Flow:
        """Send one item to the user as its own message; counts it against the token and explains a -2.

        A send whose fate is unknown (DeliveryUnknownError) is counted too: it may have used one of the sends
        the token allows, and the budget is better too small than too large.
        """
        # Built as wire JSON directly: this is the hot path of every reply, and all of it is checked above.
        wire: dict[str, Any] = {
            "from_user_id": "",
            "to_user_id": peer.user_id,
            "client_id": client_id or new_client_id(),
            "message_type": int(C.MessageType.BOT),
            "message_state": int(C.MessageState.FINISH),
        }
        if token:
            wire["context_token"] = token
        wire["item_list"] = [item.to_wire()]
        if run_id:
            wire["run_id"] = run_id
        try:
            resp = yield from self._post_message_flow(wire)
        except E.SendRejectedError as exc:
            peer.last_error = str(exc.errmsg or exc.code)
            text = item.text_item.text if item.text_item is not None else None
            raise self._explain_rejection(exc, peer, token, len(text.encode("utf-8")) if text else 0) from None
        except E.DeliveryUnknownError as exc:
            peer.last_error = f"delivery unknown (client_id {exc.client_id})"
            if token and token == peer.context_token:
                peer.sends_on_token += 1
            raise
        if token and token == peer.context_token:
            peer.sends_on_token += 1
        peer.last_error = None
        return resp

    def _explain_rejection(
        self, exc: E.SendRejectedError, peer: Peer, token: str | None, text_bytes: int
    ) -> E.SendRejectedError:
        causes = []
        if not token:
            causes.append("no context_token was sent (the user has not written to this client yet)")
        elif token == peer.context_token:
            if peer.sends_on_token >= C.SENDS_PER_CONTEXT_TOKEN:
                causes.append(
                    f"{peer.sends_on_token} sends already made on this context token "
                    f"(limit {C.SENDS_PER_CONTEXT_TOKEN}; wait for the user's next message)"
                )
            else:
                causes.append(f"{peer.sends_on_token} of {C.SENDS_PER_CONTEXT_TOKEN} sends used on this context token")
        if peer.last_inbound_ms is not None:
            causes.append(self._since_last_message(peer.last_inbound_ms))
        if text_bytes > C.MAX_TEXT_BYTES:
            causes.append(f"the text is {text_bytes:,} bytes of UTF-8 (limit about {C.MAX_TEXT_BYTES:,})")
        if exc.errmsg and "rate" in exc.errmsg.lower():
            causes.insert(0, "the server is rate limiting this bot (wait 30 minutes or more)")
        hint = "the server refused the send (-2); likely causes: " + "; ".join(causes or ["unknown"])
        return E.SendRejectedError(exc.endpoint, exc.ret, exc.errcode, exc.errmsg, hint=hint, raw=exc.raw)

    def _get_config_flow(self, user: str, context_token: str | None) -> Flow:
        _require_user(user, "user")
        token = context_token or self.peer(user).context_token
        return self._call("get_config", m.GetConfigReq(ilink_user_id=user, context_token=token))

    def _send_typing_flow(self, user: str, typing_ticket: str, status: int) -> Flow:
        _require_user(user, "user")
        if not isinstance(typing_ticket, str) or not typing_ticket:
            raise E.UsageError("typing_ticket must be the non-empty ticket from get_config(user)")
        if status not in (C.TypingStatus.TYPING, C.TypingStatus.CANCEL):
            raise E.UsageError("status must be 1 (typing) or 2 (cancel)")
        return self._call(
            "send_typing", m.SendTypingReq(ilink_user_id=user, typing_ticket=typing_ticket, status=int(status))
        )

    def _get_upload_url_flow(
        self, request: m.GetUploadUrlReq | Mapping[str, Any] | None, fields: dict[str, Any]
    ) -> Flow:
        if request is None:
            known = {name for name, _kind, _model in m.GetUploadUrlReq._specs()}
            unknown = sorted(set(fields) - known)
            if unknown:
                raise E.UsageError(
                    f"get_upload_url got unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                )
            req = _as_model(m.GetUploadUrlReq, fields, "get_upload_url")
        elif isinstance(request, m.GetUploadUrlReq):
            req = request
        else:
            req = _as_model(m.GetUploadUrlReq, request, "get_upload_url(request)")
        if not req.filekey or req.media_type is None or req.rawsize is None:
            raise E.UsageError("get_upload_url needs at least filekey, media_type and rawsize (see docs/protocol.md)")
        return self._call("get_upload_url", req)

    def _cdn_upload_flow(
        self,
        data: Body,
        upload_param: str | None,
        filekey: str | None,
        full_url: str | None,
        content_length: int | None = None,
    ) -> Flow:
        if data is None:
            raise E.UsageError("cdn_upload needs the ciphertext (bytes, or a function returning chunks)")
        if full_url:
            url, params = full_url, {}
        else:
            if not upload_param or not filekey:
                raise E.UsageError("cdn_upload needs upload_full_url, or both upload_param and filekey")
            url = self.cdn_base_url + CDN_UPLOAD_PATH
            params = {"encrypted_query_param": upload_param, "filekey": filekey}
        headers = {"Content-Type": "application/octet-stream"}
        if content_length is not None:
            # A streamed body would otherwise go out chunked. The length is computed (padded_size of the
            # plaintext), not guessed, and the body checks that it produces exactly that many bytes.
            headers["Content-Length"] = str(content_length)
        send = Send(
            call="cdn_upload",
            method="POST",
            base_url=self.cdn_base_url,
            path=CDN_UPLOAD_PATH,
            params=params,
            headers=headers,
            content=data,
            timeout=CDN_UPLOAD_TIMEOUT,
            url=url,
        )
        return cdn_upload_flow(send, self.retry)

    def _cdn_download_flow(self, encrypt_query_param: str | None, full_url: str | None, max_bytes: int) -> Flow:
        if full_url:
            url, params = full_url, {}
        elif encrypt_query_param:
            url, params = self.cdn_base_url + CDN_DOWNLOAD_PATH, {"encrypted_query_param": encrypt_query_param}
        else:
            raise E.UsageError("cdn_download needs media.full_url or media.encrypt_query_param")
        send = Send(
            call="cdn_download",
            method="GET",
            base_url=self.cdn_base_url,
            path=CDN_DOWNLOAD_PATH,
            params=params,
            headers={},
            content=None,
            timeout=CDN_DOWNLOAD_TIMEOUT,
            url=url,
            max_bytes=max_bytes,
        )
        return cdn_download_flow(send, self.retry)

    # --- shared driver pieces ---------------------------------------------------------------------

    def _build_httpx_request(self, client: httpx.Client | httpx.AsyncClient, send: Send, content: Any) -> httpx.Request:
        """The httpx request for ``send``: what ``client.build_request`` makes, built in fewer steps.

        ``build_request`` merges the client's defaults through several ``Headers`` copies and parses the URL
        anew each time; with the protocol's six headers that is over half the client's own CPU per call. Here
        the URL is parsed once per distinct URL and the headers are put together as one list: the client's
        defaults (User-Agent, Accept...) first, then the request's own, which replace defaults of the same
        name, in the same order ``build_request`` gives. A client holding cookies (the iLink servers set
        none) takes the general path, so cookies keep working.
        """
        params = dict(send.params) if send.params else None
        extensions = {EXT_CALL: send.call, EXT_ATTEMPT: send.attempt}
        try:
            if client.cookies:
                return client.build_request(
                    send.method,
                    send.full_url,
                    params=params,
                    headers=dict(send.headers),
                    content=content,
                    timeout=_timeout(send.timeout),
                    extensions=extensions,
                )
            own = send.headers
            replaced = {name.lower().encode("latin-1") for name in own}
            headers: list[tuple[Any, Any]] = [item for item in client.headers.raw if item[0].lower() not in replaced]
            headers.extend(own.items())
            extensions["timeout"] = _timeout(send.timeout).as_dict()
            return httpx.Request(
                send.method, _url(send.full_url), params=params, headers=headers, content=content, extensions=extensions
            )
        except httpx.InvalidURL as exc:
            raise E.ProtocolError(
                f"{send.call}: {redact_url(send.full_url)!r} is not a usable URL ({exc}); if it came from the server "
                "(a redirect_host or baseurl), the server sent something this client cannot follow",
                endpoint=send.call,
            ) from None


def _url(text: str) -> httpx.URL:
    """A parsed URL: once per distinct API endpoint URL (they repeat; httpx URLs are immutable). URLs with a
    query (CDN upload and download URLs) are parsed each time: they are one-offs, and hold secret parameters
    a process-wide cache must not keep."""
    return httpx.URL(text) if "?" in text else _endpoint_url(text)


@functools.lru_cache(maxsize=256)
def _endpoint_url(text: str) -> httpx.URL:
    return httpx.URL(text)


@functools.lru_cache(maxsize=64)
def _timeout(seconds: float) -> httpx.Timeout:
    """A request's httpx timeout: ``seconds`` to read, write and wait for the pool, but connecting never waits
    longer than ``constants.CONNECT_TIMEOUT`` (a long poll may wait 45 s for its answer; a dead host should
    not take that long to report)."""
    return httpx.Timeout(seconds, connect=min(seconds, C.CONNECT_TIMEOUT))


def _check_url(name: str, url: object) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise E.UsageError(f"{name} must be an http:// or https:// URL, got {url!r}")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise E.UsageError(f"{name} {url!r} is not a valid URL ({exc})") from None


def _as_model(cls: type[M], value: object, what: str) -> M:
    """A caller's dict as a wire model, or a UsageError naming the field with the wrong JSON type."""
    if not isinstance(value, Mapping):
        raise E.UsageError(f"{what} takes a {cls.__name__} or a dict of its wire fields, got {type(value).__name__}")
    try:
        return cls.from_wire(dict(value), strict=True)
    except m.WireTypeError as exc:
        raise E.UsageError(f"{what}: {exc} (field types are listed in docs/protocol.md)") from None


def _resolve_to(to: str | None, chat_id: str | None) -> str:
    if to is not None and chat_id is not None and to != chat_id:
        raise E.UsageError("pass the user as `to` or as `chat_id` (the seed article's name), not both")
    return _require_user(to if to is not None else chat_id, "to")


def _split_for_send(text: str, max_bytes: int | None, max_chars: int | None = TEXT_CHUNK_CHARS) -> list[str]:
    limit = C.MAX_TEXT_BYTES if max_bytes is None else max_bytes
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 4:
        raise E.UsageError(f"max_bytes must be an int of at least 4 (bytes of UTF-8 per message), got {max_bytes!r}")
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1):
        raise E.UsageError(
            f"max_chars must be an int of at least 1 (characters per message; default {TEXT_CHUNK_CHARS:,}, as the "
            f"official client) or None (split by bytes only), got {max_chars!r}"
        )
    try:
        return split_text(text, limit, max_chars)
    except UnicodeEncodeError:
        raise E.UsageError("text contains characters that have no UTF-8 form (lone surrogates)") from None


def _check_ids(**values: str | None) -> None:
    """Optional ids given by the caller (``client_id``, ``run_id``, ``context_token``): non-empty strings."""
    for name, value in values.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise E.UsageError(f"{name} must be a non-empty string or None (the default picks it for you)")


def new_run_id() -> str:
    """A fresh ``run_id`` (a UUID), as the official client makes one per inbound message it answers: pass the
    same one to every send of one reply (``send_text(..., run_id=...)``, ``send_image(..., run_id=...)``)."""
    return str(uuid.uuid4())


def _log_sleep(action: Sleep) -> None:
    log.info("retrying in %.2f s (%s)", action.seconds, action.reason)


class Client(LoginMixin, UpdatesMixin, LiveMixin, MediaMixin, BroadcastMixin, BaseClient):
    """Synchronous iLink client over one pooled ``httpx.Client``.

    >>> with Client(token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url) as client:
    ...     page = client.get_updates()
    ...     client.send_text(page.messages[0].from_user_id, "hello")
    """

    @_named_keywords
    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str = C.DEFAULT_BASE_URL,
        cdn_base_url: str = C.DEFAULT_CDN_BASE_URL,
        bot_id: str | None = None,
        app_id: str = C.DEFAULT_APP_ID,
        client_version: str = C.PROTOCOL_CLIENT_VERSION,
        bot_agent: str = DEFAULT_BOT_AGENT,
        route_tag: str | None = None,
        retry: RetryPolicy | None = None,
        record: bool = True,
        log_size: int = 1000,
        redact: bool = True,
        log_bytes: int | LogBudget | None = DEFAULT_LOG_BYTES,
        max_response_bytes: int = C.MAX_API_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
        engine: str | None = None,
    ) -> None:
        """``token``: the bot token of a QR login (or None, then log in with :meth:`login`). ``base_url`` and
        ``cdn_base_url``: the API and CDN hosts. ``bot_id``: the bot's id (from the login). ``app_id``,
        ``client_version``, ``bot_agent``, ``route_tag``: the identity headers (the official client's by
        default). ``retry``: a :class:`RetryPolicy`. ``record``/``log_size``/``redact``: the protocol log in
        ``client.log`` (the last ``log_size`` exchanges, secrets redacted); ``log_bytes``: its memory budget
        (bytes, or a ``LogBudget`` shared with other clients; oldest exchanges dropped first).
        ``max_response_bytes``: the largest API answer read (32 MiB; a larger one is a ``ProtocolError``).
        ``transport``: an httpx transport (tests, proxies); without one, clients share one TLS context.
        ``engine``: the HTTP engine of the async work this client does for you (the QR login's poll): as
        :class:`AsyncClient`'s; its own calls go through ``httpx.Client``."""
        self.engine = resolve_engine(engine)
        super().__init__(
            token,
            base_url=base_url,
            cdn_base_url=cdn_base_url,
            bot_id=bot_id,
            app_id=app_id,
            client_version=client_version,
            bot_agent=bot_agent,
            route_tag=route_tag,
            retry=retry,
            record=record,
            log_size=log_size,
            redact=redact,
            log_bytes=log_bytes,
            max_response_bytes=max_response_bytes,
        )
        inner = transport or httpx.HTTPTransport(limits=DEFAULT_LIMITS, verify=shared_ssl_context())
        if self.log is not None:
            inner = self.log.wrap(inner)
        self._http = httpx.Client(transport=inner, follow_redirects=False, headers=USER_AGENT)
        self._sleep = time.sleep

    # --- driver ---

    def async_twin(self) -> AsyncClient:
        """An :class:`AsyncClient` that acts as this client on another event loop: the same settings, token
        and HTTP engine, recording into this client's log, sharing its per-user state (context tokens, reply
        budget), quote history, drift log and send listeners. The QR login in a kernel and the broadcasts of
        a sync client run on one; close it with ``await twin.aclose()`` (this client's log stays open)."""
        transport = async_transport(self.engine, ENGINE_LIMITS[self.engine], shared_ssl_context())
        if self.log is not None:
            transport = self.log.wrap_async(transport)
        ident = self.identity
        twin = AsyncClient(
            self.token,
            base_url=self.base_url,
            cdn_base_url=self.cdn_base_url,
            bot_id=self.bot_id,
            app_id=ident.app_id,
            client_version=ident.client_version,
            bot_agent=ident.bot_agent,
            route_tag=ident.route_tag,
            retry=self.retry,
            record=False,
            transport=transport,
            max_response_bytes=self.max_response_bytes,
        )
        twin.engine = self.engine
        twin.log = self.log
        twin.peers = self.peers
        twin.history = self.history
        twin.drift_log = self.drift_log
        twin._sent_listeners = self._sent_listeners
        twin._sent_recent = self._sent_recent
        twin._clock_offset, twin._last_date = self._clock_offset, self._last_date
        return twin

    def _run(self, flow: Flow) -> Any:
        with collecting(self.drift_log):
            try:
                action = next(flow)
                while True:
                    if isinstance(action, Sleep):
                        _log_sleep(action)
                        self._sleep(action.seconds)
                        action = flow.send(None)
                    else:
                        action = flow.send(self._transmit(action))
            except StopIteration as stop:
                return stop.value

    def _transmit(self, send: Send) -> Reply | Failure:
        content = send.content() if callable(send.content) else send.content
        request = self._build_httpx_request(self._http, send, content)
        try:
            response = self._http.send(request, stream=True)
            self._note_date(response.headers)
            try:
                cap = self.max_response_bytes if send.max_bytes is None else send.max_bytes
                if _declared_length(response.headers) > cap:  # refused unread
                    return Reply(response.status_code, response.headers, b"", True, cap)
                return Reply(response.status_code, response.headers, *_read_capped(response.iter_bytes(), cap), cap)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            return Failure(exc, timeout=True, not_sent=isinstance(exc, _NOT_SENT))
        except httpx.RequestError as exc:  # refused, reset, broken encoding: no usable answer
            return Failure(exc, not_sent=isinstance(exc, _NOT_SENT))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- endpoints ---

    def get_bot_qrcode(self, local_token_list: Iterable[str] | None = None) -> m.QrCodeResp:
        """``POST get_bot_qrcode``: a new login QR (``qrcode`` id and ``qrcode_img_content`` URL)."""
        return cast(m.QrCodeResp, self._run(self._get_bot_qrcode_flow(local_token_list)))

    def get_qrcode_status(
        self, qrcode: str, verify_code: str | None = None, *, base_url: str | None = None, timeout: float | None = None
    ) -> m.QrStatusResp:
        """Long-poll a QR's status; a client-side timeout or gateway error reads as ``wait``."""
        return cast(m.QrStatusResp, self._run(self._get_qrcode_status_flow(qrcode, verify_code, base_url, timeout)))

    def get_updates(self, get_updates_buf: str | None = None, *, timeout: float | None = None) -> m.GetUpdatesResp:
        """One long poll for messages. With no cursor, uses and advances ``client.cursor``."""
        return cast(m.GetUpdatesResp, self._run(self._get_updates_flow(get_updates_buf, timeout)))

    def send_message(self, msg: m.WeixinMessage | Mapping[str, Any]) -> m.SendMessageResp:
        """``POST sendmessage`` with a whole message (a ``client_id`` is filled in when missing)."""
        return cast(m.SendMessageResp, self._run(self._send_message_flow(msg)))

    def send_text(
        self,
        to: str | None = None,
        text: str | None = None,
        context_token: str | None = None,
        *,
        chat_id: str | None = None,
        client_id: str | None = None,
        max_bytes: int | None = None,
        send_what_fits: bool = False,
        max_chars: int | None = TEXT_CHUNK_CHARS,
        markdown: str | None = None,
        run_id: str | None = None,
    ) -> m.SendMessageResp:
        """Send ``text`` to a user, echoing the latest ``context_token`` seen from them.

        Text over ``max_chars`` characters (default 4,000, as the official client) or ``max_bytes`` of UTF-8
        (default 16 KiB, the server's limit) goes out as several messages, split at paragraph, sentence, then
        character boundaries; if they exceed the sends left on the context token nothing is sent (UsageError)
        unless ``send_what_fits=True``. A split send returns a ``SplitSendResp``. ``markdown="official"`` first
        passes the text through the official client's Markdown filter (images dropped, H5/H6 markers and
        emphasis around CJK text removed). ``run_id`` tags the message as part of one reply (the official
        client sends one UUID per inbound message it answers); ``client_id`` re-sends a message whose delivery
        is unknown under its first id (see DeliveryUnknownError).

        >>> client.send_text("abc@im.wechat", "hello")          # or chat_id="abc@im.wechat"
        """
        flow = self._send_text_flow(
            to,
            text,
            context_token,
            chat_id,
            client_id,
            max_bytes,
            send_what_fits,
            max_chars=max_chars,
            markdown=markdown,
            run_id=run_id,
        )
        return cast(m.SendMessageResp, self._run(flow))

    def get_upload_url(
        self, request: m.GetUploadUrlReq | Mapping[str, Any] | None = None, **fields: Any
    ) -> m.GetUploadUrlResp:
        """``POST getuploadurl`` (fields as in docs/protocol.md: filekey, media_type, rawsize, ...)."""
        return cast(m.GetUploadUrlResp, self._run(self._get_upload_url_flow(request, fields)))

    def get_config(self, user: str, context_token: str | None = None) -> m.GetConfigResp:
        """``POST getconfig``: the user's ``typing_ticket``."""
        return cast(m.GetConfigResp, self._run(self._get_config_flow(user, context_token)))

    def send_typing(self, user: str, typing_ticket: str, status: int = C.TypingStatus.TYPING) -> m.SendTypingResp:
        """``POST sendtyping``: status 1 shows the typing indicator, 2 cancels it."""
        return cast(m.SendTypingResp, self._run(self._send_typing_flow(user, typing_ticket, status)))

    def notify_start(self) -> m.NotifyResp:
        """``POST msg/notifystart``: this client starts serving the account."""
        return cast(m.NotifyResp, self._run(self._call("notify_start")))

    def notify_stop(self) -> m.NotifyResp:
        """``POST msg/notifystop``: this client stops serving the account."""
        return cast(m.NotifyResp, self._run(self._call("notify_stop")))

    def cdn_upload(
        self, data: Body, *, upload_param: str | None = None, filekey: str | None = None, full_url: str | None = None
    ) -> str:
        """POST ciphertext to the CDN; returns the ``x-encrypted-param`` download parameter."""
        return cast(str, self._run(self._cdn_upload_flow(data, upload_param, filekey, full_url)))

    def cdn_download(
        self,
        encrypt_query_param: str | None = None,
        *,
        full_url: str | None = None,
        max_bytes: int = C.MAX_MEDIA_DOWNLOAD_BYTES,
    ) -> bytes:
        """GET ciphertext from the CDN (``full_url`` preferred when given), capped at ``max_bytes``."""
        return cast(bytes, self._run(self._cdn_download_flow(encrypt_query_param, full_url, max_bytes)))


class AsyncClient(AsyncLoginMixin, AsyncUpdatesMixin, AsyncLiveMixin, AsyncMediaMixin, AsyncBroadcastMixin, BaseClient):
    """Asynchronous twin of :class:`Client`: same constructor and methods, awaited.

    >>> async with AsyncClient(token, base_url=sim.base_url) as client:
    ...     page = await client.get_updates()
    """

    @_named_keywords
    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str = C.DEFAULT_BASE_URL,
        cdn_base_url: str = C.DEFAULT_CDN_BASE_URL,
        bot_id: str | None = None,
        app_id: str = C.DEFAULT_APP_ID,
        client_version: str = C.PROTOCOL_CLIENT_VERSION,
        bot_agent: str = DEFAULT_BOT_AGENT,
        route_tag: str | None = None,
        retry: RetryPolicy | None = None,
        record: bool = True,
        log_size: int = 1000,
        redact: bool = True,
        log_bytes: int | LogBudget | None = DEFAULT_LOG_BYTES,
        max_response_bytes: int = C.MAX_API_RESPONSE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        engine: str | None = None,
    ) -> None:
        """``token``: the bot token of a QR login (or None, then log in with :meth:`login`). ``base_url`` and
        ``cdn_base_url``: the API and CDN hosts. ``bot_id``: the bot's id (from the login). ``app_id``,
        ``client_version``, ``bot_agent``, ``route_tag``: the identity headers (the official client's by
        default). ``retry``: a :class:`RetryPolicy`. ``record``/``log_size``/``redact``: the protocol log in
        ``client.log`` (the last ``log_size`` exchanges, secrets redacted); ``log_bytes``: its memory budget
        (bytes, or a ``LogBudget`` shared with other clients; oldest exchanges dropped first).
        ``max_response_bytes``: the largest API answer read (32 MiB; a larger one is a ``ProtocolError``).
        ``transport``: an httpx transport (tests, proxies); without one, clients share one TLS context.
        ``engine``: ``"aiohttp"`` (aiohttp's connection pool, through httpx-aiohttp: much faster with many
        requests in flight), ``"httpcore"`` (httpx's own) or ``"auto"`` (aiohttp when httpx-aiohttp is
        installed); None reads ``$OPENCLAW_NB_ASYNC_ENGINE``, else ``"auto"``. Both behave the same (errors,
        timeouts, retries, the recorder); ``client.engine`` says which one runs (``"transport"`` when
        ``transport=`` was given)."""
        if transport is not None and engine is not None:
            raise E.UsageError(
                f"AsyncClient(engine={engine!r}) and transport= both choose the HTTP engine: give one of them"
            )
        self.engine = "transport" if transport is not None else resolve_engine(engine)
        super().__init__(
            token,
            base_url=base_url,
            cdn_base_url=cdn_base_url,
            bot_id=bot_id,
            app_id=app_id,
            client_version=client_version,
            bot_agent=bot_agent,
            route_tag=route_tag,
            retry=retry,
            record=record,
            log_size=log_size,
            redact=redact,
            log_bytes=log_bytes,
            max_response_bytes=max_response_bytes,
        )
        inner = transport or async_transport(self.engine, ENGINE_LIMITS[self.engine], shared_ssl_context())
        if self.log is not None:
            inner = self.log.wrap_async(inner)
        self._http = httpx.AsyncClient(transport=inner, follow_redirects=False, headers=USER_AGENT)
        self._sleep = asyncio.sleep

    # --- driver ---

    async def _run(self, flow: Flow) -> Any:
        with collecting(self.drift_log):
            try:
                action = next(flow)
                while True:
                    if isinstance(action, Sleep):
                        _log_sleep(action)
                        await self._sleep(action.seconds)
                        action = flow.send(None)
                    else:
                        action = flow.send(await self._transmit(action))
            except StopIteration as stop:
                return stop.value

    async def _transmit(self, send: Send) -> Reply | Failure:
        content: Any = send.content
        if callable(content):
            content = _aiter(content())
        request = self._build_httpx_request(self._http, send, content)
        try:
            response = await self._http.send(request, stream=True)
            self._note_date(response.headers)
            try:
                cap = self.max_response_bytes if send.max_bytes is None else send.max_bytes
                if _declared_length(response.headers) > cap:  # refused unread
                    return Reply(response.status_code, response.headers, b"", True, cap)
                body, truncated = await _aread_capped(response.aiter_bytes(), cap)
                return Reply(response.status_code, response.headers, body, truncated, cap)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            return Failure(exc, timeout=True, not_sent=isinstance(exc, _NOT_SENT))
        except httpx.RequestError as exc:  # refused, reset, broken encoding: no usable answer
            return Failure(exc, not_sent=isinstance(exc, _NOT_SENT))

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, engine={self.engine!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- endpoints ---

    async def get_bot_qrcode(self, local_token_list: Iterable[str] | None = None) -> m.QrCodeResp:
        """``POST get_bot_qrcode``: a new login QR (``qrcode`` id and ``qrcode_img_content`` URL)."""
        return cast(m.QrCodeResp, await self._run(self._get_bot_qrcode_flow(local_token_list)))

    async def get_qrcode_status(
        self, qrcode: str, verify_code: str | None = None, *, base_url: str | None = None, timeout: float | None = None
    ) -> m.QrStatusResp:
        """Long-poll a QR's status; a client-side timeout or gateway error reads as ``wait``."""
        return cast(
            m.QrStatusResp, await self._run(self._get_qrcode_status_flow(qrcode, verify_code, base_url, timeout))
        )

    async def get_updates(
        self, get_updates_buf: str | None = None, *, timeout: float | None = None
    ) -> m.GetUpdatesResp:
        """One long poll for messages. With no cursor, uses and advances ``client.cursor``."""
        return cast(m.GetUpdatesResp, await self._run(self._get_updates_flow(get_updates_buf, timeout)))

    async def send_message(self, msg: m.WeixinMessage | Mapping[str, Any]) -> m.SendMessageResp:
        """``POST sendmessage`` with a whole message (a ``client_id`` is filled in when missing)."""
        return cast(m.SendMessageResp, await self._run(self._send_message_flow(msg)))

    async def send_text(
        self,
        to: str | None = None,
        text: str | None = None,
        context_token: str | None = None,
        *,
        chat_id: str | None = None,
        client_id: str | None = None,
        max_bytes: int | None = None,
        send_what_fits: bool = False,
        max_chars: int | None = TEXT_CHUNK_CHARS,
        markdown: str | None = None,
        run_id: str | None = None,
    ) -> m.SendMessageResp:
        """Send ``text`` to a user, echoing the latest ``context_token`` seen from them (split, filtered and
        tagged as in :meth:`Client.send_text`)."""
        flow = self._send_text_flow(
            to,
            text,
            context_token,
            chat_id,
            client_id,
            max_bytes,
            send_what_fits,
            max_chars=max_chars,
            markdown=markdown,
            run_id=run_id,
        )
        return cast(m.SendMessageResp, await self._run(flow))

    async def get_upload_url(
        self, request: m.GetUploadUrlReq | Mapping[str, Any] | None = None, **fields: Any
    ) -> m.GetUploadUrlResp:
        """``POST getuploadurl`` (fields as in docs/protocol.md: filekey, media_type, rawsize, ...)."""
        return cast(m.GetUploadUrlResp, await self._run(self._get_upload_url_flow(request, fields)))

    async def get_config(self, user: str, context_token: str | None = None) -> m.GetConfigResp:
        """``POST getconfig``: the user's ``typing_ticket``."""
        return cast(m.GetConfigResp, await self._run(self._get_config_flow(user, context_token)))

    async def send_typing(self, user: str, typing_ticket: str, status: int = C.TypingStatus.TYPING) -> m.SendTypingResp:
        """``POST sendtyping``: status 1 shows the typing indicator, 2 cancels it."""
        return cast(m.SendTypingResp, await self._run(self._send_typing_flow(user, typing_ticket, status)))

    async def notify_start(self) -> m.NotifyResp:
        """``POST msg/notifystart``: this client starts serving the account."""
        return cast(m.NotifyResp, await self._run(self._call("notify_start")))

    async def notify_stop(self) -> m.NotifyResp:
        """``POST msg/notifystop``: this client stops serving the account."""
        return cast(m.NotifyResp, await self._run(self._call("notify_stop")))

    async def cdn_upload(
        self, data: Body, *, upload_param: str | None = None, filekey: str | None = None, full_url: str | None = None
    ) -> str:
        """POST ciphertext to the CDN; returns the ``x-encrypted-param`` download parameter."""
        return cast(str, await self._run(self._cdn_upload_flow(data, upload_param, filekey, full_url)))

    async def cdn_download(
        self,
        encrypt_query_param: str | None = None,
        *,
        full_url: str | None = None,
        max_bytes: int = C.MAX_MEDIA_DOWNLOAD_BYTES,
    ) -> bytes:
        """GET ciphertext from the CDN (``full_url`` preferred when given), capped at ``max_bytes``."""
        return cast(bytes, await self._run(self._cdn_download_flow(encrypt_query_param, full_url, max_bytes)))


def _declared_length(headers: httpx.Headers) -> int:
    """The answer's ``Content-Length`` (-1 when absent or unreadable: then only reading tells)."""
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else -1


#: What a body over its cap keeps of its beginning: enough for an error message, never the whole cap again.
_TRUNCATED_HEAD = 64 * 1024


def _head(kept: list[bytes]) -> bytes:
    head = bytearray()
    for chunk in kept:
        head += chunk[: _TRUNCATED_HEAD - len(head)]
        if len(head) >= _TRUNCATED_HEAD:
            break
    return bytes(head)


def _read_capped(chunks: Iterable[bytes], cap: int) -> tuple[bytes, bool]:
    # A list of chunks joined once: one copy of the body at the end, none while it grows.
    kept: list[bytes] = []
    size = 0
    for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        if size > cap:
            return _head(kept), True
    return b"".join(kept), False


async def _aread_capped(chunks: AsyncIterator[bytes], cap: int) -> tuple[bytes, bool]:
    kept: list[bytes] = []
    size = 0
    async for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        if size > cap:
            return _head(kept), True
    return b"".join(kept), False


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
