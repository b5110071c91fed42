"""Test helpers: a small iLink-shaped server on 127.0.0.1 and a whole session driven with plain httpx.

It is stateful like the real one: each instance hands out its own random bot token, context token, typing
ticket and upload parameters, and checks that later requests send them back (``ret = -14`` for an unknown
token, ``-2`` for a wrong context token), so replay tests can only pass if replay rebinds those values.
``variant`` switches on deliberate differences for the diff/replay tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DOWNLOAD_CHUNK = 64 * 1024
DOWNLOAD_CHUNKS = 8


@dataclass
class ServerState:
    variant: str = ""
    bot_token: str = field(default_factory=lambda: "bt-" + secrets.token_hex(20))
    context_token: str = field(default_factory=lambda: "ctx-" + secrets.token_urlsafe(30))
    typing_ticket: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    upload_param: str = field(default_factory=lambda: "up/" + secrets.token_urlsafe(40) + "+=")
    download_param: str = field(default_factory=lambda: "dl/" + secrets.token_urlsafe(40) + "+=")
    media_aes_key: str = field(default_factory=lambda: secrets.token_hex(16))
    qrcode: str = field(default_factory=lambda: "qr-" + secrets.token_hex(8))
    base_url: str = ""
    cursor: int = 0
    message_id: int = 2**64 - 7
    uploads: dict[str, str] = field(default_factory=dict)
    release: asyncio.Event | None = None
    seen_uins: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        """Every secret value this server handed out (what must never appear in a redacted log)."""
        return [
            self.bot_token,
            self.context_token,
            self.typing_ticket,
            self.upload_param,
            self.download_param,
            self.media_aes_key,
        ]


def _authorized(state: ServerState, request: Request) -> bool:
    return request.headers.get("authorization") == f"Bearer {state.bot_token}"


def make_app(state: ServerState) -> Starlette:
    async def get_bot_qrcode(request: Request) -> Response:
        await request.body()
        return JSONResponse(
            {"qrcode": state.qrcode, "qrcode_img_content": f"{state.base_url}/qr?qrcode={state.qrcode}"}
        )

    async def get_qrcode_status(request: Request) -> Response:
        if request.query_params.get("qrcode") != state.qrcode:
            return JSONResponse({"status": "expired"})
        return JSONResponse(
            {
                "status": "confirmed",
                "bot_token": state.bot_token,
                "ilink_bot_id": "b0t@im.bot",
                "baseurl": state.base_url,
                "ilink_user_id": "u1@im.wechat",
            }
        )

    async def getupdates(request: Request) -> Response:
        body = await request.json()
        state.seen_uins.append(request.headers.get("x-wechat-uin", ""))
        if not _authorized(state, request):
            return JSONResponse({"ret": -14, "errmsg": "session timeout"})
        state.cursor += 1
        now = int(time.time() * 1000)
        media = {
            "encrypt_query_param": state.download_param,
            "aes_key": state.media_aes_key,
            "encrypt_type": 1,
            "full_url": f"{state.base_url}/c2c/download?encrypted_query_param={state.download_param}",
        }
        msg: dict[str, Any] = {
            "seq": state.cursor,
            "message_id": state.message_id + state.cursor,
            "from_user_id": "u1@im.wechat",
            "to_user_id": "b0t@im.bot",
            "client_id": secrets.token_hex(4),
            "create_time_ms": now,
            "message_type": 1,
            "message_state": 2,
            "context_token": state.context_token,
            "item_list": [
                {"type": 1, "text_item": {"text": "hello" if state.variant != "text" else "HELLO"}},
                {"type": 2, "image_item": {"media": media, "aeskey": state.media_aes_key}},
            ],
        }
        out: dict[str, Any] = {
            "ret": 0,
            "msgs": [msg],
            "get_updates_buf": f"cur-{state.cursor}-{secrets.token_hex(4)}",
            "longpolling_timeout_ms": 35000,
        }
        if state.variant == "extra":
            out["new_field"] = True
        if body.get("get_updates_buf") is None:
            out = {"ret": -3, "errmsg": "no cursor"}
        return JSONResponse(out)

    async def sendmessage(request: Request) -> Response:
        body = await request.json()
        if not _authorized(state, request):
            return JSONResponse({"ret": -14})
        msg = body.get("msg", {})
        if msg.get("context_token") != state.context_token:
            return JSONResponse({"ret": -2, "errmsg": ""})
        out: dict[str, Any] = {"ret": 0, "message_id": state.message_id}
        if state.variant == "missing":
            del out["message_id"]
        return JSONResponse(out)

    async def getconfig(request: Request) -> Response:
        body = await request.json()
        if body.get("context_token") != state.context_token:
            return JSONResponse({"ret": -4})
        return JSONResponse({"ret": 0, "typing_ticket": state.typing_ticket})

    async def sendtyping(request: Request) -> Response:
        body = await request.json()
        ok = body.get("typing_ticket") == state.typing_ticket
        return JSONResponse({"ret": 0 if ok else -2})

    async def getuploadurl(request: Request) -> Response:
        body = await request.json()
        if len(body.get("aeskey", "")) != 32:
            return JSONResponse({"ret": -3, "errmsg": "bad aeskey"})
        q = f"encrypted_query_param={state.upload_param.replace('+', '%2B').replace('/', '%2F')}"
        return JSONResponse(
            {
                "upload_param": state.upload_param,
                "upload_full_url": f"{state.base_url}/c2c/upload?{q}&filekey={body.get('filekey', '')}",
            }
        )

    async def upload(request: Request) -> Response:
        if request.query_params.get("encrypted_query_param") != state.upload_param:
            return Response(status_code=400, headers={"x-error-message": "bad upload param"})
        md5 = hashlib.md5()
        size = 0
        async for chunk in request.stream():
            md5.update(chunk)
            size += len(chunk)
        state.uploads[md5.hexdigest()] = str(size)
        status = 500 if state.variant == "status" else 200
        headers = {"x-encrypted-param": state.download_param}
        if request.query_params.get("echo") == "md5":
            headers["x-test-md5"] = md5.hexdigest()
        return Response(status_code=status, headers=headers)

    async def download(request: Request) -> Response:
        if request.query_params.get("encrypted_query_param") != state.download_param:
            return Response(status_code=404, content=b"not found", media_type="text/plain")

        async def chunks() -> Any:
            for i in range(DOWNLOAD_CHUNKS):
                yield bytes([i]) * DOWNLOAD_CHUNK

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def hold(request: Request) -> Response:
        # Holds until the test's client gives up; the cap only keeps server shutdown from hanging.
        state.release = state.release or asyncio.Event()
        try:
            await asyncio.wait_for(state.release.wait(), timeout=10)
        except TimeoutError:
            pass
        return JSONResponse({"ret": 0})

    async def plain(request: Request) -> Response:
        return Response(f"plain text with token={state.bot_token}", media_type="text/plain")

    async def moved(request: Request) -> Response:
        # A redirect to the CDN whose URLs carry the download parameter; another header names the bot token.
        q = f"encrypted_query_param={quote(state.download_param, safe='')}"
        return Response(
            status_code=302,
            headers={
                "Location": f"{state.base_url}/c2c/download?{q}",
                "Content-Location": f"/c2c/download?filekey=f1&{q}",
                "X-Debug": f"retry with token={state.bot_token}",
            },
        )

    routes = [
        Route("/ilink/bot/get_bot_qrcode", get_bot_qrcode, methods=["POST", "GET"]),
        Route("/ilink/bot/get_qrcode_status", get_qrcode_status, methods=["GET"]),
        Route("/ilink/bot/getupdates", getupdates, methods=["POST"]),
        Route("/ilink/bot/sendmessage", sendmessage, methods=["POST"]),
        Route("/ilink/bot/getconfig", getconfig, methods=["POST"]),
        Route("/ilink/bot/sendtyping", sendtyping, methods=["POST"]),
        Route("/ilink/bot/getuploadurl", getuploadurl, methods=["POST"]),
        Route("/c2c/upload", upload, methods=["POST"]),
        Route("/c2c/download", download, methods=["GET"]),
        Route("/hold", hold, methods=["GET", "POST"]),
        Route("/plain", plain, methods=["GET"]),
        Route("/moved", moved, methods=["GET"]),
    ]
    return Starlette(routes=routes)


class LoopbackServer:
    """uvicorn in a thread on a free 127.0.0.1 port."""

    def __init__(self, variant: str = "") -> None:
        self.state = ServerState(variant=variant)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.state.base_url = self.base_url
        self.cdn_base_url = self.base_url + "/c2c"
        config = uvicorn.Config(make_app(self.state), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("loopback server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        loop_release = self.state.release
        self._server.should_exit = True
        if loop_release is not None:
            # Let held requests end now instead of at their cap.
            self._server.force_exit = True
        self._thread.join(timeout=15)
        self._sock.close()


# -- a whole session, driven with plain httpx the way the official client talks ---------------------------------


@dataclass
class SessionSecrets:
    """Client-side secrets a session used (besides the ones the server handed out)."""

    local_tokens: list[str]
    aeskey_hex: str
    aes_key_b64: str
    server: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.local_tokens, self.aeskey_hex, self.aes_key_b64, *self.server]


def _call(name: str, attempt: int = 1) -> dict[str, Any]:
    from openclaw_nb.recorder import ATTEMPT_KEY, CALL_KEY

    return {CALL_KEY: name, ATTEMPT_KEY: attempt}


def run_session(http: Any, base_url: str, *, text: str = "hi there") -> SessionSecrets:
    """QR login, a poll, typing, a streamed media upload, a media message, a streamed download, a text."""
    import base64

    from openclaw_nb.protocol.headers import ClientIdentity

    ident = ClientIdentity()
    local_tokens = ["lt-" + secrets.token_hex(16), "lt-" + secrets.token_hex(16)]
    r = http.post(
        f"{base_url}/ilink/bot/get_bot_qrcode",
        params={"bot_type": "3"},
        json={"local_token_list": local_tokens, "base_info": ident.base_info()},
        headers=ident.post_headers(None),
        extensions=_call("get_bot_qrcode"),
    )
    qrcode = r.json()["qrcode"]
    r = http.get(
        f"{base_url}/ilink/bot/get_qrcode_status",
        params={"qrcode": qrcode},
        headers=ident.get_headers(),
        extensions=_call("get_qrcode_status"),
    )
    token = r.json()["bot_token"]

    def post(path: str, call: str, body: dict[str, Any]) -> Any:
        return http.post(
            f"{base_url}{path}",
            json={**body, "base_info": ident.base_info()},
            headers=ident.post_headers(token),
            extensions=_call(call),
        ).json()

    page = post("/ilink/bot/getupdates", "get_updates", {"get_updates_buf": ""})
    msg = page["msgs"][0]
    ctx = msg["context_token"]
    user = msg["from_user_id"]
    cfg = post("/ilink/bot/getconfig", "get_config", {"ilink_user_id": user, "context_token": ctx})
    post(
        "/ilink/bot/sendtyping",
        "send_typing",
        {"ilink_user_id": user, "typing_ticket": cfg["typing_ticket"], "status": 1},
    )
    aeskey = secrets.token_hex(16)
    plaintext = bytes(range(256)) * 400  # the same file in every session
    filesize = (len(plaintext) // 16 + 1) * 16
    up = post(
        "/ilink/bot/getuploadurl",
        "get_upload_url",
        {
            "filekey": secrets.token_hex(16),
            "media_type": 1,
            "to_user_id": user,
            "rawsize": len(plaintext),
            "rawfilemd5": hashlib.md5(plaintext).hexdigest(),
            "filesize": filesize,
            "no_need_thumb": True,
            "aeskey": aeskey,
        },
    )

    def ciphertext() -> Iterator[bytes]:
        # Stand-in ciphertext of the right size, streamed in chunks like the client's encrypting reader.
        for i in range(0, filesize, 16 * 1024):
            yield secrets.token_bytes(min(16 * 1024, filesize - i))

    r = http.post(
        up["upload_full_url"],
        content=ciphertext(),
        headers={"Content-Type": "application/octet-stream"},
        extensions=_call("cdn_upload"),
    )
    download_param = r.headers["x-encrypted-param"]
    aes_key_b64 = base64.b64encode(aeskey.encode()).decode()
    item = {
        "type": 2,
        "image_item": {
            "media": {"encrypt_query_param": download_param, "aes_key": aes_key_b64, "encrypt_type": 1},
            "mid_size": filesize,
        },
    }
    msg_base = {"from_user_id": "", "to_user_id": user, "message_type": 2, "message_state": 2, "context_token": ctx}
    post(
        "/ilink/bot/sendmessage",
        "send_message",
        {"msg": {**msg_base, "client_id": secrets.token_hex(4), "item_list": [item]}},
    )
    with http.stream(
        "GET",
        f"{base_url}/c2c/download",
        params={"encrypted_query_param": msg["item_list"][1]["image_item"]["media"]["encrypt_query_param"]},
        extensions=_call("cdn_download"),
    ) as resp:
        for _ in resp.iter_raw():
            pass
    text_item = {"type": 1, "text_item": {"text": text}}
    post(
        "/ilink/bot/sendmessage",
        "send_message",
        {"msg": {**msg_base, "client_id": secrets.token_hex(4), "item_list": [text_item]}},
    )
    return SessionSecrets(local_tokens, aeskey, aes_key_b64, [])
