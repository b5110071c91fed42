"""No simulator object shows a whole secret when printed (README: "A token is never shown whole: not in reprs").

Bot tokens, the client's recent tokens, context tokens, typing tickets, AES keys and CDN parameters all live in
the simulator's state objects; a teacher who prints ``sim.bots`` or ``sim.qrcodes`` in a notebook must not leak
them into the notebook's output.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from typing import Any

from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol import crypto
from openclaw_nb.protocol.redact import SECRET_FIELDS, is_redacted
from openclaw_nb.sim import SimState
from openclaw_nb.sim import records as records_module

PLACEHOLDER = "<redacted "


def busy_state(state: SimState) -> tuple[SimState, set[str]]:
    """A state with every kind of secret in it; returns it and the secrets (as text)."""
    secrets: set[str] = set()
    login = state.login_bot("alice")
    # a QR login by another user, with the client's recent tokens in local_token_list
    qrcode = state.create_qrcode([login.bot_token, "an-old-local-token-0123456789abcdef"])["qrcode"]
    state.confirm(qrcode, "bob")
    secrets.add("an-old-local-token-0123456789abcdef")
    # inbound text and an inbound (encrypted) image
    said = state.say("alice", "hello", login.ilink_bot_id)
    image = state.send_image("alice", b"\x89PNG" + bytes(range(200)), login.ilink_bot_id)
    ctx = image["context_token"]
    # a reply, a typing ticket and an outbound file through getuploadurl and the CDN
    sent = state.send_message(
        login.bot_token,
        {"msg": {"to_user_id": "alice@im.wechat", "context_token": ctx, "item_list": [{"type": 1}]}},
    )
    assert sent["ret"] == 0
    ticket = state.get_config(login.bot_token, {"ilink_user_id": "alice@im.wechat", "context_token": ctx})
    secrets.add(ticket["typing_ticket"])
    data, key = b"a file body" * 50, crypto.new_key()
    filekey = crypto.new_filekey()
    upload = state.get_upload_url(
        login.bot_token,
        {
            "filekey": filekey,
            "media_type": C.UploadMediaType.FILE,
            "to_user_id": "alice@im.wechat",
            "rawsize": len(data),
            "rawfilemd5": crypto.md5_hex(data),
            "filesize": crypto.padded_size(len(data)),
            "no_need_thumb": True,
            "aeskey": crypto.key_to_hex(key),
        },
    )
    status, download_param = state.cdn_upload(upload["upload_param"], filekey, crypto.encrypt(data, key))
    assert status == 200
    media = {"encrypt_query_param": download_param, "aes_key": base64.b64encode(key.hex().encode()).decode()}
    item = {"type": C.ItemType.FILE, "file_item": {"media": media, "file_name": "f.bin", "len": str(len(data))}}
    out = state.send_message(
        login.bot_token, {"msg": {"to_user_id": "alice@im.wechat", "context_token": ctx, "item_list": [item]}}
    )
    assert out["ret"] == 0, out
    state.add_fault(http_500=0.5, endpoints=["notify_start"])
    state.notify(login.bot_token, "start")

    for bot in state._bots.values():
        secrets.add(bot.token)
        for msg in bot.inbox:
            secrets.add(msg["context_token"])
    for record in state._contexts.values():
        secrets.add(record.token)
    for qr in state._qrcodes.values():
        secrets.update(t for t in (qr.bot_token, *qr.local_tokens) if t)
    for slot in state._uploads.values():
        secrets.update(t for t in (slot.param, slot.download_param) if t)
        secrets.update(_key_texts(slot.aeskey))
    for param, obj in state._cdn.items():
        secrets.add(param)
        if obj.key is not None:
            secrets.update(_key_texts(obj.key))
    secrets.update((upload["upload_param"], download_param, ctx, said["context_token"], login.bot_token))
    image_item = image["item_list"][0]["image_item"]
    secrets.update((image_item["aeskey"], image_item["media"]["aes_key"], image_item["media"]["encrypt_query_param"]))
    secrets.update(_key_texts(key))
    return state, {s for s in secrets if s}


def _key_texts(key: bytes) -> set[str]:
    """The ways an AES key can be written: hex, base64 of the bytes, base64 of the hex, Python's bytes repr."""
    return {key.hex(), base64.b64encode(key).decode(), base64.b64encode(key.hex().encode()).decode(), repr(key)[2:-1]}


def state_objects(state: SimState) -> Iterator[Any]:
    """Every object the simulator keeps (dataclass instances in its collections), and the public views of them."""
    for value in vars(state).values():
        items: Any = value.values() if isinstance(value, dict) else value
        if isinstance(value, (dict, list)) or type(value).__name__ == "deque":
            for item in items:
                if dataclasses.is_dataclass(item):
                    yield item
        elif dataclasses.is_dataclass(value):
            yield value
    yield from state.bots.values()
    yield from state.users.values()
    yield from state.qrcodes.values()
    yield from state.outbox
    yield from state.typing_events
    yield from state.notifications
    yield from state.faults
    yield state.config
    yield state


def test_no_sim_object_prints_a_secret(state: SimState) -> None:
    state, secrets = busy_state(state)
    assert len(secrets) > 15
    seen_types = set()
    for obj in state_objects(state):
        seen_types.add(type(obj).__name__)
        for shown in (repr(obj), str(obj)):
            leaked = [s[:6] + "…" for s in secrets if s in shown]
            assert not leaked, f"{type(obj).__name__} shows {leaked}: {shown[:300]}"
    # every kind of object that holds a secret was looked at
    assert {"SimBot", "QrCode", "ContextRecord", "UploadSlot", "CdnObject", "OutboxEntry"} <= seen_types


def test_redacted_fields_use_the_standard_placeholder(state: SimState) -> None:
    state, _ = busy_state(state)
    bot = next(iter(state.bots.values()))
    text = repr(bot)
    assert f"token={PLACEHOLDER}" in text and "inbox=<2 message(s)>" in text and bot.bot_id in text
    token = text.split("token=", 1)[1].split(">", 1)[0] + ">"
    assert is_redacted(token)
    qr = next(q for q in state.qrcodes.values() if q.bot_token)
    assert f"bot_token={PLACEHOLDER}" in repr(qr) and qr.qrcode in repr(qr)  # the QR id is not a secret
    assert repr(qr).count(PLACEHOLDER) == 1 + len(qr.local_tokens)
    entry = state.outbox[-1]
    assert "media={0: <550 bytes>}" in repr(entry) and "context_token" not in repr(entry)
    login = state.login_bot("carol")
    assert login.bot_token not in repr(login) and PLACEHOLDER in repr(login)


def test_every_dataclass_with_a_secret_field_has_its_own_repr() -> None:
    # A new state class with a secret-looking field in its repr must redact it (a __repr__ written in
    # sim/records.py, not the generated one) or leave the field out of the repr (field(repr=False)).
    secretish = SECRET_FIELDS | {"key", "param", "download_param", "local_tokens", "inbox", "msg"}
    checked = []
    for name, cls in vars(records_module).items():
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)) or cls.__module__ != records_module.__name__:
            continue
        fields = [f.name for f in dataclasses.fields(cls) if f.repr and f.name in secretish]
        if fields:
            written_here = cls.__repr__.__code__.co_filename == records_module.__file__
            assert written_here, f"{name} shows {fields} through the generated dataclass repr"
            checked.append(name)
    assert {"SimBot", "QrCode", "ContextRecord", "UploadSlot", "CdnObject", "BotLogin"} <= set(checked)
