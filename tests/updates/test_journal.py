"""Append-only JSONL files after a crash: a torn last line is reported, not fatal (``read_lines``,
``read_log``), and the next append (``AppendLog``, ``save_log``) starts on a fresh line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from openclaw_nb.frames import frame_from_messages, read_log, save_log
from openclaw_nb.journal import AppendLog, TornLineWarning, read_lines


def message(i: int) -> str:
    return json.dumps(
        {
            "message_id": 1000 + i,
            "from_user_id": "amy@im.wechat",
            "message_type": 1,
            "create_time_ms": 1_700_000_000_000 + i,
            "item_list": [{"type": 1, "text_item": {"text": f"line {i}"}}],
        }
    )


def test_read_lines_leaves_out_a_torn_tail_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"b": 2}\n{"c": ')
    with pytest.warns(TornLineWarning, match="partial line of 6 characters"):
        lines, torn = read_lines(path)
    assert lines == [b'{"a": 1}', b'{"b": 2}'] and torn == '{"c": '
    path.write_bytes(b'{"a": 1}\n')
    assert read_lines(path, warn=False) == ([b'{"a": 1}'], None)


def test_append_log_starts_a_fresh_line_after_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "log.jsonl"
    out = AppendLog(path)
    out.append(["one", "two\nstill two"])  # a raw newline never splits a record
    out.sync()
    with open(path, "a") as fh:
        fh.write("thr")  # another writer cut short
    out.append(["four"])
    out.close()
    assert path.read_text().splitlines() == ["one", "two still two", "thr", "four"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_read_log_reads_every_whole_line_of_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    whole = [message(i) for i in range(50)]
    path.write_text("\n".join(whole) + "\n" + message(50)[:37])
    with pytest.warns(TornLineWarning):
        df = read_log(path)
    assert df["message_id"].tolist() == [1000 + i for i in range(50)]
    # The next save appends on a fresh line: the torn part stays one line, and the new rows read back whole.
    save_log(frame_from_messages([message(60), message(61)]), path, redact_secrets=False)
    lines = path.read_text().splitlines()
    assert len(lines) == 53 and lines[50] == message(50)[:37]
    df = read_log(path)
    assert df["message_id"].tolist()[-2:] == [1060, 1061]
    assert set(range(1000, 1050)) <= set(df["message_id"].tolist())


def test_append_log_can_drop_a_torn_tail_instead(tmp_path: Path) -> None:
    path = tmp_path / "own.jsonl"
    path.write_text('{"a": 1}\n{"b": ')
    out = AppendLog(path, drop_torn=True)
    out.append(['{"c": 3}'])
    out.close()
    assert path.read_text() == '{"a": 1}\n{"c": 3}\n'
