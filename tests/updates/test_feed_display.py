"""The live feed as a notebook shows it: snapshot HTML (escaped, tokens redacted), the live widget that is
redrawn only when something changed, saving incrementally, and the JSONL log written before the cursor moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openclaw_nb import env
from openclaw_nb import live as feed_module
from openclaw_nb.frames import read_log
from openclaw_nb.notebook import feed as feed_view
from openclaw_nb.protocol.redact import redact

from .conftest import FAST, Bot


class FakeView:
    """Stands in for an ipywidgets.HTML: counts how often its value is set."""

    def __init__(self) -> None:
        self.sets = 0
        self._value = ""

    @property
    def value(self) -> str:
        return self._value

    @value.setter
    def value(self, text: str) -> None:
        self.sets += 1
        self._value = text


def test_snapshot_html_escapes_and_redacts(bot: Bot) -> None:
    sent = bot.say("mallory@im.wechat", "<script>alert(1)</script>")
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_for(1)
        page = feed._repr_html_()
        text = repr(feed)
        feed.stop()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert sent["context_token"] not in page and "redacted" in page
    assert "1 messages" in page and "mallory@im.wechat" in page and "polling" in page
    assert "1 messages" in text and bot.bot_id in text


def test_display_without_widgets_is_a_static_bundle(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed._ipython_display_()
        feed.stop()
    assert set(shown[0]) == {"text/plain", "text/html"}


def test_where_widgets_do_not_render_the_feed_shows_clean_text(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """jupyter console, text exports and nbconvert to text show the bundle's text/plain: the feed's own text
    (summary and the last messages, tokens redacted), not the widget's repr (HTML(value='<div ...'))."""
    pytest.importorskip("ipywidgets")
    shown: list[Any] = []
    monkeypatch.setattr(env, "has_widgets", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    long_text = "a long message " * 10
    sent = bot.say("zoe@im.wechat", "hello <b>text</b>\nsecond line")
    bot.say("amy@im.wechat", long_text)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_for(2)
        feed._ipython_display_()
        feed.stop()
        feed.wait(5)
    ((bundle, raw),) = shown
    assert raw is True and "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert "HTML(" not in text and "<div" not in text and "<td" not in text
    lines = text.splitlines()
    assert lines[0].startswith(f"<Feed {bot.bot_id}: ") and "2 messages" in lines[0]
    assert "zoe@im.wechat  text: hello <b>text</b> second line" in lines[1]  # one line per message
    assert lines[2].endswith("…") and len(lines[2]) < 120
    assert sent["context_token"] not in text
    # Without widgets at all, the same text.
    monkeypatch.setattr(env, "has_widgets", lambda: False)
    shown.clear()
    feed._ipython_display_()
    assert shown[0][0]["text/plain"].splitlines()[1:] == lines[1:]


def test_live_view_redraws_only_on_change(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ipywidgets")
    shown: list[Any] = []
    monkeypatch.setattr(env, "has_widgets", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    with bot.client() as client:
        feed = client.stream(policy=FAST, refresh=0.1)
        feed._ipython_display_()
        (bundle,) = shown
        live = feed_view.view_of(feed)
        (view,) = list(live.widgets)
        assert type(view).__name__ == "HTML" and "0 messages" in view.value
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id
        fake = FakeView()
        live.widgets.add(fake)
        version = live.redraw(-1)
        assert fake.sets == 1 and live.redraw(version) == version and fake.sets == 1  # nothing changed
        bot.say("zoe@im.wechat", "hello view")
        feed.wait_for(1)
        # the refresher thread picks the change up within a few refresh periods
        assert wait_until(lambda: "hello view" in view.value, 5)
        feed.stop()
        assert wait_until(lambda: "stopped" in view.value, 5)


def wait_until(check: Any, timeout: float) -> bool:
    import threading
    import time

    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if check():
            return True
        pause.wait(0.02)
    return bool(check())


def test_save_is_incremental_and_the_log_is_complete(bot: Bot, tmp_path: Path) -> None:
    for i in range(5):
        bot.say("amy@im.wechat", f"m{i}")
    with bot.client() as client:
        feed = client.stream(policy=FAST, log_path=tmp_path / "live.jsonl")
        feed.wait_for(5)
        feed.save(tmp_path / "saved.jsonl")
        for i in range(5, 8):
            bot.say("amy@im.wechat", f"m{i}")
        feed.wait_for(8)
        feed.save(tmp_path / "saved.jsonl")
        feed.save(tmp_path / "dataset")
        feed.stop()
        feed.wait(5)
    saved = read_log(tmp_path / "saved.jsonl", dedup=False)
    assert saved["text"].tolist() == [f"m{i}" for i in range(8)]  # each message once, across two saves
    live = read_log(tmp_path / "live.jsonl")
    assert live["message_id"].tolist() == feed.frame["message_id"].tolist()
    # The live log is redacted as feed.save() redacts (redact_log=False keeps it exact): equal tokens stay equal.
    assert live["context_token"].tolist() == [redact(t) for t in feed.frame["context_token"]]
    parquet = read_log(tmp_path / "dataset")
    assert parquet["message_id"].tolist() == feed.frame["message_id"].tolist()
    assert feed.items_frame()["type"].astype(str).tolist() == ["text"] * 8


def test_feed_module_exports_feed() -> None:
    assert feed_module.Feed.__name__ == "Feed"
