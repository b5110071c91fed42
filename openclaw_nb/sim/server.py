"""Running the simulator: :class:`Simulator` serves the app with uvicorn in a background thread, on two
ports of one server (the API + CDN, and the second host that ``scaned_but_redirect`` points at), and keeps
the state in a JSON file with a write-ahead journal when given one (:mod:`.journal`). The Python API here
only forwards to the state.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from ..journal import clean_temp_files
from .app import create_app
from .journal import COMPACT_INTERVAL, StateJournal, durable_app
from .links import public_url
from .phone import PHONE_PREFIX, PhoneSettings, check_class_code, new_class_code
from .state import (
    CDN_PREFIX,
    BotLogin,
    ConformanceEntry,
    FaultRule,
    Notification,
    OutboxEntry,
    QrCode,
    QrScenario,
    SimBot,
    SimConfig,
    SimError,
    SimState,
    SimUser,
    TypingEvent,
)

#: Seconds uvicorn may spend finishing in-flight requests on shutdown (held long polls are woken first).
_GRACEFUL_SHUTDOWN = 3


class SimulatorWarning(UserWarning):
    """The simulator was asked to do something risky (e.g. listen beyond the loopback interface)."""


class _Server(uvicorn.Server):
    """uvicorn's server, telling a thread-safe event when startup is over (successful or not)."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._started_event.set()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def needs_admin_token(host: str, require: bool | None = None, admin_token: str | None = None) -> bool:
    """Whether the control API (``/_sim/...``) asks for an admin token: ``require`` when given; otherwise yes
    when an ``admin_token`` was chosen or the simulator listens beyond loopback (``0.0.0.0``, a LAN address),
    where anyone who reaches it could mint bot tokens and read what the outbox holds."""
    if require is not None:
        return require
    return bool(admin_token) or not _is_loopback(host)


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose connections send small writes at once (``TCP_NODELAY``).

    ``proto`` must be ``IPPROTO_TCP``, not the default 0: asyncio turns Nagle's algorithm off only on sockets
    that say they are TCP, and an accepted socket inherits the listener's ``proto``. Without it, uvicorn's
    pure-Python path (h11 on the asyncio loop, when ``uvicorn[standard]`` is not installed) writes a response's
    head and body separately and Nagle holds the body back until the client's delayed ACK: about 40 ms per
    request instead of 1. Linux also copies the listener's ``TCP_NODELAY`` to accepted sockets.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class Simulator:
    """A protocol-faithful local iLink server and CDN, on 127.0.0.1, in a background thread.

    >>> with Simulator(long_poll_timeout=2) as sim:  # doctest: +SKIP
    ...     login = sim.login_bot("alice")
    ...     sim.say("alice", "hi")
    ...     # point a client at sim.base_url with login.bot_token

    ``config`` (a :class:`SimConfig`) and keyword knobs (``long_poll_timeout=2``...) set the rules;
    ``port=0`` picks a free port (so does ``redirect_port=0`` for the second host); ``state_path`` loads
    the state from that JSON file if it exists (and replays its journal, ``<state_path>.journal``); while the
    simulator runs every change is journaled and fsync'd before the answer that follows it goes out, and
    folded into the file every ``compact_interval`` seconds and on stop (see :mod:`openclaw_nb.sim.journal`).

    Off loopback the control API needs an admin token (see :func:`needs_admin_token`): ``admin_token`` sets
    it, otherwise a random one is made at start (``sim.admin_token``); ``require_admin_token=True`` asks for
    it on loopback too, ``False`` never.

    ``class_code`` (a string, or True for a random 6-character one: ``sim.class_code``) lets a class play the
    users from phone pages (:meth:`phone_url`): each user's page link then carries a per-user key, and off
    loopback (or with ``require_class_code=True``) the phone pages ask for the code while the rest of the
    control API asks for the admin token.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        redirect_port: int = 0,
        state_path: str | os.PathLike[str] | None = None,
        compact_interval: float = COMPACT_INTERVAL,
        autosave_interval: float | None = None,
        state: SimState | None = None,
        admin_token: str | None = None,
        require_admin_token: bool | None = None,
        class_code: str | bool | None = None,
        require_class_code: bool | None = None,
        **knobs: Any,
    ) -> None:
        base = config or (state.config if state is not None else SimConfig())
        self.state = state or SimState(base.replace(**knobs) if knobs else base)
        if state is not None and (config or knobs):
            self.state.config = self.state.initial_config = base.replace(**knobs)
        self.host = host
        if admin_token is not None and (not isinstance(admin_token, str) or len(admin_token) < 8):
            raise SimError("admin_token must be a string of at least 8 characters (or None for a random one)")
        self._admin_token = admin_token
        self.require_admin_token = require_admin_token
        if class_code is True:
            class_code = new_class_code()
        #: The code students type on the phone pages (None: no class mode).
        self.class_code: str | None = check_class_code(class_code) if class_code else None
        if require_class_code and not self.class_code:
            raise SimError("require_class_code needs a class_code (a string, or True for a random one)")
        self._require_class_code = require_class_code
        self._phone = PhoneSettings(self.class_code)
        #: The token the control API asks for while running (None: it asks for none).
        self.admin_token: str | None = None
        self._want_port = port
        self._want_redirect_port = redirect_port
        self.state_path = os.fspath(state_path) if state_path is not None else None
        #: Seconds between foldings of the journal into the state file (``autosave_interval`` is its old name).
        self.compact_interval = autosave_interval if autosave_interval is not None else compact_interval
        self._journal: StateJournal | None = None
        if self.state_path:
            # Temporary files of saves a crash interrupted (they hold the simulated tokens).
            target = Path(self.state_path)
            clean_temp_files(target.parent, [target.name])
            # The state file, then the journal of what changed after it (see sim/journal.py).
            StateJournal(self.state, self.state_path).load()
        self.port = 0
        self.redirect_port = 0
        self.base_url = ""
        self.cdn_base_url = ""
        self.redirect_host = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Simulator:
        """Bind the two ports, start uvicorn in a thread and return once it accepts connections."""
        if self._thread is not None:
            raise SimError("this simulator is already running")
        if not _is_loopback(self.host):
            warnings.warn(
                f"the simulator listens on {self.host}, beyond this machine's loopback interface: anyone who "
                "can reach it can use its iLink API; "
                + (
                    "its control API (/_sim/...) asks for the admin token (sim.admin_token, printed by "
                    "`openclaw-nb sim`)"
                    if needs_admin_token(self.host, self.require_admin_token, self._admin_token)
                    else "its control API is open too (require_admin_token=False): anyone can log in and read messages"
                ),
                SimulatorWarning,
                stacklevel=2,
            )
        first = _bind(self.host, self._want_port)
        try:
            sockets = [first, _bind(self.host, self._want_redirect_port)]
        except OSError:
            first.close()
            raise
        self.port = sockets[0].getsockname()[1]
        self.redirect_port = sockets[1].getsockname()[1]
        url_host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self.base_url = f"http://{url_host}:{self.port}"
        self.cdn_base_url = self.base_url + CDN_PREFIX
        self.redirect_host = f"{url_host}:{self.redirect_port}"
        self.state.set_urls(self.base_url, self.cdn_base_url, self.redirect_host)
        self.state.closed = False
        if needs_admin_token(self.host, self.require_admin_token, self._admin_token) or self.class_code_required:
            self.admin_token = self._admin_token or secrets.token_urlsafe(24)
        else:
            self.admin_token = None
        app = create_app(
            self.state,
            redirect_port=self.redirect_port,
            admin_token=self.admin_token,
            class_code=self.class_code,
            require_class_code=self.class_code_required,
            phone=self._phone,
        )
        if self.state_path:
            # From here every change is journaled, and fsync'd before the answer that follows it goes out.
            journal = StateJournal(self.state, self.state_path, compact_interval=self.compact_interval)
            with self.state._lock:
                journal.snapshot_now()  # what changed before start (the Python API) is in the file
                self.state.journal = journal
            journal.start()
            self._journal = journal
            app = durable_app(app, journal)
        config = uvicorn.Config(
            app,
            loop="auto",
            http="auto",
            ws="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            date_header=False,  # the app sends its own Date, on the simulated clock
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        )
        started = threading.Event()
        self._server = _Server(config, started)
        self._error = None
        self._thread = threading.Thread(
            target=self._serve, args=(self._server, sockets, started), name="openclaw-nb-sim", daemon=True
        )
        self._thread.start()
        started.wait()
        if not self._server.started:
            self._thread.join()
            self._thread = None
            for sock in sockets:
                sock.close()
            self._close_journal()
            raise SimError(f"the simulator did not start: {self._error!r}")
        return self

    def _close_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            with self.state._lock:
                self.state.journal = None
            journal.close()  # the last records, folded into the state file

    def _serve(self, server: _Server, sockets: list[socket.socket], started: threading.Event) -> None:
        try:
            server.run(sockets=sockets)
        except BaseException as exc:  # reported by start(): a thread must not die silently
            self._error = exc
        finally:
            started.set()

    def stop(self) -> None:
        """Answer every held long poll, shut uvicorn down, join its thread and save the state (if a path)."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        self.state.close()
        server.should_exit = True
        thread.join(timeout=_GRACEFUL_SHUTDOWN + 5)
        self._thread = None
        self._server = None
        self._close_journal()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.running else "not running"
        odd = len(self.state.conformance())
        differ = f", {odd} request(s) unlike the official client's" if odd else ""
        return f"<Simulator {where}: {len(self.state.bots)} bot(s), {len(self.state.outbox)} sent{differ}>"

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Save the state to ``path`` atomically; without one, fold the journal into ``state_path`` now."""
        target = path or self.state_path
        if not target:
            raise SimError("no state path: pass one, or create the Simulator with state_path=...")
        if path is None and self._journal is not None:
            self._journal.snapshot_now()
        else:
            self.state.save(target)

    def wait_saved(self, timeout: float = 10.0) -> None:
        """Block until every change made before this call is on disk (the journal, or the state file)."""
        if self._journal is not None:
            self._journal.wait(timeout)
        elif not self.state_path:
            raise SimError("no state path: create the Simulator with state_path=... to keep its state")

    @property
    def class_code_required(self) -> bool:
        """Whether the phone pages ask for the class code: ``require_class_code`` when given, else whenever a
        class code is set and the simulator listens beyond loopback."""
        if not self.class_code:
            return False
        if self._require_class_code is not None:
            return self._require_class_code
        return not _is_loopback(self.host)

    def phone_url(self, user: str | None = None) -> str:
        """The link a person's browser opens to play ``user`` (made known if new; ``"alice"`` or a full id),
        or, without a user, the picker where they pick or create one (the class's join page). Goes through
        jupyter-server-proxy on JupyterHub/Binder and uses the LAN address with ``host="0.0.0.0"`` (see
        :func:`openclaw_nb.sim.links.public_url`). With a class code a user's link carries that user's key
        (and the code itself where the pages ask for it): hand each person their own.

        >>> sim.phone_url("alice")  # doctest: +SKIP
        'http://127.0.0.1:8123/_sim/phone/alice'
        """
        if not self.running:
            raise SimError("phone links need a running simulator: sim.start() (or `with Simulator() as sim:`) first")
        if user is None:
            return public_url(self, PHONE_PREFIX + "/")
        user_id = self.state.add_user(user)
        with self.state._lock:
            link = self._phone.link(user_id, self.state._users.get(user_id))
        if self.class_code_required:
            link += ("&" if "?" in link else "?") + f"code={self.class_code}"
        return public_url(self, link)

    @property
    def redirect_base_url(self) -> str:
        """Base URL of the second host (what a client uses after ``scaned_but_redirect``)."""
        return self.base_url.split("://", 1)[0] + "://" + self.redirect_host if self.redirect_host else ""

    # --- the state's Python API, forwarded -------------------------------------------------------

    @property
    def config(self) -> SimConfig:
        return self.state.config

    def configure(self, **knobs: Any) -> SimConfig:
        """Change config knobs live: ``sim.configure(long_poll_timeout=0.5)``."""
        return self.state.configure(**knobs)

    def reset(self, config: SimConfig | None = None, **knobs: Any) -> None:
        """Forget everything and start over: with ``config``, or the config the simulator started with, then
        ``knobs`` on top (``sim.reset(long_poll_timeout=1)``). Knobs changed by ``configure`` are undone."""
        self.state.reset(config)
        self._phone.forget()
        if knobs:
            self.state.configure(**knobs)

    def login_bot(self, user_id: str | None = None) -> BotLogin:
        """A new bot with a token, without QR login: ``login = sim.login_bot("alice")``."""
        return self.state.login_bot(user_id)

    def revoke_token(self, bot_id: str | None = None) -> None:
        """Make a bot's token stale: its next request gets -14."""
        self.state.revoke_token(bot_id)

    def add_user(self, user: str, name: str | None = None) -> str:
        return self.state.add_user(user, name)

    @property
    def bots(self) -> dict[str, SimBot]:
        return self.state.bots

    @property
    def users(self) -> dict[str, SimUser]:
        return self.state.users

    # QR login
    @property
    def qrcodes(self) -> dict[str, QrCode]:
        return self.state.qrcodes

    @property
    def latest_qrcode(self) -> str | None:
        return self.state.latest_qrcode

    def set_qr_scenario(self, qrcode: str | None = None, *, count: int | None = None, **flags: Any) -> QrScenario:
        """The path of a QR code (or of new ones): ``verify_code``, ``redirect``, ``binded``, ``user_id``,
        ``auto_confirm``, and what its ``confirmed`` answer carries: ``baseurl`` (``"redirect"``: the second
        host) and ``omit`` (fields left out). See :class:`~openclaw_nb.sim.state.QrScenario`.
        ``sim.set_qr_scenario(verify_code="123456", count=1)``."""
        return self.state.set_qr_scenario(qrcode, count=count, **flags)

    def clear_qr_scenarios(self) -> None:
        self.state.clear_qr_scenarios()

    def scan(self, qrcode: str | None = None, user: str | None = None) -> str:
        """A user scans the QR code (default: the latest one)."""
        return self.state.scan(qrcode, user)

    def confirm(self, qrcode: str | None = None, user: str | None = None) -> str:
        """The user confirms the login on the phone (scanning first if needed)."""
        return self.state.confirm(qrcode, user)

    def expire(self, qrcode: str | None = None) -> str:
        return self.state.expire(qrcode)

    def wait_for_qrcode(self, timeout: float = 10.0, *, count: int = 1) -> str:
        """Block until ``count`` QR codes have been fetched in all; returns the latest one's id."""
        self.state.wait_for(lambda s: len(s._qrcodes) >= count, timeout)
        qrcode = self.state.latest_qrcode
        assert qrcode is not None
        return qrcode

    # users writing
    def say(
        self,
        user: str | None,
        text: str,
        bot_id: str | None = None,
        *,
        quote: Any = None,
        partial: tuple[int, int] | str | None = None,
        id_only: bool = False,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """A user writes to a bot (default: the latest bot); ``quote`` adds a ``ref_msg`` (``id_only=True``:
        only its ``svr_id``; ``partial=(start, end)`` or a substring: an excerpt, as ``partial_text``).

        >>> sim.say("alice", "why this?", quote=first, partial="the middle")  # doctest: +SKIP
        """
        return self.state.say(user, text, bot_id, quote=quote, partial=partial, id_only=id_only, run_id=run_id)

    def tool_call(
        self,
        user: str | None,
        tool_name: str,
        bot_id: str | None = None,
        *,
        call_id: str | None = None,
        status: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """A tool call starts (type 11; ``status=None``) or ends (type 12 with ``status``, e.g. ``"completed"``)."""
        return self.state.tool_call(user, tool_name, bot_id, call_id=call_id, status=status, run_id=run_id)

    def send_image(
        self,
        user: str | None,
        data: bytes,
        bot_id: str | None = None,
        *,
        key_format: str = "both",
        thumb: bytes | bool | None = None,
    ) -> dict[str, Any]:
        """A user sends an image (``thumb``: its thumbnail's bytes, True for a generated one, False for none)."""
        return self.state.send_image(user, data, bot_id, key_format=key_format, thumb=thumb)

    def send_file(self, user: str | None, data: bytes, file_name: str, bot_id: str | None = None) -> dict[str, Any]:
        return self.state.send_file(user, data, file_name, bot_id)

    def send_voice(
        self, user: str | None, data: bytes, text: str | None = None, bot_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return self.state.send_voice(user, data, text, bot_id, **kwargs)

    def send_video(self, user: str | None, data: bytes, bot_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.state.send_video(user, data, bot_id, **kwargs)

    def inbound(self, msg: dict[str, Any], bot_id: str | None = None) -> dict[str, Any]:
        return self.state.inbound(msg, bot_id)

    def inbox(self, bot_id: str | None = None) -> list[dict[str, Any]]:
        return self.state.inbox(bot_id)

    # what bots did
    @property
    def outbox(self) -> list[OutboxEntry]:
        """Messages bots sent (``entry.msg``, ``entry.text``, ``entry.media`` = decrypted bytes by item index)."""
        return self.state.outbox

    def wait_for_outbox(self, count: int = 1, timeout: float = 10.0, *, bot_id: str | None = None) -> list[OutboxEntry]:
        """Block until bots have sent ``count`` messages (to ``bot_id`` only, if given); returns them."""

        def sent(state: SimState) -> list[OutboxEntry] | None:
            entries = [e for e in state._outbox if bot_id is None or e.bot_id == bot_id]
            return entries if len(entries) >= count else None

        result: list[OutboxEntry] = self.state.wait_for(sent, timeout)
        return result

    @property
    def typing_events(self) -> list[TypingEvent]:
        return self.state.typing_events

    @property
    def notifications(self) -> list[Notification]:
        return self.state.notifications

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests

    def conformance(self) -> list[ConformanceEntry]:
        """Requests that differ from what the official client sends (headers, body keys, method), newest
        last; key names only, never values. ``[e.texts for e in sim.conformance()]`` reads as sentences."""
        return self.state.conformance()

    def clear_conformance(self) -> None:
        self.state.clear_conformance()

    def wait_for(self, predicate: Callable[[SimState], Any], timeout: float = 10.0) -> Any:
        """Block until ``predicate(sim.state)`` is truthy; returns its value (TimeoutError after ``timeout``)."""
        return self.state.wait_for(predicate, timeout)

    # clock and faults
    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> float:
        """Move the simulated clock: ``sim.advance(hours=25)`` closes every 24 h reply window."""
        return self.state.advance(seconds, minutes=minutes, hours=hours, days=days)

    def now(self) -> float:
        return self.state.now()

    def add_fault(self, **knobs: Any) -> FaultRule:
        """Inject transport trouble: ``sim.add_fault(http_500=1.0, count=2, endpoints=["get_updates"])``."""
        return self.state.add_fault(**knobs)

    def clear_faults(self) -> None:
        self.state.clear_faults()

    @property
    def faults(self) -> list[FaultRule]:
        return self.state.faults

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_sim/state`` shows."""
        return self.state.snapshot()
