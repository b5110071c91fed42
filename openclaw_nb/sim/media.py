"""Media and the CDN: what a user's phone puts on the CDN for inbound images, files, voice and video (with
thumbnails), ``getuploadurl``, and the CDN's upload (with its checks) and download.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
import struct
import zlib
from typing import Any
from urllib.parse import quote

from ..protocol import constants as C
from ..protocol import crypto
from ..protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH
from .config import UPLOAD_SLACK_BYTES, SimError
from .delivery import DeliveryRoom
from .records import CdnObject, UploadSlot


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour (the generated thumbnail of inbound images and videos)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, None for anything else."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Pixel size of the generated thumbnail.
THUMB_WIDTH, THUMB_HEIGHT = 120, 90
_THUMBNAIL = _png(THUMB_WIDTH, THUMB_HEIGHT, (42, 157, 143))


def _b64_param(nbytes: int = 47) -> str:
    """An opaque CDN parameter in standard base64, always with a ``+`` or ``/`` so clients must URL-encode it."""
    while True:
        value = base64.b64encode(os.urandom(nbytes)).decode("ascii")
        if "+" in value or "/" in value:
            return value


class MediaRoom(DeliveryRoom):
    """Inbound media, uploads and the CDN."""

    # --- inbound messages (simulated users) --------------------------------------------------------

    def _store_media(
        self, data: bytes, *, encrypt: bool = True, key: bytes | None = None
    ) -> tuple[str, bytes | None, int]:
        """Put media on the CDN as a user's phone would (with ``key``, or a new one); returns (download param,
        key, stored size)."""
        if key is None and encrypt:
            key = crypto.new_key()
        blob = crypto.encrypt(data, key) if key is not None else bytes(data)
        param = _b64_param()
        self._cdn[param] = CdnObject(blob, key, len(data), crypto.md5_hex(data))
        return param, key, len(blob)

    def _media(self, param: str, aes_key: str | None) -> dict[str, Any]:
        media: dict[str, Any] = {"encrypt_query_param": param}
        if aes_key is not None:
            media["aes_key"] = aes_key
        media["encrypt_type"] = int(C.EncryptType.PACKED)
        if self.config.inbound_full_url:
            media["full_url"] = self.download_url(param)
        return media

    def download_url(self, param: str) -> str:
        return f"{self.cdn_base_url}{CDN_DOWNLOAD_PATH}?encrypted_query_param={quote(param, safe='')}"

    def _thumb_data(self, thumb: Any) -> tuple[bytes, tuple[int, int] | None] | None:
        """The thumbnail to send and its size in pixels (when known): ``thumb`` bytes, True for a generated
        PNG, False for none, None to follow ``inbound_thumbnails``."""
        if thumb is None:
            thumb = self.config.inbound_thumbnails
        if thumb is False:
            return None
        if thumb is True:
            return _THUMBNAIL, (THUMB_WIDTH, THUMB_HEIGHT)
        if isinstance(thumb, (bytes, bytearray, memoryview)) and len(thumb):
            data = bytes(thumb)
            return data, _png_size(data)
        raise SimError(f"thumb is the thumbnail's bytes, True (a generated one) or False, got {type(thumb).__name__}")

    def _thumb_fields(
        self, thumb: tuple[bytes, tuple[int, int] | None] | None, key: bytes | None, aes_key: str | None
    ) -> dict[str, Any]:
        """``thumb_media`` (on the CDN, encrypted with the item's key), ``thumb_size`` (stored bytes) and the
        thumbnail's pixel size, for an inbound image or video."""
        if thumb is None:
            return {}
        data, pixels = thumb
        param, _key, size = self._store_media(data, encrypt=key is not None, key=key)
        fields: dict[str, Any] = {"thumb_media": self._media(param, aes_key), "thumb_size": size}
        if pixels is not None:
            fields["thumb_width"], fields["thumb_height"] = pixels
        return fields

    def send_image(
        self,
        user: str | None,
        data: bytes,
        bot_id: str | None = None,
        *,
        key_format: str = "both",
        thumb: bytes | bool | None = None,
    ) -> dict[str, Any]:
        """A user sends an image. ``key_format``: ``"both"`` (``image_item.aeskey`` hex and ``media.aes_key``
        base64 of the raw key, as seen on images), ``"hex"`` (aeskey only), ``"media"`` (aes_key only) or
        ``"none"`` (stored unencrypted, no key: images may arrive that way). ``thumb``: the thumbnail's bytes,
        True for a generated 120x90 PNG, False for none; None follows the ``inbound_thumbnails`` knob."""
        if key_format not in ("both", "hex", "media", "none"):
            raise SimError("key_format is one of 'both', 'hex', 'media', 'none'")
        with self._lock:
            thumbnail = self._thumb_data(thumb)
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            param, key, size = self._store_media(bytes(data), encrypt=key_format != "none")
            raw_b64 = crypto.key_to_raw_b64(key) if key is not None and key_format in ("both", "media") else None
            image: dict[str, Any] = {"media": self._media(param, raw_b64), "mid_size": size}
            image.update(self._thumb_fields(thumbnail, key, raw_b64))
            if key is not None and key_format in ("both", "hex"):
                image["aeskey"] = crypto.key_to_hex(key)
            item = self._item(C.ItemType.IMAGE, "image_item", image, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    def send_file(self, user: str | None, data: bytes, file_name: str, bot_id: str | None = None) -> dict[str, Any]:
        """A user sends a file (``media.aes_key`` = base64 of the hex key, ``len`` = plaintext size as a string)."""
        with self._lock:
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            data = bytes(data)
            param, key, _size = self._store_media(data)
            assert key is not None
            payload = {
                "media": self._media(param, crypto.key_to_message_aes_key(key)),
                "file_name": file_name,
                "md5": crypto.md5_hex(data),
                "len": str(len(data)),
            }
            item = self._item(C.ItemType.FILE, "file_item", payload, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    def send_voice(
        self,
        user: str | None,
        data: bytes,
        text: str | None = None,
        bot_id: str | None = None,
        *,
        playtime_ms: int = 1000,
        encode_type: int = C.VoiceEncodeType.SILK,
        sample_rate: int = 16000,
    ) -> dict[str, Any]:
        """A user sends a voice note (SILK by default); ``text`` is the server's speech-to-text, if any."""
        with self._lock:
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            param, key, _size = self._store_media(bytes(data))
            assert key is not None
            payload: dict[str, Any] = {
                "media": self._media(param, crypto.key_to_message_aes_key(key)),
                "encode_type": int(encode_type),
                "bits_per_sample": 16,
                "sample_rate": sample_rate,
                "playtime": playtime_ms,
            }
            if text is not None:
                payload["text"] = text
            item = self._item(C.ItemType.VOICE, "voice_item", payload, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    def send_video(
        self,
        user: str | None,
        data: bytes,
        bot_id: str | None = None,
        *,
        play_length: int = 1,
        thumb: bytes | bool | None = None,
    ) -> dict[str, Any]:
        """A user sends a video (``video_size`` = ciphertext size, ``video_md5`` of the plaintext). ``thumb``:
        as for :meth:`send_image` (the thumbnail is encrypted with the video's key)."""
        with self._lock:
            thumbnail = self._thumb_data(thumb)
            bot = self._bot(bot_id)
            sender = self._user(user or bot.owner_id)
            data = bytes(data)
            param, key, size = self._store_media(data)
            assert key is not None
            aes_key = crypto.key_to_message_aes_key(key)
            payload = {
                "media": self._media(param, aes_key),
                "video_size": size,
                "play_length": play_length,
                "video_md5": crypto.md5_hex(data),
                **self._thumb_fields(thumbnail, key, aes_key),
            }
            item = self._item(C.ItemType.VIDEO, "video_item", payload, self.now_ms())
            return copy.deepcopy(self._deliver(bot, sender, [item]))

    # --- uploads and the CDN -----------------------------------------------------------------------

    def get_upload_url(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """``getuploadurl``: registers the upload (filekey, sizes, md5, key) and returns its opaque param."""
        with self._lock:
            bot_id = self.bot_for_token(token)
            if bot_id is None:
                return self._stale()

            def bad(message: str) -> dict[str, Any]:
                return self._err(C.RET_INVALID_ARGS, message)

            filekey, media_type = body.get("filekey"), body.get("media_type")
            rawsize, filesize, md5 = body.get("rawsize"), body.get("filesize"), body.get("rawfilemd5")
            if not isinstance(filekey, str) or not filekey:
                return bad("getuploadurl needs filekey (16 random bytes as hex)")
            if (
                isinstance(media_type, bool)
                or not isinstance(media_type, int)
                or media_type not in {int(t) for t in C.UploadMediaType}
            ):
                return bad("media_type is 1 image, 2 video, 3 file or 4 voice")
            if not isinstance(rawsize, int) or isinstance(rawsize, bool) or rawsize < 0:
                return bad("rawsize is the plaintext size in bytes")
            if not isinstance(filesize, int) or isinstance(filesize, bool):
                return bad("filesize is the ciphertext size in bytes")
            if self.config.check_uploads and filesize != crypto.padded_size(rawsize):
                return bad(f"filesize should be {crypto.padded_size(rawsize)} for rawsize {rawsize} (AES/PKCS#7)")
            if not isinstance(md5, str) or len(md5) != 32:
                return bad("rawfilemd5 is the hex MD5 of the plaintext")
            try:
                key = crypto.parse_hex_key(body.get("aeskey") or "")
            except (crypto.KeyFormatError, TypeError):
                return bad("aeskey is the 16-byte AES key as 32 hex characters")
            to_user = body.get("to_user_id")
            slot = UploadSlot(
                _b64_param(),
                bot_id,
                filekey,
                media_type,
                to_user if isinstance(to_user, str) else None,
                rawsize,
                md5.lower(),
                filesize,
                key,
            )
            self._uploads[slot.param] = slot
            answer: dict[str, Any] = {"ret": 0, "upload_param": slot.param}
            thumb_raw, thumb_size = body.get("thumb_rawsize"), body.get("thumb_filesize")
            if body.get("no_need_thumb") is False and isinstance(thumb_raw, int) and isinstance(thumb_size, int):
                thumb = dataclasses.replace(
                    slot,
                    param=_b64_param(),
                    rawsize=thumb_raw,
                    filesize=thumb_size,
                    rawfilemd5=str(body.get("thumb_rawfilemd5") or "").lower(),
                )
                self._uploads[thumb.param] = thumb
                answer["thumb_upload_param"] = thumb.param
            if self.config.upload_full_url:
                answer["upload_full_url"] = self.upload_url(slot.param, filekey)
            self._changed()
            return answer

    def upload_url(self, param: str, filekey: str) -> str:
        return (
            f"{self.cdn_base_url}{CDN_UPLOAD_PATH}?encrypted_query_param={quote(param, safe='')}"
            f"&filekey={quote(filekey, safe='')}"
        )

    def cdn_upload(self, param: str | None, filekey: str | None, data: bytes) -> tuple[int, str]:
        """The CDN's upload: ``(200, download_param)`` or ``(4xx, error message)`` for ``x-error-message``."""
        with self._lock:
            slot = self._uploads.get(param or "")
            if slot is None:
                return 400, "unknown encrypted_query_param: call getuploadurl first"
            if filekey is not None and filekey != slot.filekey:
                return 400, "filekey does not match the one registered with getuploadurl"
            if self.config.check_uploads:
                if len(data) != slot.filesize:
                    return 400, f"ciphertext is {len(data)} bytes but filesize {slot.filesize} was registered"
                try:
                    plain = crypto.decrypt(data, slot.aeskey)
                except ValueError:
                    return 400, "cannot decrypt the upload with the registered aeskey (AES-128-ECB, PKCS#7)"
                if len(plain) != slot.rawsize:
                    return 400, f"plaintext is {len(plain)} bytes but rawsize {slot.rawsize} was registered"
                if crypto.md5_hex(plain) != slot.rawfilemd5:
                    return 400, "md5 mismatch: rawfilemd5 is not the MD5 of the uploaded plaintext"
            if slot.download_param is None:
                slot.download_param = _b64_param()
            self._cdn[slot.download_param] = CdnObject(
                bytes(data), slot.aeskey, slot.rawsize, slot.rawfilemd5, slot.filekey
            )
            self._changed()
            return 200, slot.download_param

    def upload_limit(self, param: str | None) -> int:
        """The most bytes the CDN reads for an upload to ``param``: the ciphertext size its ``getuploadurl``
        declared (plus a little slack), or ``max_request_bytes`` when the param is unknown (then the upload is
        refused anyway)."""
        with self._lock:
            slot = self._uploads.get(param or "")
            size = slot.filesize if slot is not None else None
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                return size + UPLOAD_SLACK_BYTES
            return self.config.max_request_bytes

    def cdn_download(self, param: str | None) -> bytes | None:
        """The CDN's download: the stored ciphertext, or None when the param is unknown."""
        with self._lock:
            obj = self._cdn.get(param or "")
            return obj.data if obj is not None else None
