"""Inbound media against the simulator: every kind and key format decrypts to the bytes the simulated user
sent; full_url is preferred; a wrong key, a damaged key and an oversized file fail with clear errors."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb import errors as E
from openclaw_nb.frames import frame_from_messages, items_frame
from openclaw_nb.protocol import crypto

from .conftest import FAST, Bot
from .test_stream_sim import collect

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)


def receive(bot: Bot, client: Any, n: int = 1) -> list[Any]:
    return collect(client.updates(policy=FAST), n)


@pytest.mark.parametrize("key_format", ["both", "hex", "media", "none"])
def test_images_in_every_key_format(bot: Bot, key_format: str) -> None:
    bot.sim.send_image("alice", PNG, bot.bot_id, key_format=key_format)
    with bot.client() as client:
        (msg,) = receive(bot, client)
        media = client.download_media(msg.item_list[0])
    assert media == PNG and media.kind == "image" and media.mime == "image/png"
    expected = {"both": "image_item.aeskey", "hex": "image_item.aeskey", "media": "media.aes_key", "none": "none"}
    assert media.info.key_source == expected[key_format]
    bundle = media._repr_mimebundle_()
    assert bundle["image/png"] == PNG and "image" in bundle["text/plain"]  # inline in a notebook


def test_file_voice_video_sync_and_async(bot: Bot) -> None:
    blobs = {"file": os.urandom(50_001), "voice": os.urandom(777), "video": os.urandom(16 * 1024)}
    bot.sim.send_file("bob", blobs["file"], "report.pdf", bot.bot_id)
    bot.sim.send_voice("bob", blobs["voice"], "hello there", bot.bot_id)
    bot.sim.send_video("bob", blobs["video"], bot.bot_id)
    with bot.client() as client:
        msgs = receive(bot, client, 3)
        got = {m.item_list[0].type_name: client.download_media(m) for m in msgs}
    assert {k: bytes(v) for k, v in got.items()} == blobs
    assert got["file"].name == "report.pdf" and got["voice"].name.endswith(".silk")
    assert got["video"].name.endswith(".mp4") and "image/png" not in got["file"]._repr_mimebundle_()
    assert msgs[1].text == "hello there"  # the voice transcription is the message's text

    async def again() -> list[bytes]:
        async with bot.aclient() as client:
            return [bytes(await client.download_media(m)) for m in msgs]

    assert asyncio.run(again()) == [blobs["file"], blobs["voice"], blobs["video"]]


def test_full_url_is_preferred(bot: Bot) -> None:
    bot.sim.configure(inbound_full_url=True)
    bot.sim.send_file("carol", b"via full url", "a.txt", bot.bot_id)
    with bot.client() as client:
        (msg,) = receive(bot, client)
        item = msg.item_list[0].to_wire()
        item["file_item"]["media"]["encrypt_query_param"] = "not-a-real-param"  # only full_url can work
        assert client.download_media(item) == b"via full url"


def test_wrong_key_and_damaged_key(bot: Bot) -> None:
    bot.sim.send_file("dave", os.urandom(4096), "x.bin", bot.bot_id)
    with bot.client() as client:
        (msg,) = receive(bot, client)
        item = msg.item_list[0].to_wire()
        item["file_item"]["media"]["aes_key"] = crypto.key_to_message_aes_key(crypto.new_key())
        with pytest.raises(E.ProtocolError, match=r"could not decrypt this file with the key from media\.aes_key"):
            client.download_media(item)
        item["file_item"]["media"]["aes_key"] = base64.b64encode(b"short").decode()
        with pytest.raises(E.ProtocolError, match="cannot read the AES key"):
            client.download_media(item)


def test_size_cap_applies_while_downloading(bot: Bot) -> None:
    bot.sim.send_file("erin", os.urandom(200_000), "big.bin", bot.bot_id)
    with bot.client() as client:
        (msg,) = receive(bot, client)
        with pytest.raises(E.CdnError, match="larger than the 65,536 byte cap"):
            client.download_media(msg, max_bytes=65_536)


def test_save_under_the_senders_sanitised_name(bot: Bot, tmp_path: Path) -> None:
    bot.sim.send_file("frank", b"#!/bin/sh\n", "../../evil:script?.sh", bot.bot_id)
    bot.sim.send_image("frank", PNG, bot.bot_id)
    with bot.client() as client:
        file_msg, image_msg = receive(bot, client, 2)
        first = client.save_media(file_msg, tmp_path / "downloads")
        second = client.save_media(file_msg, tmp_path / "downloads")
        image = client.save_media(image_msg, tmp_path / "downloads")
    assert first == tmp_path / "downloads" / "evil_script_.sh" and first.read_bytes() == b"#!/bin/sh\n"
    assert second.name == "evil_script_ (1).sh"  # never overwritten
    assert image.suffix == ".png" and image.read_bytes() == PNG
    saved = [p for p in tmp_path.rglob("*") if p.is_file() and "accounts" not in p.parts]
    assert sorted(p.name for p in saved) == sorted([first.name, second.name, image.name])  # nothing outside


def test_items_frame_rows_download(bot: Bot) -> None:
    data = os.urandom(999)
    bot.sim.send_file("gina", data, "notes.txt", bot.bot_id)
    bot.say("gina", "and some text")
    with bot.client() as client:
        msgs = receive(bot, client, 2)
        items = items_frame(frame_from_messages(msgs))
        assert items["type"].astype(str).tolist() == ["file", "text"]
        row = items.iloc[0]
        assert row["file_name"] == "notes.txt" and row["size"] == 999 and row["key_source"] == "media.aes_key"
        assert client.download_media(row) == data
        with pytest.raises(E.UsageError, match="no media"):
            client.download_media(items.iloc[1])
