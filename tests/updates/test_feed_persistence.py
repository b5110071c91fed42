"""The live feed's rows on disk: written before the cursor that follows them, all there once ``stop()`` returns,
and read back into the frame by the next feed (a page the server serves again is not shown twice; a torn last
line costs only itself). Against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb.frames import read_log
from openclaw_nb.journal import AppendLog, TornLineWarning
from openclaw_nb.store import Store

from .conftest import FAST, Bot


def say_many(bot: Bot, n: int, start: int = 0) -> list[int]:
    return [bot.say(f"u{i % 3}", f"m{i}")["message_id"] for i in range(start, start + n)]


def log_ids(path: Path) -> list[int]:
    return [json.loads(line)["message_id"] for line in path.read_text().splitlines() if line.strip()]


def feed_log(home: Path, bot: Bot) -> Path:
    return home / "accounts" / f"{bot.bot_id}.feed.jsonl"


@pytest.mark.parametrize("where", ["log_path", "own log"])
def test_stop_returns_with_every_row_on_disk(bot: Bot, home: Path, tmp_path: Path, where: str) -> None:
    ids = say_many(bot, 120)
    path = tmp_path / "live.jsonl" if where == "log_path" else feed_log(home, bot)
    with bot.client() as client:
        feed = client.stream(policy=FAST, log_path=path if where == "log_path" else None)
        feed.wait_rows(120)
        feed.stop()
        # No wait: the rows are in the files as stop() returns (the thread may still be in its last poll).
        assert log_ids(path) == ids
        assert log_ids(feed_log(home, bot)) == ids  # the feed's own log, with log_path too
        feed.wait(5)


def test_async_stop_returns_with_every_row_on_disk(bot: Bot, tmp_path: Path) -> None:
    ids = say_many(bot, 50)
    path = tmp_path / "live.jsonl"

    async def main() -> list[int]:
        async with bot.aclient() as client:
            feed = client.stream(policy=FAST, log_path=path)
            await feed.until(50)
            feed.stop()
            on_disk = log_ids(path)
            await feed.finished()
            return on_disk

    assert asyncio.run(main()) == ids


def test_the_cursor_is_never_saved_ahead_of_its_rows(bot: Bot, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each cursor write comes after an fsync of the rows' log that covers every row appended so far, and the
    rows on disk reach at least as far as the cursor points (the simulator's cursor holds its position)."""
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    real_append, real_sync, real_save = AppendLog.append, AppendLog.sync, Store.save_cursor
    path = feed_log(home, bot)

    def append(self: AppendLog, lines: Any) -> int:
        with lock:
            out = real_append(self, lines)
            events.append(("append", 0))
        return out

    def sync(self: AppendLog) -> None:
        with lock:
            events.append(("sync", len(log_ids(path)) if path.exists() else 0))  # rows written before the fsync
        real_sync(self)

    def save_cursor(self: Store, bot_id: str, cursor: str) -> None:
        pos = int(base64.b64decode(cursor).decode().rpartition(":")[2])
        with lock:
            events.append(("cursor", pos))
            events.append(("rows", len(log_ids(path))))
        real_save(self, bot_id, cursor)

    monkeypatch.setattr(AppendLog, "append", append)
    monkeypatch.setattr(AppendLog, "sync", sync)
    monkeypatch.setattr(Store, "save_cursor", save_cursor)
    producer = threading.Thread(target=say_many, args=(bot, 600), daemon=True)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        producer.start()
        producer.join(30)
        feed.wait_rows(600, timeout=30)
        feed.stop()
        feed.wait(5)
    cursors = [i for i, (kind, _) in enumerate(events) if kind == "cursor"]
    assert len(cursors) >= 2 and events[cursors[-1]] == ("cursor", 600)
    for i in cursors:
        synced = max((n for kind, n in events[:i] if kind == "sync"), default=0)
        assert synced >= events[i][1], f"cursor at {events[i][1]} written with only {synced} rows fsync'd"
        assert events[i + 1][1] >= events[i][1]


def test_a_restart_rebuilds_the_frame_and_drops_what_the_server_serves_again(bot: Bot, home: Path) -> None:
    ids = say_many(bot, 30)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_rows(30)
        feed.stop()
        feed.wait(5)
    # The worst crash: the rows are on disk, the cursor is not, and the server never saw a later cursor.
    (home / "accounts" / f"{bot.bot_id}.sync.json").unlink()
    bot.sim.state._bots[bot.bot_id].acked = 0
    ids += say_many(bot, 5, start=30)
    with bot.client() as client:
        feed2 = client.stream(policy=FAST)
        assert len(feed2) == 30  # the frame is back before the first poll
        feed2.wait_rows(35)
        feed2.stop()
        feed2.wait(5)
    frame = feed2.frame
    assert frame["message_id"].tolist() == ids  # the 30 served again were dropped (same message_id)
    assert not frame["probable_duplicate"].any()
    assert log_ids(feed_log(home, bot)) == ids


def test_a_torn_last_line_costs_only_itself(bot: Bot, home: Path, tmp_path: Path) -> None:
    """A SIGKILL can stop a large append part way. The feed's own log drops that torn tail when it opens (the
    page is served again and written whole); the ``log_path`` copy keeps it as a line of its own."""
    copy = tmp_path / "copy.jsonl"
    ids = say_many(bot, 10)
    with bot.client() as client:
        feed = client.stream(policy=FAST, log_path=copy)
        feed.wait_rows(10)
        feed.stop()
        feed.wait(5)
    path = feed_log(home, bot)
    for torn in (path, copy):
        with open(torn, "a") as fh:
            fh.write('{"message_id": 12, "from_user_id": "cut sh')  # a crash in the middle of an append
    ids += say_many(bot, 3, start=10)
    with bot.client() as client, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feed2 = client.stream(policy=FAST, log_path=copy)
        feed2.wait_rows(13)
        feed2.stop()
        feed2.wait(5)
    assert any(issubclass(w.category, TornLineWarning) for w in caught)
    assert feed2.frame["message_id"].tolist() == ids
    assert log_ids(path) == ids  # every line whole: the torn tail was cut off
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = read_log(copy)
    # In the copy the torn part stays one line of its own (read as leniently as it can be), next to every whole
    # message.
    rows = again["raw"].tolist()
    assert len(rows) == len(ids) + 1 and rows[10].startswith('{"message_id": 12, "from_user_id": "cut sh')
    assert again["message_id"].tolist()[:10] + again["message_id"].tolist()[11:] == ids


def test_a_line_that_is_not_whole_json_is_left_out_of_the_frame(bot: Bot, home: Path) -> None:
    ids = say_many(bot, 4)
    with bot.client() as client:
        feed = client.stream(policy=FAST)
        feed.wait_rows(4)
        feed.stop()
        feed.wait(5)
    path = feed_log(home, bot)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], '{"message_id": 12, "from_user_id": "cut sh', *lines[2:]]) + "\n")
    with bot.client() as client:
        feed2 = client.stream(policy=FAST)
        assert feed2.frame["message_id"].tolist() == ids  # no made-up row from the cut-short line
        feed2.stop()
        feed2.wait(5)


def test_without_an_account_nothing_is_persisted(bot: Bot, home: Path) -> None:
    say_many(bot, 3)
    with bot.client() as client:
        client.bot_id = None
        feed = client.stream(policy=FAST)
        feed.wait_rows(3)
        feed.stop()
        feed.wait(5)
    accounts = home / "accounts"
    assert not accounts.exists() or list(accounts.iterdir()) == []
