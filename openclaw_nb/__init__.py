"""openclaw-nb: explore the WeChat iLink bot protocol from Jupyter."""

from ._version import __version__

__all__ = ["__version__"]
