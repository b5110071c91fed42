"""The notebook layer: widgets, live views and magics. Imports IPython/ipywidgets/pandas lazily.

Importing it registers the views the drivers ask :func:`openclaw_nb.env.view` for; each imports its widget
module only when a view is built.
"""

from __future__ import annotations

from typing import Any

from .. import env


def _login(session: Any) -> Any:
    from .login_widget import LoginWidget

    return LoginWidget(session)


def _progress(description: str, *unit: str) -> Any:
    from . import progress

    return progress.WidgetProgress(description, *unit)


def _feed(feed: Any) -> Any:
    from .feed import show_feed

    return show_feed(feed)


def _chat(client: Any, **options: Any) -> Any:
    from .chat import ChatPanel

    return ChatPanel(client, **options)


env.register_view("login", _login)
env.register_view("progress", _progress)
env.register_view("feed", _feed)
env.register_view("chat", _chat)
