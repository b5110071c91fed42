"""The public surface: ``__all__`` is pinned, every name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import openclaw_nb

PINNED = [
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
    "Client",
    "AsyncClient",
    "RetryPolicy",
    "OpenClawError",
    "UsageError",
    "RemoteError",
    "TransportError",
    "DeliveryUnknownError",
    "ProtocolError",
    "ApiError",
    "StaleTokenError",
    "SendRejectedError",
    "InvalidArgumentsError",
    "NotYetContactedError",
    "CdnError",
    "LoginError",
    "WeixinMessage",
    "MessageItem",
    "UploadedMedia",
    "Accounts",
    "list_accounts",
    "forget",
    "BroadcastResult",
    "BroadcastInterrupted",
    "frame_from_messages",
    "read_log",
    "load_log",
    "replay",
    "diff",
    "Simulator",
    "SimConfig",
]


def test_all_is_pinned() -> None:
    assert openclaw_nb.__all__ == PINNED


def test_every_public_name_resolves() -> None:
    for name in openclaw_nb.__all__:
        assert getattr(openclaw_nb, name) is not None, name
    assert issubclass(openclaw_nb.StaleTokenError, openclaw_nb.ApiError)
    assert issubclass(openclaw_nb.UsageError, ValueError)


def test_unknown_name_is_attribute_error() -> None:
    try:
        openclaw_nb.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light() -> None:
    code = (
        "import sys, openclaw_nb\n"
        "from openclaw_nb import Client, AsyncClient, StaleTokenError\n"
        "names = ('pandas', 'IPython', 'ipywidgets', 'starlette', 'uvicorn', 'pyarrow')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing the client pulled in: {out}"
