"""The recorder inside the real client, against the simulator: secrets, HAR, replay against a fresh simulator."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import httpx
import pytest
from rich.console import Console

sim_module = pytest.importorskip("openclaw_nb.sim")

from openclaw_nb.client import Client  # noqa: E402
from openclaw_nb.protocol.redact import SECRET_FIELDS, SECRET_HEADERS  # noqa: E402
from openclaw_nb.recorder import Binary, Recorder, diff, load_log, replay  # noqa: E402

from .har_schema import HAR_1_2_SCHEMA  # noqa: E402

Simulator = sim_module.Simulator
IMAGE = bytes(range(256)) * 64  # stands in for a PNG: the CDN only sees ciphertext


@pytest.fixture
def sim() -> Iterator[Any]:
    with Simulator(auto_confirm=0.0, long_poll_timeout=1.0, default_user="alice@im.wechat") as s:
        yield s


def _session(sim: Any) -> tuple[Client, list[str]]:
    """QR login, a text in, a reply, typing, an image out, an image in and its download."""
    client = Client(base_url=sim.base_url, cdn_base_url=sim.cdn_base_url)
    qr = client.get_bot_qrcode()
    status = client.get_qrcode_status(qr.qrcode)
    assert status.status == "confirmed", status
    client.use_credentials(status.bot_token, bot_id=status.ilink_bot_id)
    sim.say("alice", "hello bot")
    page = client.get_updates()
    user = page.msgs[0].from_user_id
    client.send_text(user, "hello alice")
    client.typing(user)
    client.send_image(IMAGE, user)
    sim.send_image("alice", IMAGE)
    page = client.get_updates()
    media = page.msgs[0].item_list[0].image_item.media
    client.cdn_download(media.encrypt_query_param, full_url=media.full_url)
    secrets_seen = [
        status.bot_token,
        page.msgs[0].context_token,
        media.encrypt_query_param,
        media.aes_key,
        *[t for t in client.context_tokens.values()],
    ]
    return client, [s for s in secrets_seen if s]


#: Every call of the protocol, as the recorder names it.
EVERY_CALL = (
    "get_bot_qrcode",
    "get_qrcode_status",
    "notify_start",
    "get_updates",
    "send_message",
    "get_config",
    "send_typing",
    "get_upload_url",
    "cdn_upload",
    "cdn_download",
    "notify_stop",
)
#: The kinds of secret a full session carries (lower-case field, header or query parameter names).
SECRET_KINDS = {
    "authorization",
    "bot_token",
    "local_token_list",
    "context_token",
    "typing_ticket",
    "aeskey",
    "aes_key",
    "upload_param",
    "encrypted_query_param",
    "encrypt_query_param",
    "x-encrypted-param",
}


def _full_session(sim: Any, transport: httpx.BaseTransport) -> tuple[Client, list[tuple[str, str]]]:
    """Every kind of exchange: QR login with local tokens, notify start/stop, polls, text, typing and its
    cancel, uploads through ``upload_full_url`` and through ``upload_param`` + ``filekey``, and downloads of
    an inbound image (hex ``aeskey`` and base64 raw-key ``aes_key``, download URL built by the client) and an
    inbound file (base64-of-hex ``aes_key``, the server's ``full_url``).

    Returns the client and the secrets the test knows without looking at the wire, as (what, value).
    """
    client = Client(base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, transport=transport)
    local_tokens = ["lt-" + secrets.token_hex(16), "lt-" + secrets.token_hex(16)]
    qr = client.get_bot_qrcode(local_token_list=local_tokens)
    status = client.get_qrcode_status(qr.qrcode)
    assert status.status == "confirmed", status
    client.use_credentials(status.bot_token, bot_id=status.ilink_bot_id)
    client.notify_start()
    sim.say("alice", "hello bot")
    page = client.get_updates()
    user = page.msgs[0].from_user_id
    client.send_text(user, "hello alice")
    client.typing(user)
    image = client.send_image(IMAGE, user)
    sim.configure(upload_full_url=False)
    doc = client.send_file(IMAGE, user, name="notes.bin")
    sim.send_image("alice", IMAGE)
    sim.configure(inbound_full_url=True)
    sim.send_file("alice", IMAGE, "notes.bin")
    inbound = []
    deadline = time.monotonic() + 10
    while len(inbound) < 2 and time.monotonic() < deadline:
        inbound += [it for msg in client.get_updates().msgs for it in msg.item_list]
    assert [it.type for it in inbound] == [2, 4], inbound
    for item in inbound:
        assert bytes(client.download_media(item)) == IMAGE
    client.typing(user, cancel=True)
    client.notify_stop()

    known = [("bot_token", status.bot_token), *(("local token", t) for t in local_tokens)]
    known += [("bot token in the simulator", b.token) for b in sim.bots.values() if b.token]
    known += [("context token", t) for t in client.context_tokens.values()]
    known.append(("typing ticket", client.typing_tickets.ticket(user) or ""))
    for sent in (image, doc):
        known += [("outbound aeskey", sent.uploaded.aeskey), ("outbound param", sent.uploaded.encrypt_query_param)]
    image_item, file_item = inbound[0].image_item, inbound[1].file_item
    known += [("inbound image aeskey", image_item.aeskey), ("inbound image aes_key", image_item.media.aes_key)]
    known += [("inbound image param", image_item.media.encrypt_query_param)]
    known += [("inbound file aes_key", file_item.media.aes_key)]
    known += [("inbound file param", file_item.media.encrypt_query_param)]
    return client, known


def _secrets_on_the_wire(raw: Recorder) -> dict[str, set[str]]:
    """Every secret value in an unredacted log, by kind: secret headers (the credential of ``Authorization``),
    secret query parameters (of the request URL and of URLs inside bodies), and secret JSON fields."""
    found: dict[str, set[str]] = {}

    def add(kind: str, value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                add(kind, v)
        elif isinstance(value, list):
            for v in value:
                add(kind, v)
        elif value not in (None, ""):
            found.setdefault(kind.lower(), set()).add(str(value))

    def query(url: str) -> None:
        for k, v in parse_qsl(urlsplit(url).query):
            if k.lower() in SECRET_FIELDS:
                add(k, v)

    def walk(value: Any, key: str = "") -> None:
        if key.lower() in SECRET_FIELDS:
            add(key, value)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and "://" in value and "?" in value:
            query(value)

    for ex in raw:
        assert not ex.redacted
        query(ex.url)
        for headers in (ex.request_headers, ex.response_headers):
            for name, value in headers.items():
                name = name.lower()
                if name in ("authorization", "proxy-authorization"):
                    add(name, value.split(" ", 1)[-1])
                elif name in SECRET_HEADERS or name in SECRET_FIELDS:
                    add(name, value)
        walk(ex.request_body)
        walk(ex.response_body)
    return found


def _key_encodings(value: str) -> set[str]:
    """The other spellings of an AES-128 key: hex, base64 of the raw key, base64 of the hex (all three are used)."""
    key: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{32}", value):
        key = bytes.fromhex(value)
    else:
        try:
            decoded = base64.b64decode(value, validate=True)
        except ValueError:
            decoded = b""
        if len(decoded) == 16:
            key = decoded
        elif re.fullmatch(rb"[0-9a-fA-F]{32}", decoded):
            key = bytes.fromhex(decoded.decode())
    assert key is not None, f"an AES key in a form this test does not know ({len(value)} characters)"
    hexkey = key.hex()
    return {
        hexkey,
        hexkey.upper(),
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode(),
        base64.b64encode(hexkey.encode()).decode(),
    }


def _spellings(kind: str, value: str) -> set[str]:
    """The value as it could be written in any output: raw, URL-encoded, JSON- and HTML-escaped (and for
    AES keys, every encoding of the key)."""
    values = {value} | (_key_encodings(value) if kind in ("aeskey", "aes_key") else set())
    out: set[str] = set()
    for v in values:
        out |= {v, quote(v, safe=""), quote(v), quote_plus(v), json.dumps(v)[1:-1], html.escape(v)}
    return out


def _rich_text(obj: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(obj)
    return buf.getvalue()


def _every_output(log: Recorder, tmp_path: Path) -> dict[str, str]:
    """frame(), show() (text, HTML, rich), the log itself, each exchange (str, repr, HTML, rich), HAR, JSONL."""
    frame = log.frame()
    table = log.show(len(log))
    out = {
        "frame csv": frame.to_csv(),
        "frame json": frame.to_json(orient="records", date_format="iso", default_handler=str),
        "frame repr": frame.to_string(),
        "summary": log.summary().to_csv(),
        "show repr": repr(table),
        "show str": str(table),
        "show html": table._repr_html_(),
        "show rich": _rich_text(table),
        "log repr": repr(log),
        "log html": log._repr_html_(),
    }
    for ex in log:
        out[f"exchange {ex.id} str"] = str(ex)
        out[f"exchange {ex.id} repr"] = repr(ex)
        out[f"exchange {ex.id} html"] = ex._repr_html_()
        out[f"exchange {ex.id} rich"] = _rich_text(ex)
    log.to_har(tmp_path / "s.har")
    out["har"] = (tmp_path / "s.har").read_text(encoding="utf-8")
    log.to_jsonl(tmp_path / "s.jsonl")
    out["jsonl"] = (tmp_path / "s.jsonl").read_text(encoding="utf-8")
    out["jsonl reloaded"] = repr(load_log(tmp_path / "s.jsonl"))
    return out


def test_client_session_is_recorded_without_secrets(sim: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import jsonschema

    with pytest.warns(UserWarning, match="redact=False"):
        twin = Recorder(redact=False)  # sees the very same exchanges, unredacted: the list of secrets to look for
    with caplog.at_level(logging.DEBUG, logger="openclaw_nb"):
        client, known = _full_session(sim, twin.wrap(httpx.HTTPTransport()))
    try:
        log = client.log
        assert isinstance(log, Recorder)
        calls = [ex.call for ex in log]
        assert calls == [ex.call for ex in twin]
        assert set(calls) == set(EVERY_CALL), calls
        assert calls.count("cdn_upload") == 2 and calls.count("cdn_download") == 2
        upload = log.filter(call="cdn_upload")[0]
        assert isinstance(upload.request_body, Binary) and upload.request_body.size % 16 == 0
        download = log.filter(call="cdn_download")[0]
        assert isinstance(download.response_body, Binary) and download.response_body.size > len(IMAGE)

        found = _secrets_on_the_wire(twin)
        # Every kind of secret the protocol has crossed the wire in this session...
        assert set(found) >= SECRET_KINDS, sorted(set(found))
        # ... the twin saw every secret the test knows by other means (so the search list is complete) ...
        everything = set().union(*found.values())
        missing = [kind for kind, value in known if value not in everything]
        assert not missing, missing
        # ... and every value is long enough that finding it in an output can't be a coincidence.
        assert min(len(v) for v in everything) >= 16, sorted((len(v), k) for k, vs in found.items() for v in vs)

        wire = [r for r in caplog.records if r.name == "openclaw_nb.wire"]
        assert len(wire) == len(log) + len(twin)  # the twin logs too, and its lines are redacted as well
        outputs = _every_output(log, tmp_path)
        outputs["log records"] = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("openclaw_nb"))
        outputs["log text"] = caplog.text
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
        # The outputs are not empty shells: the placeholders are there.
        assert "<redacted " in outputs["har"] and "<redacted " in outputs["log records"]

        jsonschema.validate(log.to_har(), HAR_1_2_SCHEMA)
        assert load_log(tmp_path / "s.jsonl") == log.snapshot()
    finally:
        client.close()


def test_replay_against_a_fresh_simulator(sim: Any, tmp_path: Path) -> None:
    client, _ = _session(sim)
    path = tmp_path / "s.jsonl"
    client.log.to_jsonl(path)
    client.close()
    result = replay(load_log(path))  # starts and stops its own simulator
    failed = result.log.filter(errors_only=True)
    assert len(failed) == 0, (repr(result), failed.frame()[["call", "status", "ret", "error"]])
    assert [ex.call for ex in result.log] == [ex.call for ex in client.log]
    # What replay can't reproduce is a known list: the inbound image's download parameter comes from a
    # message the fresh simulator re-enacts with its own media, and uploads carry zero bytes.
    assert result.same, repr(result)


def test_diff_of_two_clients_against_two_simulators() -> None:
    logs = []
    for _ in range(2):
        with Simulator(auto_confirm=0.0, long_poll_timeout=1.0, default_user="alice@im.wechat") as s:
            client, _ = _session(s)
            logs.append(client.log)
            client.close()
    result = diff(*logs)
    assert result.same, repr(result)


def test_diff_catches_a_changed_simulator_rule() -> None:
    logs = []
    for upload_full_url in (True, False):
        with Simulator(
            auto_confirm=0.0, long_poll_timeout=1.0, default_user="alice@im.wechat", upload_full_url=upload_full_url
        ) as s:
            client, _ = _session(s)
            logs.append(client.log)
            client.close()
    result = diff(*logs)
    assert ("get_upload_url", "response.body.upload_full_url", "missing") in [(d.call, d.where, d.kind) for d in result]
    assert json.dumps([str(d) for d in result])


def test_replay_of_a_log_that_starts_after_login(sim: Any) -> None:
    client, _ = _session(sim)
    client.close()
    after_login = client.log[2:]  # no QR login: replay gives the fresh simulator's own bot token
    result = replay(after_login)
    assert result.same, repr(result)
    assert any("simulator bot" in note for _, note in result.notes)


def test_replay_against_a_stricter_simulator_shows_the_difference(sim: Any) -> None:
    client, _ = _session(sim)
    client.close()
    with Simulator(auto_confirm=0.0, long_poll_timeout=1.0, check_uploads=False, sends_per_context_token=1) as strict:
        result = replay(client.log, simulator=strict)
    found = [(d.call, d.n, d.where, d.a, d.b) for d in result]
    # The second send on the same context token is refused by the stricter rule.
    assert ("send_message", 2, "response.body.ret", 0, -2) in found, repr(result)
