"""The recorder inside the real client, against the simulator: secrets, HAR, replay against a fresh simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sim_module = pytest.importorskip("openclaw_nb.sim")

from openclaw_nb.client import Client  # noqa: E402
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


def test_client_session_is_recorded_without_secrets(sim: Any, tmp_path: Path) -> None:
    import jsonschema

    client, seen = _session(sim)
    try:
        log = client.log
        assert isinstance(log, Recorder)
        calls = [ex.call for ex in log]
        for call in (
            "get_bot_qrcode",
            "get_qrcode_status",
            "get_updates",
            "send_message",
            "get_config",
            "send_typing",
            "get_upload_url",
            "cdn_upload",
            "cdn_download",
        ):
            assert call in calls
        upload = log.filter(call="cdn_upload")[0]
        assert isinstance(upload.request_body, Binary) and upload.request_body.size % 16 == 0
        download = log.filter(call="cdn_download")[0]
        assert isinstance(download.response_body, Binary) and download.response_body.size > len(IMAGE)
        # Every secret the simulator handed out or the client used, in every output.
        bots = list(sim.bots.values())
        seen += [b.token for b in bots]
        har_path, jsonl_path = tmp_path / "s.har", tmp_path / "s.jsonl"
        har = log.to_har(har_path)
        log.to_jsonl(jsonl_path)
        outputs = {
            "frame": log.frame().to_csv(),
            "show": repr(log.show(100)) + log.show(100)._repr_html_(),
            "exchanges": "".join(repr(ex) + ex._repr_html_() for ex in log),
            "har": har_path.read_text(encoding="utf-8"),
            "jsonl": jsonl_path.read_text(encoding="utf-8"),
        }
        assert len(seen) >= 4
        for secret in seen:
            for where, text in outputs.items():
                assert secret not in text, f"a secret leaked into {where}"
        jsonschema.validate(har, HAR_1_2_SCHEMA)
        assert load_log(jsonl_path) == log.snapshot()
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
