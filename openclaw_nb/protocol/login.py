"""The QR login as a sans-I/O flow: which request comes next, what every status means, when to give up.

Theory of operation: :func:`login_flow` is a generator in the style of :mod:`.flow`. It yields
:class:`~.flow.Send` (through the client's ``get_bot_qrcode`` / ``get_qrcode_status`` flows, passed in as
callables) and :class:`~.flow.Sleep`, and returns a :class:`LoginResult`. It talks to the world outside the
wire through a :class:`LoginSession`: the session carries the user's input (a verify code, a cancel) *into*
the flow and reports progress *out of* it as frozen event dataclasses (``QrIssued``, ``StatusChanged``,
``VerifyCodeRequested``, ...), each with a ready-made sentence, so the widget, the terminal view and the logs
all say the same thing. The flow never waits on anything but a ``Sleep``: while the user types a verify code
it yields short sleeps and looks at the session again, so both drivers' ``_run`` can drive it unchanged.

It behaves like the official client: a status poll that fails in any way (a timeout, any HTTP error such as a
gateway's 524, a body that is not JSON, a network error) reads as ``wait`` and the flow polls again after a short
pause, until the deadline or a cancel; a ``scaned_but_redirect`` host stays the polling base for the rest of the
login; a typed verify code goes out with every poll until the server's verdict; a QR code is replaced only when
the server says ``expired`` or ``verify_code_blocked`` (3 codes in all), never on a timer of its own.

The session's final state (``confirmed`` / ``failed`` / ``cancelled``) is set by whoever drives the flow, via
:meth:`LoginSession.finish`, after it has applied and saved the credentials: only then is the login over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from .. import errors as E
from . import constants as C
from .flow import Flow, Sleep
from .models import QrCodeResp, QrStatusResp
from .redact import redact, redact_url

log = logging.getLogger("openclaw_nb.login")

#: The official client polls again about 1 s after each answer (docs/protocol.md, "QR login").
QR_POLL_INTERVAL = 1.0
#: Pause after a status poll that failed: the official client's poll spacing, so a server that answers errors
#: at once is not hammered.
QR_FAILURE_PAUSE = 1.0
#: Field names a server may use to say how long a QR code lives, in seconds (none is documented yet; the
#: countdown assumes :data:`~.constants.QR_ACTIVE_SECONDS`). Read when present, never required.
QR_LIFETIME_FIELDS = ("expire_seconds", "expires_in", "qrcode_expire_seconds")


class LoginState:
    """Where a login stands. Our own words (the wire's statuses are :class:`~.constants.QrStatus`)."""

    STARTING = "starting"
    WAITING = "waiting"  # a QR code is shown, nobody has scanned it yet
    SCANNED = "scanned"  # scanned; the user still has to confirm on the phone
    NEED_VERIFY_CODE = "need_verify_code"  # the phone shows digits the user must type here
    VERIFYING = "verifying_code"  # a typed code is on its way to the server
    CONFIRMED = "confirmed"  # logged in (new token, or the saved one after binded_redirect)
    FAILED = "failed"
    CANCELLED = "cancelled"

    FINAL = (CONFIRMED, FAILED, CANCELLED)


class Outcome:
    """Why a login ended: :attr:`LoginResult.outcome`."""

    CONFIRMED = "confirmed"  # new token
    BINDED = "binded_redirect"  # already bound: the saved token goes on
    EXPIRED = "expired"  # every QR code expired (or was blocked)
    DEADLINE = "deadline"  # the overall deadline passed (failed status polls only end a login here)
    CANCELLED = "cancelled"
    ERROR = "error"  # no QR code could be fetched, or the final answer was unusable


@dataclass(frozen=True)
class LoginConfig:
    """Knobs of a login. Defaults are the official client's; tests shrink the times.

    >>> LoginConfig(deadline=60, poll_interval=0.05)
    """

    #: Give up after this many seconds in all.
    deadline: float = C.LOGIN_DEADLINE_SECONDS
    #: QR codes in all (the first plus refreshes) before giving up.
    max_qr_codes: int = C.MAX_QR_CODES
    #: Pause after each status answer before polling again.
    poll_interval: float = QR_POLL_INTERVAL
    #: Pause after a status poll that failed (it reads as ``wait``) before polling again.
    failure_pause: float = QR_FAILURE_PAUSE
    #: How long a QR code is expected to live when the server does not say. Only the countdown uses it: the
    #: server decides when a code expires, and only its ``expired`` replaces the code.
    qr_active_seconds: float = C.QR_ACTIVE_SECONDS
    #: Client-side timeout of one status long poll; ``None`` is the client's long-poll default.
    poll_timeout: float | None = None
    #: How often to look for a typed verify code or a cancel while waiting for the user.
    input_check_interval: float = 0.2

    def __post_init__(self) -> None:
        if self.max_qr_codes < 1:
            raise E.UsageError("max_qr_codes counts all QR codes, the first included, and must be >= 1")
        for name in ("deadline", "qr_active_seconds", "input_check_interval"):
            if getattr(self, name) <= 0:
                raise E.UsageError(f"{name} must be a positive number of seconds")
        for name in ("poll_interval", "failure_pause"):
            if getattr(self, name) < 0:
                raise E.UsageError(f"{name} must be >= 0 seconds")
        if self.poll_timeout is not None and self.poll_timeout <= 0:
            raise E.UsageError("poll_timeout must be a positive number of seconds or None")


class SavedLogin(Protocol):
    """What the flow needs of a saved account (``store.Credentials`` fits)."""

    @property
    def bot_token(self) -> str: ...
    @property
    def ilink_bot_id(self) -> str: ...
    @property
    def baseurl(self) -> str: ...
    @property
    def ilink_user_id(self) -> str | None: ...


@dataclass(frozen=True, repr=False)
class LoginCredentials:
    """What a successful login yields. ``repr`` never shows the whole token."""

    bot_token: str
    ilink_bot_id: str
    baseurl: str
    ilink_user_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"LoginCredentials(ilink_bot_id={self.ilink_bot_id!r}, baseurl={self.baseurl!r}, "
            f"ilink_user_id={self.ilink_user_id!r}, bot_token={redact(self.bot_token)})"
        )

    @classmethod
    def of(cls, saved: SavedLogin) -> LoginCredentials:
        return cls(saved.bot_token, saved.ilink_bot_id, saved.baseurl, saved.ilink_user_id)


@dataclass(frozen=True, repr=False)
class LoginResult:
    """How a login ended. ``ok`` with ``credentials`` on success; ``reason`` and ``hint`` otherwise."""

    ok: bool
    outcome: str
    credentials: LoginCredentials | None = None
    reason: str = ""
    hint: str = ""
    qr_codes: int = 0
    elapsed: float = 0.0
    #: Where the credentials were saved (set by the client after saving).
    saved_to: str | None = None
    #: Bot ids of older saved logins of the same WeChat user that this login supersedes and that are still
    #: saved (their tokens no longer go into ``local_token_list``; ``forget_superseded()`` removes them).
    superseded: tuple[str, ...] = ()
    #: Bot ids of the superseded logins removed after this login (``login(forget_superseded=True)``).
    forgotten: tuple[str, ...] = ()

    @property
    def bot_id(self) -> str | None:
        return self.credentials.ilink_bot_id if self.credentials else None

    @property
    def user_id(self) -> str | None:
        """The WeChat user who scanned (``ilink_user_id``)."""
        return self.credentials.ilink_user_id if self.credentials else None

    @property
    def new_token(self) -> bool:
        """True when the server issued a new token (``confirmed``), False when the saved one goes on."""
        return self.ok and self.outcome == Outcome.CONFIRMED

    @property
    def message(self) -> str:
        """One sentence for people: who logged in, or why not and what to do."""
        if self.ok and self.credentials:
            creds = self.credentials
            who = f", scanned by {creds.ilink_user_id}" if creds.ilink_user_id else ""
            if self.outcome == Outcome.BINDED:
                return f"Already bound to this client: using the saved login of bot {creds.ilink_bot_id}{who}"
            return f"Logged in as bot {creds.ilink_bot_id}{who}"
        text = self.reason or "The login did not complete"
        return f"{text}. {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        parts = [f"ok={self.ok}", f"outcome={self.outcome!r}"]
        if self.credentials is not None:
            parts.append(f"credentials={self.credentials!r}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        if self.saved_to:
            parts.append(f"saved_to={self.saved_to!r}")
        if self.superseded:
            parts.append(f"superseded={self.superseded!r}")
        if self.forgotten:
            parts.append(f"forgotten={self.forgotten!r}")
        parts.append(f"qr_codes={self.qr_codes}")
        return f"LoginResult({', '.join(parts)})"


@dataclass(frozen=True)
class QrCode:
    """One issued QR code: the opaque id to poll, the URL to show, and its place in the refresh count."""

    qrcode: str
    url: str
    number: int
    of: int
    issued_at: float
    lifetime: float

    @property
    def expires_at(self) -> float:
        return self.issued_at + self.lifetime


# --- events: what the flow reports; ``state`` is the session's state after the event ------------------


@dataclass(frozen=True, kw_only=True)
class LoginEvent:
    state: str
    message: str


@dataclass(frozen=True, kw_only=True)
class QrIssued(LoginEvent):
    """A QR code to show. ``reason``: ``first``, ``expired`` or ``blocked`` (too many wrong verify codes)."""

    qr: QrCode
    reason: str


@dataclass(frozen=True, kw_only=True)
class StatusChanged(LoginEvent):
    """The server's status moved (``status`` is the wire value)."""

    status: str


@dataclass(frozen=True, kw_only=True)
class VerifyCodeRequested(LoginEvent):
    """The user must type the digits shown on the phone; ``wrong`` when the previous code was refused."""

    wrong: bool


@dataclass(frozen=True, kw_only=True)
class VerifyCodeSent(LoginEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class Redirected(LoginEvent):
    """``scaned_but_redirect``: status polls go to ``base_url`` for the rest of the login (new QR codes too)."""

    host: str
    base_url: str


@dataclass(frozen=True, kw_only=True)
class PollFailed(LoginEvent):
    """A status poll got no usable answer (HTTP error, gateway error, a body that is not JSON, a network error).

    It reads as ``wait``: the state stays, and the flow polls again after ``LoginConfig.failure_pause``.
    ``failures`` counts the failed polls in a row; ``error`` says what went wrong (no secrets in it).
    """

    error: str
    failures: int


@dataclass(frozen=True, kw_only=True)
class PollRecovered(LoginEvent):
    """The first usable answer after ``failures`` failed status polls in a row."""

    failures: int


@dataclass(frozen=True, kw_only=True)
class Finished(LoginEvent):
    result: LoginResult


Listener = Callable[[LoginEvent], None]


class LoginSession:
    """The flow's window on the world: user input in (verify code, cancel), events and state out.

    Listeners run synchronously in the driver's thread; one that raises is logged and skipped (a broken view
    must not break a login), except for ``KeyboardInterrupt``/``SystemExit``, which end it.
    """

    def __init__(self, config: LoginConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or LoginConfig()
        self.clock = clock
        self.state = LoginState.STARTING
        self.message = "Fetching a QR code…"
        self.qr: QrCode | None = None
        self.result: LoginResult | None = None
        self.events: list[LoginEvent] = []
        self.started_at: float | None = None
        self.cancelled = False
        self._pending_code: str | None = None
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"LoginSession(state={self.state!r}, message={self.message!r})"

    # --- for views and callers ---

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on every event from now on; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    @property
    def done(self) -> bool:
        return self.state in LoginState.FINAL

    @property
    def needs_verify_code(self) -> bool:
        return self.state == LoginState.NEED_VERIFY_CODE and self._pending_code is None

    def submit_code(self, code: object) -> None:
        """Hand over the digits shown on the phone; they go out with the next status poll.

        >>> session.submit_code("123456")
        """
        text = str(code).strip() if code is not None else ""
        if not text.isdigit():
            raise E.UsageError(f"the verify code is the digits shown on the phone, got {text!r}")
        if self.state != LoginState.NEED_VERIFY_CODE:
            raise E.UsageError(f"no verify code was asked for (the login is {self.state})")
        self._pending_code = text

    def cancel(self) -> None:
        """Stop at the next step; the driver then finishes the session as cancelled."""
        self.cancelled = True

    def qr_seconds_left(self, now: float | None = None) -> float | None:
        """Seconds before the current QR code expires (by its lifetime), or None when there is none."""
        if self.qr is None or self.done:
            return None
        return max(0.0, self.qr.expires_at - (self.clock() if now is None else now))

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds before the whole login's deadline, or None before it starts."""
        if self.started_at is None or self.done:
            return None
        return max(0.0, self.started_at + self.config.deadline - (self.clock() if now is None else now))

    # --- for the flow and the driver ---

    def emit(self, event: LoginEvent) -> None:
        self.events.append(event)
        self.state = event.state
        self.message = event.message
        if isinstance(event, QrIssued):
            self.qr = event.qr
        log.log(logging.WARNING if isinstance(event, PollFailed) else logging.INFO, "login: %s", event.message)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("a login listener failed on %s", type(event).__name__)

    def take_code(self) -> str | None:
        code, self._pending_code = self._pending_code, None
        return code

    def finish(self, result: LoginResult) -> LoginResult:
        """End the login with ``result`` (idempotent: the first result stays)."""
        if self.result is not None:
            return self.result
        if self.started_at is not None and not result.elapsed:
            result = replace(result, elapsed=self.clock() - self.started_at)
        if self.qr is not None and not result.qr_codes:
            result = replace(result, qr_codes=self.qr.number)
        self.result = result
        if result.ok:
            state = LoginState.CONFIRMED
        elif result.outcome == Outcome.CANCELLED:
            state = LoginState.CANCELLED
        else:
            state = LoginState.FAILED
        self.emit(Finished(state=state, message=result.message, result=result))
        return result


# --- pure helpers ---------------------------------------------------------------------------------------


def redirect_base(current_base: str, redirect_host: str) -> str:
    """Where to poll after ``scaned_but_redirect``: the host, with the scheme of the current base.

    The real server runs on https, so a redirect goes to ``https://<host>``; against the simulator (plain
    http on loopback) it stays http. A host that already carries a scheme is used as is.
    """
    host = redirect_host.strip().rstrip("/")
    if "://" in host:
        return host
    scheme = urlsplit(current_base).scheme or "https"
    return f"{scheme}://{host}"


def acceptable_base(baseurl: str, login_base: str) -> bool:
    """Whether a login may adopt ``baseurl`` as the account's API base (the bot token goes there from then on).

    Any ``https://`` URL with a host is fine; plain ``http://`` only on the host (any port) of ``login_base``,
    the URL the login started from, which is how a local simulator names its second host. So a server (or
    whoever sits between) can't send the bearer token in clear text to another machine.
    """
    try:
        parts, given = urlsplit(baseurl), urlsplit(login_base)
        host = parts.hostname
        _ = parts.port  # a malformed port raises here
    except ValueError:
        return False
    if not host or parts.scheme not in ("https", "http"):
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == given.scheme and host == given.hostname


def qr_lifetime(resp: QrCodeResp, default: float) -> float:
    """The QR code's lifetime: the server's word when it gives one (see :data:`QR_LIFETIME_FIELDS`)."""
    for name in QR_LIFETIME_FIELDS:
        value = resp.extra.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return default


def local_tokens(accounts: Iterable[SavedLogin]) -> list[SavedLogin]:
    """The accounts whose tokens go into ``local_token_list``: the most recent ones (callers pass them newest
    first), at most :data:`~.constants.MAX_LOCAL_TOKENS`, no token twice."""
    seen: set[str] = set()
    out: list[SavedLogin] = []
    for acct in accounts:
        token = getattr(acct, "bot_token", None)
        if isinstance(token, str) and token and token not in seen:
            seen.add(token)
            out.append(acct)
        if len(out) >= C.MAX_LOCAL_TOKENS:
            break
    return out


def bound_account(resp: QrStatusResp, sent: Sequence[SavedLogin]) -> SavedLogin | None:
    """Which saved account a ``binded_redirect`` refers to.

    The rule: the account named by the response's ``ilink_bot_id``, or holding its ``bot_token``, when the
    server sends either; otherwise the only account whose token went into ``local_token_list``. With several
    candidates and no hint from the server there is no safe choice, and the answer is None.
    """
    if resp.ilink_bot_id:
        for acct in sent:
            if acct.ilink_bot_id == resp.ilink_bot_id:
                return acct
    if resp.bot_token:
        for acct in sent:
            if acct.bot_token == resp.bot_token:
                return acct
    if len(sent) == 1:
        return sent[0]
    return None


def _failure(outcome: str, reason: str, hint: str) -> LoginResult:
    return LoginResult(ok=False, outcome=outcome, reason=reason, hint=hint)


_AGAIN = "Run login() again (or `openclaw-nb login`) for a new QR code"


def cancelled_result(reason: str = "Login cancelled") -> LoginResult:
    """The result of a login stopped by its user (Cancel, ``handle.cancel()``, Ctrl-C, no stdin)."""
    return _failure(Outcome.CANCELLED, reason, _AGAIN + " when you are ready")


GetQrcode = Callable[[list[str]], Flow]
GetStatus = Callable[[str, str | None, str | None, float | None], Flow]


# --- the flow -------------------------------------------------------------------------------------------


def login_flow(
    session: LoginSession,
    *,
    get_qrcode: GetQrcode,
    get_status: GetStatus,
    base_url: str,
    saved: Iterable[SavedLogin] = (),
) -> Flow:
    """Fetch QR codes and poll their status until the login succeeds, fails, times out or is cancelled.

    ``get_qrcode(local_token_list)`` and ``get_status(qrcode, verify_code, base_url, timeout)`` are the
    client's request flows (the status flow should try once: this flow decides when to poll again);
    ``base_url`` is where the QR codes come from (its scheme is kept on a redirect, and it is the account's
    ``baseurl`` when ``confirmed`` names none); ``saved`` are the saved accounts whose tokens may go into
    ``local_token_list``, newest first. Returns a :class:`LoginResult`; never raises for anything the server does.
    """
    cfg = session.config
    clock = session.clock
    sent = local_tokens(saved)
    tokens = [acct.bot_token for acct in sent]
    start = clock()
    session.started_at = start
    deadline = start + cfg.deadline
    number = 0
    why = "first"
    # None: the client's base_url. A redirect moves the polls for the rest of the login, refreshed codes included.
    poll_base: str | None = None
    failures = 0  # status polls that failed in a row
    last_error = ""

    def deadline_failure() -> LoginResult:
        minutes = cfg.deadline / 60
        span = f"{minutes:g} minutes" if minutes >= 1 else f"{cfg.deadline:g} seconds"
        if failures:
            polls = "status poll" if failures == 1 else f"{failures} status polls"
            return _failure(
                Outcome.DEADLINE,
                f"No confirmed login within {span}; the last {polls} failed ({last_error})",
                f"Check base_url and the network, then {_AGAIN[0].lower()}{_AGAIN[1:]}",
            )
        return _failure(
            Outcome.DEADLINE,
            f"No confirmed login within {span}",
            f"{_AGAIN}; scan it with WeChat and confirm on the phone",
        )

    while True:
        # --- a new QR code ---
        if session.cancelled:
            return cancelled_result()
        if clock() >= deadline:
            return deadline_failure()
        try:
            qr_resp = cast(QrCodeResp, (yield from get_qrcode(tokens)))
        except E.OpenClawError as exc:
            return _failure(
                Outcome.ERROR, f"Could not get a QR code: {exc}", "Check base_url and the network, then try again"
            )
        if not qr_resp.qrcode or not qr_resp.qrcode_img_content:
            return _failure(
                Outcome.ERROR,
                "get_bot_qrcode answered without a qrcode id or qrcode_img_content URL",
                "The server may have changed; look at client.log[-1], then try again",
            )
        number += 1
        qr = QrCode(
            qrcode=qr_resp.qrcode,
            url=qr_resp.qrcode_img_content,
            number=number,
            of=cfg.max_qr_codes,
            issued_at=clock(),
            lifetime=qr_lifetime(qr_resp, cfg.qr_active_seconds),
        )
        session.emit(QrIssued(state=LoginState.WAITING, message=_qr_message(qr, why), qr=qr, reason=why))

        # --- poll this QR code's status ---
        # The typed verify code: it goes out with every poll until the server's verdict (scaned, a new
        # need_verifycode, verify_code_blocked), so a poll that failed or got no verdict never loses it.
        code: str | None = None
        refresh: str | None = None
        while refresh is None:
            if session.cancelled:
                return cancelled_result()
            now = clock()
            if now >= deadline:
                return deadline_failure()
            if session.needs_verify_code:
                # Nothing to ask the server until the user types the digits: wait here, watching for
                # the code, a cancel and the deadline.
                yield Sleep(min(cfg.input_check_interval, deadline - now), "waiting for the verify code")
                continue
            if code is None:
                code = session.take_code()
                if code is not None:
                    session.emit(VerifyCodeSent(state=LoginState.VERIFYING, message="Checking the verify code…"))
            timeout = cfg.poll_timeout if cfg.poll_timeout is not None else C.LONG_POLL_TIMEOUT + C.LONG_POLL_GRACE
            timeout = max(0.05, min(timeout, deadline - now))
            error: str | None = None
            try:
                resp = cast(QrStatusResp, (yield from get_status(qr.qrcode, code, poll_base, timeout)))
            except E.RemoteError as exc:
                error = str(exc)
            else:
                # A network error or a gateway 502/504 comes back as a ``wait`` marked ``read_as_wait`` (see
                # flow.timeout_result): a failure too. A client-side timeout (``client_timeout``) is not: it is
                # the long poll's ordinary "nothing new".
                why_wait = resp.extra.get("read_as_wait")
                if why_wait is not None:
                    error = str(why_wait)
            if error is not None:
                failures += 1
                last_error = error
                session.emit(
                    PollFailed(
                        state=session.state,
                        message=_poll_failed_message(error, failures),
                        error=error,
                        failures=failures,
                    )
                )
                pause = min(cfg.failure_pause, max(0.0, deadline - clock()))
                if pause > 0:
                    yield Sleep(pause, "status poll failed")
                continue
            if failures:
                session.emit(
                    PollRecovered(
                        state=session.state, message=_recovered_message(session.state, failures), failures=failures
                    )
                )
                failures = 0

            status = resp.status
            if status == C.QrStatus.CONFIRMED:
                return _confirmed(resp, base_url)
            if status == C.QrStatus.BINDED_REDIRECT:
                return _binded(resp, sent)
            if status == C.QrStatus.EXPIRED:
                refresh = "expired"
                break
            if status == C.QrStatus.VERIFY_CODE_BLOCKED:
                refresh = "blocked"
                break
            if status == C.QrStatus.NEED_VERIFY_CODE:
                wrong, code = code is not None, None
                message = (
                    "That verify code was wrong: type the number shown on the phone again"
                    if wrong
                    else "The phone shows a number: type it here to continue"
                )
                session.emit(VerifyCodeRequested(state=LoginState.NEED_VERIFY_CODE, message=message, wrong=wrong))
                continue  # no pause: the next step waits for the user anyway
            if status == C.QrStatus.SCANNED:
                if code is not None or session.state != LoginState.SCANNED:
                    message = (
                        "Verify code accepted: confirm the login on the phone"
                        if code is not None
                        else "Scanned: confirm the login on the phone"
                    )
                    session.emit(StatusChanged(state=LoginState.SCANNED, message=message, status=status))
                code = None
            elif status == C.QrStatus.SCANNED_BUT_REDIRECT:
                # A pending verify code stays pending: the next poll carries it to the new host.
                host = resp.redirect_host
                if host:
                    poll_base = redirect_base(poll_base or base_url, host)
                    session.emit(
                        Redirected(
                            state=LoginState.VERIFYING if code is not None else LoginState.SCANNED,
                            message=f"Scanned: continuing on {host}; confirm the login on the phone",
                            host=host,
                            base_url=poll_base,
                        )
                    )
                else:
                    session.emit(
                        StatusChanged(
                            state=session.state if code is not None else LoginState.SCANNED,
                            message="Scanned (the server asked for a redirect but named no host; polling on)",
                            status=status,
                        )
                    )
            elif status == C.QrStatus.WAIT:
                # A client-side timeout reads as ``wait`` too; it says nothing new, so it must not turn
                # "scanned" back into "waiting". Nor does a ``wait`` while a verify code awaits its verdict.
                timed_out = "client_timeout" in resp.extra
                if not timed_out and session.state not in (LoginState.WAITING, LoginState.VERIFYING):
                    session.emit(StatusChanged(state=LoginState.WAITING, message="Waiting for a scan", status=status))
            else:
                session.emit(
                    StatusChanged(
                        state=session.state,
                        message=f"Unknown QR status {status!r} from the server; treating it as wait",
                        status=str(status),
                    )
                )
            pause = min(cfg.poll_interval, max(0.0, deadline - clock()))
            if pause > 0:
                yield Sleep(pause, "next QR status poll")

        # --- this QR code is done for: replace it, or give up ---
        if number >= cfg.max_qr_codes:
            return _give_up(refresh, number)
        why = refresh


def _poll_failed_message(error: str, failures: int) -> str:
    times = "" if failures == 1 else f" ({failures} in a row)"
    return f"A status poll failed{times}: {error}. Still waiting; polling again"


#: What the user is waiting for, by state: the status line after the polls work again.
_WAITING_FOR = {
    LoginState.WAITING: "waiting for a scan",
    LoginState.SCANNED: "confirm the login on the phone",
    LoginState.VERIFYING: "checking the verify code",
}


def _recovered_message(state: str, failures: int) -> str:
    polls = "a failed status poll" if failures == 1 else f"{failures} failed status polls"
    doing = _WAITING_FOR.get(state, "polling on")
    return f"The server answers again after {polls}: {doing}"


def _qr_message(qr: QrCode, why: str) -> str:
    if why == "first":
        return f"Scan the QR code with WeChat (QR {qr.number}/{qr.of})"
    if why == "blocked":
        return f"Too many wrong verify codes: new QR code {qr.number}/{qr.of}; scan it again"
    return f"The QR code expired: refreshed {qr.number}/{qr.of}"


def _give_up(why: str, number: int) -> LoginResult:
    if why == "blocked":
        reason = f"Too many wrong verify codes ({number} QR codes used)"
    else:
        reason = f"The QR code expired {number} times"
    return _failure(Outcome.EXPIRED, reason, f"{_AGAIN}, and scan it within a minute or two")


def _confirmed(resp: QrStatusResp, default_base: str) -> LoginResult:
    if not resp.ilink_bot_id:
        return _failure(
            Outcome.ERROR,
            "The server confirmed the login but sent no ilink_bot_id, so the account can't be identified",
            f"{_AGAIN}; if it keeps happening, look at client.log for the get_qrcode_status answer",
        )
    if not resp.bot_token:
        # The official client saves nothing then either (and its login command fails): without a token there
        # is nothing to log in with. A server hands the token out once, so the answer that carried it may
        # have been lost on the way: only a new QR code brings a new one.
        return _failure(
            Outcome.ERROR,
            f"The server confirmed bot {resp.ilink_bot_id} but sent no bot_token (a server sends it only once: "
            "the answer that carried it may have been lost)",
            f"{_AGAIN} and scan it again; if it keeps happening, look at client.log for the status answers",
        )
    # No baseurl in the answer: the default base URL (where QR codes come from), as the official client
    # falls back to its default. Not a redirect host: that one only served this login's status polls.
    baseurl = (resp.baseurl or default_base).strip().rstrip("/")
    if resp.baseurl and not acceptable_base(baseurl, default_base):
        return _failure(
            Outcome.ERROR,
            f"The server named {redact_url(baseurl)!r} as the API base URL for bot {resp.ilink_bot_id}; only "
            f"https:// URLs (or plain http:// on {urlsplit(default_base).hostname or 'the login host'}, as a "
            "local simulator uses) are adopted, so the bot token was not sent there",
            f"Check base_url (is something between you and the server rewriting answers?), then "
            f"{_AGAIN[0].lower()}{_AGAIN[1:]}",
        )
    creds = LoginCredentials(
        bot_token=resp.bot_token,
        ilink_bot_id=resp.ilink_bot_id,
        baseurl=baseurl,
        ilink_user_id=resp.ilink_user_id,
    )
    return LoginResult(ok=True, outcome=Outcome.CONFIRMED, credentials=creds)


def _binded(resp: QrStatusResp, sent: Sequence[SavedLogin]) -> LoginResult:
    acct = bound_account(resp, sent)
    if acct is not None:
        return LoginResult(ok=True, outcome=Outcome.BINDED, credentials=LoginCredentials.of(acct))
    if not sent:
        return _failure(
            Outcome.ERROR,
            "The server says this bot is already bound to this client (binded_redirect), but no saved login was "
            "sent with the QR request",
            "Use Client.from_saved() on the machine that holds the login, or forget() it there and log in again",
        )
    names = ", ".join(acct.ilink_bot_id for acct in sent)
    return _failure(
        Outcome.ERROR,
        f"The server says this bot is already bound to this client (binded_redirect) but not which of the "
        f"{len(sent)} saved logins it is",
        f"Load it with Client.from_saved(bot_id) (saved: {names})",
    )


def describe(event: LoginEvent) -> dict[str, Any]:
    """An event as a flat dict (for logs and tests)."""
    out: dict[str, Any] = {"event": type(event).__name__, "state": event.state, "message": event.message}
    for name in ("status", "wrong", "host", "reason", "error", "failures"):
        if hasattr(event, name):
            out[name] = getattr(event, name)
    if isinstance(event, QrIssued):
        out["qr"] = f"{event.qr.number}/{event.qr.of}"
    return out


__all__ = [
    "Finished",
    "LoginConfig",
    "LoginCredentials",
    "LoginEvent",
    "LoginResult",
    "LoginSession",
    "LoginState",
    "Outcome",
    "PollFailed",
    "PollRecovered",
    "QrCode",
    "QrIssued",
    "Redirected",
    "StatusChanged",
    "VerifyCodeRequested",
    "VerifyCodeSent",
    "bound_account",
    "cancelled_result",
    "describe",
    "local_tokens",
    "login_flow",
    "qr_lifetime",
    "redirect_base",
]
