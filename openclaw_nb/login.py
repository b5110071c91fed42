"""QR login for both drivers (filled in by the login work): ``LoginMixin`` / ``AsyncLoginMixin``."""

from __future__ import annotations


class LoginMixin:
    """Login methods of :class:`~openclaw_nb.client.Client`."""


class AsyncLoginMixin:
    """Login methods of :class:`~openclaw_nb.client.AsyncClient`."""
