"""The getupdates stream for both drivers (filled in by the updates work): ``UpdatesMixin`` / ``AsyncUpdatesMixin``."""

from __future__ import annotations


class UpdatesMixin:
    """Update-stream methods of :class:`~openclaw_nb.client.Client`."""


class AsyncUpdatesMixin:
    """Update-stream methods of :class:`~openclaw_nb.client.AsyncClient`."""
