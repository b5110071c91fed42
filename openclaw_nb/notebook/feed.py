"""The live feed's widget, the ``feed`` view of :class:`openclaw_nb.live.Feed`: an HTML widget of the feed's
summary and last messages, redrawn a few times a second at most and only when the feed changed; one redraw
loop per feed however many times it is displayed (a task on the kernel's loop, or a thread elsewhere).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

from .. import env
from ..live import Feed


class FeedView:
    """Every widget that shows one feed, and the loop that redraws them."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.widgets: weakref.WeakSet[Any] = weakref.WeakSet()
        self._running = False

    def show(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        view = widgets.HTML(value=self.feed._repr_html_())
        self.widgets.add(view)
        # The widget for frontends that render it; the view's own text, not the widget's repr
        # (HTML(value='<div ...')), where none does.
        bundle = dict(view._repr_mimebundle_() or {})
        bundle["text/plain"] = self.feed.as_text()
        display(bundle, raw=True)
        self._start()

    def _start(self) -> None:
        if self._running:
            return
        self._running = True
        loop = env.running_loop()
        if loop is not None:
            loop.create_task(self._refresh_task())
        else:
            threading.Thread(target=self._refresh_thread, name="openclaw-nb-feed-view", daemon=True).start()

    def redraw(self, shown: int) -> int:
        # Redraw only when something changed, so an idle feed costs nothing.
        version = self.feed.version
        if version != shown:
            value = self.feed._repr_html_()
            for view in list(self.widgets):
                view.value = value
        return version

    async def _refresh_task(self) -> None:
        shown = -1
        try:
            while self.feed.running:
                shown = self.redraw(shown)
                await asyncio.sleep(self.feed.refresh)
            self.redraw(-1)
        finally:
            self._running = False

    def _refresh_thread(self) -> None:
        shown = -1
        try:
            while not self.feed.ended(self.feed.refresh):
                shown = self.redraw(shown)
            self.redraw(-1)
        finally:
            self._running = False


_VIEWS: weakref.WeakKeyDictionary[Feed, FeedView] = weakref.WeakKeyDictionary()


def view_of(feed: Feed) -> FeedView:
    """The one :class:`FeedView` of ``feed`` (made on first use)."""
    view = _VIEWS.get(feed)
    if view is None:
        view = _VIEWS[feed] = FeedView(feed)
    return view


def show_feed(feed: Feed) -> FeedView:
    """Display ``feed`` as a live widget in the current cell's output (the ``feed`` view)."""
    view = view_of(feed)
    view.show()
    return view
