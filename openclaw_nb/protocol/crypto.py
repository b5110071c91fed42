"""Media crypto of the CDN: AES-128-ECB with PKCS#7 padding, key formats, sizes, and streaming helpers.

Streaming encryption reuses one output buffer with ``update_into`` (several times faster than ``update``
for large media, and it keeps memory flat). Pure functions; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Iterator

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
KEY_BYTES = 16
#: Streaming chunk size: large enough to amortise per-call overhead, small enough to keep memory flat.
CHUNK = 1 << 20


class KeyFormatError(ValueError):
    """An AES key in none of the formats the protocol uses."""


def padded_size(rawsize: int) -> int:
    """Ciphertext size of ``rawsize`` plaintext bytes: PKCS#7 always adds 1-16 bytes (0 → 16, 16 → 32)."""
    if rawsize < 0:
        raise ValueError("rawsize must be >= 0")
    return (rawsize // BLOCK + 1) * BLOCK


def new_key() -> bytes:
    """16 random bytes for a new upload."""
    return os.urandom(KEY_BYTES)


def new_filekey() -> str:
    """``filekey`` of ``getuploadurl``: 16 random bytes as hex."""
    return os.urandom(16).hex()


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise KeyFormatError(f"an AES-128 key is 16 bytes, got {len(key)}")
    return key


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    return Cipher(algorithms.AES(_check_key(key)), modes.ECB())


def encrypt(data: bytes, key: bytes) -> bytes:
    """Encrypt a whole buffer (AES-128-ECB, PKCS#7)."""
    padder = padding.PKCS7(128).padder()
    enc = _cipher(key).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


def decrypt(data: bytes, key: bytes) -> bytes:
    """Decrypt a whole buffer; a wrong key or damaged data raises ``ValueError`` with a clear message."""
    if len(data) % BLOCK:
        raise ValueError(f"ciphertext length {len(data)} is not a multiple of 16: the download is truncated")
    dec = _cipher(key).decryptor()
    padded = dec.update(data) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ValueError("bad PKCS#7 padding after decryption: the AES key is wrong for this media") from None


def encrypt_stream(chunks: Iterable[bytes], key: bytes, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """Encrypt an iterable of plaintext chunks, yielding ciphertext pieces of at most ``chunk_size`` bytes.

    Each yielded ``bytes`` is a fresh copy (safe to keep), produced from one reused output buffer.
    """
    enc = _cipher(key).encryptor()
    buf = bytearray(chunk_size + BLOCK)
    view = memoryview(buf)
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
            pending = b""
        whole = len(chunk) - len(chunk) % BLOCK
        if whole < len(chunk):
            pending = bytes(chunk[whole:])
        start = 0
        src = memoryview(chunk)
        while start < whole:
            end = min(start + chunk_size, whole)
            n = enc.update_into(src[start:end], buf)
            yield bytes(view[:n])
            start = end
    pad = BLOCK - len(pending)
    last = pending + bytes([pad]) * pad
    n = enc.update_into(last, buf)
    yield bytes(view[:n]) + enc.finalize()


def decrypt_stream(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    """Decrypt ciphertext chunks, holding back the last block until the padding can be checked."""
    dec = _cipher(key).decryptor()
    tail = b""
    for chunk in chunks:
        data = tail + chunk
        keep = len(data) - len(data) % BLOCK
        if keep == len(data) and keep:
            keep -= BLOCK  # hold the final full block back: it may carry the padding
        if keep > 0:
            yield dec.update(data[:keep])
        tail = data[keep:]
    if not tail or len(tail) % BLOCK:
        raise ValueError("ciphertext length is not a multiple of 16: the download is truncated")
    last = dec.update(tail) + dec.finalize()
    pad = last[-1]
    if not 1 <= pad <= BLOCK or last[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad PKCS#7 padding after decryption: the AES key is wrong for this media")
    yield last[:-pad]


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- key formats ---------------------------------------------------------------------------------


def key_to_hex(key: bytes) -> str:
    """``aeskey`` of ``getuploadurl``: the key as 32 hex characters."""
    return _check_key(key).hex()


def key_to_message_aes_key(key: bytes) -> str:
    """Outbound ``media.aes_key``: base64 of the 32-character **hex string** (base64 of raw bytes shows grey)."""
    return base64.b64encode(key_to_hex(key).encode("ascii")).decode("ascii")


def key_to_raw_b64(key: bytes) -> str:
    """base64 of the raw 16 bytes, the other inbound ``media.aes_key`` form (seen on images)."""
    return base64.b64encode(_check_key(key)).decode("ascii")


def parse_hex_key(value: str) -> bytes:
    """A key given as 32 hex characters (``image_item.aeskey``)."""
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise KeyFormatError("expected 32 hex characters for an AES key") from None
    return _check_key(key)


def parse_media_aes_key(value: str) -> bytes:
    """Inbound ``media.aes_key``: base64 of the raw 16 bytes or of the 32-char hex string; both accepted."""
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("media.aes_key is not valid base64") from None
    if len(decoded) == 32:
        try:
            return parse_hex_key(decoded.decode("ascii"))
        except (UnicodeDecodeError, KeyFormatError):
            raise KeyFormatError("media.aes_key decodes to 32 bytes that are not a hex key") from None
    if len(decoded) == KEY_BYTES:
        return decoded
    raise KeyFormatError(f"media.aes_key decodes to {len(decoded)} bytes; expected 16 raw or 32 hex")
