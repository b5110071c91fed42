"""openclaw-nb: explore the WeChat iLink bot protocol from Jupyter.

>>> from openclaw_nb import Client, Simulator
>>> with Simulator() as sim, Client(base_url=sim.base_url, cdn_base_url=sim.cdn_base_url) as client:
...     client.login()

Public names load on first use, so ``import openclaw_nb`` stays light: pandas, IPython, ipywidgets and the
simulator's server stack are imported only by the features that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: Public name -> module that defines it (imported on first access).
_LAZY = {
    # clients
    "Client": "openclaw_nb.client",
    "AsyncClient": "openclaw_nb.client",
    "RetryPolicy": "openclaw_nb.protocol.flow",
    # errors
    "OpenClawError": "openclaw_nb.errors",
    "UsageError": "openclaw_nb.errors",
    "RemoteError": "openclaw_nb.errors",
    "TransportError": "openclaw_nb.errors",
    "DeliveryUnknownError": "openclaw_nb.errors",
    "ProtocolError": "openclaw_nb.errors",
    "ApiError": "openclaw_nb.errors",
    "StaleTokenError": "openclaw_nb.errors",
    "SendRejectedError": "openclaw_nb.errors",
    "InvalidArgumentsError": "openclaw_nb.errors",
    "NotYetContactedError": "openclaw_nb.errors",
    "CdnError": "openclaw_nb.errors",
    "LoginError": "openclaw_nb.login",
    # wire models most users touch
    "WeixinMessage": "openclaw_nb.protocol.models",
    "MessageItem": "openclaw_nb.protocol.models",
    "UploadedMedia": "openclaw_nb.protocol.media",
    # accounts
    "Accounts": "openclaw_nb.accounts",
    "list_accounts": "openclaw_nb.accounts",
    "forget": "openclaw_nb.accounts",
    # broadcast
    "BroadcastResult": "openclaw_nb.broadcast",
    "BroadcastInterrupted": "openclaw_nb.broadcast",
    # analysis
    "frame_from_messages": "openclaw_nb.frames",
    "read_log": "openclaw_nb.frames",
    # recorder
    "load_log": "openclaw_nb.recorder",
    "replay": "openclaw_nb.recorder",
    "diff": "openclaw_nb.recorder",
    # simulator
    "Simulator": "openclaw_nb.sim",
    "SimConfig": "openclaw_nb.sim",
}

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'openclaw_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext openclaw_nb``: register the ``%wx_*`` magics (see ``%wx_help``).

    The magics module imports IPython, so it is imported here, on demand: ``import openclaw_nb`` stays light.
    """
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext openclaw_nb``: stop what the magics started and remove them."""
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .accounts import Accounts, forget, list_accounts
    from .broadcast import BroadcastInterrupted, BroadcastResult
    from .client import AsyncClient, Client
    from .errors import (
        ApiError,
        CdnError,
        DeliveryUnknownError,
        InvalidArgumentsError,
        NotYetContactedError,
        OpenClawError,
        ProtocolError,
        RemoteError,
        SendRejectedError,
        StaleTokenError,
        TransportError,
        UsageError,
    )
    from .frames import frame_from_messages, read_log
    from .login import LoginError
    from .protocol.flow import RetryPolicy
    from .protocol.media import UploadedMedia
    from .protocol.models import MessageItem, WeixinMessage
    from .recorder import diff, load_log, replay
    from .sim import SimConfig, Simulator
