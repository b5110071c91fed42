"""Media, typing and long text against the simulator over real HTTP on 127.0.0.1.

The simulator's CDN decrypts every upload and checks its ciphertext size, plaintext size and MD5 against
what getuploadurl registered (HTTP 400 with ``x-error-message`` otherwise); its outbox keeps each media
message's decrypted plaintext, so a round trip is checked byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.crypto import encrypt, new_filekey, new_key
from openclaw_nb.protocol.media import MediaSendResp, SplitSendResp, split_text
from openclaw_nb.protocol.text import TEXT_CHUNK_CHARS

from .conftest import Bot, SimClient

CDN = "cdn_upload"


def write(tmp_path: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def aes_key_of(item: dict, field: str) -> str:
    return item[field]["media"]["aes_key"]


def bodies(bot: Bot, endpoint: str) -> list[dict[str, Any]]:
    """The JSON bodies of ``endpoint`` requests as the simulator received them (``record_requests`` is on)."""
    return [r["body"] for r in bot.sim.requests if r["endpoint"] == endpoint]


def media_types(bot: Bot) -> list[int]:
    """``media_type`` of every getuploadurl the simulator received."""
    return [body["media_type"] for body in bodies(bot, "get_upload_url")]


# --- round trips ------------------------------------------------------------------------------------


def test_image_round_trip_with_caption(client: SimClient, bot: Bot, tmp_path: Path) -> None:
    path, data = write(tmp_path, "holiday photo é.png", 5000)
    resp = client.send_image(path, bot.user, caption="from the trip")
    first, second = bot.sim.outbox
    assert first.text == "from the trip" and first.item_types == [C.ItemType.TEXT]
    assert second.item_types == [C.ItemType.IMAGE] and second.problems == []
    assert second.data == data  # the simulator decrypted it with the key from the message
    item = second.items[0]["image_item"]
    assert item["mid_size"] == 5008 and item["media"]["encrypt_type"] == 1
    assert set(item) == {"media", "mid_size"}
    assert set(item["media"]) == {"encrypt_query_param", "aes_key", "encrypt_type"}
    key_hex = base64.b64decode(item["media"]["aes_key"]).decode("ascii")
    assert len(key_hex) == 32 and int(key_hex, 16) >= 0  # base64 of the hex string, not of the raw key
    assert isinstance(resp, MediaSendResp) and resp.message_id == second.message_id
    assert resp.uploaded is not None and resp.uploaded.aeskey == key_hex
    assert item["media"]["encrypt_query_param"] == resp.uploaded.encrypt_query_param
    assert [c.message_id for c in resp.caption] == [first.message_id]
    assert first.context_token == second.context_token == client.peer(bot.user).context_token
    assert client.peer(bot.user).sends_on_token == 2
    assert media_types(bot) == [C.UploadMediaType.IMAGE] == [1]


def test_file_round_trip_keeps_the_name(client: SimClient, bot: Bot, tmp_path: Path) -> None:
    path, data = write(tmp_path, "Quarterly report – 第一季度 v2.pdf", 70_001)
    resp = client.send_file(path, bot.user)
    (entry,) = bot.sim.outbox
    item = entry.items[0]["file_item"]
    assert entry.item_types == [C.ItemType.FILE] and entry.problems == []
    assert item["file_name"] == "Quarterly report – 第一季度 v2.pdf"
    assert item["len"] == "70001" and set(item) == {"media", "file_name", "len"}
    assert entry.data == data and resp.uploaded is not None
    assert resp.uploaded.rawfilemd5 == hashlib.md5(data).hexdigest()
    assert media_types(bot) == [C.UploadMediaType.FILE] == [3]


def test_video_round_trip(client: SimClient, bot: Bot, tmp_path: Path) -> None:
    path, data = write(tmp_path, "clip.mp4", 40_000)
    client.send_video(path, bot.user)
    (entry,) = bot.sim.outbox
    item = entry.items[0]["video_item"]
    assert entry.item_types == [C.ItemType.VIDEO] and entry.problems == []
    assert item["video_size"] == 40_016 and set(item) == {"media", "video_size"}
    assert entry.data == data
    assert media_types(bot) == [C.UploadMediaType.VIDEO] == [2]


@pytest.mark.parametrize(
    ("name", "item_type", "media_type"),
    [
        ("a.mp4", C.ItemType.VIDEO, 2),
        ("b.jpeg", C.ItemType.IMAGE, 1),
        ("Clip.MOV", C.ItemType.VIDEO, 2),
        ("d.webp", C.ItemType.IMAGE, 1),
        ("c.csv", C.ItemType.FILE, 3),
        ("README", C.ItemType.FILE, 3),
        # Not in the official client's table, whatever this machine's mimetypes says: files.
        ("logo.svg", C.ItemType.FILE, 3),
        ("photo.heic", C.ItemType.FILE, 3),
        ("scan.tiff", C.ItemType.FILE, 3),
        ("favicon.ico", C.ItemType.FILE, 3),
        ("pic.avif", C.ItemType.FILE, 3),
        ("old.flv", C.ItemType.FILE, 3),
        ("old.wmv", C.ItemType.FILE, 3),
        (".mp4", C.ItemType.FILE, 3),  # a hidden file's name, not an extension
    ],
)
def test_send_media_routes_by_the_official_extension_table(
    client: SimClient, bot: Bot, tmp_path: Path, name: str, item_type: int, media_type: int
) -> None:
    path, data = write(tmp_path, name, 100)
    client.send_media(path, bot.user)
    (entry,) = bot.sim.outbox
    assert entry.item_types == [item_type] and entry.data == data and entry.problems == []
    assert media_types(bot) == [media_type]


def test_kind_overrides_the_extension_table(client: SimClient, bot: Bot, tmp_path: Path) -> None:
    path, data = write(tmp_path, "logo.svg", 100)
    client.send_media(path, bot.user, kind="image")
    client.send_media(b"not a video", bot.user, kind="file", name="clip.mp4")
    assert [e.item_types for e in bot.sim.outbox] == [[C.ItemType.IMAGE], [C.ItemType.FILE]]
    assert [e.data for e in bot.sim.outbox] == [data, b"not a video"]
    assert media_types(bot) == [1, 3]


# --- no context token: warn and send, as send_text does (docs/protocol.md: the client may send without one)


def test_media_without_a_context_token_warns_and_sends(
    client: SimClient, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.sim.configure(require_context_token=False, reply_window_seconds=None)  # takes replies without a token
    carol = bot.sim.add_user("carol")  # known to the server, but has never written to this bot
    data = b"\x89PNG" + os.urandom(100)
    with caplog.at_level(logging.WARNING, logger="openclaw_nb"):
        resp = client.send_media(data, carol, caption="hi", name="a.png")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"sending to {carol} without a context_token" in w for w in warnings)
    caption, image = bot.sim.outbox
    assert caption.text == "hi" and image.data == data and image.problems == []
    assert caption.context_token is image.context_token is None
    assert [b["msg"].get("context_token") for b in bodies(bot, "send_message")] == [None, None]
    assert isinstance(resp, MediaSendResp) and resp.message_id == image.message_id


def test_media_without_a_context_token_is_refused_by_a_strict_server(
    client: SimClient, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    carol = bot.sim.add_user("carol")  # the default simulator, like the real server, wants a token
    with (
        caplog.at_level(logging.WARNING, logger="openclaw_nb"),
        pytest.raises(E.SendRejectedError, match="no context_token was sent"),
    ):
        client.send_file(b"data", carol, name="d.bin")
    assert any("without a context_token" in r.getMessage() for r in caplog.records)
    # The same as send_text: the client tried (upload and send); the server said no.
    assert client.calls("getuploadurl") == 1 and client.calls("upload") == 1 and client.calls("sendmessage") == 1
    assert bot.sim.outbox == []


@pytest.mark.parametrize(("size", "ciphertext"), [(0, 16), (16, 32)])
def test_edge_sizes(client: SimClient, bot: Bot, tmp_path: Path, size: int, ciphertext: int) -> None:
    path, data = write(tmp_path, f"edge {size}.bin", size)
    uploaded = client.upload(path, bot.user)
    assert (uploaded.rawsize, uploaded.filesize) == (size, ciphertext)
    client.send_file(uploaded, bot.user)
    (entry,) = bot.sim.outbox
    assert entry.data == data and entry.items[0]["file_item"]["len"] == str(size)


def test_bytes_with_a_name(client: SimClient, bot: Bot) -> None:
    client.send_file(b"a,b\n1,2\n", bot.user, name="data.csv", caption="the numbers")
    caption, entry = bot.sim.outbox
    assert caption.text == "the numbers"
    assert entry.items[0]["file_item"]["file_name"] == "data.csv" and entry.data == b"a,b\n1,2\n"


def test_upload_once_send_again(client: SimClient, bot: Bot) -> None:
    uploaded = client.upload(b"\x89PNG fake", bot.user, kind="image")
    client.send_image(uploaded, bot.user)
    client.send_media(uploaded, bot.user)
    assert client.calls("upload") == 1
    assert [e.item_types for e in bot.sim.outbox] == [[C.ItemType.IMAGE]] * 2


def test_built_url_when_the_server_gives_no_full_url(client: SimClient, bot: Bot) -> None:
    bot.sim.configure(upload_full_url=False)
    client.send_file(b"payload", bot.user, name="p.bin")
    assert bot.sim.outbox[0].data == b"payload"


# --- CDN failures -----------------------------------------------------------------------------------


def test_two_5xx_then_success(client: SimClient, bot: Bot) -> None:
    bot.sim.add_fault(http_500=1.0, count=2, endpoints=[CDN])
    data = os.urandom(50_000)
    client.send_file(data, bot.user, name="retry.bin")
    assert client.calls("upload") == 3 and len(client.sleeps) == 2
    assert bot.sim.outbox[0].data == data


def test_three_5xx_give_up(client: SimClient, bot: Bot) -> None:
    bot.sim.add_fault(http_500=1.0, count=3, endpoints=[CDN])
    with pytest.raises(E.CdnError, match="failed after 3 attempts") as info:
        client.send_file(b"x" * 100, bot.user)
    assert info.value.attempts == 3 and client.calls("upload") == 3
    assert bot.sim.outbox == []


def test_4xx_is_not_retried_and_carries_the_cdn_message(
    client: SimClient, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Register a wrong MD5 (as a buggy client would): the CDN decrypts, compares and answers 400.
    from openclaw_nb import media as media_module

    monkeypatch.setattr(media_module, "digest", lambda chunks: (sum(len(c) for c in chunks), "0" * 32))
    with pytest.raises(E.CdnError) as info:
        client.send_image(b"not really a png", bot.user)
    assert "HTTP 400" in str(info.value) and "md5 mismatch" in str(info.value)
    assert info.value.status_code == 400 and info.value.attempts == 1
    assert client.calls("upload") == 1 and client.sleeps == []
    assert bot.sim.outbox == []


def test_size_mismatch_gives_the_cdn_message(client: SimClient, bot: Bot) -> None:
    # Low-level calls: register 100 bytes, then upload the ciphertext of 200.
    key, filekey = new_key(), new_filekey()
    resp = client.get_upload_url(
        filekey=filekey,
        media_type=int(C.UploadMediaType.FILE),
        to_user_id=bot.user,
        rawsize=100,
        rawfilemd5=hashlib.md5(b"a" * 100).hexdigest(),
        filesize=112,
        no_need_thumb=True,
        aeskey=key.hex(),
    )
    with pytest.raises(E.CdnError, match="ciphertext is 208 bytes but filesize 112 was registered") as info:
        client.cdn_upload(encrypt(b"a" * 200, key), full_url=resp.upload_full_url)
    assert info.value.status_code == 400 and client.sleeps == []


# --- long text ----------------------------------------------------------------------------------------


def test_long_text_goes_out_in_parts_within_the_servers_limit(client: SimClient, bot: Bot) -> None:
    paragraph = "这是一段很长的中文文本，用来测试拆分。" * 60 + "\n\n"  # 1,142 characters, ~3.4 KB per paragraph
    text = paragraph * 12
    resp = client.send_text(bot.user, text)  # by default: at most 4,000 characters per message
    assert isinstance(resp, SplitSendResp)
    sent = [e.text for e in bot.sim.outbox]
    assert sent == split_text(text, max_chars=TEXT_CHUNK_CHARS) and len(sent) == 4
    assert all(len(s) <= TEXT_CHUNK_CHARS for s in sent)
    assert "".join(sent).replace("\n", "") == text.replace("\n", "")
    # Without the character limit, the server's byte bound still splits: 41 KB in three parts.
    client.send_text(bot.user, text, max_chars=None)
    sent = [e.text for e in bot.sim.outbox][4:]
    assert sent == split_text(text) and len(sent) == 3
    assert all(len(s.encode("utf-8")) <= C.MAX_TEXT_BYTES for s in sent)
    assert client.peer(bot.user).sends_on_token == 7


def test_over_budget_long_text_sends_nothing(client: SimClient, bot: Bot) -> None:
    for i in range(8):
        client.send_text(bot.user, f"reply {i}")
    with pytest.raises(E.UsageError, match="only 2 of 10 sends are left"):
        client.send_text(bot.user, "x. " * 20_000)
    assert len(bot.sim.outbox) == 8
    resp = client.send_text(bot.user, "word " * 8000, send_what_fits=True)  # 40,000 characters: 10 parts, 2 fit
    assert isinstance(resp, SplitSendResp) and len(resp.parts) == 2 and len(resp.unsent) == 8
    assert len(bot.sim.outbox) == 10


# --- typing -------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_typing_caches_the_ticket_and_refreshes_it(client: SimClient, bot: Bot) -> None:
    clock = Clock()
    client.typing_tickets.clock = clock
    client.typing_tickets.rng = lambda: 0.25  # refresh 6 h after each fetch
    client.typing(bot.user)
    client.typing(bot.user, cancel=True)
    client.typing(bot.user)
    assert client.calls("getconfig") == 1
    assert [e.status for e in bot.sim.typing_events] == [1, 2, 1]
    clock.now += 6 * 3600 - 1
    client.typing(bot.user)
    assert client.calls("getconfig") == 1
    clock.now += 1
    client.typing(bot.user, cancel=True)
    assert client.calls("getconfig") == 2 and [e.status for e in bot.sim.typing_events] == [1, 2, 1, 1, 2]
    # getconfig carries the user's context token (docs/protocol.md, "Typing"), on the first fetch and the refresh.
    token = client.peer(bot.user).context_token
    assert token
    assert [(b["ilink_user_id"], b.get("context_token")) for b in bodies(bot, "get_config")] == [(bot.user, token)] * 2
    assert {b["typing_ticket"] for b in bodies(bot, "send_typing")} == {client.typing_tickets.ticket(bot.user)}


def test_typing_before_the_user_wrote_backs_off(bot: Bot) -> None:
    clock = Clock()
    with bot.client() as client:
        client.typing_tickets.clock = clock
        with pytest.raises(E.NotYetContactedError):
            client.typing(bot.user)
        with pytest.raises(E.RemoteError, match="next try is in 2 s"):
            client.typing(bot.user)  # within the back-off: no request
        assert client.calls("getconfig") == 1
        clock.now += 2
        with pytest.raises(E.NotYetContactedError):
            client.typing(bot.user)
        assert client.calls("getconfig") == 2 and client.typing_tickets.wait(bot.user) == 4
        # The user writes: a new context token ends the back-off at once.
        bot.sim.say(bot.user, "hello")
        client.get_updates()
        client.typing(bot.user)
        assert client.calls("getconfig") == 3 and [e.status for e in bot.sim.typing_events] == [1]


def test_a_stale_cached_ticket_is_used_when_the_refresh_fails(client: SimClient, bot: Bot) -> None:
    clock = Clock()
    client.typing_tickets.clock = clock
    client.typing_tickets.rng = lambda: 0.0  # due again at once
    client.typing(bot.user)
    bot.sim.add_fault(http_500=1.0, count=3, endpoints=["get_config"])
    client.typing(bot.user, cancel=True)  # getconfig fails 3 times; the cached ticket still works
    assert [e.status for e in bot.sim.typing_events] == [1, 2]
    assert client.typing_tickets.entries[bot.user].failures == 1


def test_typing_indicator_cancels_when_the_block_raises(client: SimClient, bot: Bot) -> None:
    with pytest.raises(ZeroDivisionError), client.typing_indicator(bot.user):
        assert [e.status for e in bot.sim.typing_events] == [1]
        1 / 0  # noqa: B018
    assert [e.status for e in bot.sim.typing_events] == [1, 2]
    with client.typing_indicator(bot.user):
        pass
    assert [e.status for e in bot.sim.typing_events] == [1, 2, 1, 2]


def test_a_failed_cancel_does_not_hide_the_blocks_error(client: SimClient, bot: Bot) -> None:
    with pytest.raises(KeyError), client.typing_indicator(bot.user):
        bot.sim.add_fault(http_500=1.0, endpoints=["send_typing"])
        raise KeyError("the block's own error")
    bot.sim.clear_faults()
    with pytest.raises(E.TransportError), client.typing_indicator(bot.user):
        bot.sim.add_fault(http_500=1.0, endpoints=["send_typing"])  # the block succeeds: the cancel's error shows


# --- the async driver ---------------------------------------------------------------------------------


def test_async_round_trip_and_typing_indicator(bot: Bot, tmp_path: Path) -> None:
    path, data = write(tmp_path, "async file ü.bin", 30_000)
    bot.sim.say(bot.user, "hi async")

    async def main() -> None:
        async with bot.async_client() as client:
            await client.get_updates()
            with pytest.raises(RuntimeError):
                async with client.typing_indicator(bot.user):
                    raise RuntimeError("boom")
            resp = await client.send_media(path, bot.user, caption="async caption")
            assert isinstance(resp, MediaSendResp)
            with pytest.raises(E.UsageError, match="is a directory"):
                await client.upload(tmp_path, bot.user)
            split = await client.send_text(bot.user, "One.\n\nTwo.", max_bytes=5)
            assert isinstance(split, SplitSendResp)

    asyncio.run(main())
    assert [e.status for e in bot.sim.typing_events] == [1, 2]
    texts = [e.text for e in bot.sim.outbox]
    assert texts == ["async caption", "", "One.", "Two."]
    assert bot.sim.outbox[1].data == data
    assert bot.sim.outbox[1].items[0]["file_item"]["file_name"] == "async file ü.bin"


def test_recorded_upload_streams_and_keeps_the_key_out_of_the_log(bot: Bot, tmp_path: Path) -> None:
    bot.sim.say(bot.user, "hi")
    with Client(bot.token, base_url=bot.sim.base_url, cdn_base_url=bot.sim.cdn_base_url) as client:  # recorder on
        client.get_updates()
        data = os.urandom(100_000)
        resp = client.send_file(data, bot.user, name="logged.bin")
        assert bot.sim.outbox[0].data == data and resp.uploaded is not None
        (cdn,) = [ex for ex in client.log if ex.call == "cdn_upload"]
        assert cdn.status == 200 and cdn.request_size == 100_016
        assert {k.lower(): v for k, v in cdn.request_headers.items()}["content-length"] == "100016"
        client.log.to_jsonl(tmp_path / "log.jsonl")
        everything = (tmp_path / "log.jsonl").read_text(encoding="utf-8") + repr(list(client.log))
        assert resp.uploaded.rawfilemd5 in everything  # the getuploadurl body is in the log...
        assert resp.uploaded.aeskey not in everything  # ...with its key redacted
        assert base64.b64encode(resp.uploaded.aeskey.encode()).decode() not in everything
