"""Crash and resume (issue 15, "Tests that stay"): a consumer process — ``updates()``, and the live feed — is
killed with SIGKILL at random moments while 5,000 messages flow from the simulator (in this process, over
real HTTP on 127.0.0.1). After each kill the files it keeps parse; at the end it has received exactly the
messages sent, none lost. Duplicates only where documented: ``updates()`` hands out again the one message
the loop body held when the process died (at most one per kill, counted); the feed's log has none."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb.client import Client
from openclaw_nb.journal import read_lines
from openclaw_nb.sim import Simulator

from .relhelpers import Consumer, json_lines, until

MESSAGES = 5_000
KILLS = 10
USERS = [f"user{i}@im.wechat" for i in range(20)]


def check_files(accounts: Path, bot_id: str) -> None:
    """Every file the consumer keeps parses after a SIGKILL: JSON files whole, JSONL files line by line."""
    for suffix in (".sync.json", ".context-tokens.json"):
        path = accounts / f"{bot_id}{suffix}"
        if path.exists():
            json.loads(path.read_text())
    pending = accounts / f"{bot_id}.pending.sync.json"
    if pending.exists():
        lines, _ = read_lines(pending, warn=False)
        assert isinstance(json.loads(lines[0]), dict) and set(lines[1:]) <= {b"1"}
    rows, bad = json_lines(accounts / f"{bot_id}.feed.jsonl")
    assert bad == 0 and all(isinstance(r, dict) for r in rows)


def ids_written(out: Path) -> list[int]:
    if not out.exists():
        return []
    lines, _ = read_lines(out, warn=False)
    return [int(line) for line in lines if line != b"start"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["updates", "feed"])
def test_a_consumer_killed_at_random_loses_nothing(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    out = tmp_path / "out.txt"
    rng = random.Random(15)
    with Simulator(long_poll_timeout=0.3, seed=15) as sim:
        login = sim.login_bot("owner")
        accounts = home / "accounts"
        feed_log = accounts / f"{login.bot_id}.feed.jsonl"

        def progress() -> int:
            if mode == "updates":
                return len(ids_written(out))
            return len(json_lines(feed_log)[0])

        produced: list[int] = []
        failed: list[BaseException] = []

        def produce() -> None:
            # Keeps a backlog of at most 600 messages ahead of the consumer, so messages flow during the kills.
            try:
                for i in range(MESSAGES):
                    if i % 200 == 0:
                        until(lambda: progress() >= len(produced) - 600, 60, "the consumer to catch up")
                    produced.append(sim.say(USERS[i % len(USERS)], f"m{i}", bot_id=login.bot_id)["message_id"])
            except BaseException as exc:  # reported by the test below
                failed.append(exc)

        consumer = Consumer(mode, sim.base_url, login.bot_token, login.bot_id, home, out)
        consumer.start()
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        kill_points = sorted(rng.sample(range(300, MESSAGES - 300), KILLS))
        try:
            for point in kill_points:
                until(lambda p=point: progress() >= p, 60, f"{point} messages at the consumer")  # type: ignore[misc]
                consumer.kill()
                check_files(accounts, login.bot_id)
                consumer.start()
            producer.join(60)
            assert not failed, failed
            until(lambda: progress() >= MESSAGES, 60, "every message at the consumer")
        finally:
            consumer.kill()
        check_files(accounts, login.bot_id)
        assert consumer.starts == KILLS + 1
        if mode == "updates":
            until(lambda: set(ids_written(out)) >= set(produced), 30, "the last messages")
            got = ids_written(out)
            duplicates = len(got) - len(set(got))
            assert set(got) == set(produced) and len(produced) == MESSAGES
            assert duplicates <= KILLS  # only the message the loop body held when the process died
            with capsys.disabled():
                print(
                    f"\n[crash and resume, updates] {KILLS} kills, {MESSAGES} messages, {duplicates} handed out twice"
                )
        else:
            rows, _ = json_lines(feed_log)
            logged = [r["message_id"] for r in rows]
            assert len(logged) == len(set(logged)) == MESSAGES and set(logged) == set(produced)
            # A new feed in this process rebuilds the frame from the log, in the log's order.
            monkeypatch.setenv("OPENCLAW_NB_HOME", str(home))
            with Client(login.bot_token, base_url=sim.base_url, bot_id=login.bot_id, record=False) as client:
                feed: Any = client.stream(notify=False)
                assert feed.frame["message_id"].tolist() == logged
                feed.stop()
                feed.wait(10)
