"""Messages as DataFrames: exact dtypes, the same frame from every path, logs on disk, analysis helpers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from openclaw_nb import errors as E
from openclaw_nb import frames as F
from openclaw_nb.protocol import models as m
from openclaw_nb.protocol import poll as P
from openclaw_nb.protocol.redact import redact

BIG = 2**64 - 1
JUST_ABOVE = 2**53 + 1  # the first integer a float64 cannot hold

EXPECTED_DTYPES = {
    "seq": "Int64",
    "message_id": "UInt64",
    "from_user_id": "str",
    "to_user_id": "str",
    "session_id": "str",
    "group_id": "str",
    "client_id": "str",
    "create_time": "datetime64[ms, UTC]",
    "update_time": "datetime64[ms, UTC]",
    "message_type": "category",
    "message_state": "category",
    "item_types": "str",
    "text": "str",
    "has_media": "bool",
    "quoted": "str",
    "quoted_svr_id": "UInt64",
    "context_token": "str",
    "probable_duplicate": "bool",
    "received_time": "datetime64[ms, UTC]",
    "decode_error": "str",
    "raw": "str",
}


def msg(i: int, user: str = "alice@im.wechat", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": i,
        "message_id": BIG - i if i % 2 else JUST_ABOVE + i,
        "from_user_id": user,
        "to_user_id": "bot1@im.bot",
        "client_id": f"c{i}",
        "create_time_ms": 1_700_000_000_000 + i * 30_000,
        "update_time_ms": 1_700_000_000_000 + i * 30_000,
        "session_id": "",
        "group_id": "",
        "message_type": 1,
        "message_state": 2,
        "context_token": f"secret-token-{i}",
        "item_list": [{"type": 1, "text_item": {"text": f"<b>hello</b> {i}"}}],
    }
    out.update(kw)
    return out


MESSAGES = [
    *(msg(i, user=["alice@im.wechat", "bob@im.wechat"][i % 2]) for i in range(1, 9)),
    msg(9, item_list=[{"type": 2, "image_item": {"aeskey": "00" * 16, "media": {"encrypt_query_param": "P"}}}]),
    msg(10, message_type=2, from_user_id="bot1@im.bot", to_user_id="alice@im.wechat", create_time_ms=None),
    msg(11, message_type=9, message_state=None, item_list=[{"type": 1, "ref_msg": {"title": "q", "svr_id": BIG}}]),
]


def page_bytes(msgs: list[dict[str, Any]], cursor: str = "c") -> bytes:
    return json.dumps({"ret": 0, "msgs": msgs, "get_updates_buf": cursor}).encode()


def test_dtypes_are_exact() -> None:
    df = F.frame_from_messages(MESSAGES)
    assert {c: str(t) for c, t in df.dtypes.items()} == EXPECTED_DTYPES
    assert list(df.columns) == list(P.COLUMNS)
    assert df["message_id"].tolist() == [mm["message_id"] for mm in MESSAGES]  # exact above 2^53
    assert int(df["message_id"].iloc[1]) == JUST_ABOVE + 2 and int(df["message_id"].iloc[0]) == BIG - 1
    assert df["quoted_svr_id"].iloc[-1] == BIG and df["quoted"].iloc[-1] == "q"
    assert df["message_type"].cat.categories.tolist() == ["none", "user", "bot", "9"]
    assert df["message_type"].astype(str).tolist()[-3:] == ["user", "bot", "9"]
    assert pd.isna(df["message_state"].iloc[-1]) and pd.isna(df["create_time"].iloc[-2])
    assert df["create_time"].iloc[0] == pd.Timestamp(1_700_000_030_000, unit="ms", tz="UTC")
    assert df["received_time"].isna().all()  # not read live
    assert df["item_types"].iloc[8] == "image" and df["has_media"].iloc[8] and df["text"].iloc[8] == ""


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal frames; ``raw`` may differ in whitespace only (it keeps the server's bytes when it can)."""
    pd.testing.assert_frame_equal(a.drop(columns="raw"), b.drop(columns="raw"))
    assert a["raw"].map(json.loads).tolist() == b["raw"].map(json.loads).tolist()
    assert str(a["raw"].dtype) == str(b["raw"].dtype) == "str"


def test_every_path_gives_the_same_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = F.frame_from_messages(MESSAGES)
    pages = [page_bytes(MESSAGES[:4]), page_bytes(MESSAGES[4:]).decode()]
    spaced = F.frame_from_pages(pages)
    same(spaced, reference)
    assert spaced["raw"].iloc[0] == json.dumps(MESSAGES[0])  # the server's bytes, spaces and all
    as_models = [m.WeixinMessage.from_wire(x) for x in MESSAGES]
    # to_wire() leaves out null fields, so only the raw text differs
    pd.testing.assert_frame_equal(F.frame_from_messages(as_models).drop(columns="raw"), reference.drop(columns="raw"))
    same(F.frame_from_messages([json.dumps(x) for x in MESSAGES]), reference)
    same(F.frame_from_pages([{"msgs": MESSAGES}]), reference)
    monkeypatch.setattr(P, "USE_MSGSPEC", False)
    same(F.frame_from_pages(pages), reference)
    for room in (F.schema, F.buffer, F.ingest, F.logfiles):  # pandas alone (no pyarrow), wherever it is asked
        monkeypatch.setattr(room, "_have_arrow", lambda: False)
    same(F.frame_from_pages(pages), reference)


def test_bulk_ingest_dedups_and_flags_like_the_stream() -> None:
    again = dict(MESSAGES[0])  # the same message_id: dropped
    renumbered = dict(MESSAGES[0], message_id=42)  # same sender and text, new id: flagged
    df = F.frame_from_pages([page_bytes(MESSAGES[:2]), page_bytes([again, renumbered])])
    assert df["message_id"].tolist() == [MESSAGES[0]["message_id"], MESSAGES[1]["message_id"], 42]
    assert df["probable_duplicate"].tolist() == [False, False, True]
    assert len(F.frame_from_pages([page_bytes(MESSAGES[:2]), page_bytes([again])], dedup=False)) == 3


def test_bulk_ingest_without_raw() -> None:
    full = F.frame_from_pages([page_bytes(MESSAGES)])
    lean = F.frame_from_pages([page_bytes(MESSAGES)], raw=False)
    assert lean["raw"].isna().all() and str(lean["raw"].dtype) == "str"
    pd.testing.assert_frame_equal(lean.drop(columns="raw"), full.drop(columns="raw"))


def test_bulk_ingest_spans_several_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(F.ingest, "BATCH_ROWS", 3)
    many = [msg(i) for i in range(1, 40)]
    df = F.frame_from_pages([page_bytes(many[i : i + 5]) for i in range(0, 39, 5)])
    assert df["seq"].tolist() == list(range(1, 40)) and df["raw"].map(json.loads).tolist() == many


def test_buffer_materialises_incrementally_and_safely() -> None:
    buf = F.MessageBuffer()
    assert len(buf.frame()) == 0 and list(buf.frame().columns) == list(P.COLUMNS)
    cols, _, _ = P.decode_messages(MESSAGES[:3], received_ms=5)
    buf.extend(cols)
    first = buf.frame()
    cols, _, _ = P.decode_messages(MESSAGES[3:], received_ms=6)
    buf.extend(cols)
    second = buf.frame()
    assert len(first) == 3 and len(second) == len(MESSAGES)  # the first snapshot did not grow
    assert second.index.tolist() == list(range(len(MESSAGES)))
    assert str(second["message_type"].dtype) == "category" and second["message_type"].astype(str).iloc[-1] == "9"
    first["extra"] = 1  # a user's change to a snapshot must not leak into the buffer
    assert "extra" not in buf.frame()
    tail = buf.tail(2)
    assert [r["seq"] for r in tail] == [10, 11] and tail[0]["received_time"] == 6
    buf.frame()
    assert [r["seq"] for r in buf.tail(4)] == [8, 9, 10, 11]  # from the materialised frame too

    # a writer thread appends while a reader materialises: no row lost, none twice
    live = F.MessageBuffer()
    one, _, _ = P.decode_messages([msg(1)])

    def write() -> None:
        for _ in range(2000):
            live.extend(one)

    writer = threading.Thread(target=write)
    writer.start()
    sizes = []
    while writer.is_alive():
        sizes.append(len(live.frame()))
    writer.join()
    assert len(live.frame()) == 2000 and sizes == sorted(sizes)


def test_items_frame() -> None:
    df = F.frame_from_messages(MESSAGES)
    items = F.items_frame(df)
    assert len(items) == len(MESSAGES)  # one item each
    image = items[items["type"].astype(str) == "image"].iloc[0]
    assert image["key_source"] == "image_item.aeskey" and int(image["message_id"]) == MESSAGES[8]["message_id"]
    assert str(items["message_id"].dtype) == "UInt64" and str(items["create_time"].dtype) == "datetime64[ms, UTC]"


def test_parquet_dataset_round_trip_and_duckdb(tmp_path: Path) -> None:
    df = F.frame_from_messages(MESSAGES)
    out = F.save_log(df, tmp_path / "log", redact_secrets=False)
    parts = sorted(str(p.relative_to(out).parent) for p in out.rglob("*.parquet"))
    assert parts == ["bot=alice@im.wechat/date=2023-11-14", "bot=bot1@im.bot/date=2023-11-14"] or all(
        p.startswith("bot=") and "/date=" in p for p in parts
    )
    back = F.read_log(out)
    expected = df.sort_values("create_time", kind="stable", na_position="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_categorical=False)
    F.save_log(df, out, redact_secrets=False)  # saved twice: read once
    assert len(F.read_log(out)) == len(df) and len(F.read_log(out, dedup=False)) == 2 * len(df)
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT message_id, bot, date FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true) "
        "WHERE seq = 1 LIMIT 1"
    ).fetchall()
    assert rows[0][0] == MESSAGES[0]["message_id"] and rows[0][1] == "bot1@im.bot"


def test_saved_logs_redact_secrets_by_default(tmp_path: Path) -> None:
    df = F.frame_from_messages(MESSAGES)
    F.save_log(df, tmp_path / "log.jsonl")
    text = (tmp_path / "log.jsonl").read_text()
    assert "secret-token-1" not in text and redact("secret-token-1") in text and '"aeskey":"<redacted' in text
    back = F.read_log(tmp_path / "log.jsonl")
    assert back["context_token"].iloc[0] == redact("secret-token-1") and len(back) == len(df)
    F.save_log(df, tmp_path / "exact.jsonl", redact_secrets=False)
    pd.testing.assert_frame_equal(F.read_log(tmp_path / "exact.jsonl"), df)


def test_analysis_helpers() -> None:
    df = F.frame_from_messages(MESSAGES)
    per_user = F.messages_per_user(df)
    assert per_user.loc["alice@im.wechat", "messages"] == 6 and per_user.loc["bob@im.wechat", "messages"] == 4
    counts = F.per_minute(df)
    assert counts.sum() == len(df) - 1  # one message has no create_time
    convo = F.conversation(df, "alice@im.wechat")
    page = convo._repr_html_()
    assert "&lt;b&gt;hello&lt;/b&gt;" in page and "<b>hello</b> 2" not in page  # text is escaped
    assert "secret-token" not in page and "flex-end" in page  # the bot's message sits on the right
    assert "conversation with alice@im.wechat" in repr(convo)
    sent = pd.DataFrame(
        {"to_user_id": ["bob@im.wechat"], "time": [pd.Timestamp(1_700_000_000_000 + 2 * 30_000 + 1500, unit="ms")]}
    )
    lat = F.reply_latency(df, sent=sent)
    bob = lat[lat["user"] == "bob@im.wechat"].set_index("message_id")
    assert bob.loc[MESSAGES[0]["message_id"], "latency"] == pd.Timedelta(milliseconds=31_500)
    assert pd.isna(bob.loc[MESSAGES[2]["message_id"], "latency"])  # never answered


def test_timeline_plot_or_clear_error() -> None:
    df = F.frame_from_messages(MESSAGES)
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        with pytest.raises(F.E.UsageError, match="matplotlib"):
            F.timeline(df)
        return
    ax = F.timeline(df, by_user=True)
    assert ax.get_ylabel() == "messages per 1min"


def test_importing_the_package_does_not_import_pandas() -> None:
    code = (
        "import sys, openclaw_nb, openclaw_nb.client, openclaw_nb.updates, openclaw_nb.frames, "
        "openclaw_nb.live, openclaw_nb.protocol.poll; "
        "print('pandas' in sys.modules, 'pyarrow' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_live_buffer_keeps_exact_dtypes_through_many_small_reads() -> None:
    # A live feed reads after every page: small chunks, re-combined string chunks, then a big page.
    buf = F.MessageBuffer()
    for i in range(1, 21):
        cols, _, _ = P.decode_messages([msg(i)], received_ms=i)
        buf.extend(cols)
        buf.frame()
    cols, _, _ = P.decode_messages([msg(i) for i in range(21, 700)], received_ms=21)
    buf.extend(cols)
    df = buf.frame()
    assert {c: str(t) for c, t in df.dtypes.items()} == EXPECTED_DTYPES
    assert df["seq"].tolist() == list(range(1, 700))
    assert df["text"].iloc[0] == "<b>hello</b> 1" and pd.isna(df["quoted"].iloc[0])


@pytest.mark.parametrize("dedup_size", [3, 10, None])
def test_bulk_duplicate_rules_match_the_live_stream_exactly(dedup_size: int | None) -> None:
    # Re-served ids (near and far back), repeated texts within and beyond the window, missing ids and texts:
    # the vectorised bulk rules must pick the same rows and flags as the stream's page-by-page state.
    import random

    rng = random.Random(dedup_size or 7)
    sent: list[dict[str, Any]] = []
    for i in range(600):
        if sent and rng.random() < 0.15:
            sent.append(dict(rng.choice(sent[-40:])))  # the same message served again (same id)
            continue
        m = msg(i, user=rng.choice(["alice@im.wechat", "bob@im.wechat", "carol@im.wechat"]))
        m["create_time_ms"] = 1_700_000_000_000 + i * 7_000  # a window of 60 s spans ~9 messages
        m["message_id"] = 10**6 + i if rng.random() > 0.03 else None
        text = rng.choice(["ok", "hi", "see you", f"unique {i}"])
        m["item_list"] = [] if rng.random() < 0.05 else [{"type": 1, "text_item": {"text": text}}]
        sent.append(m)
    pages = [page_bytes(sent[i : i + 17]) for i in range(0, len(sent), 17)]

    state = P.PollState(P.PollPolicy(dedup_size=dedup_size or 10**9))
    live = F.MessageBuffer()
    for body in pages:
        decoded = P.decode_page(body, None)
        live.extend(state.accept(decoded.columns, decoded.signatures, 0).columns)
    expected = live.frame()

    bulk = F.frame_from_pages(pages, dedup_size=dedup_size)
    assert state.dropped > 0 and state.flagged > 0  # the data exercises both rules
    assert bulk["message_id"].tolist() == expected["message_id"].tolist()
    if dedup_size is None:
        # Every re-served copy is dropped, so the kept rows' times only go forward: there the stream's
        # detector forgets nothing it would need, and the flags must agree row for row.
        assert bulk["probable_duplicate"].tolist() == expected["probable_duplicate"].tolist()
        same(bulk, expected)


def test_bulk_flags_use_the_whole_input_even_out_of_order() -> None:
    # Bulk ingest sees the whole log: a copy arriving late (new id, same sender and text, created within
    # the window of the original) is flagged, whatever came in between; the live stream's bounded memory
    # may have forgotten the original by then.
    first = msg(1, create_time_ms=1_000_000)
    other = msg(2, create_time_ms=5_000_000, item_list=[{"type": 1, "text_item": {"text": "other"}}])
    late = dict(first, message_id=777, create_time_ms=1_030_000)
    far = dict(first, message_id=778, create_time_ms=1_000_000 + 61_000)
    df = F.frame_from_pages([page_bytes([first, other]), page_bytes([late, far])])
    assert df["probable_duplicate"].tolist() == [False, False, True, False]
    # a window of 0 turns the content rule off; dedup=False turns both off
    assert not F.frame_from_pages([page_bytes([first, late])], duplicate_window=0)["probable_duplicate"].any()
    assert len(F.frame_from_pages([page_bytes([first, first, late])], dedup=False)) == 3


def test_bulk_ingest_survives_ids_out_of_range() -> None:
    # An odd server: a negative id and one above 2**64. The row stays, its id is missing (not a crash).
    odd = [msg(1, message_id=-5), msg(2, message_id=2**64 + 3), msg(3)]
    df = F.frame_from_pages([page_bytes(odd)])
    assert df["seq"].tolist() == [1, 2, 3]
    assert df["message_id"].isna().tolist() == [True, True, False]


def test_bulk_flags_repeated_media_by_its_media_id() -> None:
    def image(i: int, param: str, **kw: Any) -> dict[str, Any]:
        item = {"type": 2, "image_item": {"aeskey": "00" * 16, "media": {"encrypt_query_param": param}}}
        return msg(i, item_list=[item], **kw)

    first = image(1, "P1")
    again = image(2, "P1", create_time_ms=first["create_time_ms"] + 5_000)  # same picture, new id: flagged
    other = image(3, "P2", create_time_ms=first["create_time_ms"] + 6_000)  # another picture: not flagged
    texted = msg(4, create_time_ms=first["create_time_ms"] + 7_000, item_list=[{"type": 1, "text_item": {"text": "x"}}])
    same_text = dict(texted, message_id=99, create_time_ms=texted["create_time_ms"] + 1)
    pages = [page_bytes([first, other, texted]), page_bytes([again, same_text])]
    for frame in (F.frame_from_pages(pages), F.frame_from_messages([first, other, texted, again, same_text])):
        assert frame["probable_duplicate"].tolist() == [False, False, False, True, True]
    state = P.PollState()
    flags = []
    for body in pages:
        decoded = P.decode_page(body, None)
        flags += state.accept(decoded.columns, decoded.signatures, 0).columns[P.COL["probable_duplicate"]]
    assert flags == [False, False, False, True, True]  # the stream agrees


def test_half_a_surrogate_pair_neither_stops_nor_loses_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # JSON may escape half of an emoji's surrogate pair; decoded, no UTF-8 (and no Arrow column) can hold it.
    odd = msg(2, item_list=[{"type": 1, "text_item": {"text": "half \\ud83d emoji"}}])
    body = page_bytes([msg(1), odd, msg(3)]).replace(b"\\\\ud83d", b"\\ud83d")
    assert b"\\ud83d" in body and b"\\\\ud83d" not in body
    for use_msgspec in (True, False):
        monkeypatch.setattr(P, "USE_MSGSPEC", use_msgspec)
        buf = F.MessageBuffer()
        buf.extend(P.decode_page(body, 1).columns)
        live = buf.frame()
        bulk = F.frame_from_pages([body])
        for df in (live, bulk):
            assert df["seq"].tolist() == [1, 2, 3]
            assert df["text"].iloc[1] == "half \ufffd emoji"  # replaced in the text column...
            assert json.loads(df["raw"].iloc[1])["item_list"][0]["text_item"]["text"] == "half \ud83d emoji"  # ...kept


def test_a_failed_build_loses_no_row(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = F.MessageBuffer()
    first, _, _ = P.decode_messages([msg(1), msg(2)])
    buf.extend(first)
    real = F.buffer._pieces
    monkeypatch.setattr(F.buffer, "_pieces", lambda columns: (_ for _ in ()).throw(MemoryError("no room")))
    with pytest.raises(MemoryError):
        buf.frame()
    later, _, _ = P.decode_messages([msg(3)])
    buf.extend(later)  # arrives while the first rows wait to be built again
    monkeypatch.setattr(F.buffer, "_pieces", real)
    assert buf.frame()["seq"].tolist() == [1, 2, 3]


def test_a_row_appended_during_the_first_read_is_neither_torn_nor_doubled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first read, before any row, must not build from the lists the feed thread is appending to."""
    buf = F.MessageBuffer()
    real = F.buffer._pieces
    row, _, _ = P.decode_messages([msg(1)])
    appended = []

    def pieces_while_a_row_arrives(columns: Any) -> Any:
        if not appended:  # the feed thread's append lands while the reader builds
            appended.append(buf.extend(row))
        return real(columns)

    monkeypatch.setattr(F.buffer, "_pieces", pieces_while_a_row_arrives)
    assert len(buf.frame()) == 0  # built before the row was announced to this reader
    assert appended == [1]
    assert buf.frame()["seq"].tolist() == [1]  # then exactly once
    assert buf.frame()["seq"].tolist() == [1]


def test_reads_in_a_loop_while_a_thread_appends_from_the_start() -> None:
    live = F.MessageBuffer()
    rows = [P.decode_messages([msg(i)])[0] for i in range(1, 301)]
    started = threading.Event()

    def write() -> None:
        started.set()
        for one in rows:
            live.extend(one)

    writer = threading.Thread(target=write)
    writer.start()
    started.wait(5)
    sizes = []
    while writer.is_alive():
        sizes.append(len(live.frame()))
    writer.join()
    assert live.frame()["seq"].tolist() == list(range(1, 301)) and sizes == sorted(sizes)


def test_ids_outside_uint64_are_missing_for_stream_and_bulk_alike() -> None:
    for odd_id in (-5, 2**64 + 3):
        pages = [page_bytes([msg(1, message_id=odd_id)])] * 2
        state = P.PollState()
        live = F.MessageBuffer()
        for body in pages:
            decoded = P.decode_page(body, None)
            live.extend(state.accept(decoded.columns, decoded.signatures, 0).columns)
        bulk = F.frame_from_pages(pages)
        for df in (live.frame(), bulk):
            assert len(df) == 2 and df["message_id"].isna().all()
            assert json.loads(df["raw"].iloc[0])["message_id"] == odd_id  # the raw text keeps it


def test_pages_of_different_kinds_in_one_ingest() -> None:
    spaced = page_bytes([msg(1)])  # bytes: raw kept as the server's bytes
    as_dict = {"ret": 0, "msgs": [msg(2)]}  # a decoded page: raw re-encoded
    with_nan = b'{"ret":0,"x":NaN,"msgs":[' + json.dumps(msg(3)).encode() + b"]}"  # only the stdlib reads NaN
    for pages in ([spaced, as_dict, with_nan], [as_dict, with_nan, spaced]):
        df = F.frame_from_pages(pages)
        assert sorted(df["seq"].tolist()) == [1, 2, 3]
        assert [json.loads(r)["seq"] for r in df["raw"]] == df["seq"].tolist()


def test_bulk_rejects_a_useless_dedup_size() -> None:
    for bad in (0, -1, 2.5, True):
        with pytest.raises(E.UsageError, match="dedup_size"):
            F.frame_from_pages([page_bytes([msg(1)])], dedup_size=bad)  # type: ignore[arg-type]


def test_unknown_categories_are_ordered_alike_live_and_bulk() -> None:
    odd = [msg(1, message_type=99), msg(2, message_type=50), msg(3, message_type=99), msg(4)]
    live = F.MessageBuffer()
    for m_ in odd:
        cols, _, _ = P.decode_messages([m_])
        live.extend(cols)
        live.frame()
    bulk = F.frame_from_messages(odd)
    expected = ["none", "user", "bot", "99", "50"]
    assert live.frame()["message_type"].cat.categories.tolist() == expected
    assert bulk["message_type"].cat.categories.tolist() == expected


def test_live_reads_one_row_at_a_time_equal_one_bulk_ingest() -> None:
    # A live feed read after every row: missing values that start (and stop) mid-way, a category first
    # seen late, string chunks merged past MAX_CHUNKS. The result is the frame one ingest of it all gives.
    rows = [msg(i) for i in range(1, 3 * F.MAX_CHUNKS)]
    rows[4]["message_id"] = None
    rows[9]["item_list"] = [{"type": 1, "ref_msg": {"svr_id": 2**64 - 2, "title": "q"}, "text_item": {"text": "re"}}]
    rows[12]["message_state"] = 77
    rows[15]["create_time_ms"] = None
    live = F.MessageBuffer()
    for row in rows:
        cols, _, _ = P.decode_messages([row])
        live.extend(cols)
        live.frame()
    df = live.frame()
    same(df, F.frame_from_messages(rows))
    assert int(df["quoted_svr_id"].iloc[9]) == 2**64 - 2 and df["quoted_svr_id"].isna().sum() == len(rows) - 1
    assert df["message_state"].cat.categories.tolist()[-1] == "77"
    assert all(df[c].array._pa_array.num_chunks <= F.MAX_CHUNKS for c in F.STR_COLUMNS)


def test_writing_to_a_snapshot_changes_neither_the_feed_nor_later_snapshots() -> None:
    buf = F.MessageBuffer()
    cols, _, _ = P.decode_messages([msg(1), msg(2)])
    buf.extend(cols)
    first = buf.frame()
    expected = first.copy(deep=True)
    first.loc[0, "seq"] = 999
    first.loc[0, "has_media"] = True
    first.loc[0, "message_id"] = 5
    first.loc[1, "create_time"] = pd.Timestamp("2000-01-01", tz="UTC")
    first.loc[1, "message_type"] = "bot"
    first.loc[1, "text"] = "changed"
    pd.testing.assert_frame_equal(buf.frame(), expected)  # the same rows, read again
    cols, _, _ = P.decode_messages([msg(3)])
    buf.extend(cols)
    again = buf.frame()
    pd.testing.assert_frame_equal(again.iloc[:2], expected)  # and after more rows were built on top
    again.loc[2, "seq"] = -1
    assert buf.frame()["seq"].tolist() == [1, 2, 3]
