"""Media upload, typing and long text for both drivers: ``MediaMixin`` / ``AsyncMediaMixin``."""

from __future__ import annotations


class MediaMixin:
    """Media and typing methods of :class:`~openclaw_nb.client.Client`."""


class AsyncMediaMixin:
    """Media and typing methods of :class:`~openclaw_nb.client.AsyncClient`."""
