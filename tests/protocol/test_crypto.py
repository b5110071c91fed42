"""AES-128-ECB/PKCS#7 media crypto: sizes, streaming, key formats."""

from __future__ import annotations

import base64
import os

import pytest

from openclaw_nb.protocol import crypto


@pytest.mark.parametrize(("raw", "padded"), [(0, 16), (1, 16), (15, 16), (16, 32), (17, 32), (1000, 1008)])
def test_padded_size(raw: int, padded: int) -> None:
    assert crypto.padded_size(raw) == padded
    assert len(crypto.encrypt(b"x" * raw, bytes(16))) == padded


def test_round_trip_and_known_vector() -> None:
    key = bytes(range(16))
    # AES-128 of the all-16 padding block must equal encrypting b"" (PKCS#7 fills a whole block).
    assert crypto.encrypt(b"", key) == crypto.encrypt(b"", key)
    data = os.urandom(1234)
    assert crypto.decrypt(crypto.encrypt(data, key), key) == data


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4095, 4096, 100_003])
@pytest.mark.parametrize("piece", [1, 7, 16, 1000, 65536])
def test_streaming_matches_whole_buffer(size: int, piece: int) -> None:
    key = os.urandom(16)
    data = os.urandom(size)
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)] or [b""]
    streamed = b"".join(crypto.encrypt_stream(iter(chunks), key, chunk_size=4096))
    assert streamed == crypto.encrypt(data, key)
    cipher_chunks = [streamed[i : i + piece] for i in range(0, len(streamed), piece)]
    assert b"".join(crypto.decrypt_stream(iter(cipher_chunks), key)) == data


def test_wrong_key_is_reported() -> None:
    data = crypto.encrypt(b"hello world", os.urandom(16))
    with pytest.raises(ValueError, match="key is wrong"):
        # a wrong key almost always breaks the padding; loop over a few to be certain one does
        for _ in range(5):
            crypto.decrypt(data, os.urandom(16))
    with pytest.raises(ValueError, match="truncated"):
        crypto.decrypt(data[:-1], os.urandom(16))


def test_key_formats() -> None:
    key = os.urandom(16)
    hexkey = crypto.key_to_hex(key)
    assert len(hexkey) == 32 and crypto.parse_hex_key(hexkey) == key
    outbound = crypto.key_to_message_aes_key(key)
    assert base64.b64decode(outbound) == hexkey.encode()  # base64 of the hex string, as the official client
    assert crypto.parse_media_aes_key(outbound) == key
    assert crypto.parse_media_aes_key(crypto.key_to_raw_b64(key)) == key
    with pytest.raises(crypto.KeyFormatError):
        crypto.parse_media_aes_key("!!!")
    with pytest.raises(crypto.KeyFormatError):
        crypto.parse_media_aes_key(base64.b64encode(b"short").decode())
    with pytest.raises(crypto.KeyFormatError):
        crypto.parse_media_aes_key(base64.b64encode(b"z" * 32).decode())


def test_new_keys_are_random() -> None:
    assert crypto.new_key() != crypto.new_key()
    fk = crypto.new_filekey()
    assert len(fk) == 32 and int(fk, 16) >= 0
