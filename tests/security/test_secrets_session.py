"""Secrets: a full session with DEBUG logging leaves no secret in any artefact.

QR login (with saved logins whose tokens go out in ``local_token_list``) drawn in a terminal, a live feed with
``log_path``, text, typing and its cancel, notifystart/notifystop, an image and a file uploaded (through
``upload_full_url`` and through ``upload_param``), an inbound image and file downloaded, then six kinds of
failure. A twin recorder that does not redact sees the very same traffic: every secret value it finds on the
wire is then searched, in every spelling (raw, URL-encoded, JSON- and HTML-escaped, every encoding of an AES
key), in every artefact: reprs, exceptions and their tracebacks, log records, terminal output, HTML displays,
the recorder's HAR and JSONL, the feed's log and saved log. The search helpers are the recorder test's.
"""

from __future__ import annotations

import io
import logging
import secrets
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from login.helpers import Phone
from recorder.test_with_sim import SECRET_KINDS, _every_output, _secrets_on_the_wire, _spellings
from rich.console import Console

from openclaw_nb import errors as E
from openclaw_nb.client import Client
from openclaw_nb.protocol.poll import PollPolicy
from openclaw_nb.recorder import Recorder
from openclaw_nb.sim import SimConfig, Simulator
from openclaw_nb.store import Credentials, Store

from .conftest import FAST

IMAGE = bytes(range(256)) * 64
ALICE = "alice@im.wechat"
#: Fast polls: a failed one is retried at once.
POLICY = PollPolicy(retry_delay=0.01, backoff_delay=0.05)


@pytest.fixture
def own_sim() -> Iterator[Simulator]:
    with Simulator(SimConfig(long_poll_timeout=0.5, default_user=ALICE)) as sim:
        yield sim


def expect_failure(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raises (it must raise one of the project's errors)."""
    with pytest.raises(E.OpenClawError) as info:
        call()
    return info.value


def exception_texts(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    parts += [repr(arg) for arg in exc.args]
    parts += [f"{k}={v!r}" for k, v in vars(exc).items()]
    return "\n".join(parts)


def test_a_full_session_leaves_no_secret_anywhere(
    own_sim: Simulator,
    home: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = own_sim
    caplog.set_level(logging.DEBUG)  # the root logger and everything under it: httpx, httpcore, openclaw_nb
    store = Store()
    for i in range(2):  # saved logins: their tokens go out in local_token_list
        token = f"lt-{secrets.token_hex(16)}"
        store.save_credentials(Credentials(token, f"old{i}@im.bot", sim.base_url, f"old{i}@im.wechat"))
    with pytest.warns(UserWarning, match="redact=False"):
        twin = Recorder(redact=False)  # the same exchanges, unredacted: the list of secrets to look for
    client = Client(base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, transport=twin.wrap(httpx.HTTPTransport()))
    terminal = io.StringIO()
    console = Console(file=terminal, width=120, color_system=None)
    errors: list[BaseException] = []
    try:
        result = client.login(display="terminal", console=console, on_event=Phone(sim, user=ALICE), **FAST)
        assert result.ok
        client.notify_start()
        log_path = tmp_path / "feed-logs" / "feed.jsonl"
        feed = client.stream(log_path=log_path, notify=False, persist=False, policy=POLICY)
        sim.say("alice", "hello bot")
        sim.send_image("alice", IMAGE)
        sim.configure(inbound_full_url=True)
        sim.send_file("alice", IMAGE, "notes.bin")
        feed.wait_for(3)
        client.send_text(ALICE, "hello alice")
        client.typing(ALICE)
        image = client.send_image(IMAGE, ALICE)
        sim.configure(upload_full_url=False)
        doc = client.send_file(IMAGE, ALICE, name="notes.bin")
        items = feed.items_frame()
        media = items[items["type"].astype(str).isin(["image", "file"])]
        assert len(media) == 2
        for _, row in media.iterrows():
            assert bytes(client.download_media(row)) == IMAGE
        client.typing(ALICE, cancel=True)
        feed.stop()
        feed.wait(10)
        client.notify_stop()
        saved = feed.save(tmp_path / "saved.jsonl")

        # --- failures: transport, gateway, broken answers, the CDN, a business code, a stale token ---
        sim.add_fault(reset=1.0, count=20, endpoints=["send_typing"])
        errors.append(expect_failure(lambda: client.typing(ALICE)))
        sim.clear_faults()
        sim.add_fault(http_500=1.0, count=20, endpoints=["send_message"])
        errors.append(expect_failure(lambda: client.send_text(ALICE, "into a 500")))
        sim.clear_faults()
        sim.add_fault(malformed_json=1.0, count=20, endpoints=["get_upload_url"])
        errors.append(expect_failure(lambda: client.send_image(IMAGE, ALICE)))
        sim.clear_faults()
        sim.add_fault(http_400=1.0, count=20, endpoints=["cdn_upload"])
        errors.append(expect_failure(lambda: client.send_image(IMAGE, ALICE)))
        sim.clear_faults()
        sim.add_fault(http_400=1.0, count=20, endpoints=["cdn_download"])
        errors.append(expect_failure(lambda: client.download_media(media.iloc[0])))
        sim.clear_faults()
        sim.advance(days=2)  # past the 24 h reply window: -2
        errors.append(expect_failure(lambda: client.send_text(ALICE, "too late")))
        sim.revoke_token(result.bot_id)
        errors.append(expect_failure(lambda: client.get_updates(timeout=2)))
        assert isinstance(errors[-1], E.StaleTokenError)
        assert len({type(e) for e in errors}) >= 4, [type(e).__name__ for e in errors]

        # --- what the session knows, as the wire carried it ---
        found = _secrets_on_the_wire(twin)
        assert set(found) >= SECRET_KINDS, sorted(set(found))
        known = [result.credentials.bot_token if result.credentials else ""]
        known += list(client.context_tokens.values())
        known += [image.uploaded.aeskey, image.uploaded.encrypt_query_param, doc.uploaded.aeskey]
        everything = set().union(*found.values())
        assert all(k in everything for k in known if k)
        assert min(len(v) for v in everything) >= 16

        # --- every artefact ---
        outputs = _every_output(client.log, tmp_path)
        frame = feed.frame
        outputs.update(
            {
                "client repr": repr(client),
                "feed repr": repr(feed),
                "feed html": feed._repr_html_(),
                "feed users": feed.users.to_string(),
                "frame repr": repr(frame),
                "frame html": frame._repr_html_() or "",
                "frame to_html": frame.to_html(),
                "items repr": repr(items),
                "items html": items._repr_html_() or "",
                "login result": repr(result) + str(result.message),
                "credentials": repr(result.credentials) + repr(store.load_credentials(result.bot_id)),
                "peers": repr(client.peers),
                "sent": repr(image) + repr(doc),
                "feed log": log_path.read_text(encoding="utf-8"),
                "saved log": saved.read_text(encoding="utf-8"),
                "log records": "\n".join(r.getMessage() for r in caplog.records),
                "log text": caplog.text,
                "terminal": terminal.getvalue(),
            }
        )
        for i, exc in enumerate(errors):
            outputs[f"error {i} {type(exc).__name__}"] = exception_texts(exc)
        captured = capsys.readouterr()
        outputs["stdout"], outputs["stderr"] = captured.out, captured.err

        leaks = sorted(
            {
                (kind, where, f"a spelling of {len(form)} characters")  # not the secret itself
                for kind, values in found.items()
                for value in values
                for form in _spellings(kind, value)
                for where, text in outputs.items()
                if form in text
            }
        )
        assert not leaks, leaks
        # The artefacts are not empty shells: the placeholders and the lines that used to leak are there.
        assert "<redacted " in outputs["feed log"] and "<redacted " in outputs["saved log"]
        assert "<redacted " in outputs["har"] and "&lt;redacted " in outputs["frame html"]
        http_lines = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
        assert any("download" in line and "<redacted " in line for line in http_lines)
        assert "Scan the QR code" in outputs["terminal"]
    finally:
        client.close()
