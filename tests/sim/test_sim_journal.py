"""The simulator's write-ahead journal (``state_path``): a change is on disk before its HTTP answer goes out,
replaying the journal rebuilds exactly the state that answered, a timer folds it into the state file, and a
torn last record is skipped. Over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from simhelpers import LONG_POLL, call, sim_config, text_msg

from openclaw_nb.sim import Simulator
from openclaw_nb.sim.journal import StateJournal, journal_path
from openclaw_nb.sim.state import SimState


def from_disk(path: Path) -> SimState:
    """What a restart after a SIGKILL would load now: the state file plus its journal."""
    copy = SimState(sim_config())
    StateJournal(copy, path).load()
    return copy


def durable_view(state: SimState) -> dict[str, Any]:
    data = state.to_json()
    data.pop("clock_offset")
    return data


def test_every_answered_change_is_on_disk_before_the_answer(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with (
        Simulator(sim_config(), state_path=path, compact_interval=3600) as sim,
        httpx.Client(base_url=sim.base_url, timeout=LONG_POLL) as http,
    ):
        login = call(http, "get_bot_qrcode", params={"bot_type": "3"})  # a read: nothing to journal
        assert login["qrcode"]
        bot = http.post("/_sim/bots", json={"user_id": "owner"}).json()
        assert sim._journal is not None
        snapshots = sim._journal.snapshots
        for i in range(30):
            answer = http.post("/_sim/inbound", json={"from_user_id": f"u{i % 4}", "text": f"m{i}"})
            assert answer.status_code == 200
            # No wait, no stop: the answer came, so a process killed now would find the message on disk.
            inbox = from_disk(path).inbox(bot["ilink_bot_id"])
            assert [m["message_id"] for m in inbox][-1] == answer.json()["message_id"]
        assert sim._journal.snapshots == snapshots  # journal records only: no full snapshot per message


def test_replaying_the_journal_rebuilds_the_state_that_answered(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    config = sim_config(duplicate_rate=0.5, duplicate_new_id=True)
    with (
        Simulator(config, state_path=path, compact_interval=3600) as sim,
        httpx.Client(base_url=sim.base_url, timeout=LONG_POLL) as http,
    ):
        bot = http.post("/_sim/bots", json={"user_id": "owner"}).json()
        token = bot["bot_token"]
        for i in range(12):
            http.post("/_sim/inbound", json={"from_user_id": f"u{i % 3}", "text": f"m{i}"}).raise_for_status()
        page = call(http, "get_updates", {"get_updates_buf": ""}, token=token)
        call(http, "get_updates", {"get_updates_buf": page["get_updates_buf"]}, token=token)  # acknowledges
        ctx = page["msgs"][-1]["context_token"]
        user = page["msgs"][-1]["from_user_id"]
        sent = call(http, "send_message", text_msg(user, ctx, "reply", client_id="c:1"), token=token)
        assert sent["ret"] == 0
        ticket = call(http, "get_config", {"ilink_user_id": user}, token=token)["typing_ticket"]
        call(http, "send_typing", {"ilink_user_id": user, "typing_ticket": ticket, "status": 1}, token=token)
        call(http, "notify_start", {}, token=token)
        kinds = [json.loads(line)[1] for line in journal_path(path).read_text().splitlines()]
        assert {"deliver", "ack", "user", "send", "ticket", "typing", "notify"} <= set(kinds)
        assert durable_view(from_disk(path)) == durable_view(sim.state)
        sim.save()  # folds the journal into the state file and empties it
        assert journal_path(path).read_text() == ""
        assert durable_view(from_disk(path)) == durable_view(sim.state)


def test_the_timer_folds_the_journal_into_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with Simulator(sim_config(), state_path=path, compact_interval=0.2) as sim:
        login = sim.login_bot("owner")
        before = sim._journal.snapshots if sim._journal is not None else 0
        sim.say("alice", "fold me", bot_id=login.bot_id)
        sim.wait_saved(LONG_POLL)
        deadline = time.monotonic() + LONG_POLL
        pause = threading.Event()
        while sim._journal is not None and sim._journal.snapshots == before and time.monotonic() < deadline:
            pause.wait(0.02)
        assert sim._journal is not None and sim._journal.snapshots > before
        saved = json.loads(path.read_text())
        assert saved["bots"][0]["inbox"][0]["item_list"][0]["text_item"]["text"] == "fold me"


def test_a_torn_last_record_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with (
        Simulator(sim_config(), state_path=path, compact_interval=3600) as sim,
        httpx.Client(base_url=sim.base_url, timeout=LONG_POLL) as http,
    ):
        bot = http.post("/_sim/bots", json={"user_id": "owner"}).json()
        ids = [
            http.post("/_sim/inbound", json={"from_user_id": "amy", "text": f"m{i}"}).json()["message_id"]
            for i in range(3)
        ]
        journal = journal_path(path).read_bytes()
        state_file = path.read_bytes()
    # As a SIGKILL in the middle of a journal write would leave it: a fourth record cut short.
    path.write_bytes(state_file)
    journal_path(path).write_bytes(journal + b'[99,"deliver","' + bot["ilink_bot_id"].encode())
    with Simulator(sim_config(), state_path=path) as again:
        assert [m["message_id"] for m in again.state.inbox(bot["ilink_bot_id"])] == ids


def test_an_unknown_record_is_an_error() -> None:
    with pytest.raises(Exception, match="unknown simulator journal record"):
        SimState(sim_config()).apply_record(["from the future"])


def test_a_change_after_an_acknowledgement_is_on_disk_too(tmp_path: Path) -> None:
    """An acknowledgement journals a record without the usual bookkeeping call after it; the next change, which
    has no record kind of its own (revoking a token), must still reach the disk before its answer."""
    path = tmp_path / "state.json"
    with (
        Simulator(sim_config(), state_path=path, compact_interval=3600) as sim,
        httpx.Client(base_url=sim.base_url, timeout=LONG_POLL) as http,
    ):
        bot = http.post("/_sim/bots", json={"user_id": "owner"}).json()
        http.post("/_sim/inbound", json={"from_user_id": "amy", "text": "hi"}).raise_for_status()
        page = call(http, "get_updates", {"get_updates_buf": ""}, token=bot["bot_token"])
        call(http, "get_updates", {"get_updates_buf": page["get_updates_buf"]}, token=bot["bot_token"])
        http.post(f"/_sim/bots/{bot['ilink_bot_id']}/revoke").raise_for_status()
        on_disk = from_disk(path)
        assert on_disk.bots[bot["ilink_bot_id"]].token == "" and on_disk.bots[bot["ilink_bot_id"]].acked == 1
