"""The ``%wx_*`` magics in a real IPython shell against the simulator over real HTTP on 127.0.0.1: each
magic's happy path, its errors (one UsageError line, no traceback), variable expansion and the objects the
magics return. The ``ip`` fixture checks after every test that no secret was printed.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from openclaw_nb.client import Client
from openclaw_nb.live import Feed
from openclaw_nb.notebook import magics as M
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.redact import redact
from openclaw_nb.recorder import load_log
from openclaw_nb.recorder.display import LogTable
from openclaw_nb.sim import Simulator
from openclaw_nb.store import Credentials, Store

Fails = Callable[[str], str]

#: A tiny PNG (1x1), so MIME routing sees an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)
#: Message ids in printed lines (the simulator's are 19 or 20 digits; sizes are printed with commas).
SENT_ID = re.compile(r"\b\d{6,}\b")


def magics_of(ip: Any) -> M.WxMagics:
    found = ip.magics_manager.registry["WxMagics"]
    assert isinstance(found, M.WxMagics)
    return found


def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.01)


def connect_sim(ip: Any, *extra: str) -> Simulator:
    ip.run(" ".join(["%wx_connect --sim --long-poll 0.5", *extra]))
    sim = ip.user_ns["sim"]
    assert isinstance(sim, Simulator) and sim.running
    return sim


def greet(ip: Any, user: str = "alice", text: str = "hi bot") -> None:
    """A simulated user writes, and the client polls once: it then holds that user's context token."""
    ip.run(f"%wx_sim say {user} {text}")
    ip.run("page = wx.get_updates()")
    assert [m.text for m in ip.user_ns["page"].messages] == [text]


def sent_ids(stdout: str) -> list[int]:
    return [int(x) for x in SENT_ID.findall(stdout)]


# --- loading -------------------------------------------------------------------------------------------


LINE_MAGICS = {
    "wx_connect",
    "wx_login",
    "wx_send",
    "wx_typing",
    "wx_upload",
    "wx_updates",
    "wx_chat",
    "wx_log",
    "wx_drift",
    "wx_sim",
    "wx_help",
}


def test_load_ext_registers_every_magic(ip: Any) -> None:
    assert set(ip.magics_manager.magics["line"]) >= LINE_MAGICS
    assert "wx_send" in ip.magics_manager.magics["cell"]
    assert set(M.WxMagics.magics["line"]) == LINE_MAGICS


def test_question_mark_shows_the_usage(ip: Any, out: Any) -> None:
    ip.run("%wx_send?")
    stdout, _ = out.read()
    assert "%wx_send [--context-token T] [--all] USER [TEXT ...]" in stdout
    ip.run("%wx_upload?")
    stdout, _ = out.read()
    assert "--as {image,file,video}" in stdout and "--to USER" in stdout


def test_question_mark_on_wx_sim_lists_every_action(ip: Any, out: Any) -> None:
    ip.run("%wx_sim?")
    stdout, _ = out.read()
    arguments = stdout.split("positional arguments:", 1)[1]
    for form in ("say USER TEXT", "image USER PATH", "scan [USER]", "confirm [USER]", "outbox [N]", "phone [USER ...]"):
        assert form in " ".join(arguments.split()), form


def test_unload_stops_the_simulator_and_removes_the_magics(ip: Any, fails: Fails) -> None:
    sim = connect_sim(ip)
    client = magics_of(ip).client
    assert client is not None
    ip.run("%unload_ext openclaw_nb")
    assert not sim.running
    assert client._http.is_closed
    assert "wx" not in ip.user_ns and "sim" not in ip.user_ns
    assert not LINE_MAGICS & set(ip.magics_manager.magics["line"])
    assert "WxMagics" not in ip.magics_manager.registry
    assert "not found" in fails("%wx_help")
    ip.run("%load_ext openclaw_nb")  # loads again cleanly
    assert isinstance(ip.run("%wx_help"), M.HelpTable)


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, openclaw_nb; "
        "assert callable(openclaw_nb.load_ipython_extension) and callable(openclaw_nb.unload_ipython_extension); "
        "print(sorted(m for m in ('IPython', 'pandas', 'ipywidgets') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- no client, bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "%wx_login",
        "%wx_send alice hi",
        "%%wx_send alice\nhi",
        "%wx_typing alice",
        "%wx_updates start",
        "%wx_log",
        "%wx_drift",
        "%wx_upload {path} --to alice",
    ],
)
def test_magics_without_a_client_say_how_to_connect(ip: Any, fails: Fails, tmp_path: Path, cell: str) -> None:
    path = tmp_path / "f.txt"
    path.write_text("x")
    ip.user_ns["path"] = str(path)
    message = fails(cell)
    assert "no current client" in message
    assert "%wx_connect" in message and "%wx_connect --sim" in message


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("%wx_send", "the following arguments are required: USER"),
        ("%wx_send alice", "nothing to send"),
        ("%wx_send --colour red alice hi", "unrecognized arguments: --colour"),
        ("%wx_send $nobody hi", "'$nobody' was not expanded"),
        ("%%wx_send alice more words\nbody", "the cell body is the message"),
        ("%%wx_send alice\n\n   \n", "the cell is empty"),
        ("%wx_typing", "the following arguments are required: USER"),
        ("%wx_upload", "the following arguments are required"),
        ("%wx_upload {png} --to alice --as gif", "invalid choice: 'gif'"),
        ("%wx_upload {png}", "the following arguments are required: --to"),
        ("%wx_upload missing.png --to alice", "no such file: 'missing.png'"),
        ("%wx_upload {folder} --to alice", "is a directory; pass one file"),
        ("%wx_updates bogus", "invalid choice: 'bogus'"),
        ("%wx_updates frame", "no feed yet: run %wx_updates start"),
        ("%wx_log --last -1", "--last takes a count of 0 or more"),
        ("%wx_log --call sendmessage", "no call named 'sendmessage'; calls: cdn_download"),
        ("%wx_log --last many", "invalid int value: 'many'"),
        ("%wx_log --jsonl ''", "--jsonl needs a file name: %wx_log --jsonl sends.jsonl"),
        ("%wx_log --jsonl=", "--jsonl needs a file name"),
        ('%wx_log --har "  "', "--har needs a file name: %wx_log --har sends.har"),
        ("%wx_login now", "unrecognized arguments: now"),
        ("%wx_help me", "unrecognized arguments: me"),
        ("%wx_sim", "no action"),
        ("%wx_sim dance", "unknown action 'dance'"),
        ("%wx_sim say alice", "write the user and the text"),
        ("%wx_sim image alice", "write the user and one file"),
        ("%wx_sim image alice missing.png", "no such file"),
        ("%wx_sim outbox lots", "takes at most a count"),
        ("%wx_sim scan a b", "takes at most the user who scans"),
        ("%wx_sim scan", "no QR code yet: run %wx_login first"),
        ("%wx_send carol hello", "wx has not heard from carol@im.wechat yet"),
        ("%wx_typing carol", "get_config failed"),
    ],
)
def test_wrong_arguments_give_one_line_with_the_fix(
    ip: Any, fails: Fails, out: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cell: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # were a wrong path accepted, the file would land here
    png = tmp_path / "p.png"
    png.write_bytes(PNG)
    ip.user_ns["png"] = str(png)
    ip.user_ns["folder"] = str(tmp_path)
    connect_sim(ip)
    out.read()
    message = fails(cell)
    assert expected in message
    if "arguments are required" in expected or "unrecognized" in expected or "invalid" in expected:
        assert "Usage: %" in message and "::" not in message


def test_the_error_names_the_magic_and_keeps_one_line(ip: Any, fails: Fails) -> None:
    connect_sim(ip)
    message = fails("%wx_send carol hello")
    assert message.startswith("%wx_send: ")
    assert "\n" not in message


def test_a_send_before_any_update_says_to_start_the_feed(ip: Any, fails: Fails) -> None:
    connect_sim(ip)
    ip.run("%wx_sim say alice hello")  # the user wrote, but nothing has polled for it yet
    message = fails("%wx_send alice hi")
    assert "wx has not heard from alice@im.wechat yet" in message and "run %wx_updates start" in message
    assert "ret=-2" in message


def test_a_send_to_a_user_who_never_wrote_says_so_first_in_one_line(ip: Any, out: Any, fails: Fails) -> None:
    """The cheat sheet's example on a fresh simulator: the client's warning and the server's -3 are one line,
    which says what happened (alice has not written) before the code, and what to run, as magics."""
    connect_sim(ip)
    out.read()
    result = ip.run_cell("%wx_send alice@im.wechat hello there")
    assert type(result.error_in_exec) is M.UsageError
    stdout, stderr = out.read()
    assert stdout == "" and len(stderr.strip().splitlines()) == 1, stderr
    message = stderr.strip().removeprefix("UsageError: ")
    assert message.startswith("%wx_send: wx has not heard from alice@im.wechat yet, so there is no context_token")
    assert message.index("has not heard") < message.index("ret=-3")
    assert "%wx_sim say alice hi" in message and "%wx_updates start" in message
    assert "get_updates()" not in message and "wrong to_user_id" not in message
    # Done as it says, the send goes through.
    ip.run("%wx_sim say alice hi")
    feed = ip.run("%wx_updates start")
    feed.wait_for(1)
    ip.run("%wx_send alice@im.wechat hello there")
    assert ip.user_ns["sim"].outbox[-1].text == "hello there"


def test_a_send_without_a_token_that_goes_through_prints_the_warning_as_one_note(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    sim.add_user("dora")
    sim.configure(require_context_token=False, reply_window_seconds=None)  # takes replies without a token
    out.read()
    ip.run("%wx_send dora hello")
    stdout, stderr = out.read()
    note, sent = stdout.splitlines()
    assert note.startswith("note: sending to dora@im.wechat without a context_token") and sent.startswith("sent to")
    assert "without a context_token" not in stderr
    assert sim.outbox[-1].text == "hello"


def test_with_a_running_feed_the_fix_says_it_brings_the_message(ip: Any, fails: Fails) -> None:
    connect_sim(ip)
    ip.run("%wx_updates start")
    message = fails("%wx_send bob hello")
    assert "%wx_sim say bob hi" in message and "the running feed brings their message" in message
    assert "run %wx_updates start" not in message


def test_an_upload_to_a_user_who_never_wrote_says_so_first(ip: Any, fails: Fails, tmp_path: Path) -> None:
    connect_sim(ip)
    path = tmp_path / "notes.txt"
    path.write_text("hello", encoding="utf-8")
    message = fails(f"%wx_upload {path} --to carol")
    assert message.startswith("%wx_upload: wx has not heard from carol@im.wechat yet"), message


def test_a_stale_token_says_to_log_in_again(ip: Any, fails: Fails) -> None:
    sim = connect_sim(ip)
    greet(ip)
    sim.revoke_token(magics_of(ip).client.bot_id)  # type: ignore[union-attr]
    message = fails("%wx_send alice hello")
    assert "-14" in message and message.endswith("here: run %wx_login")


#: Tokens as a user might paste them: hex, a made-up one, one shaped like "bot id:secret" with base64 padding.
TYPED_TOKENS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sekrit-token-ABCDEFGH123456789",
    "0123456789abcdef@im.bot:AAECAwQFBgcICQoLDA0ODw==",
]


@pytest.mark.parametrize("token", TYPED_TOKENS, ids=["hex", "words", "botid-colon"])
@pytest.mark.parametrize(
    ("cell", "fix"),
    [
        ("%wx_connect $token", "a token goes after --token"),
        ("%wx_connect --tokn $token", "a token goes after --token"),
        ("%wx_connect --tokn=$token", "a token goes after --token"),
        ("%wx_connect --account $token", "--account takes a saved bot id (…@im.bot), a token goes after --token"),
        ("%wx_connect --sim --long-poll $token", "invalid float value"),
        ("%wx_connect --sim --qr=$token", "ignored explicit argument"),
        ("%wx_upload $token --to alice", "no such file"),
        ("%wx_upload {png} --to alice --as $token", "invalid choice"),
        ("%wx_sim $token", "unknown action"),
        ("%wx_sim image alice $token", "no such file"),
        ("%wx_log --call $token", "no call named"),
        ("%wx_log --last $token", "invalid int value"),
        ("%wx_updates $token", "invalid choice"),
        ("%wx_login $token", "unrecognized arguments"),
        ("%wx_typing alice $token", "unrecognized arguments"),
        ("%wx_send $token hello", "(the server answered ret=-3"),
    ],
)
def test_a_token_typed_in_the_wrong_place_is_never_printed(
    ip: Any, fails: Fails, out: Any, tmp_path: Path, cell: str, fix: str, token: str
) -> None:
    """The token is not a secret of any client yet, so only the words of the line can tell that it is one.
    (The ``ip`` fixture also checks the whole output, as ``token`` is a secret-looking variable.)"""
    png = tmp_path / "p.png"
    png.write_bytes(PNG)
    connect_sim(ip)
    greet(ip)
    ip.user_ns.update(token=token, png=str(png))
    out.read()
    message = fails(cell)
    assert token not in message
    assert fix in message
    assert "\n" not in message and message.startswith("%wx_")
    if "unrecognized" in message or "invalid" in message or "no such" in message or "no call" in message:
        assert "<redacted " in message  # the word is still identifiable: a fingerprint and its length


def test_a_token_without_its_option_says_where_it_goes(ip: Any, fails: Fails) -> None:
    token = TYPED_TOKENS[0]
    ip.user_ns["token"] = token
    message = fails("%wx_connect $token")
    assert message.startswith(f"%wx_connect: unrecognized arguments: {redact(token)}; a token goes after --token")
    assert message.endswith(
        "Usage: %wx_connect [--sim] [--qr] [--long-poll SECONDS] [--host HOST] [--class-code [CODE]] [--base-url URL] "
        "[--token TOKEN] [--account BOT_ID]"
    )
    message = fails("%wx_connect --tokn $token")
    assert f"unrecognized arguments: --tokn {redact(token)}" in message
    assert redact(token) in fails("%wx_connect --account $token")


@pytest.mark.parametrize(
    ("word", "secret"),
    [
        (TYPED_TOKENS[0], True),
        (TYPED_TOKENS[1], True),
        (TYPED_TOKENS[2], True),
        ("123e4567-e89b-12d3-a456-426614174000", True),
        ("a.b.c" + "x" * 40, True),  # a JWT-like word: its last part is no file extension
        ("now", False),
        ("sendmessage", False),
        ("alice@im.wechat", False),
        ("a_very_long_user_name@im.wechat", False),
        ("0123456789abcdef@im.bot", False),
        ("http://127.0.0.1:8080/ilink", False),
        ("--context-token", False),
        ("my_long_notebook_chart.png", False),
        ("/tmp/no/such/folder/sends.har", False),
    ],
)
def test_which_typed_words_could_be_tokens(word: str, secret: bool) -> None:
    assert M._could_be_token(word) is secret


def test_an_existing_path_is_no_token(tmp_path: Path) -> None:
    folder = tmp_path / "a_folder_with_a_long_name"
    assert M._could_be_token(str(folder))
    folder.mkdir()
    assert not M._could_be_token(str(folder))


def test_the_secret_check_sees_replaced_clients_and_secret_variables(
    ip: Any, server: Simulator, seen_secrets: Callable[[], set[str]]
) -> None:
    login = server.login_bot()
    ip.run(f"%wx_connect --token {login.bot_token} --base-url {server.base_url}")
    sim = connect_sim(ip)  # replaces that client: the magics no longer know its token
    assert login.bot_token not in magics_of(ip)._secrets()
    ip.user_ns.update(bot_secret="s" * 20, api_token="t" * 20, note="n" * 20, short_token="abc")
    seen = seen_secrets()
    assert {login.bot_token, "s" * 20, "t" * 20} <= seen
    assert {b.token for b in sim.bots.values()} <= seen
    assert "n" * 20 not in seen and "abc" not in seen


# --- %wx_connect ---------------------------------------------------------------------------------------


def test_connect_sim_binds_a_logged_in_client_and_the_simulator(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    wx = ip.user_ns["wx"]
    assert isinstance(wx, Client)
    assert wx is magics_of(ip).client
    assert wx.base_url == sim.base_url and wx.cdn_base_url == sim.cdn_base_url
    assert wx.token and wx.bot_id in sim.bots
    assert sim.config.long_poll_timeout == 0.5
    stdout, _ = out.read()
    assert sim.base_url in stdout and wx.bot_id in stdout and "`sim`" in stdout


def test_drift_shows_what_the_simulator_sent_that_the_models_do_not_know(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    wx = ip.user_ns["wx"]
    out.read()
    assert ip.run_line_magic("wx_drift", "") is None
    assert "no drift" in out.read()[0]
    sim.configure(unknown_fields=True, ids_as_strings=True)
    sim.say("alice", "hi from a newer app")
    assert wx.get_updates().messages[0].text == "hi from a newer app"
    df = ip.run_line_magic("wx_drift", "")
    found = set(zip(df["path"], df["kind"], strict=True))
    assert ("msgs[].future_flag", "unknown field") in found
    assert ("msgs[].item_list[].type", "unknown value") in found
    assert ("msgs[].message_id", "unexpected type") in found
    assert set(df["endpoint"]) == {"get_updates"}
    ip.run_line_magic("wx_drift", "--clear")
    assert "cleared" in out.read()[0] and wx.drift.empty


def test_connect_sim_qr_starts_logged_out(ip: Any, out: Any) -> None:
    connect_sim(ip, "--qr")
    assert ip.user_ns["wx"].token is None
    stdout, _ = out.read()
    assert "not logged in: run %wx_login" in stdout


def test_connect_without_saved_logins_makes_a_logged_out_client(ip: Any, out: Any) -> None:
    ip.run("%wx_connect")
    wx = ip.user_ns["wx"]
    assert wx.token is None and wx.base_url == C.DEFAULT_BASE_URL
    stdout, _ = out.read()
    assert "no saved login yet" in stdout and "%wx_login" in stdout
    assert "sim" not in ip.user_ns


def test_connect_resumes_the_latest_saved_login(ip: Any, out: Any, home: Path, server: Simulator) -> None:
    older, newer = server.login_bot(), server.login_bot()
    store = Store(home)
    store.save_credentials(Credentials(older.bot_token, older.bot_id, server.base_url, saved_at=1.0))
    store.save_credentials(Credentials(newer.bot_token, newer.bot_id, server.base_url, saved_at=2.0))
    ip.run("%wx_connect")
    wx = ip.user_ns["wx"]
    assert (wx.bot_id, wx.token, wx.base_url) == (newer.bot_id, newer.bot_token, server.base_url)
    stdout, _ = out.read()
    assert "the latest saved login" in stdout
    # ...and it works over HTTP: the user writes, the client polls and replies.
    server.say("dora", "hello", newer.bot_id)
    ip.run("page = wx.get_updates()")
    ip.run("%wx_send dora hi dora")
    assert server.outbox[-1].text == "hi dora" and server.outbox[-1].bot_id == newer.bot_id

    ip.run(f"%wx_connect --account {older.bot_id}")
    assert (ip.user_ns["wx"].bot_id, ip.user_ns["wx"].token) == (older.bot_id, older.bot_token)


def test_connect_with_a_token_from_a_variable(ip: Any, out: Any, server: Simulator) -> None:
    login = server.login_bot()
    ip.user_ns.update(token=login.bot_token, url=server.base_url)
    ip.run("%wx_connect --token $token --base-url $url")
    wx = ip.user_ns["wx"]
    assert wx.token == login.bot_token and wx.base_url == server.base_url
    ip.run("resp = wx.notify_start()")
    assert server.notifications[-1].bot_id == login.bot_id
    stdout, _ = out.read()
    assert "given token" in stdout and login.bot_token not in stdout


def test_connect_base_url_alone_is_a_logged_out_client(ip: Any, server: Simulator) -> None:
    ip.run(f"%wx_connect --base-url {server.base_url}")
    assert ip.user_ns["wx"].token is None and ip.user_ns["wx"].base_url == server.base_url


def test_connect_a_saved_account_at_another_base_url(ip: Any, out: Any, home: Path, server: Simulator) -> None:
    login = server.login_bot()
    moved = "http://127.0.0.1:9"  # where the login was saved; nothing listens there now
    Store(home).save_credentials(Credentials(login.bot_token, login.bot_id, moved, saved_at=1.0))
    ip.run(f"%wx_connect --account {login.bot_id} --base-url {server.base_url}")
    wx = ip.user_ns["wx"]
    assert (wx.bot_id, wx.token, wx.base_url) == (login.bot_id, login.bot_token, server.base_url)
    stdout, _ = out.read()
    assert f"bot {login.bot_id} at {server.base_url} (saved login)" in stdout
    server.say("dora", "hello", login.bot_id)
    ip.run("page = wx.get_updates()")
    ip.run("%wx_send dora hi from the new address")
    assert server.outbox[-1].text == "hi from the new address" and server.outbox[-1].bot_id == login.bot_id


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--token abc --account x@im.bot", "pass --token or --account, not both"),
        ("--sim --token abc", "--sim runs its own server and bot"),
        ("--qr", "--qr, --long-poll, --host and --class-code go with --sim"),
        ("--long-poll 3", "--qr, --long-poll, --host and --class-code go with --sim"),
        ("--account nobody@im.bot", "no saved account 'nobody@im.bot'"),
        ("--base-url ftp://example.com", "base_url must be an http:// or https:// URL"),
        ("--sim --long-poll soon", "invalid float value: 'soon'"),
        ("--sim --long-poll nan", "--long-poll takes a number of seconds above 0, not nan: %wx_connect --sim"),
        ("--sim --long-poll inf", "--long-poll takes a number of seconds above 0, not inf"),
        ("--sim --long-poll -1", "--long-poll takes a number of seconds above 0, not -1"),
        ("--sim --long-poll=-0.5", "--long-poll takes a number of seconds above 0, not -0.5"),
        ("--sim --long-poll 0", "--long-poll takes a number of seconds above 0, not 0"),
    ],
)
def test_connect_errors(ip: Any, fails: Fails, made: list[Any], line: str, expected: str) -> None:
    assert expected in fails(f"%wx_connect {line}")
    assert "wx" not in ip.user_ns
    assert not [obj for obj in made if isinstance(obj, Simulator) and obj.running]


def test_connect_again_replaces_the_client_and_stops_what_ran(ip: Any, server: Simulator) -> None:
    first_sim = connect_sim(ip)
    first = ip.user_ns["wx"]
    first_sim.say("alice", "hello")
    feed = ip.run("%wx_updates start")
    feed.wait_for(1)
    second_sim = connect_sim(ip)
    assert not first_sim.running and second_sim.running
    assert ip.user_ns["sim"] is second_sim and ip.user_ns["wx"] is not first
    assert not feed.running  # its simulator answered the held poll on stop
    until(lambda: first._http.is_closed, what="the replaced client closed")
    assert magics_of(ip).feed is None

    login = server.login_bot()
    ip.run(f"%wx_connect --token {login.bot_token} --base-url {server.base_url}")
    assert not second_sim.running and "sim" not in ip.user_ns
    assert magics_of(ip).sim is None and magics_of(ip).sim_home is None


def test_a_feed_on_a_real_server_is_left_to_end_before_its_client_closes(ip: Any, server: Simulator) -> None:
    login = server.login_bot()
    window = server.config.long_poll_timeout
    server.configure(long_poll_timeout=30)  # a poll held as long as a real server holds it
    try:
        ip.run(f"%wx_connect --token {login.bot_token} --base-url {server.base_url}")
        first = ip.user_ns["wx"]
        feed = ip.run("%wx_updates start")
        until(lambda: server.state.waiters() > 0, what="a held long poll")
        connect_sim(ip)  # returns at once: it does not wait for the held poll
        assert feed.running and feed.status.startswith("stopping")
        assert not first._http.is_closed  # the held poll still uses it
        server.say("alice", "wake up", login.bot_id)  # the poll answers...
        feed.wait(timeout=10)  # ...and the feed ends cleanly
        assert feed.error is None
        until(lambda: first._http.is_closed, what="the replaced client closed after its feed")
    finally:
        server.configure(long_poll_timeout=window)


def test_stop_twice_says_the_feed_is_already_stopping(ip: Any, out: Any, server: Simulator) -> None:
    login = server.login_bot()
    window = server.config.long_poll_timeout
    server.configure(long_poll_timeout=30)  # the held poll keeps the stopped feed "stopping" until told
    try:
        ip.run(f"%wx_connect --token {login.bot_token} --base-url {server.base_url}")
        feed = ip.run("%wx_updates start")
        until(lambda: server.state.waiters() > 0, what="a held long poll")
        out.read()
        ip.run("%wx_updates stop")
        assert out.read()[0].startswith("stopping: the feed ends when its current long poll returns")
        ip.run("%wx_updates stop")
        assert out.read()[0].startswith("the feed is already stopping")
        assert feed.running
        server.say("alice", "wake up", login.bot_id)
        feed.wait(timeout=10)
        ip.run("%wx_updates stop")
        assert out.read()[0].startswith("the feed had already stopped (1 message)")
    finally:
        server.configure(long_poll_timeout=window)


def test_connect_again_says_what_it_replaced(ip: Any, out: Any) -> None:
    first = connect_sim(ip)
    first.say("alice", "hello")
    ip.run("%wx_updates start").wait_for(1)
    out.read()
    second = connect_sim(ip)
    stdout, _ = out.read()
    assert stdout.count("\n") == 1 and second.base_url in stdout
    assert f"replaced the simulator at {first.base_url} (stopped) and the feed (1 message, stopped)" in stdout
    ip.run("%wx_connect --base-url http://127.0.0.1:9")
    stdout, _ = out.read()
    assert f"replaced the simulator at {second.base_url} (stopped)" in stdout and "feed" not in stdout
    ip.run("%wx_connect --base-url http://127.0.0.1:9")
    assert "replaced the previous client (closed)" in out.read()[0]


def test_a_failed_connect_keeps_the_current_client(ip: Any, fails: Fails) -> None:
    sim = connect_sim(ip)
    wx = ip.user_ns["wx"]
    fails("%wx_connect --account nobody@im.bot")
    assert ip.user_ns["wx"] is wx and sim.running


# --- %wx_login -----------------------------------------------------------------------------------------


def test_login_in_a_terminal_blocks_and_the_simulator_confirms(ip: Any, out: Any, home: Path) -> None:
    sim = connect_sim(ip, "--qr")
    out.read()
    assert ip.run("%wx_login") is None
    wx = ip.user_ns["wx"]
    assert wx.token and wx.bot_id in sim.bots
    stdout, _ = out.read()
    assert "confirms this QR code by itself" in stdout and f"Logged in as bot {wx.bot_id}" in stdout
    # The simulated login is saved in the simulator's own folder, never as the user's latest login.
    sim_home = magics_of(ip).sim_home
    assert sim_home is not None and Store(sim_home).load_credentials().ilink_bot_id == wx.bot_id
    assert Store(home).accounts() == []
    # Logged in, the client works at once.
    greet(ip)
    ip.run("%wx_send alice welcome")
    assert sim.outbox[-1].text == "welcome"


def test_login_in_a_kernel_returns_at_once_and_follows_the_simulator(
    ip: Any, out: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in Jupyter: widgets available and the cell run while an event loop runs; the login is a task."""
    from openclaw_nb import env
    from openclaw_nb.login import LoginHandle

    monkeypatch.setattr(env, "has_widgets", lambda: True)
    sim = connect_sim(ip, "--qr")

    async def notebook() -> Any:
        assert ip.run("%wx_login") is None
        handle = magics_of(ip).login_handle
        assert isinstance(handle, LoginHandle) and not handle.done()
        qrcode = await asyncio.to_thread(sim.wait_for_qrcode, 10)
        ip.run("%wx_sim scan")
        ip.run("%wx_sim confirm")
        result = await asyncio.wait_for(handle, 10)
        return qrcode, result

    qrcode, result = asyncio.run(notebook())
    wx = ip.user_ns["wx"]
    assert result.ok and result.bot_id == wx.bot_id and wx.token
    stdout, _ = out.read()
    assert f"QR code {qrcode}: scaned" in stdout and f"QR code {qrcode}: confirmed" in stdout


def test_sim_scan_and_confirm_as_a_given_user(ip: Any, out: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``%wx_sim scan bob`` / ``confirm bob``: bob logs the bot in, so the new bot is bob's."""
    from openclaw_nb import env

    monkeypatch.setattr(env, "has_widgets", lambda: True)
    sim = connect_sim(ip, "--qr")
    ip.user_ns["who"] = "bob"

    async def notebook() -> Any:
        ip.run("%wx_login")
        handle = magics_of(ip).login_handle
        assert handle is not None
        qrcode = await asyncio.to_thread(sim.wait_for_qrcode, 10)
        ip.run("%wx_sim scan bob")
        ip.run("%wx_sim confirm {who}")
        return qrcode, await asyncio.wait_for(handle, 10)

    qrcode, result = asyncio.run(notebook())
    wx = ip.user_ns["wx"]
    assert result.ok and wx.token and result.bot_id == wx.bot_id
    assert sim.bots[wx.bot_id].owner_id == "bob@im.wechat"
    stdout, _ = out.read()
    assert f"QR code {qrcode}: scaned" in stdout and f"QR code {qrcode}: confirmed" in stdout


def test_the_qr_login_cells_run_back_to_back(ip: Any, out: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's three cells under "Run All": %wx_sim scan runs before the QR fetch has answered and waits
    for it; %wx_sim confirm waits for the login to end, so the next cell finds wx logged in."""
    from openclaw_nb import env

    monkeypatch.setattr(env, "has_widgets", lambda: True)
    sim = connect_sim(ip, "--qr")
    out.read()

    async def notebook() -> None:
        ip.run("%wx_login")
        assert sim.latest_qrcode is None  # the fetch is a task that has not run yet
        ip.run("%wx_sim scan")
        ip.run("%wx_sim confirm")

    asyncio.run(notebook())
    wx = ip.user_ns["wx"]
    assert wx.token and wx.bot_id in sim.bots
    stdout, _ = out.read()
    qrcode = sim.latest_qrcode
    assert f"QR code {qrcode}: scaned" in stdout
    assert f"QR code {qrcode}: confirmed; Logged in as bot {wx.bot_id}" in stdout


def test_a_second_login_cancels_the_first(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from openclaw_nb import env
    from openclaw_nb.login import LoginError

    monkeypatch.setattr(env, "has_widgets", lambda: True)
    connect_sim(ip, "--qr")

    async def notebook() -> tuple[str, str]:
        ip.run("%wx_login")
        first = magics_of(ip).login_handle
        ip.run("%wx_login")
        second = magics_of(ip).login_handle
        assert first is not None and second is not None and first is not second
        assert not second.done()
        second.cancel()
        outcomes = []
        for handle in (first, second):
            with pytest.raises(LoginError) as failed:
                await asyncio.wait_for(handle, 10)
            outcomes.append(failed.value.result.outcome)
        return outcomes[0], outcomes[1]

    assert asyncio.run(notebook()) == ("cancelled", "cancelled")


# --- %wx_send ------------------------------------------------------------------------------------------


def test_send_line_form_prints_the_message_id(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    out.read()
    assert ip.run("%wx_send alice@im.wechat hello   there, it's me") is None
    stdout, _ = out.read()
    entry = sim.outbox[-1]
    assert entry.text == "hello   there, it's me" and entry.to_user_id == "alice@im.wechat"
    assert sent_ids(stdout) == [entry.message_id]
    assert entry.message_id > 2**63  # printed exactly, not through a float


def test_send_expands_python_variables_on_the_line(ip: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    ip.user_ns.update(user="alice@im.wechat", text="it's {not} $expanded twice")
    ip.run("%wx_send $user {text}")
    assert sim.outbox[-1].text == "it's {not} $expanded twice"
    ip.user_ns["n"] = 3
    ip.run("%wx_send {user} {n * 2} apples")
    assert sim.outbox[-1].text == "6 apples"


def test_a_dollar_variable_before_an_apostrophe_is_not_expanded_by_ipython(ip: Any, fails: Fails) -> None:
    sim = connect_sim(ip)
    greet(ip)
    ip.user_ns["user"] = "alice"
    message = fails("%wx_send $user don't panic")
    assert "'$user' was not expanded" in message and "write {user} instead of $user" in message
    ip.run("%wx_send {user} don't panic")
    assert sim.outbox[-1].text == "don't panic"


def test_send_quotes_around_the_whole_text_are_dropped(ip: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    ip.run('%wx_send alice "  two  spaces  "')
    assert sim.outbox[-1].text == "  two  spaces  "
    ip.run("%wx_send alice \"quoted\" and 'not'")
    assert sim.outbox[-1].text == "\"quoted\" and 'not'"
    ip.run("%wx_send alice -- --not an option")
    assert sim.outbox[-1].text == "--not an option"
    ip.run("%wx_send alice 'unclosed")  # the text is kept as typed: an apostrophe is not a syntax error
    assert sim.outbox[-1].text == "'unclosed"


def test_send_cell_form_keeps_the_body_as_is(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    ip.user_ns["user"] = "alice"
    out.read()
    body = "  indented first line\n\nthird line with {braces} and $dollars\n\tand a tab"
    ip.run(f"%%wx_send $user\n{body}\n")
    assert sim.outbox[-1].text == body
    stdout, _ = out.read()
    assert sent_ids(stdout) == [sim.outbox[-1].message_id]


def test_send_with_an_explicit_context_token(ip: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    token = ip.user_ns["wx"].peers["alice@im.wechat"].context_token
    ip.user_ns["ct"] = token
    ip.run("%wx_send --context-token $ct alice first")
    ip.run("%%wx_send alice --context-token $ct\nsecond")
    assert [e.text for e in sim.outbox] == ["first", "second"]
    assert {e.context_token for e in sim.outbox} == {token}


def test_send_long_text_prints_every_part(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    out.read()
    ip.user_ns["long"] = "\n\n".join(["x" * 3_000, "y" * 3_000])  # > 4,000 characters: two messages
    ip.run("%wx_send alice {long}")
    stdout, _ = out.read()
    assert "as 2 messages" in stdout
    assert sent_ids(stdout) == [e.message_id for e in sim.outbox[-2:]]


def test_send_to_a_user_who_never_wrote_fails_in_one_line(ip: Any, fails: Fails) -> None:
    sim = connect_sim(ip)
    sim.add_user("erin")
    message = fails("%wx_send erin hello")
    assert message.startswith("%wx_send: wx has not heard from erin@im.wechat yet")
    assert sim.outbox == []


def test_send_needs_a_login(ip: Any, fails: Fails) -> None:
    connect_sim(ip, "--qr")
    assert "not logged in yet: run %wx_login" in fails("%wx_send alice hi")


def test_replies_carry_one_run_id_per_turn(ip: Any, tmp_path: Path) -> None:
    sim = connect_sim(ip)
    greet(ip)
    ip.run("%wx_send alice first reply")
    path = tmp_path / "chart.png"
    path.write_bytes(PNG)
    ip.run(f"%wx_upload {path} --to alice --caption 'and a chart'")
    greet(ip, text="thanks")
    ip.run("%wx_send alice you are welcome")
    runs = [e.msg.get("run_id") for e in sim.outbox]
    assert len(runs) == 4 and runs[0] == runs[1] == runs[2] != runs[3]
    assert all(isinstance(r, str) and len(r) == 36 for r in runs)  # UUIDs


# --- %wx_typing ----------------------------------------------------------------------------------------


def test_typing_shows_and_hides_the_indicator(ip: Any, out: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    out.read()
    ip.run("%wx_typing alice")
    ip.run("%wx_typing alice@im.wechat --cancel")
    assert [(e.user_id, e.status) for e in sim.typing_events] == [
        ("alice@im.wechat", C.TypingStatus.TYPING),
        ("alice@im.wechat", C.TypingStatus.CANCEL),
    ]
    stdout, _ = out.read()
    assert "typing… shown to alice@im.wechat" in stdout and "hidden for alice@im.wechat" in stdout


# --- %wx_upload ----------------------------------------------------------------------------------------


def test_upload_sends_the_file_after_its_caption(ip: Any, out: Any, tmp_path: Path) -> None:
    sim = connect_sim(ip)
    greet(ip)
    path = tmp_path / "my chart.png"
    path.write_bytes(PNG)
    ip.user_ns["path"] = str(path)
    out.read()
    ip.run('%wx_upload "{path}" --to alice --caption "today\'s numbers"')
    caption, media = sim.outbox[-2:]
    assert caption.text == "today's numbers"
    assert media.item_types == [C.ItemType.IMAGE] and media.data == PNG
    stdout, _ = out.read()
    assert "sent image 'my chart.png' (" in stdout
    assert sent_ids(stdout) == [caption.message_id, media.message_id]


@pytest.mark.parametrize(
    ("kind", "item_type"),
    [("file", C.ItemType.FILE), ("image", C.ItemType.IMAGE), ("video", C.ItemType.VIDEO)],
)
def test_upload_as_a_given_kind(ip: Any, out: Any, tmp_path: Path, kind: str, item_type: C.ItemType) -> None:
    sim = connect_sim(ip)
    greet(ip)
    path = tmp_path / "p.bin"  # no image or video MIME type: the kind comes from --as alone
    path.write_bytes(PNG)
    out.read()
    ip.run(f"%wx_upload {path} --to alice --as {kind}")
    assert sim.outbox[-1].item_types == [item_type] and sim.outbox[-1].data == PNG
    stdout, _ = out.read()
    assert f"sent {kind} 'p.bin' (" in stdout


def test_an_unreadable_file_is_one_line_naming_it(
    ip: Any, fails: Fails, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file passes the checks, then reading it fails (permissions changed, an I/O error): no traceback.
    Reads are made to fail by hand: a chmod would not stop a test that runs as root."""
    from openclaw_nb import media

    sim = connect_sim(ip)
    greet(ip)
    path = tmp_path / "locked.png"
    path.write_bytes(PNG)
    ip.user_ns["path"] = str(path)

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(media.Plaintext, "chunks", denied)
    message = fails('%wx_upload "{path}" --to alice')
    assert message == (
        f"%wx_upload: cannot read {str(path)!r}: Permission denied; check that you may read it (its "
        "permissions), or copy it somewhere readable"
    )
    monkeypatch.setattr(Path, "read_bytes", denied)
    message = fails('%wx_sim image alice "{path}"')
    assert message.startswith(f"%wx_sim image: cannot read {str(path)!r}: Permission denied; check that")
    assert sim.outbox == [] and sim.users["alice@im.wechat"]


def test_a_file_system_error_elsewhere_is_one_line(
    ip: Any, fails: Fails, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Store) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", str(self.accounts_dir))

    monkeypatch.setattr(Store, "accounts", denied)
    assert fails("%wx_connect") == f"%wx_connect: Permission denied: {str(home / 'accounts')!r}"


def test_a_simulator_that_cannot_start_leaves_nothing_behind(
    ip: Any, fails: Fails, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders: list[str] = []
    mkdtemp = M.tempfile.mkdtemp

    def recorded(*args: Any, **kwargs: Any) -> str:
        folders.append(mkdtemp(*args, **kwargs))
        return folders[-1]

    def in_use(self: Simulator) -> Simulator:
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(M.tempfile, "mkdtemp", recorded)
    monkeypatch.setattr(Simulator, "start", in_use)
    assert fails("%wx_connect --sim") == "%wx_connect: Address already in use"
    assert folders and not any(os.path.exists(folder) for folder in folders)
    assert "wx" not in ip.user_ns and magics_of(ip).sim is None


def test_upload_shows_a_progress_bar_for_a_large_file(ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openclaw_nb import env
    from openclaw_nb.notebook import progress

    bars: list[Any] = []

    class Recorded(progress.WidgetProgress):
        def __init__(self, description: str) -> None:
            super().__init__(description)
            bars.append(self)

    monkeypatch.setattr(env, "has_widgets", lambda: True)
    monkeypatch.setattr(progress, "WidgetProgress", Recorded)
    sim = connect_sim(ip)
    greet(ip)
    data = os.urandom((1 << 20) + 12_345)  # above the progress bar's threshold
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    ip.run(f"%wx_upload {path} --to alice")
    assert sim.outbox[-1].data == data
    (bar,) = bars
    assert bar._bar.value == bar._bar.max > len(data)  # the ciphertext, padded
    assert bar._bar.bar_style == "success"

    ip.run(f"%wx_upload {path} --to alice --no-progress")
    assert len(bars) == 1


# --- %wx_updates ---------------------------------------------------------------------------------------


def test_updates_start_frame_stop(ip: Any, out: Any, home: Path) -> None:
    sim = connect_sim(ip)
    ip.run("feed = %wx_updates start")
    feed = ip.user_ns["feed"]
    assert isinstance(feed, Feed) and feed.running
    assert ip.run("%wx_updates start") is feed  # one feed per client
    assert ip.run("%wx_updates") is feed  # start is the default
    assert ip.run("%wx_updates show") is feed
    ip.run("%wx_sim say alice first")
    ip.run("%wx_sim say bob second")
    feed.wait_for(2)
    ip.run("df = %wx_updates frame")
    df = ip.user_ns["df"]
    assert isinstance(df, pd.DataFrame)
    assert list(df["text"]) == ["first", "second"]
    assert list(df["from_user_id"]) == ["alice@im.wechat", "bob@im.wechat"]
    # The feed fed the client: it can reply without polling itself.
    ip.run("%wx_send bob got it")
    assert sim.outbox[-1].text == "got it"
    out.read()
    ip.run("%wx_updates stop")
    stdout, _ = out.read()
    assert "2 messages" in stdout
    feed.wait(timeout=10)
    assert not feed.running and feed.error is None
    ip.run("%wx_updates stop")
    stdout, _ = out.read()
    assert "already stopped (2 messages)" in stdout
    assert len(ip.run("%wx_updates frame")) == 2  # still there after the stop
    # The simulated bot's cursor is kept in the simulator's folder, not in the user's.
    assert not (home / "accounts").exists()
    assert list(Path(magics_of(ip).sim_home or "").glob("accounts/*.sync.json"))
    # Starting again makes a new feed that carries on from the cursor, its frame rebuilt from the rows' log.
    again = ip.run("%wx_updates start")
    assert again is not feed and again.running
    ip.run("%wx_sim say alice third")
    assert list(again.wait_for(3)["text"]) == ["first", "second", "third"]


def test_updates_shows_the_live_view(ip: Any, out: Any) -> None:
    connect_sim(ip)
    ip.run("%wx_sim say alice hello")
    out.read()
    ip.run("feed = %wx_updates start\nfeed.wait_for(1)\nfeed")
    stdout, _ = out.read()
    assert "<Feed " in stdout and "1 messages" in stdout


def test_updates_needs_a_login(ip: Any, fails: Fails) -> None:
    connect_sim(ip, "--qr")
    assert "not logged in yet" in fails("%wx_updates start")
    for action in ("stop", "show", "frame"):
        assert "no feed yet" in fails(f"%wx_updates {action}")


# --- %wx_log -------------------------------------------------------------------------------------------


def test_log_table_filter_and_exports(ip: Any, out: Any, tmp_path: Path) -> None:
    connect_sim(ip)
    greet(ip)
    ip.run("%wx_send alice one")
    ip.run("%wx_send alice two")
    wx = ip.user_ns["wx"]
    calls = [ex.call for ex in wx.log]
    assert calls[-3:] == ["get_updates", "send_message", "send_message"]

    table = ip.run("%wx_log")
    assert isinstance(table, LogTable) and len(table.exchanges) == len(calls)
    table = ip.run("%wx_log --last 2")
    assert [ex.call for ex in table.exchanges] == ["send_message", "send_message"]
    assert "protocol log" in repr(table) and "<table>" in table._repr_html_()
    table = ip.run("%wx_log --call get_updates")
    assert {ex.call for ex in table.exchanges} == {"get_updates"}

    har, jsonl = tmp_path / "sends.har", tmp_path / "sends.jsonl"
    ip.user_ns["folder"] = str(tmp_path)
    out.read()
    assert ip.run("%wx_log --call send_message --har {folder}/sends.har --jsonl {folder}/sends.jsonl") is None
    stdout, _ = out.read()
    assert stdout.count("wrote 2 exchanges") == 2
    entries = json.loads(har.read_text())["log"]["entries"]
    assert [
        json.loads(e["request"]["postData"]["text"])["msg"]["item_list"][0]["text_item"]["text"] for e in entries
    ] == [
        "one",
        "two",
    ]
    assert [ex.call for ex in load_log(jsonl)] == ["send_message", "send_message"]
    ip.run(f"%wx_log --last 1 --jsonl {jsonl}")
    assert len(load_log(jsonl)) == 1
    for path in (har, jsonl):
        text = path.read_text()
        assert wx.token not in text and wx.peers["alice@im.wechat"].context_token not in text


def test_log_last_zero_means_all(ip: Any, out: Any, tmp_path: Path) -> None:
    connect_sim(ip)
    for n in range(M.LOG_ROWS + 2):
        greet(ip, text=f"message {n}")  # one get_updates each, answered at once
    wx = ip.user_ns["wx"]
    assert len(wx.log) > M.LOG_ROWS
    assert len(ip.run("%wx_log").exchanges) == M.LOG_ROWS
    everything = ip.run("%wx_log --last 0")
    assert [ex.id for ex in everything.exchanges] == [ex.id for ex in wx.log]
    path = tmp_path / "all.jsonl"
    ip.run(f"%wx_log --last 0 --jsonl {path}")
    assert len(load_log(path)) == len(wx.log)


def test_log_export_to_a_missing_folder_is_one_line(ip: Any, fails: Fails, tmp_path: Path) -> None:
    connect_sim(ip)
    assert "cannot write" in fails(f"%wx_log --har {tmp_path}/no/such/folder/x.har")


def test_log_of_a_client_that_records_nothing(ip: Any, fails: Fails) -> None:
    connect_sim(ip)
    ip.user_ns["wx"].log = None  # as Client(record=False)
    assert "records nothing" in fails("%wx_log")


# --- %wx_sim -------------------------------------------------------------------------------------------


def test_sim_say_and_image_reach_the_client(ip: Any, out: Any, tmp_path: Path) -> None:
    sim = connect_sim(ip)
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    ip.user_ns.update(who="bob", picture=str(path))
    out.read()
    ip.run("%wx_sim say {who} don't  panic")
    ip.run("%wx_sim image $who {picture}")
    stdout, _ = out.read()
    assert "bob@im.wechat wrote to" in stdout and "'cat.png' (" in stdout
    ip.run("page = wx.get_updates()")
    first, second = ip.user_ns["page"].messages
    assert first.text == "don't  panic" and first.from_user_id == "bob@im.wechat"
    assert second.item_list[0].type == C.ItemType.IMAGE
    assert ip.run("bytes(wx.download_media(page.messages[1]))") == PNG
    assert {m.to_user_id for m in (first, second)} == {ip.user_ns["wx"].bot_id}
    assert sim.users["bob@im.wechat"]


def test_sim_outbox_is_a_dataframe(ip: Any) -> None:
    sim = connect_sim(ip)
    greet(ip)
    for text in ("one", "two", "three"):
        ip.run(f"%wx_send alice {text}")
    df = ip.run("%wx_sim outbox")
    assert isinstance(df, pd.DataFrame)
    assert list(df["text"]) == ["one", "two", "three"]
    assert str(df["message_id"].dtype) == "UInt64"
    assert list(df["message_id"]) == [e.message_id for e in sim.outbox]
    assert "context_token" not in df.columns
    assert list(ip.run("%wx_sim outbox 2")["text"]) == ["two", "three"]


def test_sim_needs_the_embedded_simulator(ip: Any, fails: Fails, server: Simulator) -> None:
    assert "no embedded simulator" in fails("%wx_sim say alice hi")
    login = server.login_bot()
    ip.run(f"%wx_connect --token {login.bot_token} --base-url {server.base_url}")
    assert "start one with %wx_connect --sim" in fails("%wx_sim outbox")


# --- %wx_help ------------------------------------------------------------------------------------------


def test_help_lists_every_magic_with_an_example(ip: Any) -> None:
    table = ip.run("%wx_help")
    assert isinstance(table, M.HelpTable)
    names = {row[0] for row in M.HELP}
    assert {f"%{name}" for name in LINE_MAGICS} <= names
    assert {"%%wx_send", "%load_ext openclaw_nb"} <= names
    text, page = repr(table), table._repr_html_()
    for name, _, example in M.HELP:
        assert name in text and all(line in text for line in example.split("\n"))
        assert example.replace('"', "&quot;") in page
    assert "%unload_ext openclaw_nb" in text


def test_the_help_examples_of_wx_send_run_as_shown(ip: Any, out: Any) -> None:
    """Copied from %wx_help into a cell, each example sends: the cell form's has its body."""
    sim = connect_sim(ip)
    greet(ip)
    examples = {name: example for name, _, example in M.HELP}
    ip.run(examples["%wx_send"])
    assert sim.outbox[-1].text == "hello there"
    cell = examples["%%wx_send"]
    assert cell.count("\n") >= 2  # a body of several lines
    ip.run(cell)
    assert sim.outbox[-1].text == cell.split("\n", 1)[1]
    stdout, _ = out.read()
    assert sent_ids(stdout)[-1] == sim.outbox[-1].message_id


# --- the line splitter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "argv", "text"),
    [
        ("alice hello world", ["alice"], "hello world"),
        ("alice   don't  stop  ", ["alice"], "don't  stop"),
        ("--context-token T alice hi", ["--context-token", "T", "alice"], "hi"),
        ("alice --context-token=T hi", ["alice", "--context-token=T"], "hi"),
        ("alice --context-token T hi", ["alice", "--context-token", "T"], "hi"),
        ("'al ice' -- -5 degrees", ["al ice"], "-5 degrees"),
        ("alice '-x' is text", ["alice"], "'-x' is text"),
        ("alice", ["alice"], ""),
    ],
)
def test_split_keeps_the_text_as_typed(line: str, argv: list[str], text: str) -> None:
    parser = M.WxMagics.wx_send.parser
    assert M._split("wx_send", parser, line, "text") == (argv, text)


def test_unquote_only_drops_quotes_around_everything() -> None:
    assert M._unquote('"a b"') == "a b"
    assert M._unquote("'it''s'") == "'it''s'"
    assert M._unquote("'it's'") == "'it's'"
    assert M._unquote('"a" "b"') == '"a" "b"'
    assert M._unquote("'unclosed") == "'unclosed"
