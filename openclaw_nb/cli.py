"""The ``openclaw-nb`` command line: one subcommand per function, registered in :func:`build_parser`.

Add a subcommand by writing ``_add_<name>(subparsers)`` (its arguments, ending in ``set_defaults(func=...)``)
and ``cmd_<name>(args) -> int``, then listing ``_add_<name>`` in ``SUBCOMMANDS``. Heavy imports stay inside
the ``cmd_`` functions so ``openclaw-nb --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._version import __version__


def _knob(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE read as JSON when it parses (``3``, ``true``, ``null``), else as a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value


# --- sim ---------------------------------------------------------------------------------------------


def _add_sim(subparsers: Any) -> None:
    from .protocol import constants as C

    p = subparsers.add_parser(
        "sim",
        help="run the local iLink simulator (API + CDN) until Ctrl-C",
        description="Run the protocol-faithful local iLink simulator. The first line printed is its base URL.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1 only)")
    p.add_argument("--port", type=int, default=0, help="port of the API and CDN (default: 0, a free port)")
    p.add_argument(
        "--redirect-port", type=int, default=0, help="port of the second host used by scaned_but_redirect (0: free)"
    )
    p.add_argument(
        "--auto-confirm",
        type=float,
        metavar="SECONDS",
        help="a simulated user scans and confirms every new QR code this many seconds after it is created",
    )
    p.add_argument(
        "--long-poll-timeout",
        type=float,
        default=C.LONG_POLL_TIMEOUT,
        metavar="SECONDS",
        help=f"how long getupdates / get_qrcode_status are held (default: {C.LONG_POLL_TIMEOUT:g})",
    )
    p.add_argument(
        "--qr-expiry",
        type=float,
        default=C.QR_LIFETIME,
        metavar="SECONDS",
        help=f"QR code lifetime (default: {C.QR_LIFETIME:g})",
    )
    p.add_argument(
        "--state",
        metavar="PATH",
        help="load the state from this JSON file and keep it there: every change is journaled (PATH.journal) "
        "and fsync'd before its answer, and folded into PATH every 30 s and on stop",
    )
    p.add_argument("--seed", type=int, help="seed for ids, duplicates and faults (reproducible runs)")
    p.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="the token the control API (/_sim/...) asks for in the X-Admin-Token header; off loopback one is "
        "always asked for (a random one, printed at start, unless you set it here)",
    )
    p.add_argument(
        "--class-code",
        nargs="?",
        const=True,
        default=None,
        metavar="CODE",
        help="class mode: students open the printed join URL on their phones, type this code (a random "
        "6-character one when CODE is left out), pick a name and chat with the bot as that WeChat user. Beyond "
        "loopback (--host 0.0.0.0) the phone pages then ask for the code and the rest of the control API for "
        "the admin token; each user's page link carries a per-user key",
    )
    p.add_argument(
        "--set",
        dest="knobs",
        action="append",
        type=_knob,
        default=[],
        metavar="NAME=VALUE",
        help="any SimConfig knob, e.g. --set duplicate_rate=0.5 --set rate_limit_sends=4 (repeatable)",
    )
    p.set_defaults(func=cmd_sim)


def cmd_sim(args: argparse.Namespace) -> int:
    from .sim import SimConfig, SimError, Simulator

    try:
        config = SimConfig(
            long_poll_timeout=args.long_poll_timeout,
            qr_lifetime=args.qr_expiry,
            auto_confirm=args.auto_confirm,
            seed=args.seed,
        ).replace(**dict(args.knobs))
        sim = Simulator(
            config,
            host=args.host,
            port=args.port,
            redirect_port=args.redirect_port,
            state_path=args.state,
            admin_token=args.admin_token,
            class_code=args.class_code,
        )
    except (SimError, OSError, ValueError) as exc:
        print(f"openclaw-nb sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sim.start()
        except (SimError, OSError) as exc:
            print(f"openclaw-nb sim: {exc}", file=sys.stderr)
            return 2
        # The first line is the base URL and nothing else: scripts and tests read it.
        print(sim.base_url, flush=True)
        print(f"# CDN:            {sim.cdn_base_url}", flush=True)
        print(f"# redirect host:  {sim.redirect_host}", flush=True)
        print(f"# control API:    {sim.base_url}/_sim/state", flush=True)
        if sim.admin_token and not args.admin_token:
            # Made up at start: whoever runs the simulator needs it to drive the control API.
            print(f"# admin token:    {sim.admin_token}  (X-Admin-Token header on /_sim/...)", flush=True)
        elif sim.admin_token:
            print("# admin token:    the one given with --admin-token (X-Admin-Token header on /_sim/...)", flush=True)
        if args.state:
            print(f"# state file:     {args.state}", flush=True)
        if sim.class_code:
            print(f"# join URL:       {sim.phone_url()}  (students open it on their phones)", flush=True)
            print(f"# class code:     {sim.class_code}  (what they type there)", flush=True)
        else:
            print(f"# phone pages:    {sim.phone_url()}", flush=True)
        print("# Ctrl-C to stop", flush=True)
        stop.wait()
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


# --- the parser ----------------------------------------------------------------------------------------

# --- login -------------------------------------------------------------------------------------------


def _add_login(subparsers: Any) -> None:
    """Register ``openclaw-nb login [--base-url URL] [--home PATH] [--no-save] [--forget-superseded]
    [--deadline SECONDS]``."""
    from .protocol import constants as C

    p = subparsers.add_parser(
        "login",
        help="log a bot in by QR code in the terminal and save its credentials",
        description="Draw a login QR code in the terminal, follow its status, ask for the verify code when the "
        "phone shows one, and save the credentials (0600) for Client.from_saved().",
    )
    p.add_argument("--base-url", default=C.DEFAULT_BASE_URL, help=f"API base URL (default: {C.DEFAULT_BASE_URL})")
    p.add_argument("--home", metavar="PATH", help="data folder (default: $OPENCLAW_NB_HOME or ~/.openclaw_nb)")
    p.add_argument("--no-save", action="store_true", help="do not save the credentials")
    p.add_argument(
        "--forget-superseded",
        action="store_true",
        help="remove older saved logins of the same WeChat user, as the official client does",
    )
    p.add_argument(
        "--deadline",
        type=float,
        default=C.LOGIN_DEADLINE_SECONDS,
        metavar="SECONDS",
        help=f"give up after this long (default: {C.LOGIN_DEADLINE_SECONDS})",
    )
    p.set_defaults(func=cmd_login)


def cmd_login(args: Any) -> int:
    """``openclaw-nb login``: 0 when logged in, 1 when the login failed, 2 on bad arguments, 130 on Ctrl-C."""
    from . import errors as E
    from .client import Client
    from .login import LoginConfig, LoginError

    try:
        client = Client(base_url=args.base_url, record=False)
        options = LoginConfig(deadline=args.deadline)
    except E.UsageError as exc:
        print(f"openclaw-nb login: {exc}", file=sys.stderr)
        return 2
    with client:
        try:
            result = client.login(
                display="terminal",
                home=args.home,
                save=not args.no_save,
                forget_superseded=args.forget_superseded,
                config=options,
            )
        except LoginError:
            return 1  # the view has printed why and what to do
        except KeyboardInterrupt:
            return 130
    if result.saved_to:
        print(f"Use it from Python: Client.from_saved({result.bot_id!r})")
    return 0


# --- demo --------------------------------------------------------------------------------------------


def _add_demo(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="a scripted tour against the embedded simulator (log in, receive, reply, show the traffic)",
        description="Run a scripted session against the embedded simulator; nothing touches the real server.",
    )
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo()


#: Each entry registers one subcommand on the subparsers object.
SUBCOMMANDS: list[Callable[[Any], None]] = [_add_sim, _add_login, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openclaw-nb", description="Explore the WeChat iLink bot protocol: simulator and tools."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``openclaw-nb``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    result: int = func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
