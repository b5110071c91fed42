"""Links to the simulator that a person's browser can open: the simulator's own URL on a laptop, the machine's
LAN address when it listens on every interface, and a jupyter-server-proxy path (``<prefix>proxy/<port>/...``)
on JupyterHub or Binder, where the browser cannot reach the kernel's loopback ports.

No network traffic: the LAN address comes from the routing table (a UDP socket ``connect`` sends nothing).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

#: The environment variable JupyterHub (and so Binder) sets for a single-user server: its URL path prefix.
HUB_PREFIX_ENV = "JUPYTERHUB_SERVICE_PREFIX"
#: The hub's public origin, when the hub tells it (``https://hub.example.org/``); else links are paths.
HUB_PUBLIC_URL_ENV = "JUPYTERHUB_PUBLIC_URL"
#: Force the choice: ``1`` always links through jupyter-server-proxy, ``0`` never.
PROXY_ENV = "OPENCLAW_NB_PROXY"

_ANY_ADDRESS = ("0.0.0.0", "::", "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def proxy_prefix(environ: Mapping[str, str] | None = None) -> str | None:
    """The path prefix to reach this server's loopback ports through jupyter-server-proxy
    (``/user/alice/proxy/``), or None when links should go straight to the simulator.

    On when ``JUPYTERHUB_SERVICE_PREFIX`` is set (JupyterHub, Binder); ``OPENCLAW_NB_PROXY=0`` or ``1`` decides
    instead (``1`` without a hub prefix proxies through the local Jupyter server's ``/proxy/``).
    """
    env = os.environ if environ is None else environ
    forced = env.get(PROXY_ENV, "").strip().lower()
    if forced in ("0", "no", "false", "off"):
        return None
    prefix = env.get(HUB_PREFIX_ENV, "")
    if not prefix and forced not in ("1", "yes", "true", "on"):
        return None
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    return prefix + "proxy/"


def lan_address() -> str:
    """This machine's address on its local network (what a phone on the same Wi-Fi can reach), or
    ``127.0.0.1`` when it has none. Asks the routing table only: no packet is sent."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere; connect() on UDP sends nothing
        address = str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()
    return address if address and not address.startswith("0.") else "127.0.0.1"


def browser_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """``url`` (a simulator URL such as a scan link, ``http://127.0.0.1:PORT/_sim/...``) as a browser opens it:
    through jupyter-server-proxy on JupyterHub/Binder when it points at a loopback port; unchanged otherwise
    (a real server's URL, a LAN address, or no hub).

    >>> browser_url("http://127.0.0.1:8123/_sim/scan/ab", {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann/"})
    '/user/ann/proxy/8123/_sim/scan/ab'
    """
    env = os.environ if environ is None else environ
    prefix = proxy_prefix(env)
    if prefix is None:
        return url
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not _is_loopback(parts.hostname) or parts.port is None:
        return url
    path = prefix + f"{parts.port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    origin = env.get(HUB_PUBLIC_URL_ENV, "").strip().rstrip("/")
    return origin + path if origin.startswith(("http://", "https://")) else path


def public_url(sim: Any, path: str = "/", environ: Mapping[str, str] | None = None) -> str:
    """The link to ``path`` on a running simulator that a person's browser can open.

    Listening on loopback: the simulator's URL, or its jupyter-server-proxy path on JupyterHub/Binder. On every
    interface (``--host 0.0.0.0``): the machine's LAN address, so phones on the same network can open it. On
    one address: that address.

    >>> public_url(sim, "/_sim/phone/")  # doctest: +SKIP
    'http://127.0.0.1:8123/_sim/phone/'
    """
    if not getattr(sim, "base_url", ""):
        raise RuntimeError("the simulator is not running: start it (sim.start() or `with Simulator() as sim:`) first")
    if not path.startswith("/"):
        path = "/" + path
    host = str(getattr(sim, "host", "127.0.0.1"))
    port = int(sim.port)
    if host in _ANY_ADDRESS:
        lan = lan_address()
        if lan != "127.0.0.1":
            return f"http://{lan}:{port}{path}"
        return browser_url(f"http://127.0.0.1:{port}{path}", environ)
    if _is_loopback(host):
        return browser_url(f"http://127.0.0.1:{port}{path}" if host == "localhost" else sim.base_url + path, environ)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


__all__ = ["browser_url", "lan_address", "proxy_prefix", "public_url"]
