"""The live feed's secrets: its ``log_path`` file is redacted by default (0600 in a 0700 folder), and
``feed.frame`` displays redacted while its data stays exact."""

from __future__ import annotations

import stat
from pathlib import Path

import pandas as pd

from openclaw_nb.client import Client
from openclaw_nb.frames import read_log
from openclaw_nb.sim import Simulator

IMAGE = bytes(range(256)) * 8


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_feed(sim: Simulator, log_path: Path, **kw: object) -> tuple[pd.DataFrame, list[str], str]:
    """A feed over a text and an image; returns its frame, the secrets the messages carried, and the log."""
    login = sim.login_bot("alice")
    sim.say("alice", "hello")
    sim.send_image("alice", IMAGE)
    with Client(login.bot_token, base_url=sim.base_url, record=False) as client:
        feed = client.stream(persist=False, log_path=log_path, notify=False, **kw)  # type: ignore[arg-type]
        frame = feed.wait_for(2)
        feed.stop()
        feed.wait(10)
    secrets = [t for t in frame["context_token"] if t]
    for msg in sim.state.bots[login.ilink_bot_id].inbox:
        for item in msg.get("item_list", []):
            image = item.get("image_item")
            if image:
                secrets += [image["aeskey"], image["media"]["aes_key"], image["media"]["encrypt_query_param"]]
    assert len(secrets) >= 5
    return frame, secrets, log_path.read_text(encoding="utf-8")


def test_log_path_is_redacted_by_default_and_private(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "logs" / "feed.jsonl"
    frame, secrets, text = run_feed(sim, path)
    assert len(text.splitlines()) == 2 and text.count("<redacted ") >= 5
    leaks = [s[:4] for s in secrets if s in text]
    assert not leaks
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    back = read_log(path)
    assert back["message_id"].tolist() == frame["message_id"].tolist()  # every row is still there


def test_log_path_keeps_secrets_when_asked(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "exact.jsonl"
    _frame, secrets, text = run_feed(sim, path, redact_log=False)
    assert all(s in text for s in secrets)
    assert mode(path) == 0o600


def test_the_frame_displays_redacted_and_keeps_its_data(sim: Simulator, tmp_path: Path) -> None:
    frame, secrets, _ = run_feed(sim, tmp_path / "f.jsonl")
    tokens = [t for t in frame["context_token"] if t]
    assert tokens and all(t in secrets for t in tokens)  # the data is exact: replies need it
    shown = {
        "repr": repr(frame),
        "html": frame._repr_html_() or "",
        "to_string": frame.to_string(),
        "to_html": frame.to_html(),
        "tail repr": repr(frame.tail(1)),
        "filtered html": frame[frame["message_type"].astype(str) != "bot"]._repr_html_() or "",
    }
    for where, text in shown.items():
        if "repr" not in where:  # a text repr in 80 columns leaves the column out
            assert "<redacted " in text or "&lt;redacted " in text, where
        assert not [s[:4] for s in secrets if s in text], where
        assert not [t[:4] for t in tokens if t[:24] in text], where  # not even the start a column cut shows
