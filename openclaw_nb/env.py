"""Where are we running? A Jupyter kernel with a frontend, plain IPython, or a script — and the one helper
that drives a coroutine to completion from synchronous code while the kernel's loop is already running.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
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
