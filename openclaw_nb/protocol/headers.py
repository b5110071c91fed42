"""Request headers and ``base_info`` exactly as the official client sends them.

``Content-Length`` is never set here: the HTTP library computes it (a hand-set value broke newer stacks).
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from functools import cached_property

from .._version import __version__
from . import constants as C

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_VERSION = re.compile(r"^[A-Za-z0-9_.+\-]{1,32}$")
_TOKEN = re.compile(r"\s*([^\s/()]+)/([^\s()]+)(?:\s*\(([^()]*)\))?|\s*(\S+)")
FALLBACK_BOT_AGENT = "OpenClaw"
MAX_BOT_AGENT_BYTES = 256
DEFAULT_BOT_AGENT = f"openclaw-nb/{__version__}"


def random_uin() -> str:
    """``X-WECHAT-UIN``: base64 of the **decimal string** of a fresh random uint32."""
    return base64.b64encode(str(secrets.randbits(32)).encode("ascii")).decode("ascii")


def sanitize_bot_agent(agent: str | None) -> str:
    """Keep the valid ``Name/Version (comment)`` products of a UA-style string; fall back to ``OpenClaw``.

    Names: at most 32 of ``[A-Za-z0-9_.-]``; versions: at most 32 of ``[A-Za-z0-9_.+-]``; comments: at most
    64 printable ASCII characters without parentheses. Invalid products are dropped, and products that would
    push the total past 256 bytes are left off.
    """
    if not agent:
        return FALLBACK_BOT_AGENT
    products: list[str] = []
    total = 0
    for m in _TOKEN.finditer(agent):
        name, version, comment = m.group(1), m.group(2), m.group(3)
        if name is None or not _NAME.match(name) or not _VERSION.match(version):
            continue
        product = f"{name}/{version}"
        if comment is not None:
            comment = comment.strip()
            if comment and len(comment) <= 64 and all(32 <= ord(ch) < 127 for ch in comment):
                product += f" ({comment})"
        size = len(product) + (1 if products else 0)
        if total + size > MAX_BOT_AGENT_BYTES:
            break
        products.append(product)
        total += size
    return " ".join(products) or FALLBACK_BOT_AGENT


@dataclass(frozen=True)
class ClientIdentity:
    """What the client says about itself on every request (headers and ``base_info``)."""

    app_id: str = C.DEFAULT_APP_ID
    #: The protocol level (the official release it behaves as), not this package's version.
    client_version: str = C.PROTOCOL_CLIENT_VERSION
    bot_agent: str = DEFAULT_BOT_AGENT
    route_tag: str | None = None

    # Both are computed once per identity: they sit on the path of every request.
    @cached_property
    def packed_version(self) -> str:
        return str(C.pack_version(self.client_version))

    @cached_property
    def _base_info(self) -> tuple[tuple[str, str], ...]:
        return (("channel_version", self.client_version), ("bot_agent", sanitize_bot_agent(self.bot_agent)))

    def base_info(self) -> dict[str, str]:
        """``base_info`` of every POST body (a fresh dict each call, so callers may change it)."""
        return dict(self._base_info)

    def post_headers(self, token: str | None) -> dict[str, str]:
        """Headers of every POST: JSON, auth type, bearer token (only when there is one), fresh UIN, app id."""
        headers = {
            "Content-Type": "application/json",
            C.H_AUTHORIZATION_TYPE: C.AUTHORIZATION_TYPE,
            C.H_UIN: random_uin(),
            C.H_APP_ID: self.app_id,
            C.H_CLIENT_VERSION: self.packed_version,
        }
        if token:
            headers[C.H_AUTHORIZATION] = f"Bearer {token}"
        if self.route_tag:
            headers[C.H_ROUTE_TAG] = self.route_tag
        return headers

    def get_headers(self) -> dict[str, str]:
        """Headers of GET requests (QR status): app id and version only, plus the route tag if set."""
        headers = {C.H_APP_ID: self.app_id, C.H_CLIENT_VERSION: self.packed_version}
        if self.route_tag:
            headers[C.H_ROUTE_TAG] = self.route_tag
        return headers
