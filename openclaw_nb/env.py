"""Where are we running? A Jupyter kernel with a frontend, plain IPython, or a script — the one helper that
drives a coroutine to completion from synchronous code while the kernel's loop is already running — and the
views the notebook layer lends the drivers.

The drivers never import widget code. Where they show their work (the login widget, a progress bar, the live
feed, the chat panel) they ask :func:`view` for it by name; the notebook layer registers its views when it is
imported (``openclaw_nb/notebook/__init__.py``), which :func:`view` does by name on first use.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def ipython() -> Any:
    """The running IPython shell, or None (without importing IPython when it isn't loaded)."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython half-installed
        return None
    return get_ipython()


def in_kernel() -> bool:
    """True inside a Jupyter kernel (ZMQ shell), where widgets can render and the kernel has a loop."""
    shell = ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def has_widgets() -> bool:
    """True when ipywidgets can render here: a kernel with ipywidgets importable."""
    if not in_kernel():
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread (the kernel's, in Jupyter), or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code.

    Outside a running loop this is ``asyncio.run``. Inside one (a magic or a blocking ``wait()`` called in a
    notebook cell, while the kernel's loop runs) it applies ``nest_asyncio`` to that loop once, the only
    place in the package that does, because blocking the loop would otherwise deadlock.
    """
    loop = running_loop()
    if loop is None:
        return asyncio.run(coro)
    import nest_asyncio

    if not getattr(loop, "_nest_patched", False):
        nest_asyncio.apply(loop)
    return loop.run_until_complete(coro)


# --- views lent by the notebook layer ---------------------------------------------------------------

#: The package that registers the views (loaded by name, so no driver module imports it).
VIEWS_PACKAGE = "openclaw_nb.notebook"
_VIEWS: dict[str, Callable[..., Any]] = {}


def register_view(name: str, make: Callable[..., Any]) -> None:
    """Offer the drivers a view: ``make(...)`` builds it (called with what the driver passes to it)."""
    _VIEWS[name] = make


def view(name: str) -> Callable[..., Any]:
    """The notebook layer's view called ``name`` ("login", "progress", "feed", "chat")."""
    if name not in _VIEWS:
        importlib.import_module(VIEWS_PACKAGE)
    return _VIEWS[name]
