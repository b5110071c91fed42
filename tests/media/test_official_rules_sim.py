"""The official client's rules where a server's answer is odd, over real HTTP: an upload answered 200 without
``x-encrypted-param`` is retried; a ``getconfig`` without ``ret`` 0 is a failure and an empty ticket turns typing
off; inbound media whose ``len``/``md5`` disagree with the bytes still download. The odd answers come from
:mod:`tests.media.tamper`, a loopback proxy in front of the simulator."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

import pytest

from openclaw_nb import errors as E
from openclaw_nb import updates as updates_module
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.sim.state import CDN_PREFIX

from .conftest import Bot, Counting, SimClient
from .tamper import Tamper, tamper


@pytest.fixture
def proxy(bot: Bot) -> Iterator[Tamper]:
    bot.sim.configure(upload_full_url=False)  # the client builds the upload URL from its cdn_base_url: the proxy
    with tamper(bot.sim.base_url) as proxy:
        yield proxy


@pytest.fixture
def via(bot: Bot, proxy: Tamper) -> Iterator[SimClient]:
    """A client whose API and CDN requests go through the proxy, holding the user's context token."""
    transport = Counting()
    client = SimClient(
        bot.token,
        base_url=proxy.base_url,
        cdn_base_url=proxy.base_url + CDN_PREFIX,
        record=False,
        transport=transport,
    )
    client.transport, client.sleeps = transport, []
    client._sleep = client.sleeps.append  # type: ignore[method-assign]
    bot.sim.say(bot.user, "hi bot")
    assert [m.from_user_id for m in client.get_updates().messages] == [bot.user]
    with client:
        yield client


def no_param(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    assert status == 200 and headers.pop(C.H_ENCRYPTED_PARAM)  # the simulator did give one
    return status, headers, body


def json_change(**changes: object) -> object:
    """A rewrite of a JSON answer: keys set to a value, or removed when the value is ``...``."""

    def rewrite(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        data = json.loads(body)
        for key, value in changes.items():
            if value is ...:
                data.pop(key, None)
            else:
                data[key] = value
        return status, headers, json.dumps(data).encode()

    return rewrite


# --- CDN upload: a 200 without x-encrypted-param is retried like a 5xx ---------------------------------------


def test_upload_answered_without_its_parameter_is_retried(via: SimClient, bot: Bot, proxy: Tamper) -> None:
    data = os.urandom(3000)
    proxy.change("upload", no_param, count=2)
    resp = via.send_file(data, bot.user, name="data.bin")
    assert proxy.seen.count("upload") == 3 and len(via.sleeps) == 2
    (entry,) = bot.sim.outbox
    assert entry.data == data and entry.problems == []
    assert resp.uploaded is not None and entry.items[0]["file_item"]["media"]["encrypt_query_param"] == (
        resp.uploaded.encrypt_query_param
    )


def test_three_answers_without_the_parameter_give_up(via: SimClient, bot: Bot, proxy: Tamper) -> None:
    proxy.change("upload", no_param, count=3)
    with pytest.raises(E.CdnError, match=r"after 3 attempts \(HTTP 200 without the x-encrypted-param header"):
        via.send_file(b"abc", bot.user, name="a.txt")
    assert proxy.seen.count("upload") == 3 and bot.sim.outbox == []


# --- getconfig: success is ret 0; an empty ticket turns typing off -------------------------------------------


def test_getconfig_without_ret_is_a_failure(via: SimClient, bot: Bot, proxy: Tamper) -> None:
    proxy.change("getconfig", json_change(ret=...))
    with pytest.raises(E.ProtocolError, match="without ret = 0"):
        via.typing(bot.user)
    entry = via.typing_tickets.entries[bot.user]
    assert entry.failures == 1 and entry.ticket is None and via.typing_tickets.wait(bot.user) > 0
    assert "sendtyping" not in proxy.seen and bot.sim.typing_events == []


def test_a_cached_ticket_outlives_a_refresh_without_ret(via: SimClient, bot: Bot, proxy: Tamper) -> None:
    via.typing_tickets.rng = lambda: 0.0  # every use is due for a refresh
    via.typing(bot.user)
    ticket = via.typing_tickets.ticket(bot.user)
    proxy.change("getconfig", json_change(ret=..., typing_ticket="not-the-real-one"))
    via.typing(bot.user, cancel=True)
    assert via.typing_tickets.ticket(bot.user) == ticket  # the answer without ret was not taken
    assert [e.status for e in bot.sim.typing_events] == [1, 2]


def test_an_empty_ticket_turns_typing_off(
    via: SimClient, bot: Bot, proxy: Tamper, caplog: pytest.LogCaptureFixture
) -> None:
    proxy.change("getconfig", json_change(typing_ticket=""))
    with caplog.at_level(logging.INFO, logger="openclaw_nb"):
        assert via.typing(bot.user) is None
        with via.typing_indicator(bot.user):
            pass
        assert via.typing(bot.user, cancel=True) is None
    assert proxy.seen.count("getconfig") == 1  # cached: an empty ticket is a success, refreshed within 24 h
    assert "sendtyping" not in proxy.seen and bot.sim.typing_events == []
    assert any("no typing_ticket" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    assert via.typing_tickets.entries[bot.user].failures == 0


# --- inbound media: len/md5 are not checked by the official client -------------------------------------------


@pytest.fixture
def warned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(updates_module, "_mismatch_warned", False)


@pytest.mark.usefixtures("warned_once")
def test_a_file_whose_len_and_md5_disagree_still_downloads(
    via: SimClient, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(5000)
    bot.sim.send_file(bot.user, data, "report.pdf")
    (msg,) = via.get_updates().messages
    item = msg.item_list[0].to_wire()
    item["file_item"]["len"] = "4999"
    item["file_item"]["md5"] = crypto.md5_hex(b"something else")
    with caplog.at_level(logging.WARNING, logger="openclaw_nb"):
        media = via.download_media(item)
        again = via.download_media(item)
    assert bytes(media) == bytes(again) == data
    assert media.mismatch == "decrypted to 5,000 bytes, the message says 4,999; MD5 differs from the message's"
    assert "mismatch" in repr(media)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "download_media" in r.getMessage()]
    assert len(warnings) == 1  # once, not per download
    assert via.download_media(msg.item_list[0]).mismatch is None  # the untouched item agrees


@pytest.mark.usefixtures("warned_once")
def test_a_video_whose_md5_disagrees_still_downloads(via: SimClient, bot: Bot) -> None:
    data = os.urandom(20_000)
    bot.sim.send_video(bot.user, data)
    (msg,) = via.get_updates().messages
    item = msg.item_list[0].to_wire()
    item["video_item"]["video_md5"] = "0" * 32
    media = via.download_media(item)
    assert bytes(media) == data and media.mismatch == "MD5 differs from the message's"


def test_a_wrong_key_still_fails(via: SimClient, bot: Bot) -> None:
    bot.sim.send_file(bot.user, os.urandom(4096), "x.bin")
    (msg,) = via.get_updates().messages
    item = msg.item_list[0].to_wire()
    item["file_item"]["media"]["aes_key"] = crypto.key_to_message_aes_key(crypto.new_key())
    with pytest.raises(E.ProtocolError, match="could not decrypt"):
        via.download_media(item)
