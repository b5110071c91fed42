"""QR login for both drivers: ``client.login()``, ``Client.from_saved()``, the handle of a login running in a
notebook, and the terminal view (QR in half blocks, status lines, a stdin prompt for the verify code).

The decisions live in :mod:`openclaw_nb.protocol.login` (a sans-I/O flow); this module only drives it with
the client's ``_run``, shows it (terminal here, widget in :mod:`openclaw_nb.notebook.login_widget`), applies
the credentials to the client and saves them with :class:`~openclaw_nb.store.Store`.

Where the login runs:

* In a Jupyter kernel with ipywidgets (``display="auto"``), ``login()`` shows the widget and returns a
  :class:`LoginHandle` at once; the flow runs as a task on the kernel's event loop, so the widget stays live
  while the kernel is idle. ``await handle`` (or ``handle.wait()``) gives the result.
* Anywhere else, ``login()`` blocks: it draws the QR code in the terminal, prints each status change, asks
  for the verify code on stdin when the server wants one, and returns the :class:`LoginResult`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import env
from . import errors as E
from .protocol.flow import RetryPolicy
from .protocol.login import (
    Finished,
    Listener,
    LoginConfig,
    LoginEvent,
    LoginResult,
    LoginSession,
    LoginState,
    Outcome,
    PollFailed,
    PollRecovered,
    QrIssued,
    Redirected,
    VerifyCodeRequested,
    cancelled_result,
    login_flow,
)
from .protocol.redact import redact
from .store import Credentials, Store, safe_name

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from .client import AsyncClient, BaseClient, Client

log = logging.getLogger("openclaw_nb.login")
C_ = TypeVar("C_")

#: Values of ``login(display=...)``.
DISPLAYS = ("auto", "widget", "terminal", "none")


class LoginError(E.OpenClawError):
    """The login did not succeed (expired, deadline, cancelled, server error). ``result`` says why."""

    def __init__(self, result: LoginResult) -> None:
        super().__init__(result.message)
        self.result = result


# --- QR codes as text -----------------------------------------------------------------------------------


def qr_matrix(data: str, border: int = 2) -> list[list[bool]]:
    """The QR modules of ``data`` (True = dark), with a quiet zone of ``border`` modules."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_L

    # Level L keeps the code small enough to fit a normal terminal; a screen is a clean surface.
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=border)
    qr.add_data(data)
    qr.make(fit=True)
    return [list(row) for row in qr.get_matrix()]


#: Half-block characters by (top light, bottom light), for terminals without colour.
_PLAIN_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def qr_text(data: str, *, color: bool = True, border: int = 2) -> Text:
    """``data`` as a QR code in half-block characters: two modules per character cell.

    With ``color`` every cell is an upper half block with explicit black/white foreground and background,
    so the code reads the right way round on dark and light terminals alike. Without colour, light modules
    are drawn as blocks (dark terminal background assumed; phone scanners also read inverted codes).
    """
    from rich.style import Style
    from rich.text import Text

    matrix = qr_matrix(data, border)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    dark, light = "rgb(0,0,0)", "rgb(255,255,255)"
    styles = {
        (t, b): Style(color=dark if t else light, bgcolor=dark if b else light)
        for t in (True, False)
        for b in (True, False)
    }
    text = Text(no_wrap=True, overflow="crop")
    for y in range(0, len(matrix), 2):
        for top, bottom in zip(matrix[y], matrix[y + 1], strict=True):
            if color:
                text.append("▀", styles[(top, bottom)])
            else:
                text.append(_PLAIN_BLOCKS[(not top, not bottom)])
        text.append("\n")
    return text


# --- the terminal view ----------------------------------------------------------------------------------


class TerminalLoginView:
    """Prints a login as it goes: the QR code and its URL, one line per status change, the result.

    When the server asks for a verify code it reads one in a daemon thread, so the flow keeps watching the
    deadline and a cancel while nobody types. With ``loop`` (the async client) the code is handed over on that
    loop, which is never blocked on stdin.

    The answer comes from ``ask(prompt)`` when given, else from stdin. On POSIX, when stdin has a file
    descriptor, the thread waits for input with ``select()`` in short steps and reads the descriptor a byte at a
    time once input is there: it takes exactly one line per answer (the rest stays in stdin for whoever reads
    next), and stops within :data:`INPUT_POLL_SECONDS` when the login ends (deadline, Ctrl-C, cancel), so
    nothing is read from stdin after that. Elsewhere (Windows, a stdin without a descriptor such as a
    ``StringIO``, or an ``ask`` callback) the thread blocks in ``input()``/``ask`` and cannot be stopped: it is
    left waiting when the login ends, takes the next line typed, and throws it away.
    """

    def __init__(
        self,
        session: LoginSession,
        console: Console | None = None,
        *,
        ask: Callable[[str], str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        from rich.console import Console

        self.session = session
        self.console = console or Console(highlight=False)
        self._ask = ask
        self._loop = loop
        self._started = time.monotonic()
        self._stop = threading.Event()  # set when the login ends: the prompt stops reading
        self._readers: list[threading.Thread] = []  # prompt threads that watch _stop (the select() ones)
        self._prompt_open = False  # the prompt is printed and its line not yet read
        self._last_error: str | None = None  # the error of the last failed status poll, while they fail
        self.unsubscribe = session.subscribe(self.on_event)

    def _line(self, text: str, style: str = "") -> None:
        if self._prompt_open:
            self._prompt_open = False
            self.console.print()  # end the unanswered prompt's line
        elapsed = int(time.monotonic() - self._started)
        self.console.print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {text}", style=style, markup=False)

    def on_event(self, event: LoginEvent) -> None:
        if isinstance(event, QrIssued):
            self.console.print()
            self.console.print(qr_text(event.qr.url, color=self.console.color_system is not None), end="")
            self.console.print(event.qr.url, style="link " + event.qr.url if self.console.is_terminal else "")
            self._line(event.message, "bold")
        elif isinstance(event, VerifyCodeRequested):
            self._line(event.message, "yellow")
            self._prompt()
        elif isinstance(event, Finished):
            self._stop.set()
            self._finished(event.result)
        elif isinstance(event, Redirected):
            self._line(event.message, "cyan")
        elif isinstance(event, PollFailed):
            # Every failure is logged; on screen, the first of a run, a new kind of error, and a reminder every
            # POLL_FAILURE_REMINDER polls, so a server failing for minutes does not flood the terminal.
            if event.failures == 1 or event.error != self._last_error or event.failures % POLL_FAILURE_REMINDER == 0:
                self._line(event.message, "yellow")
            self._last_error = event.error
        elif isinstance(event, PollRecovered):
            self._last_error = None
            self._line(event.message)
        else:
            self._line(event.message)

    def _finished(self, result: LoginResult) -> None:
        if result.ok and result.credentials:
            creds = result.credentials
            self._line("✓ " + result.message, "bold green")
            rows = [("bot id", creds.ilink_bot_id)]
            if creds.ilink_user_id:
                rows.append(("scanned by", creds.ilink_user_id))
            rows += [("base url", creds.baseurl), ("token", redact(creds.bot_token))]
            if result.saved_to:
                rows.append(("saved to", str(result.saved_to)))
            if result.superseded:
                rows.append(("supersedes", f"{', '.join(result.superseded)} (forget_superseded() removes them)"))
            if result.forgotten:
                rows.append(("removed", f"{', '.join(result.forgotten)} (superseded)"))
            width = max(len(label) for label, _ in rows) + 1  # the values line up after the longest label
            for label, value in rows:
                self.console.print(f"  {label + ':':<{width}} {value}", markup=False)
        else:
            self._line("✗ " + (result.reason or "The login did not complete"), "bold red")
            if result.hint:
                self.console.print(f"  {result.hint}", markup=False)

    # --- the verify code ---

    def _stopped(self) -> bool:
        """True once no verify code is wanted from this prompt: the login ended or is being cancelled, or it
        moved on (a new QR code) without the answer."""
        session = self.session
        return self._stop.is_set() or session.cancelled or session.state != LoginState.NEED_VERIFY_CODE

    def _read_code(self, fd: int | None = None) -> str | None:
        """Ask until the answer is digits; None on end of input (nobody there to answer) and once the login
        no longer wants a code (it ended, or moved on): then it never asks again. ``fd``: stdin's descriptor,
        to wait on with select() (see the class)."""
        prompt = "Verify code shown on the phone: "
        while not self._stopped():
            try:
                answer = self._ask_once(prompt, fd)
            except EOFError:
                return None
            if answer is None or self._stopped():
                return None
            answer = answer.strip()
            if answer.isdigit():
                return answer
            self.console.print("  digits only, as shown on the phone", markup=False)
        return None

    def _ask_once(self, prompt: str, fd: int | None) -> str | None:
        """One answer: from ``ask``, from ``input()`` (no descriptor to wait on), or from stdin's descriptor
        (None when the login stopped wanting it first). End of input raises EOFError."""
        if self._ask is not None:
            return self._ask(prompt)
        self._prompt_open = True  # until a line is read: a status line printed before then starts a new line
        if fd is None:
            answer: str | None = self.console.input(prompt, markup=False)
        else:
            self.console.print(prompt, end="", markup=False)
            answer = _read_line(fd, self._stopped)
        if answer is not None:
            self._prompt_open = False
        return answer

    def _prompt(self) -> None:
        fd = _pollable_fd(sys.stdin) if self._ask is None else None
        thread = _read_in_thread(lambda: self._read_code(fd), self._deliver, self._loop)
        if fd is not None:
            self._readers.append(thread)

    def _deliver(self, code: str | None) -> None:
        if self.session.done:
            return  # the deadline passed or the login was cancelled while the prompt was open
        if code is None:
            if self._stopped():
                return  # the prompt stopped because the login moved on, not because stdin ended
            self._line("no input to read a verify code from: cancelling")
            self.session.cancel()
            return
        try:
            self.session.submit_code(code)
        except E.UsageError as exc:
            if not self.session.done:
                self._line(str(exc), "red")

    def close(self, timeout: float = 1.0) -> bool:
        """Stop the prompt and wait (up to ``timeout`` seconds) for its thread to finish: after this nothing
        more is read from stdin. True when it finished (always, but for a prompt that cannot be stopped:
        those are not waited for, see the class)."""
        self._stop.set()
        end = time.monotonic() + timeout
        for thread in self._readers:
            thread.join(max(0.0, end - time.monotonic()))
        return not any(thread.is_alive() for thread in self._readers)

    async def aclose(self, timeout: float = 1.0) -> bool:
        """:meth:`close` for the event loop: the threads are joined in a worker thread, not on the loop."""
        return await asyncio.to_thread(self.close, timeout)


#: How long the verify-code prompt waits in one select() before it checks whether the login still wants a code.
INPUT_POLL_SECONDS = 0.1
#: While status polls keep failing with the same error, the terminal repeats the line every this many polls.
POLL_FAILURE_REMINDER = 30


def _pollable_fd(stream: Any) -> int | None:
    """``stream``'s file descriptor when select() can wait on it (POSIX only); None otherwise (Windows, where
    select() takes only sockets; a stream without a descriptor, such as a ``StringIO`` or pytest's stdin)."""
    if os.name != "posix" or stream is None:
        return None
    try:
        fd = stream.fileno()
        if not isinstance(fd, int) or fd < 0:
            return None
        select.select([fd], [], [], 0)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both an OSError and a ValueError
        return None
    return fd


def _read_line(fd: int, stopped: Callable[[], bool], poll: float | None = None) -> str | None:
    """One line from ``fd`` without its end of line; None as soon as ``stopped()`` (checked at least every
    ``poll`` seconds, :data:`INPUT_POLL_SECONDS` by default); EOFError at end of input.

    It reads the descriptor itself, a byte at a time and only once select() says one is there, so it never
    blocks while ``stopped()`` could change, never takes more than the line (the next line stays in stdin,
    for the caller or the shell), and never holds the lock of ``sys.stdin``'s buffer (a daemon thread blocked
    in that buffer aborts the interpreter at exit). ``sys.stdin``'s own buffer is not looked at, except at end
    of input (then reading it cannot block): a line read ahead there by an earlier ``input()`` is used then.
    """
    wait = INPUT_POLL_SECONDS if poll is None else poll
    data = bytearray()
    while True:
        if stopped():
            return None
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        try:
            byte = os.read(fd, 1)
        except BlockingIOError:  # a non-blocking descriptor another reader emptied since select()
            continue
        if byte == b"\n":
            break
        if not byte:  # end of input
            if data:
                break
            return _buffered_line(fd)
        data += byte
    encoding = getattr(sys.stdin, "encoding", None) or "utf-8"
    return data.decode(encoding, "replace").rstrip("\r")


def _buffered_line(fd: int) -> str:
    """At end of input on ``fd``: a line that ``sys.stdin`` read ahead before the prompt (it may hold one when
    the caller read stdin with ``input()`` first), else EOFError. Never for a terminal, where end of input is
    one Ctrl-D and the next read would wait for more."""
    stdin = sys.stdin
    if stdin is not None and not os.isatty(fd) and _pollable_fd(stdin) == fd:
        line = stdin.readline()
        if line:
            return str(line).rstrip("\r\n")
    raise EOFError


def _read_in_thread(
    read: Callable[[], str | None], deliver: Callable[[str | None], None], loop: asyncio.AbstractEventLoop | None
) -> threading.Thread:
    """Run ``read()`` (a wait for the verify code) in a daemon thread, then ``deliver(code)``: on ``loop`` when
    given (the async driver), else in that thread (a code is a plain hand-over to the session). Returns the
    thread.

    Meanwhile the flow only sleeps in short input checks, watching the deadline and a cancel (Ctrl-C in the
    main thread, ``handle.cancel()``), so an unanswered prompt never holds the login past either. A read that
    fails counts as no input (None: the login is cancelled).
    """

    def worker() -> None:
        try:
            code = read()
        except Exception:
            log.exception("reading the verify code failed")
            code = None
        if loop is None:
            deliver(code)
            return
        try:
            loop.call_soon_threadsafe(deliver, code)
        except RuntimeError:  # the loop closed while we were reading
            pass

    thread = threading.Thread(target=worker, name="openclaw-nb-verify-code", daemon=True)
    thread.start()
    return thread


# --- the handle of a login running on an event loop -----------------------------------------------------


class LoginHandle:
    """A login running as a task on the event loop (what ``login()`` returns in Jupyter).

    >>> handle = client.login()          # the widget appears; the cell returns at once
    >>> handle.status                    # 'waiting', 'scanned', 'need_verify_code', ..., 'confirmed'
    >>> result = await handle            # in a later cell (or handle.wait() in a script)
    """

    def __init__(self, session: LoginSession, task: asyncio.Task[LoginResult], widget: Any = None) -> None:
        self.session = session
        self.task = task
        self.widget = widget

    @property
    def status(self) -> str:
        """One of :class:`~openclaw_nb.protocol.login.LoginState`'s values."""
        return self.session.state

    @property
    def message(self) -> str:
        return self.session.message

    @property
    def result(self) -> LoginResult | None:
        """The result once the login is over, else None."""
        return self.session.result

    @property
    def qr_url(self) -> str | None:
        return self.session.qr.url if self.session.qr else None

    def done(self) -> bool:
        return self.session.done or self.task.done()

    def cancel(self) -> None:
        """Stop the login now: the running request is abandoned and no other is made."""
        self.session.cancel()
        if not self.task.done():
            self.task.cancel()

    def submit_code(self, code: str) -> None:
        """Hand over the digits the phone shows (the widget's box does the same)."""
        self.session.submit_code(code)

    def __await__(self) -> Generator[Any, None, LoginResult]:
        return self._wait().__await__()

    async def _wait(self, timeout: float | None = None) -> LoginResult:
        try:
            # shield: a cell interrupted while awaiting must not cancel the login itself.
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except asyncio.CancelledError:
            if not self.task.cancelled():
                raise  # it is the awaiting code that was cancelled, not the login
        return self._final()

    def _final(self) -> LoginResult:
        """The finished task's result; a task cancelled before it ever ran counts as a cancelled login."""
        if self.task.cancelled():
            return _outcome(self.session.result or cancelled_result())
        return _outcome(self.task.result())

    def wait(self, timeout: float | None = None) -> LoginResult:
        """Block until the login is over and return the result (raises :class:`LoginError` when it failed).

        In a notebook this drives the kernel's loop re-entrantly (see :func:`~openclaw_nb.env.run_sync`);
        the widget keeps updating, but its buttons answer only after the cell ends.
        """
        if self.task.done():
            return self._final()
        loop = self.task.get_loop()
        if loop.is_running() and env.running_loop() is not loop:
            # The loop runs in another thread: wait for it from this one.
            return asyncio.run_coroutine_threadsafe(self._wait(timeout), loop).result()
        if loop.is_running():
            return env.run_sync(self._wait(timeout))
        return loop.run_until_complete(self._wait(timeout))

    def __repr__(self) -> str:
        return f"<LoginHandle {self.status}: {self.message}>"


def _outcome(result: LoginResult) -> LoginResult:
    if not result.ok:
        raise LoginError(result)
    return result


# --- driving the flow -----------------------------------------------------------------------------------


def _new_session(config: LoginConfig | None, options: Mapping[str, Any], on_event: Listener | None) -> LoginSession:
    if config is not None and options:
        raise E.UsageError("pass login options either as config=LoginConfig(...) or as keywords, not both")
    try:
        cfg = config or LoginConfig(**options)
    except TypeError:
        known = ", ".join(LoginConfig.__dataclass_fields__)
        raise E.UsageError(f"unknown login option(s) {sorted(options)}; known: {known}") from None
    session = LoginSession(cfg)
    if on_event is not None:
        session.subscribe(on_event)
    return session


def _answer_with(
    session: LoginSession, ask: Callable[[str], str], loop: asyncio.AbstractEventLoop | None = None
) -> None:
    """Without a view, ``ask(prompt)`` answers the verify-code requests. It runs in a daemon thread (see
    :func:`_read_in_thread`), so a slow answer holds neither the deadline nor a cancel; end of input cancels."""

    def deliver(code: str | None) -> None:
        if session.done:
            return
        if code is None:
            session.cancel()
            return
        try:
            session.submit_code(code)
        except E.UsageError as exc:
            if not session.done:
                log.warning("verify code not taken: %s", exc)

    def on_event(event: LoginEvent) -> None:
        if isinstance(event, VerifyCodeRequested):
            message = event.message

            def read() -> str | None:
                try:
                    return ask(message)
                except EOFError:
                    return None

            _read_in_thread(read, deliver, loop)

    session.subscribe(on_event)


def choose_display(display: str) -> str:
    if display not in DISPLAYS:
        raise E.UsageError(f"display must be one of {', '.join(DISPLAYS)}, got {display!r}")
    if display != "auto":
        return display
    return "widget" if env.has_widgets() and env.running_loop() is not None else "terminal"


def _store(client: BaseClient, home: Any) -> Store:
    return Store(home if home is not None else getattr(client, "_store_home", None))


#: Status polls of a login try once each: a failed poll reads as ``wait`` and the flow polls again after its own
#: pause (``LoginConfig.failure_pause``), as the official client does, so every failure shows in the status.
_ONE_TRY = RetryPolicy(attempts=1)


def _flow(client: BaseClient, session: LoginSession, store: Store) -> Any:
    return login_flow(
        session,
        get_qrcode=client._get_bot_qrcode_flow,
        get_status=functools.partial(client._get_qrcode_status_flow, retry=_ONE_TRY),
        base_url=client.base_url,
        # Superseded logins stay out of local_token_list: their tokens are stale, and with several saved logins
        # of one user a binded_redirect could not tell which one is meant.
        saved=store.accounts(superseded=False),
    )


def _failed(outcome: str, reason: str, hint: str = "") -> LoginResult:
    return LoginResult(ok=False, outcome=outcome, reason=reason, hint=hint)


def _complete(
    target: BaseClient, session: LoginSession, result: LoginResult, store: Store, save: bool, forget: bool = False
) -> LoginResult:
    """Apply a successful login to ``target``, save new credentials (and, with ``forget``, remove the logins they
    supersede), and end the session."""
    if result.ok and result.credentials is not None:
        creds = result.credentials
        target.use_credentials(creds.bot_token, base_url=creds.baseurl, bot_id=creds.ilink_bot_id)
        if save and result.new_token:
            try:
                path = store.save_credentials(
                    Credentials(creds.bot_token, creds.ilink_bot_id, creds.baseurl, creds.ilink_user_id)
                )
                result = replace(result, saved_to=str(path))
            except (OSError, E.UsageError) as exc:
                # The client is logged in all the same; only the next session would have to scan again.
                log.warning("logged in, but the credentials could not be saved in %s: %s", store.root, exc)
            else:
                result = _supersede(result, store, forget)
        elif result.outcome == Outcome.BINDED:
            path = store.accounts_dir / f"{safe_name(creds.ilink_bot_id)}.json"
            if path.exists():
                result = replace(result, saved_to=str(path))
    return session.finish(result)


def _supersede(result: LoginResult, store: Store, forget: bool) -> LoginResult:
    """Name the older saved logins of the same WeChat user that the new one supersedes, and remove them when
    ``forget`` (what the official client always does)."""
    creds = result.credentials
    if creds is None or not creds.ilink_user_id:
        return result
    try:
        older = tuple(c.ilink_bot_id for c in store.superseded() if c.ilink_user_id == creds.ilink_user_id)
        if not older:
            return result
        if not forget:
            log.info("this login supersedes saved logins %s; forget_superseded() removes them", ", ".join(older))
            return replace(result, superseded=older)
        forgotten = tuple(store.forget_superseded(creds.ilink_user_id))
    except (OSError, E.UsageError) as exc:
        log.warning("could not look at or remove the superseded logins in %s: %s", store.root, exc)
        return result
    log.info("removed the superseded logins %s", ", ".join(forgotten))
    return replace(result, forgotten=forgotten)


def _drive_sync(client: Client, session: LoginSession, store: Store, save: bool, forget: bool = False) -> LoginResult:
    try:
        result = client._run(_flow(client, session, store))
    except KeyboardInterrupt:
        session.cancel()
        session.finish(cancelled_result("Login cancelled (interrupted)"))
        raise
    except Exception as exc:
        session.finish(_failed(Outcome.ERROR, f"The login stopped on an unexpected error: {exc}"))
        raise
    return _complete(client, session, cast(LoginResult, result), store, save, forget)


async def _drive_async(
    client: AsyncClient, session: LoginSession, store: Store, save: bool, target: BaseClient, forget: bool = False
) -> LoginResult:
    try:
        result = await client._run(_flow(client, session, store))
    except asyncio.CancelledError:
        cancelled = session.finish(cancelled_result())
        if session.cancelled:
            return cancelled  # our own cancel (handle.cancel()): an ordinary end of the login
        raise
    except Exception as exc:
        session.finish(_failed(Outcome.ERROR, f"The login stopped on an unexpected error: {exc}"))
        raise
    return _complete(target, session, cast(LoginResult, result), store, save, forget)


def _start(session: LoginSession, coro: Coroutine[Any, Any, LoginResult], show: bool) -> LoginHandle:
    loop = env.running_loop()
    if loop is None:
        coro.close()
        raise E.UsageError(
            "display='widget' needs a running event loop (a Jupyter kernel); use display='terminal' in scripts"
        )
    widget = None
    if show:
        widget = env.view("login")(session)
    task = loop.create_task(coro)

    def finish_if_never_ran(task: asyncio.Task[LoginResult]) -> None:
        # A task cancelled before its first step never enters _drive_async, which would end the session.
        if task.cancelled() and not session.done:
            session.finish(cancelled_result())

    task.add_done_callback(finish_if_never_ran)
    handle = LoginHandle(session, task, widget)
    if widget is not None:
        widget.on_cancel = handle.cancel
        widget.start_ticker()
        _display(widget, session)
    return handle


def _plain_text(widget: Any, session: LoginSession) -> str:
    """The widget's ``text/plain`` fallback, which keeps the last QR code's URL after the login ended (a record
    of what was scanned, for nbconvert output and text-only frontends)."""
    text = str(widget.text())
    qr = session.qr
    if qr is not None and qr.url not in text:
        text += f"\nQR code {qr.number}/{qr.of} was {qr.url}"
    return text


def _display(widget: Any, session: LoginSession) -> None:
    """Show the widget, then update that display (by its display id) whenever its text changes.

    The widget is shown before the login task has run, so the first ``text/plain`` is "Fetching a QR code…";
    the updates bring the QR code's URL, each status and the result to the frontends that show only text
    (nbconvert, ``jupyter console``). Each update names the same widget model, so a frontend with widgets
    that applies it shows the same live widget.
    """
    try:
        from IPython.display import display, update_display
    except ImportError:  # pragma: no cover - IPython is there wherever widgets are
        return
    shown = display(widget, display_id=True)  # None outside IPython (it prints the text instead)
    display_id = getattr(shown, "display_id", None)
    if display_id is None:
        return
    last = [_plain_text(widget, session)]

    def on_event(event: LoginEvent) -> None:
        text = _plain_text(widget, session)
        if text == last[0]:
            return
        last[0] = text
        bundle = {**widget._repr_mimebundle_(), "text/plain": text}
        # Run in an empty context: ipykernel keeps the parent request in a context variable, which this task
        # copied from the cell that called login(). With none set, it uses the request being executed now, so
        # a client that follows only the running cell's messages (nbclient, hence nbconvert) applies the update.
        contextvars.Context().run(update_display, bundle, raw=True, display_id=display_id)

    session.subscribe(on_event)


# --- the mixins -----------------------------------------------------------------------------------------


class _SavedMixin:
    @classmethod
    def from_saved(cls: type[C_], bot_id: str | None = None, *, home: Any = None, **kw: Any) -> C_:
        """A client logged in with saved credentials, without a QR code (the latest account when ``bot_id``
        is None). ``home`` defaults to ``$OPENCLAW_NB_HOME`` or ``~/.openclaw_nb``.

        >>> client = Client.from_saved()                     # the account that logged in last
        >>> client = Client.from_saved("abc@im.bot", record=False)
        """
        store = Store(home)
        creds = store.load_credentials(bot_id)
        base_url = kw.pop("base_url", creds.baseurl)
        client = cast(Any, cls)(creds.bot_token, base_url=base_url, bot_id=creds.ilink_bot_id, **kw)
        client._store_home = store.root
        return cast(C_, client)


class LoginMixin(_SavedMixin):
    """Login methods of :class:`~openclaw_nb.client.Client`."""

    def login(
        self,
        *,
        display: str = "auto",
        save: bool = True,
        forget_superseded: bool = False,
        home: Any = None,
        config: LoginConfig | None = None,
        on_event: Listener | None = None,
        console: Console | None = None,
        ask: Callable[[str], str] | None = None,
        **options: Any,
    ) -> Any:
        """Log in by QR code; the client then uses the new token and ``baseurl``, and they are saved.

        In Jupyter the widget appears and a :class:`LoginHandle` comes back at once (``await handle`` later);
        elsewhere the QR code is drawn in the terminal and the call blocks until the :class:`LoginResult`
        (or raises :class:`LoginError`). ``display``: ``auto``, ``widget``, ``terminal`` or ``none``.
        Options (``deadline``, ``max_qr_codes``, ``poll_interval``, ...) are :class:`LoginConfig` fields.
        ``on_event(event)`` hears every step; ``ask(prompt) -> digits`` answers verify-code requests (default
        in the terminal: a stdin prompt; either runs in a background thread, so the deadline and a cancel still
        apply while it waits; the stdin prompt stops reading when the login ends, on POSIX, while ``ask`` and
        the prompt on Windows are left waiting, see :class:`TerminalLoginView`); ``save=False`` keeps the
        credentials off the disk; ``home`` picks the data folder. Older saved logins of the same WeChat user
        are superseded by a new one (``result.superseded``, the ``superseded`` column of ``list_accounts()``):
        their tokens no longer go into ``local_token_list``; ``forget_superseded=True`` removes them, as the
        official client does after every login.

        >>> client = Client()
        >>> client.login()
        """
        client = cast("Client", self)
        session = _new_session(config, options, on_event)
        store = _store(client, home)
        mode = choose_display(display)
        if mode == "widget":
            # The sync client's _run blocks, and a blocked kernel loop freezes the widget. So in a kernel the
            # flow runs on an AsyncClient twin (same configuration, same protocol log) as a task on the
            # kernel's loop, and the credentials are applied to this client when it succeeds.
            twin = client.async_twin()

            async def run() -> LoginResult:
                try:
                    return await _drive_async(twin, session, store, save, target=client, forget=forget_superseded)
                finally:
                    await twin.aclose()

            return _start(session, run(), show=True)
        view = None
        if mode == "terminal":
            view = TerminalLoginView(session, console, ask=ask)
        elif ask is not None:
            _answer_with(session, ask)
        try:
            return _outcome(_drive_sync(client, session, store, save, forget_superseded))
        finally:
            if view is not None:
                view.close()  # the prompt is no longer reading stdin when login() returns or raises


class AsyncLoginMixin(_SavedMixin):
    """Login methods of :class:`~openclaw_nb.client.AsyncClient`."""

    async def login(
        self,
        *,
        display: str = "auto",
        save: bool = True,
        forget_superseded: bool = False,
        home: Any = None,
        config: LoginConfig | None = None,
        on_event: Listener | None = None,
        console: Console | None = None,
        ask: Callable[[str], str] | None = None,
        **options: Any,
    ) -> Any:
        """Log in by QR code (see :meth:`Client.login`). In Jupyter, returns a :class:`LoginHandle` at once;
        elsewhere waits for the :class:`LoginResult`.

        >>> handle = await aclient.login()   # in a notebook: the widget appears
        >>> await handle                     # later: the result
        """
        client = cast("AsyncClient", self)
        session = _new_session(config, options, on_event)
        store = _store(client, home)
        mode = choose_display(display)
        if mode == "widget":
            run = _drive_async(client, session, store, save, target=client, forget=forget_superseded)
            return _start(session, run, show=True)
        view = None
        if mode == "terminal":
            view = TerminalLoginView(session, console, ask=ask, loop=asyncio.get_running_loop())
        elif ask is not None:
            _answer_with(session, ask, asyncio.get_running_loop())
        try:
            return _outcome(await _drive_async(client, session, store, save, target=client, forget=forget_superseded))
        finally:
            if view is not None:
                await view.aclose()

    def start_login(
        self,
        *,
        save: bool = True,
        forget_superseded: bool = False,
        home: Any = None,
        config: LoginConfig | None = None,
        on_event: Listener | None = None,
        **options: Any,
    ) -> LoginHandle:
        """Start a login as a task on the running loop, without any display; returns its handle.

        For custom front ends: follow ``handle.session`` events, feed ``handle.submit_code()``.
        """
        client = cast("AsyncClient", self)
        session = _new_session(config, options, on_event)
        store = _store(client, home)
        run = _drive_async(client, session, store, save, target=client, forget=forget_superseded)
        return _start(session, run, show=False)


__all__ = [
    "LoginConfig",
    "LoginError",
    "LoginHandle",
    "LoginMixin",
    "LoginResult",
    "LoginState",
    "TerminalLoginView",
    "qr_matrix",
    "qr_text",
]
