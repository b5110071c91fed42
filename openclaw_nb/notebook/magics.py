"""IPython magics: ``%load_ext openclaw_nb``, then connect, log in, send, type, upload, watch updates and the
protocol log, and drive the embedded simulator from notebook cells.

The magics are thin shells over the library: each one parses its line (IPython's ``magic_arguments``, so
``%wx_send?`` shows the usage), calls one public method of the current :class:`~openclaw_nb.client.Client`,
and prints one line or returns an object that displays itself. They hold no protocol logic. Mistakes and
failures end as one ``UsageError`` line that says what to do, never a traceback, and nothing printed ever
contains a token. The sync ``Client`` is used throughout: it does real blocking I/O, so it works inside the
kernel's running event loop without re-entering it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .. import errors as E
from ..protocol import constants as C
from ..protocol.redact import redact, redact_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..client import Client
    from ..live import Feed
    from ..login import LoginHandle
    from ..sim import Simulator

F = TypeVar("F", bound=Callable[..., Any])

#: Names the magics bind in the user namespace.
CLIENT_NAME = "wx"
SIM_NAME = "sim"
#: What to run when a magic needs a client and there is none.
CONNECT_FIX = (
    "run %wx_connect first (the latest saved login), %wx_connect --sim (a local simulator) "
    "or %wx_connect --token T --base-url URL"
)
UPDATES_ACTIONS = ("start", "stop", "show", "frame")
SIM_ACTIONS = ("say", "image", "scan", "confirm", "outbox", "phone")
UPLOAD_KINDS = ("image", "file", "video")
#: Rows of the protocol log ``%wx_log`` shows when ``--last`` is not given.
LOG_ROWS = 20
#: Seconds the embedded simulator waits before confirming a QR login by itself when the login blocks the cell.
SIM_AUTO_CONFIRM = 1.0
#: Seconds ``%wx_sim scan``/``confirm`` wait for the login in progress (its QR fetch, then its end), so the
#: cells of a QR login can run back to back ("Run All").
SIM_LOGIN_WAIT = 5.0
#: A typed word this long or longer could be a token typed in the wrong place (the simulator's tokens have 64
#: characters); errors show such a word redacted unless it is recognisably something else (see _could_be_token).
TOKEN_LENGTH = 16


# --- parsing a magic's line ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    """One shell-like word of a line and where it sits; ``value`` is None when a quote is never closed."""

    value: str | None
    start: int
    end: int


def _words(line: str) -> Iterator[_Word]:
    """The words of ``line``: quotes group (and are removed), a backslash escapes a space or a quote.

    IPython's own splitter keeps the quotes inside the words (``--caption "two words"`` would send the quotes),
    and ``shlex`` gives no offsets, which the free-text magics need to keep their text exactly as typed.
    """
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return
        start, parts, closed = i, [], True
        while i < n and not line[i].isspace():
            c = line[i]
            if c in "'\"":
                close = line.find(c, i + 1)
                if close < 0:
                    closed, i = False, n
                    break
                parts.append(line[i + 1 : close])
                i = close + 1
            elif c == "\\" and i + 1 < n and (line[i + 1].isspace() or line[i + 1] in "'\"\\"):
                parts.append(line[i + 1])
                i += 2
            else:
                parts.append(c)
                i += 1
        yield _Word("".join(parts) if closed else None, start, i)


def _is_option(line: str, word: _Word) -> bool:
    value = word.value
    if value is None or len(value) < 2 or line[word.start] in "'\"":
        return False  # a quoted word is never an option: that is how text may start with "-"
    return value.startswith("-") and not value[1:].replace(".", "", 1).isdigit()


def _value(magic: str, word: _Word) -> str:
    if word.value is None:
        raise UsageError(f"%{magic}: a quote is not closed; close it, or put the text in the cell form")
    return word.value


def _split(magic: str, parser: argparse.ArgumentParser, line: str, rest: str | None) -> tuple[list[str], str]:
    """``line`` as argv for the parser, and with ``rest``, the free text after the last positional, raw.

    Options may come before the text; the text starts at the first word that is not an option once the
    positionals are filled (or after ``--``) and is kept exactly as typed, apostrophes and spaces included.
    """
    positionals = [a for a in parser._actions if not a.option_strings and a.dest != rest]
    takes_value = {opt: a.nargs != 0 for a in parser._actions for opt in a.option_strings}
    argv: list[str] = []
    seen = 0
    want_value = False
    for word in _words(line):
        if want_value:
            argv.append(_value(magic, word))
            want_value = False
            continue
        if rest is not None and seen >= len(positionals):
            if word.value == "--":
                return argv, line[word.end :].strip()
            if not _is_option(line, word):
                return argv, line[word.start :].strip()
        value = _value(magic, word)
        argv.append(value)
        if _is_option(line, word):
            want_value = "=" not in value and takes_value.get(value, False)
        elif value != "--":
            seen += 1
    return argv, ""


def _take_all_flag(line: str) -> str | None:
    """``line`` without its ``--all`` option when one comes before the text (None without one)."""
    for word in _words(line):
        if not _is_option(line, word):
            return None
        if word.value == "--all":
            return (line[: word.start] + line[word.end :]).strip()
    return None


def _feed_users(frame: pd.DataFrame) -> list[str]:
    """The users who wrote in the feed's messages, in the order they first wrote (bots' own messages left out)."""
    inbound = frame[frame["message_type"] != C.MessageType.BOT]["from_user_id"]
    return [user for user in dict.fromkeys(inbound.dropna().astype(str)) if user]


def _unquote(text: str) -> str:
    """``"hello world"`` → ``hello world`` when one pair of quotes wraps the whole text; anything else as typed."""
    if len(text) >= 2 and text[0] in "'\"" and text.find(text[0], 1) == len(text) - 1:
        return text[1:-1]
    return text


def _usage(parser: argparse.ArgumentParser) -> str:
    # magic_arguments writes the usage as a reST literal block ("::" first) for the docstring.
    usage = " ".join(parser.format_usage().split())
    return usage.removeprefix("usage:").strip().removeprefix("::").strip()


def _user(magic: str, value: str) -> str:
    """A user id as typed, a bare name meaning a WeChat user (``alice`` → ``alice@im.wechat``)."""
    if value.startswith(("$", "{")):
        name = value.strip("${}")
        # IPython leaves $name alone when an odd number of apostrophes follows it on the line ("don't").
        raise UsageError(
            f"%{magic}: {value!r} was not expanded: define that Python variable first ({name} = 'alice@im.wechat'); "
            f"with an apostrophe later on the line, write {{{name}}} instead of ${name}"
        )
    if "@" in value:
        return value
    # The simulator owns the rule for friendly names; importing it only here keeps %load_ext light.
    from ..sim.state import user_id_of

    return user_id_of(value)


class _HeldWarnings(logging.Filter):
    """Holds back the client's "sending without a context_token" warning during one send, so that a magic can
    fold it into its own line (the error it explains, or a note printed before the result)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "without a context_token" in str(record.msg):
            self.held.append(record.getMessage())
            return False
        return True


@contextlib.contextmanager
def _held_warnings() -> Iterator[list[str]]:
    logger = logging.getLogger("openclaw_nb")
    held = _HeldWarnings()
    logger.addFilter(held)
    try:
        yield held.held
    finally:
        logger.removeFilter(held)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _path(magic: str, value: str) -> str:
    path = os.path.expanduser(value)
    if os.path.isdir(path):
        raise UsageError(f"%{magic}: {value!r} is a directory; pass one file (zip a folder to send it)")
    if not os.path.isfile(path):
        raise UsageError(f"%{magic}: no such file: {value!r} (relative paths start at {os.getcwd()!r})")
    return path


def _cannot_read(magic: str, value: str, path: str, exc: OSError) -> UsageError:
    """An OSError while reading the file the user named (permission denied, an I/O error, the file removed
    since it was checked), as one line naming the file and the reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None and os.fsdecode(exc.filename) not in (value, path):
        return UsageError(f"%{magic}: {reason}: {os.fsdecode(exc.filename)!r}")
    return UsageError(
        f"%{magic}: cannot read {value!r}: {reason}; check that you may read it (its permissions), "
        "or copy it somewhere readable"
    )


# --- what an error may repeat of the line -------------------------------------------------------------

#: User and bot ids (alice@im.wechat, 0123abcd@im.bot): not secrets.
_ID = re.compile(r"[\w.-]+@im\.(?:wechat|bot)")
#: A file name with an extension (chart.png, sends.har): a path, not a token.
_FILE_NAME = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_OPTION = re.compile(r"--?[a-z][a-z-]*")


def _could_be_token(word: str) -> bool:
    """Whether ``word``, typed on a magic's line, could be a token in the wrong place (``%wx_connect $token``
    without ``--token``): one long word that is not an id, a URL, an option, a file name or an existing path."""
    if len(word) < TOKEN_LENGTH or _ID.fullmatch(word) or _URL.match(word) or _OPTION.fullmatch(word):
        return False
    if _FILE_NAME.search(word):  # a JWT-like token's last part is far longer than an extension
        return False
    try:
        return not os.path.exists(os.path.expanduser(word))
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system
        return True


def _typed_tokens(line: str) -> set[str]:
    """The words of ``line`` an error must not repeat as typed (argparse quotes unknown words, the store
    quotes an unknown account): split where a value can end, so ``--tokn=VALUE`` yields ``VALUE``."""
    return {word for word in re.split(r"[\s'\"=]+", line) if _could_be_token(word)}


# --- errors -------------------------------------------------------------------------------------------


def _friendly(func: F) -> F:
    """Library failures become one UsageError line (IPython shows no traceback for exactly that class).

    Remote failures end the cell as errors too, so "Run all" stops at a failed send. Messages are redacted
    again here, and every secret the magics know of is masked, whatever the library put in them.
    """

    @functools.wraps(func)
    def wrapper(self: WxMagics, *args: Any, **kwargs: Any) -> Any:
        line = args[0] if args and isinstance(args[0], str) else ""
        try:
            return func(self, *args, **kwargs)
        except UsageError as exc:
            raise UsageError(self._scrub(str(exc), line)) from None
        except E.OpenClawError as exc:
            message = f"%{func.__name__}: {_one_line(str(exc))}"
            if isinstance(exc, E.StaleTokenError):
                message += "; here: run %wx_login"
            elif isinstance(exc, E.SendRejectedError) and "no context_token was sent" in str(exc):
                message += "; here: run %wx_updates start, so the user's messages (and their tokens) come in"
            raise UsageError(self._scrub(message, line)) from None
        except OSError as exc:
            # The file system, not the protocol (a data folder that cannot be written, a port in use).
            reason = exc.strerror or str(exc) or type(exc).__name__
            where = f": {os.fsdecode(exc.filename)!r}" if exc.filename is not None else ""
            raise UsageError(self._scrub(f"%{func.__name__}: {_one_line(reason)}{where}", line)) from None

    return wrapper  # type: ignore[return-value]


# --- displayable results ------------------------------------------------------------------------------


#: (magic, what it does, one example) for ``%wx_help``; a test checks it covers every registered magic.
HELP: tuple[tuple[str, str, str], ...] = (
    (
        "%load_ext openclaw_nb",
        "register these magics (%unload_ext openclaw_nb removes them, stopping the simulator and the feed)",
        "%load_ext openclaw_nb",
    ),
    (
        "%wx_connect",
        "pick or create the client `wx`: the latest saved login, a token, a saved account, or --sim",
        "%wx_connect --sim",
    ),
    ("%wx_login", "log `wx` in by QR code (a widget in Jupyter)", "%wx_login"),
    ("%wx_send", "send a text; the cell form sends the cell body as is", "%wx_send alice@im.wechat hello there"),
    (
        "%wx_send --all",
        "send a text to every user seen in the live feed at once, and show who got it (a table)",
        "%wx_send --all the class starts at 9 today",
    ),
    (
        "%%wx_send",
        "send the cell body, several lines kept as typed",
        "%%wx_send alice@im.wechat\nfirst line of the message\n  and a second one, indented",
    ),
    (
        "%wx_typing",
        "show (or hide, --cancel) the typing indicator; %%wx_typing USER keeps it on while the cell runs",
        "%wx_typing alice@im.wechat",
    ),
    ("%wx_upload", "upload a file and send it (progress bar)", '%wx_upload chart.png --to alice --caption "today"'),
    ("%wx_updates", "start / stop / show the live feed, or get its DataFrame", "df = %wx_updates frame"),
    ("%wx_chat", "the chat panel: conversations, bubbles, a reply box, each message's exchange", "%wx_chat alice"),
    ("%wx_log", "the protocol log: last exchanges, one call, HAR / JSONL", "%wx_log --last 5 --call send_message"),
    ("%wx_drift", "what the server sent that the models did not expect", "%wx_drift"),
    ("%wx_sim", "drive the embedded simulator: say, image, scan, confirm, outbox", "%wx_sim say alice hello bot"),
    (
        "%wx_sim phone",
        "links to the phone pages where a person plays a user in a browser (none: the join page)",
        "%wx_sim phone alice bob",
    ),
    ("%wx_help", "this table", "%wx_help"),
)


class HelpTable:
    """What ``%wx_help`` shows: each magic with one example (text and HTML)."""

    rows = HELP

    def __repr__(self) -> str:
        width = max(len(name) for name, _, _ in self.rows)
        lines = ["openclaw-nb magics (`%magic?` shows a magic's options)"]
        for name, what, example in self.rows:
            lines.append(f"  {name:<{width}}  {what}")
            first, *more = example.split("\n")  # the cell form's example has its body below it
            lines.append(f"  {'':<{width}}    e.g. {first}")
            lines.extend(f"  {'':<{width}}         {body}" for body in more)
        lines.append("USER is a user id (…@im.wechat); a bare name such as alice means alice@im.wechat.")
        lines.append("Python variables expand on the magic's line: %wx_send $user {text}.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='text-align:left'><code>{html.escape(name)}</code></td>"
            f"<td style='text-align:left'>{html.escape(what)}</td>"
            f"<td style='text-align:left'><pre style='margin:0'><code>{html.escape(example)}</code></pre></td></tr>"
            for name, what, example in self.rows
        )
        return (
            "<div class='openclaw-help'><b>openclaw-nb magics</b> (<code>%magic?</code> shows a magic's options)"
            "<table><thead><tr><th style='text-align:left'>magic</th><th style='text-align:left'>does</th>"
            f"<th style='text-align:left'>example</th></tr></thead><tbody>{rows}</tbody></table>"
            "<div>USER is a user id (…@im.wechat); a bare name such as <code>alice</code> means "
            "<code>alice@im.wechat</code>. Python variables expand on the magic's line: "
            "<code>%wx_send $user {text}</code>.</div></div>"
        )


def _print_phone_links(sim: Simulator, users: list[str]) -> None:
    """One line per user: the link a person's browser opens to play that user (``sim.phone_url``); without
    users, the join page where people pick or create one, with the class code when the pages ask for it."""
    if not users:
        print(f"phone pages: {sim.phone_url()}  (open it in a browser, pick or create a user)")
        if sim.class_code_required:
            print(f"class code:  {sim.class_code}  (what people type there)")
        return
    for user in users:
        print(f"{user}: {sim.phone_url(user)}")
    if sim.class_code:
        print("each link carries that user's key: hand it to that person only")


def _outbox_frame(sim: Simulator, last: int | None) -> pd.DataFrame:
    """What bots sent to the simulator, one row per message; context tokens and media keys stay out."""
    import pandas as pd

    entries = sim.outbox
    if last:
        entries = entries[-last:]

    def kinds(types: list[int | None]) -> str:
        names = []
        for t in types:
            try:
                names.append(C.ItemType(t).name.lower() if t is not None else "none")
            except ValueError:
                names.append(str(t))
        return ",".join(names)

    return pd.DataFrame(
        {
            "time": pd.to_datetime([e.time_ms for e in entries], unit="ms", utc=True),
            "bot_id": pd.Series([e.bot_id for e in entries], dtype="str"),
            "to_user_id": pd.Series([e.to_user_id for e in entries], dtype="str"),
            # UInt64: the simulator's ids are above 2**63, beyond int64 and float64.
            "message_id": pd.array([e.message_id for e in entries], dtype="UInt64"),
            "items": pd.Series([kinds(e.item_types) for e in entries], dtype="str"),
            "text": pd.Series([e.text for e in entries], dtype="str"),
            "media_bytes": pd.Series([sum(len(b) for b in e.media.values()) for e in entries], dtype="int64"),
            "problems": pd.Series(["; ".join(e.problems) for e in entries], dtype="str"),
        }
    )


def _secrets_of(client: Client | None, sim: Simulator | None) -> set[str]:
    """The secrets a client and a simulator hold: tokens, context tokens, typing tickets."""
    found: set[str] = set()
    if client is not None:
        if client.token:
            found.add(client.token)
        found.update(p.context_token for p in client.peers.values() if p.context_token)
        found.update(e.ticket for e in client.typing_tickets.entries.values() if e.ticket)
    if sim is not None:
        found.update(b.token for b in sim.bots.values() if b.token)
    return found


# --- the magics ---------------------------------------------------------------------------------------


@magics_class
class WxMagics(Magics):
    """The notebook's current client (``wx``), its embedded simulator (``sim``) and live feed, and the magics
    that drive them. One instance per shell, made by ``%load_ext openclaw_nb``."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell=shell)
        self.client: Client | None = None
        self.sim: Simulator | None = None
        self.feed: Feed | None = None
        self.login_handle: LoginHandle | None = None
        #: Where the simulator's logins, cursors and context tokens go: never the user's real data folder,
        #: so a simulated bot does not become "the latest saved login" of the next %wx_connect.
        self.sim_home: str | None = None
        #: Per user: the inbound message being answered (its context token and time) and its ``run_id``.
        self._turns: dict[str, tuple[tuple[Any, ...], str]] = {}

    # --- state ---

    def _need_client(self, magic: str) -> Client:
        if self.client is None:
            raise UsageError(f"%{magic}: no current client: {CONNECT_FIX}")
        return self.client

    def _need_login(self, magic: str) -> Client:
        client = self._need_client(magic)
        if not client.token:
            raise UsageError(f"%{magic}: {CLIENT_NAME} is not logged in yet: run %wx_login first")
        return client

    def _need_sim(self, magic: str) -> Simulator:
        if self.sim is None:
            raise UsageError(f"%{magic}: no embedded simulator: start one with %wx_connect --sim")
        return self.sim

    def _run_id(self, client: Client, user: str) -> str | None:
        """The ``run_id`` of a reply to ``user``: one per inbound turn, as the official client tags its replies,
        so every send until the user writes again shares it. None before the user has written (not a reply)."""
        peer = client.peers.get(user)
        if peer is None or (peer.context_token is None and peer.last_inbound_ms is None):
            return None
        turn = (id(client), peer.context_token, peer.last_inbound_ms)
        known = self._turns.get(user)
        if known is None or known[0] != turn:
            from ..client import new_run_id

            known = self._turns[user] = (turn, new_run_id())
        return known[1]

    def _send(self, magic: str, client: Client, user: str, context_token: str | None, send: Callable[[], Any]) -> Any:
        """Run ``send`` with the client's "no context_token" warning folded in: an API error for a user the
        client has never heard from says that first, with what to run, then the server's answer, in one line;
        a send that goes through anyway prints the warning as a one-line note before the result."""
        with _held_warnings() as held:
            try:
                resp = send()
            except E.ApiError as exc:
                peer = client.peers.get(user)
                heard = peer is not None and (peer.context_token is not None or peer.last_inbound_ms is not None)
                if context_token or heard:
                    raise
                raise UsageError(self._never_heard(magic, client, user, exc)) from None
        for note in held:
            print(f"note: {_one_line(note)}")
        return resp

    def _never_heard(self, magic: str, client: Client, user: str, exc: E.ApiError) -> str:
        name = user.removesuffix("@im.wechat")
        on_sim = self.sim is not None and client.base_url == self.sim.base_url
        if self.feed is not None and self.feed.running and self.feed.client is client:
            fix = "the running feed brings their message (and its token) in"
        else:
            fix = "then run %wx_updates start to bring their message (and its token) in"
        first = f"let them write first (%wx_sim say {name} hi)" if on_sim else "wait for them to write to the bot"
        said = f"ret={exc.code}" + (f", {exc.errmsg!r}" if exc.errmsg else "")
        return (
            f"%{magic}: {CLIENT_NAME} has not heard from {user} yet, so there is no context_token to reply with: "
            f"{first}, {fix}, and send again (the server answered {said})"
        )

    def _store(self) -> Any:
        """The data folder for the current client's stream: the simulator's own, or the default (None)."""
        if self.sim_home is None:
            return None
        from ..store import Store

        return Store(self.sim_home)

    def _secrets(self) -> set[str]:
        """Every secret the magics can see, to mask in their messages."""
        return _secrets_of(self.client, self.sim)

    def _scrub(self, text: str, line: str = "") -> str:
        """``text`` with every secret masked: those of the current client and simulator, and any word of the
        magic's ``line`` that could be a token typed in the wrong place."""
        text = redact_text(text)
        secrets = self._secrets() | _typed_tokens(line)
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 8:  # short values could mask ordinary words; tokens are long
                text = text.replace(secret, redact(secret))
        return text

    def _parse(self, magic: str, line: str, rest: str | None = None, hint: str = "") -> argparse.Namespace:
        """Parse a magic's line with its ``magic_arguments`` parser; errors carry the usage line (and ``hint``
        after unrecognized arguments). Words that could be tokens are masked later, by ``_friendly``."""
        parser = getattr(self, magic).parser
        argv, text = _split(magic, parser, line, rest)
        try:
            args = parser.parse_args(argv)
        except UsageError as exc:
            extra = f"; {hint}" if hint and str(exc).startswith("unrecognized arguments") else ""
            raise UsageError(f"%{magic}: {exc}{extra}. Usage: {_usage(parser)}") from None
        if rest is not None:
            setattr(args, rest, text)
        return args

    def _bind(self, name: str, value: Any) -> None:
        assert self.shell is not None
        self.shell.push({name: value})

    def _unbind(self, name: str, value: Any) -> None:
        assert self.shell is not None
        # Only our own object: the user may have reused the name for something else since.
        if value is not None and self.shell.user_ns.get(name) is value:
            del self.shell.user_ns[name]

    def close(self) -> None:
        """Stop what the magics started: the feed, a running login, the simulator, and close the client."""
        self._retire(self.client, self.sim, self.feed, self.login_handle, self.sim_home)
        self._unbind(CLIENT_NAME, self.client)
        self._unbind(SIM_NAME, self.sim)
        self.client = self.sim = self.feed = self.login_handle = self.sim_home = None

    @staticmethod
    def _retire(
        client: Client | None,
        sim: Simulator | None,
        feed: Feed | None,
        handle: LoginHandle | None,
        sim_home: str | None,
    ) -> None:
        if handle is not None and not handle.done():
            handle.cancel()
        if feed is not None:
            feed.stop()
        if sim is not None:
            if feed is not None and feed.running:
                feed._stop_serving()  # its notifystop goes out while the simulator still answers
            sim.stop()  # answers held long polls, so a feed on it ends at once

        def finish() -> None:
            if feed is not None and feed.running:
                try:
                    feed.wait()
                except Exception:  # what ended the feed was logged then; closing goes on regardless
                    pass
            if client is not None:
                client.close()
            if sim_home is not None:
                shutil.rmtree(sim_home, ignore_errors=True)

        if feed is not None and feed.running:
            # A feed on a real server ends when its long poll returns (up to ~35 s) and uses the client and
            # the data folder until then: close them after it, without making the cell wait.
            threading.Thread(target=finish, name="openclaw-nb-close", daemon=True).start()
        else:
            finish()

    # --- %wx_connect ---

    @magic_arguments()
    @argument("--sim", action="store_true", help="start an embedded simulator and connect to it (bound to `sim`)")
    @argument("--qr", action="store_true", help="with --sim: start logged out, to log in with %%wx_login")
    @argument(
        "--long-poll", type=float, metavar="SECONDS", help="with --sim: how long the simulator holds getupdates (> 0)"
    )
    @argument(
        "--host",
        metavar="HOST",
        help="with --sim: the interface the simulator listens on (default 127.0.0.1; 0.0.0.0: phones on the network)",
    )
    @argument(
        "--class-code",
        nargs="?",
        const=True,
        default=None,
        metavar="CODE",
        help="with --sim: class mode, people join from phone pages with this code (a random one when left out)",
    )
    @argument("--base-url", metavar="URL", help=f"API base URL (default: {C.DEFAULT_BASE_URL})")
    @argument("--token", metavar="TOKEN", help="a bot token (better from a variable: --token $token)")
    @argument("--account", metavar="BOT_ID", help="a saved login (see openclaw_nb.accounts.list_accounts())")
    @line_magic
    @_friendly
    def wx_connect(self, line: str) -> None:
        """Pick or create the notebook's current client and bind it to `wx`.

        No options: the latest saved login (a logged-out client for the default server when there is none).
        --account BOT_ID: that saved login. --token TOKEN: a client with that token. --base-url URL alone: a
        logged-out client for that server. --sim: a local simulator on 127.0.0.1 (bound to `sim`) and a
        client already logged in as a simulated bot, ready to receive and send; with --qr it starts logged
        out, so %wx_login, %wx_sim scan and %wx_sim confirm show the QR login; --class-code [CODE] turns on
        class mode (people join from phone pages with that code; %wx_sim phone prints the links) and --host
        0.0.0.0 lets phones on the same network in. Connecting again replaces the client (and stops the
        previous simulator and feed).

        Example: %wx_connect --sim
        """
        from ..client import Client
        from ..store import Store

        args = self._parse(
            "wx_connect", line, hint="a token goes after --token (--token $token), a saved bot id after --account"
        )
        if args.token and args.account:
            raise UsageError("%wx_connect: pass --token or --account, not both")
        if args.sim and (args.token or args.account or args.base_url):
            raise UsageError("%wx_connect: --sim runs its own server and bot; leave out --base-url/--token/--account")
        if not args.sim and (args.qr or args.long_poll is not None or args.host or args.class_code):
            raise UsageError("%wx_connect: --qr, --long-poll, --host and --class-code go with --sim")
        if args.long_poll is not None and not (math.isfinite(args.long_poll) and args.long_poll > 0):
            raise UsageError(
                f"%wx_connect: --long-poll takes a number of seconds above 0, not {args.long_poll:g}: "
                "%wx_connect --sim --long-poll 2"
            )
        sim: Simulator | None = None
        sim_home: str | None = None
        if args.sim:
            from ..sim import Simulator

            knobs = {} if args.long_poll is None else {"long_poll_timeout": args.long_poll}
            sim_home = tempfile.mkdtemp(prefix="openclaw-nb-sim-")
            try:
                sim = Simulator(**knobs, host=args.host or "127.0.0.1", class_code=args.class_code).start()
                client = Client(base_url=sim.base_url, cdn_base_url=sim.cdn_base_url)
                if args.qr:
                    status = "not logged in: run %wx_login, then %wx_sim scan and %wx_sim confirm"
                else:
                    bot = sim.login_bot()
                    client.use_credentials(bot.bot_token, bot_id=bot.bot_id)
                    status = f"logged in as the simulated bot {bot.bot_id} (owned by {bot.ilink_user_id})"
            except BaseException:  # a port in use, say: leave no server or folder behind
                if sim is not None:
                    sim.stop()
                shutil.rmtree(sim_home, ignore_errors=True)
                raise
            message = f"{CLIENT_NAME}: the embedded simulator at {sim.base_url} (bound to `{SIM_NAME}`), {status}"
            if sim.class_code:
                message += f"\nclass mode: people join at {sim.phone_url()} with the class code {sim.class_code}"
        elif args.account:
            kw = {"base_url": args.base_url} if args.base_url else {}
            try:
                client = Client.from_saved(args.account, **kw)
            except E.UsageError as exc:
                if not _could_be_token(args.account):
                    raise
                raise UsageError(  # masked by _friendly, like every word of the line that could be a token
                    f"%wx_connect: {_one_line(str(exc))}; --account takes a saved bot id (…@im.bot), "
                    "a token goes after --token"
                ) from None
            message = f"{CLIENT_NAME}: bot {client.bot_id} at {client.base_url} (saved login)"
        elif args.token:
            client = Client(args.token, base_url=args.base_url or C.DEFAULT_BASE_URL)
            message = f"{CLIENT_NAME}: a client with the given token at {client.base_url}"
        elif args.base_url or not Store().accounts():
            client = Client(base_url=args.base_url or C.DEFAULT_BASE_URL)
            why = "" if args.base_url else "no saved login yet, so "
            message = f"{CLIENT_NAME}: {why}a client for {client.base_url}, not logged in: run %wx_login"
        else:
            client = Client.from_saved()
            message = f"{CLIENT_NAME}: bot {client.bot_id} at {client.base_url} (the latest saved login)"
        old_sim = self.sim
        replaced = []
        if old_sim is not None:
            replaced.append(f"the simulator at {old_sim.base_url} (stopped)")
        if self.feed is not None:
            replaced.append(f"the feed ({_count(len(self.feed), 'message')}, stopped)")
        if self.client is not None and not replaced:
            replaced.append("the previous client (closed)")
        self._retire(self.client, self.sim, self.feed, self.login_handle, self.sim_home)
        if sim is None:
            self._unbind(SIM_NAME, old_sim)
        self.client, self.sim, self.feed, self.login_handle, self.sim_home = client, sim, None, None, sim_home
        self._bind(CLIENT_NAME, client)
        if sim is not None:
            self._bind(SIM_NAME, sim)
        if replaced:
            message += "; replaced " + " and ".join(replaced)
        print(message)

    # --- %wx_login ---

    @magic_arguments()
    @line_magic
    @_friendly
    def wx_login(self, line: str) -> None:
        """Log the current client in by QR code: the widget in Jupyter (the cell returns at once and the
        widget follows the login), the QR code drawn as text in a terminal (the cell waits). The credentials
        are saved for %wx_connect (a simulator's go to its own temporary folder).

        With the embedded simulator, confirm from the next cells with %wx_sim scan and %wx_sim confirm; where
        the login blocks the cell (a terminal), the simulator confirms it by itself after a second.

        Example: %wx_login
        """
        from ..login import LoginHandle, choose_display

        self._parse("wx_login", line)
        client = self._need_client("wx_login")
        if self.login_handle is not None and not self.login_handle.done():
            self.login_handle.cancel()  # one QR at a time: a second would race the first for the credentials
        on_sim = self.sim is not None and client.base_url == self.sim.base_url
        kw: dict[str, Any] = {"home": self.sim_home} if on_sim else {}
        if on_sim and choose_display("auto") == "terminal":
            assert self.sim is not None
            # Nothing else can run while the login blocks this cell, so no %wx_sim confirm could answer it.
            self.sim.set_qr_scenario(auto_confirm=SIM_AUTO_CONFIRM, count=1)
            print(f"(the simulator scans and confirms this QR code by itself in {SIM_AUTO_CONFIRM:g} s)")
        result = client.login(**kw)
        if isinstance(result, LoginHandle):
            self.login_handle = result

    # --- %wx_send ---

    @magic_arguments()
    @argument("--context-token", metavar="T", help="echo this context token (default: the user's latest)")
    @argument(
        "--all",
        action="store_true",
        help="send to every user seen in the live feed (%%wx_updates) at once instead of one USER; shows the table",
    )
    @argument("user", metavar="USER", help="the user id (…@im.wechat); a bare name means name@im.wechat")
    # default=[]: without a default, argparse makes a nargs="*" positional required.
    @argument(
        "text", nargs="*", default=[], metavar="TEXT", help="the text (line form); the cell form sends the cell body"
    )
    @line_cell_magic
    @_friendly
    def wx_send(self, line: str, cell: str | None = None) -> Any:
        """Send a text message and print its message id.

        Line form: the text is the rest of the line, as typed (options go before it; `--` ends them;
        quotes around the whole text are dropped). Cell form: the cell body is the text, every line and
        space kept, nothing expanded. Long texts go out as several messages.

        --all (no USER) sends the text to every user seen in the live feed at once (a broadcast: users whose
        reply window closed or whose context token is used up are skipped) and returns the result table.

        Examples:
          %wx_send alice@im.wechat hello there
          %wx_send $user {answer}
          %%wx_send $user
          first line
            second line
          %wx_send --all the class starts at 9 today
        """
        everyone = _take_all_flag(line)
        if everyone is not None:
            return self._send_all(everyone, cell)
        if cell is None:
            args = self._parse("wx_send", line, rest="text")
            text = _unquote(args.text)
            if not text:
                raise UsageError(
                    "%wx_send: nothing to send: write the text after USER, or use the cell form %%wx_send USER"
                )
        else:
            args = self._parse("wx_send", line)
            if args.text:
                raise UsageError(
                    "%%wx_send: the cell body is the message; put only USER (and --context-token) on its line"
                )
            text = cell.rstrip("\r\n")  # IPython ends every cell with a newline the user did not type
            if not text.strip():
                raise UsageError("%%wx_send: the cell is empty: write the message below the %%wx_send line")
        if args.all:
            raise UsageError("%wx_send: --all replaces USER: write %wx_send --all TEXT (options before the text)")
        user = _user("wx_send", args.user)
        client = self._need_login("wx_send")
        resp = self._send(
            "wx_send",
            client,
            user,
            args.context_token,
            lambda: client.send_text(user, text, args.context_token, run_id=self._run_id(client, user)),
        )
        parts = getattr(resp, "parts", None) or [resp]
        if len(parts) > 1:
            ids = ", ".join(str(p.message_id) for p in parts)
            print(f"sent to {user} as {len(parts)} messages: message_ids {ids}")
        else:
            print(f"sent to {user}: message_id {resp.message_id}")

    def _send_all(self, line: str, cell: str | None) -> Any:
        """``%wx_send --all``: a broadcast to the users the live feed has seen; the result table is returned."""
        words = list(_words(line))
        if words and words[0].value == "--":
            line = line[words[0].end :].strip()
        elif words and _is_option(line, words[0]):
            raise UsageError(
                f"%wx_send --all: {words[0].value} does not go with --all (each user's own context token is used); "
                "write only the text after --all"
            )
        if cell is None:
            text = _unquote(line.strip())
            if not text:
                raise UsageError("%wx_send --all: nothing to send: write the text after --all, or use %%wx_send --all")
        else:
            if line.strip():
                raise UsageError("%%wx_send --all: the cell body is the message; put only --all on its line")
            text = cell.rstrip("\r\n")
            if not text.strip():
                raise UsageError("%%wx_send --all: the cell is empty: write the message below the %%wx_send line")
        client = self._need_login("wx_send")
        feed = self.feed
        if feed is None or feed.client is not client:
            raise UsageError(
                "%wx_send --all: it sends to the users seen in the live feed, and there is none for wx: "
                "run %wx_updates start and let the users write first"
            )
        users = _feed_users(feed.frame)
        if not users:
            raise UsageError(
                "%wx_send --all: the live feed has seen no user yet, so there is nobody to send to: "
                "wait for messages (%wx_updates show)"
            )
        from ..broadcast import BroadcastInterrupted

        try:
            return client.broadcast(users, text)
        except BroadcastInterrupted as stop:  # Ctrl-C: the sends under way finished; show the table so far
            print(f"interrupted: no new send started; the table so far (also in {CLIENT_NAME}.last_broadcast):")
            return stop.result

    # --- %wx_typing ---

    @magic_arguments()
    @argument("--cancel", action="store_true", help="hide the indicator (line form)")
    @argument(
        "--every",
        type=float,
        metavar="SECONDS",
        default=C.TYPING_KEEPALIVE_SECONDS,
        help=f"cell form: show it again this often (default {C.TYPING_KEEPALIVE_SECONDS:g}; 0: only at the start)",
    )
    @argument("user", metavar="USER", help="the user id (…@im.wechat); a bare name means name@im.wechat")
    @line_cell_magic
    @_friendly
    def wx_typing(self, line: str, cell: str | None = None) -> None:
        """Show the typing indicator to a user (or hide it with --cancel). The user must have written first.

        Cell form: the indicator is on while the cell runs, shown again every 5 s (--every) as the official
        client does while it produces a reply, and hidden when the cell ends, also when it fails; nothing
        keeps running after it.

        Examples:
          %wx_typing alice@im.wechat
          %%wx_typing alice@im.wechat
          answer = slow_model(question)
        """
        args = self._parse("wx_typing", line)
        user = _user("wx_typing", args.user)
        if cell is not None:
            self._typing_cell(user, args, cell)
            return
        client = self._need_login("wx_typing")
        shown = client.typing(user, cancel=args.cancel)
        if shown is None:
            print(f"typing is off for {user}: the server gave no typing ticket (it is fetched again within 24 h)")
        elif args.cancel:
            print(f"typing indicator hidden for {user}")
        else:
            print(f"typing… shown to {user} (hide it with %wx_typing {user} --cancel)")

    def _typing_cell(self, user: str, args: argparse.Namespace, cell: str) -> None:
        if args.cancel:
            raise UsageError("%%wx_typing: --cancel is for the line form; the cell form hides it when the cell ends")
        every = args.every
        if not math.isfinite(every) or every < 0:
            raise UsageError(f"%%wx_typing: --every is a number of seconds >= 0 (0: show it once), got {every!r}")
        client = self._need_login("wx_typing")
        assert self.shell is not None
        with client.typing_indicator(user, keepalive=every):
            result = self.shell.run_cell(cell)  # its errors show as in any cell's; the indicator is hidden anyway
        if not result.success:
            # The traceback is shown already; this ends the cell as failed too, so "Run all" stops here.
            raise UsageError(f"%%wx_typing: the cell failed (see above); the typing indicator for {user} is hidden")
        print(f"typing indicator hidden for {user}")

    # --- %wx_upload ---

    @magic_arguments()
    @argument("path", metavar="PATH", help="the file to send")
    @argument("--to", metavar="USER", required=True, help="the user id; a bare name means name@im.wechat")
    @argument("--caption", metavar="TEXT", help="a text sent just before the media")
    @argument("--as", dest="kind", choices=UPLOAD_KINDS, help="the message kind (default: from the MIME type)")
    @argument("--no-progress", action="store_true", help="no progress bar (default: one for files above 1 MiB)")
    @line_magic
    @_friendly
    def wx_upload(self, line: str) -> None:
        """Encrypt and upload a file to the CDN, then send it to a user (a progress bar for large files).

        Example: %wx_upload chart.png --to alice@im.wechat --caption "today's numbers"
        """
        args = self._parse("wx_upload", line)
        path = _path("wx_upload", args.path)
        user = _user("wx_upload", args.to)
        client = self._need_login("wx_upload")
        try:
            resp = self._send(
                "wx_upload",
                client,
                user,
                None,
                lambda: client.send_media(
                    path,
                    user,
                    args.caption,
                    kind=args.kind,
                    progress=False if args.no_progress else None,
                    run_id=self._run_id(client, user),
                ),
            )
        except OSError as exc:  # the library checks the file first; it can still fail while being read
            raise _cannot_read("wx_upload", args.path, path, exc) from None
        up = resp.uploaded
        what = f"{up.kind} {up.file_name!r} ({up.rawsize:,} bytes)" if up is not None else repr(args.path)
        caption = f" after its caption (message_id {resp.caption[-1].message_id})" if resp.caption else ""
        print(f"sent {what} to {user}{caption}: message_id {resp.message_id}")

    # --- %wx_updates ---

    @magic_arguments()
    @argument(
        "action",
        nargs="?",
        default="start",
        choices=UPDATES_ACTIONS,
        help="start (default; shows the feed when it runs already), stop, show, or frame (the DataFrame)",
    )
    @line_magic
    @_friendly
    def wx_updates(self, line: str) -> Any:
        """The live feed of incoming messages (getupdates in a background thread).

        start: start it (one feed per client) and show it; show: the live view; stop: stop it (it ends when
        its current long poll returns); frame: every message so far as a DataFrame.

        Examples:
          %wx_updates start
          df = %wx_updates frame
        """
        args = self._parse("wx_updates", line)
        action = args.action
        if action == "start":
            client = self._need_login("wx_updates")
            if self.feed is None or not self.feed.running:
                self.feed = client.stream(store=self._store())
            return self.feed
        feed = self.feed
        if feed is None:
            raise UsageError(f"%wx_updates {action}: no feed yet: run %wx_updates start")
        if action == "show":
            return feed
        if action == "frame":
            return feed.frame
        if not feed.running:
            print(f"the feed had already stopped ({_count(len(feed), 'message')}): {feed.status}")
            return None
        if feed.status.startswith("stopping"):
            print(
                f"the feed is already stopping: it ends when its current long poll returns; "
                f"{_count(len(feed), 'message')} so far"
            )
            return None
        feed.stop()
        if feed.running:
            print(f"stopping: the feed ends when its current long poll returns; {_count(len(feed), 'message')} so far")
        else:
            print(f"feed stopped: {_count(len(feed), 'message')}")
        return None

    # --- %wx_chat ---

    @magic_arguments()
    @argument("user", nargs="?", help="the conversation to show first (default: the latest)")
    @argument("--window", type=int, default=50, help="bubbles shown at once; an 'older' button shows more (50)")
    @line_magic
    @_friendly
    def wx_chat(self, line: str) -> Any:
        """The chat panel of `wx`: conversations, bubbles, a reply box, each message's exchange on the wire.

        It reads the running feed (%wx_updates) or starts it: there is one poller per client. Outside a
        widget front end it shows the last messages of each conversation as text.

        Examples:
          %wx_chat
          %wx_chat alice --window 20
        """
        args = self._parse("wx_chat", line)
        client = self._need_login("wx_chat")
        if args.window < 1:
            raise UsageError(f"%wx_chat: --window is how many bubbles to show, 1 or more; got {args.window}")
        user = _user("wx_chat", args.user) if args.user else None
        if self.feed is None or not self.feed.running or self.feed.client is not client:
            from ..live import running_feed

            running = running_feed(client)  # one the user started with wx.stream(): no second poller
            self.feed = running if running is not None else client.stream(store=self._store())
        previous = getattr(self, "chat_panel", None)
        if previous is not None:
            previous.close()  # one panel follows the feed at a time; the old widget stops updating
        self.chat_panel = client.chat(user, window=args.window, feed=self.feed)
        return self.chat_panel

    # --- %wx_log ---

    @magic_arguments()
    @argument("--last", type=int, metavar="N", help=f"the last N exchanges (default: {LOG_ROWS} shown, all exported)")
    @argument("--call", metavar="NAME", help="only this call: send_message, get_updates, cdn_upload, …")
    @argument("--har", metavar="PATH", help="write HAR 1.2 (browser devtools: Network → Import)")
    @argument("--jsonl", metavar="PATH", help="write one JSON object per line (openclaw_nb.recorder.load_log)")
    @line_magic
    @_friendly
    def wx_log(self, line: str) -> Any:
        """The current client's protocol log (redacted): a table of the last exchanges, or an export.

        Examples:
          %wx_log --last 5
          %wx_log --call send_message --har sends.har
        """
        from ..protocol.endpoints import ENDPOINTS

        args = self._parse("wx_log", line)
        if args.last is not None and args.last < 0:
            raise UsageError("%wx_log: --last takes a count of 0 or more (0: all)")
        for option, target, example in (("--har", args.har, "sends.har"), ("--jsonl", args.jsonl, "sends.jsonl")):
            if target is not None and not target.strip():
                raise UsageError(f"%wx_log: {option} needs a file name: %wx_log {option} {example}")
        client = self._need_client("wx_log")
        log = client.log
        if log is None:
            raise UsageError("%wx_log: this client records nothing (record=False); connect again with %wx_connect")
        view: Any = log
        if args.call:
            known = {*ENDPOINTS, "cdn_upload", "cdn_download", *(ex.call for ex in log)}
            if args.call not in known:
                raise UsageError(f"%wx_log: no call named {args.call!r}; calls: {', '.join(sorted(known))}")
            view = log.filter(call=args.call)
        if args.last:
            view = view[-args.last :]
        if not (args.har or args.jsonl):
            return view.show(LOG_ROWS if args.last is None else args.last)
        for fmt, target in (("HAR 1.2", args.har), ("JSONL", args.jsonl)):
            if not target:
                continue
            path = Path(os.path.expanduser(target))
            try:
                if fmt == "JSONL":
                    view.to_jsonl(path)
                else:
                    view.to_har(path)
            except OSError as exc:
                raise UsageError(f"%wx_log: cannot write {target!r}: {exc.strerror or exc}") from None
            print(f"wrote {_count(len(view), 'exchange')} to {path} ({fmt}, secrets redacted)")
        return None

    # --- %wx_drift ---

    @magic_arguments()
    @argument("--clear", action="store_true", help="forget what was found so far")
    @line_magic
    @_friendly
    def wx_drift(self, line: str) -> Any:
        """The wire drift report: what the server sent that the models did not expect (unknown fields,
        unexpected types, unknown item types and enum values), per endpoint and field path, with counts and a
        redacted example. Nothing listed stopped a call: it was kept as sent.

        Examples:
          %wx_drift
          %wx_drift --clear
        """
        args = self._parse("wx_drift", line)
        client = self._need_client("wx_drift")
        if args.clear:
            client.drift_log.clear()
            print("drift report cleared")
            return None
        df = client.drift
        if df.empty:
            print("no drift: every answer so far fit the models (new fields, types and values are listed here)")
            return None
        return df

    # --- %wx_sim ---

    @magic_arguments()
    @argument("action", choices=SIM_ACTIONS, help="what the simulator does")
    @argument(
        "args",
        nargs="*",
        default=[],
        metavar="ARGS",
        help="say USER TEXT | image USER PATH | scan [USER] | confirm [USER] | outbox [N] | phone [USER ...]",
    )
    @line_magic
    @_friendly
    def wx_sim(self, line: str) -> Any:
        """Drive the embedded simulator (started by %wx_connect --sim) from a cell.

          %wx_sim say USER TEXT      a simulated user writes to the bot (TEXT as typed)
          %wx_sim image USER PATH    … sends an image file
          %wx_sim scan [USER]        a user scans the login's QR code (waits a few seconds for it)
          %wx_sim confirm [USER]     … and confirms the login on the phone (waits for the login to end)
          %wx_sim outbox [N]         what the bots sent (the last N), as a DataFrame
          %wx_sim phone [USER ...]   each user's phone page link (none: the page where people pick a user)

        Example: %wx_sim say alice hello bot
        """
        parser = self.wx_sim.parser
        words = list(_words(line))
        if not words or words[0].value not in SIM_ACTIONS:
            got = f"unknown action {words[0].value!r}" if words else "no action"
            raise UsageError(f"%wx_sim: {got}; actions: {', '.join(SIM_ACTIONS)}. Usage: {_usage(parser)}")
        action = words[0].value
        sim = self._need_sim("wx_sim")
        bot_id = self.client.bot_id if self.client is not None and self.client.base_url == sim.base_url else None
        if action == "say":
            if len(words) < 3:
                raise UsageError("%wx_sim say: write the user and the text: %wx_sim say alice hello bot")
            user = _user("wx_sim", _value("wx_sim", words[1]))
            text = _unquote(line[words[2].start :].strip())
            msg = sim.say(user, text, bot_id)
            print(f"{user} wrote to {msg.get('to_user_id')}: {text!r} (message_id {msg.get('message_id')})")
            return None
        if action == "image":
            if len(words) != 3:
                raise UsageError("%wx_sim image: write the user and one file: %wx_sim image alice cat.png")
            user = _user("wx_sim", _value("wx_sim", words[1]))
            path = _path("wx_sim", _value("wx_sim", words[2]))
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise _cannot_read("wx_sim image", _value("wx_sim", words[2]), path, exc) from None
            msg = sim.send_image(user, data, bot_id)
            print(f"{user} sent {os.path.basename(path)!r} ({len(data):,} bytes) (message_id {msg.get('message_id')})")
            return None
        rest = [_value("wx_sim", w) for w in words[1:]]
        if action == "outbox":
            if len(rest) > 1 or (rest and not rest[0].isdigit()):
                raise UsageError("%wx_sim outbox: takes at most a count: %wx_sim outbox 5")
            return _outbox_frame(sim, int(rest[0]) if rest else None)
        if action == "phone":
            _print_phone_links(sim, [_user("wx_sim", name) for name in rest])
            return None
        if len(rest) > 1:
            raise UsageError(f"%wx_sim {action}: takes at most the user who scans: %wx_sim {action} alice")
        who = _user("wx_sim", rest[0]) if rest else None
        handle = self.login_handle
        qrcode = self._login_qrcode(handle) or sim.latest_qrcode
        if qrcode is None:
            raise UsageError(f"%wx_sim {action}: no QR code yet: run %wx_login first")
        status = sim.scan(qrcode, who) if action == "scan" else sim.confirm(qrcode, who)
        ended = ""
        if action == "confirm" and handle is not None and not handle.done():
            # The next cell may use the login: let the login in progress see the confirmation and finish.
            self._wait_for_login(handle, lambda: handle.done())
            if handle.done():
                ended = f"; {_one_line(handle.session.message)}"
        print(f"QR code {qrcode}: {status}{ended}")
        return None

    def _login_qrcode(self, handle: LoginHandle | None) -> str | None:
        """The QR code of the login in progress, waiting (bounded) while it is still being fetched: a cell
        run right after %wx_login ("Run All") comes before the fetch has answered."""
        if handle is None or handle.done():
            return None
        self._wait_for_login(handle, lambda: handle.session.qr is not None or handle.done())
        qr = handle.session.qr
        return qr.qrcode if qr is not None else None

    @staticmethod
    def _wait_for_login(handle: LoginHandle, ready: Callable[[], bool]) -> None:
        """Wait up to SIM_LOGIN_WAIT seconds for ``ready()``. The login is a task on the kernel's loop, which
        this cell is blocking: the wait runs that loop (the one sanctioned re-entry, env.run_sync) so the task
        can go on. Without a running loop there is nothing to wait for: no task could move."""
        import asyncio

        from .. import env

        async def wait() -> None:
            deadline = time.monotonic() + SIM_LOGIN_WAIT
            while not ready() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

        if env.running_loop() is not None:
            env.run_sync(wait())

    # --- %wx_help ---

    @magic_arguments()
    @line_magic
    @_friendly
    def wx_help(self, line: str) -> HelpTable:
        """Every openclaw-nb magic with one example.

        Example: %wx_help
        """
        self._parse("wx_help", line)
        return HelpTable()


def _names(kind: str) -> list[str]:
    """Magic names of one kind, for unloading (IPython has no API to unregister magics)."""
    return list(WxMagics.magics[kind])


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext openclaw_nb``: register the magics on this shell."""
    shell.register_magics(WxMagics(shell))


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext openclaw_nb``: stop the feed and the simulator, close the client, remove the magics."""
    manager = shell.magics_manager
    magics = manager.registry.pop(WxMagics.__name__, None)
    if isinstance(magics, WxMagics):
        magics.close()
    for kind in ("line", "cell"):
        table = manager.magics[kind]
        for name in _names(kind):
            owner = getattr(table.get(name), "__self__", None)
            if owner is magics or isinstance(owner, WxMagics):
                del table[name]


__all__ = ["HELP", "HelpTable", "WxMagics", "load_ipython_extension", "unload_ipython_extension"]
