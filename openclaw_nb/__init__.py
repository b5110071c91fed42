"""openclaw-nb: explore the WeChat iLink bot protocol from Jupyter."""

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


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
