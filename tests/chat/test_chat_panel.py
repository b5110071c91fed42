"""The chat panel against the simulator over real HTTP: what users send becomes the right bubbles (read from the
widget tree), the reply box sends text and files with the typing indicator on, a bubble opens into its redacted
exchange, a 100,000-message feed paints only its window, and the text fallback outside a widget front end."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.live import Feed, running_feed
from openclaw_nb.notebook.chat import ChatPanel
from openclaw_nb.protocol.flow import Reply
from openclaw_nb.sim import Simulator
from openclaw_nb.sim.state import _png

ALICE, BOB = "alice@im.wechat", "bob@im.wechat"
PNG = _png(6, 4, (200, 30, 30))
THUMB = _png(3, 2, (30, 30, 200))


def find(widget: Any, css: str) -> list[Any]:
    """Every widget under ``widget`` (itself included) that has the CSS class ``css``, in tree order."""
    found = [widget] if css in getattr(widget, "_dom_classes", ()) else []
    for child in getattr(widget, "children", ()):
        found += find(child, css)
    return found


def bubbles(panel: ChatPanel) -> dict[str, Any]:
    """The bubble widgets shown, by the message id (inbound) or client id (outbound) in their HTML."""
    out = {}
    for box in find(panel.widget, "wxchat-bubble"):
        body = find(box, "wxchat-body") or [box.children[0]]
        match = re.search(r"data-(?:message|client)-id='([^']+)'", body[0].value)
        assert match, body[0].value
        out[match.group(1)] = box
    return out


def classes(widget: Any) -> set[str]:
    return set(widget._dom_classes)


def body_of(box: Any) -> str:
    return str(box.children[0].value)


def value_set(widget: Any, name: str, ok: Any = bool, timeout: float = 10.0) -> Any:
    """Wait until ``ok(widget.<name>)`` holds, woken by the trait's observer (not a sleep); return the value."""
    changed = threading.Condition()

    def seen(_change: Any) -> None:
        with changed:
            changed.notify_all()

    widget.observe(seen, names=name)
    try:
        with changed:
            assert changed.wait_for(lambda: ok(getattr(widget, name)), timeout), f"{name}: {getattr(widget, name)!r}"
    finally:
        widget.unobserve(seen, names=name)
    return getattr(widget, name)


def test_messages_from_the_simulator_become_the_right_bubbles(
    sim: Simulator, client: Client, feed: Feed, tmp_path: Path
) -> None:
    first = sim.say("alice", "hello bot, how are you")
    photo = sim.send_image("alice", PNG)
    doc = sim.send_file("alice", b"the report body", "report.txt")
    voice = sim.send_voice("alice", b"#!SILK_V3 not really", text="see you at noon", playtime_ms=2500)
    clip = sim.send_video("alice", b"\x00\x00\x00\x18ftypmp42 a video", thumb=THUMB)
    quote = sim.say("alice", "about that", quote=first, partial="how are you")
    sim.configure(duplicate_rate=1.0, duplicate_new_id=True)
    sim.say("alice", "twice")
    sim.configure(duplicate_rate=0.0)
    sim.say("bob", "I am bob")
    panel = client.chat(user=ALICE, downloads=str(tmp_path / "dl"))
    try:
        panel.wait_shown(lambda p: len(p.shown) == 8)
        shown = bubbles(panel)
        assert len(shown) == 8

        text = shown[str(first["message_id"])]
        assert classes(text) >= {"wxchat-bubble", "wxchat-in", "wxchat-text"}
        assert "hello bot, how are you" in body_of(text)

        image = shown[str(photo["message_id"])]
        assert "wxchat-image" in classes(image)
        (inline,) = find(image, "wxchat-media")
        assert value_set(inline, "value") == PNG  # decrypted through the client's media download

        video = shown[str(clip["message_id"])]
        assert "wxchat-video" in classes(video)
        assert value_set(find(video, "wxchat-media")[0], "value") == THUMB  # its thumbnail

        file = shown[str(doc["message_id"])]
        assert "wxchat-file" in classes(file) and "report.txt" in body_of(file)
        (save,) = find(file, "wxchat-file-save")
        saved = file.children[file.children.index(save) + 1]
        save.click()
        value_set(saved, "value", lambda v: "saved to" in v)
        assert (tmp_path / "dl" / "report.txt").read_bytes() == b"the report body"

        spoken = shown[str(voice["message_id"])]
        assert "wxchat-voice" in classes(spoken)
        assert "see you at noon" in body_of(spoken) and "2.5 s" in body_of(spoken)

        quoting = shown[str(quote["message_id"])]
        html = body_of(quoting)
        assert "wxchat-quote wxchat-quote-partial" in html
        assert "hello bot, <mark>how are you</mark>" in html and "about that" in html

        twice = [box for box in shown.values() if "twice" in body_of(box)]
        assert len(twice) == 2
        assert ["wxchat-dup" in classes(box) for box in twice] == [False, True]
        assert "probable duplicate" in body_of(twice[1])

        # The conversation list: both users, bob's message unread, alice's selected.
        convs = {c["user"]: c for c in panel.conversations}
        assert convs[BOB]["unread"] == 1 and convs[ALICE]["unread"] == 0 and convs[ALICE]["messages"] == 8
        items = find(panel.widget, "wxchat-conv")
        selected = [b for b in items if "wxchat-conv-selected" in classes(b)]
        assert [b.tooltip for b in selected] == [ALICE]
        assert any(b.tooltip == BOB and "(1)" in b.description for b in items)
        bob_item = next(b for b in items if b.tooltip == BOB)
        bob_item.click()
        assert panel.selected == BOB and [m.text for m in panel.shown] == ["I am bob"]
        assert "wxchat-conv-selected" in classes(bob_item)
    finally:
        panel.close()


def test_a_new_message_shows_up_live_in_the_selected_conversation(sim: Simulator, client: Client, feed: Feed) -> None:
    sim.say("alice", "one")
    panel = client.chat()
    try:
        panel.wait_shown(lambda p: p.selected == ALICE and len(p.shown) == 1)
        widget = panel.widget
        later = sim.say("alice", "two")
        panel.wait_shown(message_id=later["message_id"])
        assert [body for body in map(body_of, find(widget, "wxchat-bubble")) if "two" in body]
        assert panel.feed is feed  # the running feed, not a second poller
    finally:
        panel.close()


def test_the_reply_box_sends_text_and_a_file_with_the_typing_indicator(
    sim: Simulator, client: Client, feed: Feed
) -> None:
    sim.say("alice", "send me the notes")
    panel = client.chat()
    try:
        panel.wait_shown(lambda p: len(p.shown) == 1 and client.reply_budget(ALICE).can_reply)
        (text,) = find(panel.widget, "wxchat-reply-text")
        (send,) = find(panel.widget, "wxchat-send")
        (attach,) = find(panel.widget, "wxchat-attach")
        (send_as,) = find(panel.widget, "wxchat-send-as")
        (budget,) = find(panel.widget, "wxchat-budget")
        assert "10 of 10 sends left" in budget.value and "h left in the 24 h window" in budget.value
        (typing_line,) = find(panel.widget, "wxchat-typing")
        lines: list[str] = []
        typing_line.observe(lambda change: lines.append(change["new"]), names="value")

        text.value = "here they come"
        send.click()
        (entry,) = sim.wait_for_outbox(1)
        assert entry.text == "here they come" and entry.to_user_id == ALICE
        panel.wait_shown(lambda p: text.value == "" and not p._sending)

        attach.value = (
            {
                "name": "notes.txt",
                "type": "text/plain",
                "size": 5,
                "content": memoryview(b"notes"),
                "last_modified": datetime.now(UTC),
            },
        )
        send_as.value = "file"
        send.click()
        sent = sim.wait_for_outbox(2)
        assert sent[-1].data == b"notes" and sent[-1].item_types == [4]
        panel.wait_shown(lambda p: sum(m.outgoing for m in p.shown) == 2 and attach.value == ())

        out = [box for box in find(panel.widget, "wxchat-bubble") if "wxchat-out" in classes(box)]
        assert ["wxchat-text" in classes(out[0]), "wxchat-file" in classes(out[1])] == [True, True]
        assert "here they come" in body_of(out[0]) and "notes.txt" in body_of(out[1])
        assert "8 of 10 sends left" in budget.value
        # The typing indicator went out around each reply: on (1) then off (2), twice.
        typing = [e.status for e in sim.typing_events if e.user_id == ALICE]
        assert typing == [1, 2, 1, 2]
        shown_while_sending = [line for line in lines if line]
        assert shown_while_sending == [f"typing… (shown to {ALICE} while the reply is uploaded and sent)"] * 2
        assert typing_line.value == ""
        (status,) = find(panel.widget, "wxchat-status")
        assert status.value == f"sent to {ALICE}"
    finally:
        panel.close()


def test_an_empty_reply_says_what_to_do_and_sends_nothing(sim: Simulator, client: Client, feed: Feed) -> None:
    sim.say("alice", "hi")
    panel = client.chat()
    try:
        panel.wait_shown(lambda p: len(p.shown) == 1)
        find(panel.widget, "wxchat-send")[0].click()
        assert "nothing to send: type a message or attach a file" in find(panel.widget, "wxchat-status")[0].value
        assert sim.outbox == []
    finally:
        panel.close()


def test_sends_made_elsewhere_show_as_bubbles_too(sim: Simulator, client: Client, feed: Feed) -> None:
    sim.say("alice", "hi")
    panel = client.chat()
    try:
        panel.wait_shown(lambda p: len(p.shown) == 1 and client.reply_budget(ALICE).can_reply)
        resp = client.send_text(ALICE, "sent from a cell")
        assert resp.client_id is not None
        panel.wait_shown(lambda p: any(m.outgoing and m.client_id == resp.client_id for m in p.shown))
        assert "sent from a cell" in body_of(bubbles(panel)[resp.client_id])
    finally:
        panel.close()


def test_a_bubble_opens_into_its_redacted_exchange(sim: Simulator, client: Client, feed: Feed) -> None:
    hello = sim.say("alice", "show me the wire")
    panel = client.chat()
    try:
        panel.wait_shown(message_id=hello["message_id"])
        assert client.reply_budget(ALICE).can_reply
        resp = panel.send("this is the wire")[0]
        panel.wait_shown(lambda p: any(m.client_id == resp.client_id for m in p.shown))
        shown = bubbles(panel)
        secrets = [client.token, hello["context_token"]]
        assert all(secrets)

        inbound = shown[str(hello["message_id"])]
        (toggle,) = find(inbound, "wxchat-wire-toggle")
        toggle.value = True
        (exchange,) = find(inbound, "wxchat-exchange")
        page = exchange.value
        assert "POST /ilink/bot/getupdates" in page and "show me the wire" in page
        assert "Bearer &lt;redacted" in page
        assert not [s for s in secrets if s in page]

        outbound = shown[resp.client_id]
        (toggle,) = find(outbound, "wxchat-wire-toggle")
        toggle.value = True
        sent = find(outbound, "wxchat-exchange")[0].value
        assert "POST /ilink/bot/sendmessage" in sent and "this is the wire" in sent and resp.client_id in sent
        assert not [s for s in secrets if s in sent]
        toggle.value = False
        assert find(outbound, "wxchat-exchange") == []
    finally:
        panel.close()


def _page(start: int, n: int, users: list[str], extra: list[str] = ()) -> bytes:  # type: ignore[assignment]
    msgs = []
    for i in range(start, start + n):
        t = 1_700_000_000_000 + i
        msgs.append(
            {
                "message_id": 10_000 + i,
                "from_user_id": users[i % len(users)],
                "to_user_id": "bot@im.bot",
                "create_time_ms": t,
                "message_type": 1,
                "item_list": [{"type": 1, "text_item": {"text": f"message {i}"}}],
                "context_token": base64.b64encode(i.to_bytes(8, "big")).decode(),
            }
        )
    body = json.dumps({"ret": 0, "msgs": msgs, "get_updates_buf": f"c{start}"})
    if extra:
        body = body.replace('"msgs": [', '"msgs": [' + ",".join(extra) + ",", 1)
    return body.encode()


def _unstarted_feed(client: Client) -> Feed:
    return client._new_feed(None, False, None, None)


def test_a_feed_of_100000_messages_paints_only_the_window(client: Client) -> None:
    feed = _unstarted_feed(client)
    users = [ALICE, BOB, "carol@im.wechat", "dave@im.wechat"]
    state = feed._stream.state
    for start in range(0, 100_000, 5_000):
        feed._take(state.receive(Reply(200, {}, _page(start, 5_000, users))), persist=False)
    feed.frame  # noqa: B018 - part of the rows in the built frame, the rest in the live lists
    for start in range(100_000, 100_400, 100):
        feed._take(state.receive(Reply(200, {}, _page(start, 100, users))), persist=False)
    assert len(feed) == 100_400
    panel = ChatPanel(client, feed=feed, window=50)
    try:
        assert sum(c["messages"] for c in panel.conversations) == 100_400
        assert panel.selected == "dave@im.wechat"  # the latest message is dave's
        shown = find(panel.widget, "wxchat-bubble")
        assert len(shown) == 50
        assert "message 100399" in body_of(shown[-1]) and "message 100203" in body_of(shown[0])
        find(panel.widget, "wxchat-older")[0].click()
        assert len(find(panel.widget, "wxchat-bubble")) == 100
        assert "message 100003" in body_of(find(panel.widget, "wxchat-bubble")[0])  # from the built frame
        panel.select(ALICE)
        assert len(find(panel.widget, "wxchat-bubble")) == 50
        assert [m.text for m in panel.shown][-1] == "message 100396"
        # A new message arrives: one more bubble, the window stays 50.
        feed._take(state.receive(Reply(200, {}, _page(100_400, 1, [ALICE]))), persist=False)
        panel.wait_shown(message_id=110_400)
        assert len(find(panel.widget, "wxchat-bubble")) == 50
    finally:
        panel.close()


def test_an_unreadable_entry_shows_raw_and_redacted(client: Client) -> None:
    feed = _unstarted_feed(client)
    token = "Q29udGV4dFRva2VuT2ZBbGljZQ=="
    deep = '{"type":1,"ref_msg":{"message_item":' * 5000 + '{"type":1}' + "}}" * 5000
    bad = '{"message_id":77,"context_token":"' + token + '","item_list":[' + deep + "]}"
    feed._take(feed._stream.state.receive(Reply(200, {}, _page(0, 1, [ALICE], [bad]))), persist=False)
    panel = ChatPanel(client, feed=feed, user="(unreadable)")
    try:
        (box,) = find(panel.widget, "wxchat-bubble")
        assert "wxchat-raw" in classes(box)
        assert "unreadable entry" in body_of(box) and token not in body_of(box)
        assert "unreadable" in panel._plain_text()
    finally:
        panel.close()


def test_the_text_fallback_lists_the_last_messages_per_conversation(sim: Simulator, client: Client, feed: Feed) -> None:
    sim.say("alice", "hello there")
    sim.say("bob", "bob here")
    panel = client.chat(user=ALICE)
    try:
        panel.wait_shown(lambda p: len(p.conversations) == 2 and client.reply_budget(ALICE).can_reply)
        panel.send("hi alice")
        panel.wait_shown(lambda p: len(p.shown) == 2)
        text = panel._plain_text()
        lines = text.splitlines()
        assert lines[0].startswith("chat: 2 conversations, 3 messages")
        assert any(line.startswith(f"▶ {ALICE} — 2 messages") for line in lines)
        assert any(line.startswith(f"{BOB} — 1 messages, 1 unread") for line in lines)
        assert any(line.endswith("← hello there") for line in lines)
        assert any(line.endswith("→ hi alice") for line in lines)
        assert "9 of 10 sends left on the current context token" in text
        assert repr(panel) == f"<ChatPanel: 2 conversations, 3 messages, showing {ALICE}>"
        pretty = __import__("IPython.lib.pretty", fromlist=["pretty"]).pretty(panel)
        assert pretty == text and str(panel) == text
    finally:
        panel.close()


def test_chat_starts_the_feed_when_none_runs_and_reuses_it_after(sim: Simulator, client: Client) -> None:
    assert running_feed(client) is None
    first = client.chat()
    try:
        started = first.feed
        assert running_feed(client) is started and started.running
        second = client.chat()
        assert second.feed is started
        second.close()
        hello = sim.say("alice", "are you there")
        first.wait_shown(message_id=hello["message_id"])
    finally:
        first.close()
        first.feed.stop()


def test_bad_arguments_say_what_to_pass(client: Client) -> None:
    feed = _unstarted_feed(client)
    with pytest.raises(Exception, match="window is how many to show at once, an int >= 1, got 0"):
        ChatPanel(client, feed=feed, window=0)
    panel = ChatPanel(client, feed=feed)
    try:
        with pytest.raises(Exception, match="no conversation is selected: select"):
            panel.send("hi")
        with pytest.raises(Exception, match="kind is 'image', 'file', 'video' or None"):
            panel.send("hi", user=ALICE, kind="gif")
        with pytest.raises(Exception, match="a file given as bytes needs name="):
            panel.send(user=ALICE, file=b"data")
    finally:
        panel.close()


def test_an_async_client_panel_follows_its_task_feed_and_sends(sim: Simulator) -> None:
    login = sim.login_bot("owner")

    async def main() -> None:
        async with AsyncClient(
            login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id
        ) as client:
            feed = client.stream(persist=False)
            panel = client.chat()
            try:
                hello = sim.say("alice", "async hello")
                await asyncio.to_thread(panel.wait_shown, message_id=hello["message_id"])
                photo = sim.send_image("alice", PNG)
                await asyncio.to_thread(panel.wait_shown, message_id=photo["message_id"])
                (inline,) = find(panel.widget, "wxchat-media")
                assert await asyncio.to_thread(value_set, inline, "value") == PNG  # downloaded on the client's loop
                answers = await panel.send("async reply")
                assert answers[0].client_id
                entries = await asyncio.to_thread(sim.wait_for_outbox, 1)
                assert entries[0].text == "async reply"
                await asyncio.to_thread(panel.wait_shown, lambda p: any(m.outgoing for m in p.shown))
                assert [e.status for e in sim.typing_events] == [1, 2]
            finally:
                panel.close()
                feed.stop()

    asyncio.run(main())


def test_an_image_sent_from_the_panel_shows_in_its_bubble(sim: Simulator, client: Client, feed: Feed) -> None:
    sim.say("alice", "a picture please")
    panel = client.chat()
    try:
        panel.wait_shown(lambda p: len(p.shown) == 1 and client.reply_budget(ALICE).can_reply)
        panel.send("here", file=PNG, name="dot.png")  # the kind follows the name: an image, after its caption
        sent = sim.wait_for_outbox(2)
        assert sent[0].text == "here" and sent[1].data == PNG and sent[1].item_types == [2]
        panel.wait_shown(lambda p: [m.kind for m in p.shown if m.outgoing] == ["text", "image"])
        image_box = [b for b in find(panel.widget, "wxchat-bubble") if "wxchat-image" in classes(b)]
        assert len(image_box) == 1 and "wxchat-out" in classes(image_box[0])
        assert find(image_box[0], "wxchat-media")[0].value == PNG  # what was sent, shown without a download
        assert find(image_box[0], "wxchat-file-save") == []
    finally:
        panel.close()


def test_a_refused_reply_says_why_under_the_reply_box(sim: Simulator, client: Client, feed: Feed) -> None:
    sim.add_user("zed")
    panel = client.chat(user="zed@im.wechat")  # zed never wrote: no context token, the server refuses
    try:
        (budget,) = find(panel.widget, "wxchat-budget")
        assert budget.value.startswith("zed@im.wechat: no reply possible now — the user has not written")
        find(panel.widget, "wxchat-reply-text")[0].value = "hello?"
        find(panel.widget, "wxchat-send")[0].click()
        (status,) = find(panel.widget, "wxchat-status")
        said = value_set(status, "value", lambda v: v.startswith("not sent:"))
        assert "no context_token was sent" in said and client.token not in said
        assert find(panel.widget, "wxchat-reply-text")[0].value == "hello?"  # kept, to try again
        assert sim.outbox == [] and find(panel.widget, "wxchat-typing")[0].value == ""
    finally:
        panel.close()


def test_an_unredacted_protocol_log_is_still_shown_redacted(sim: Simulator) -> None:
    login = sim.login_bot("owner")
    with pytest.warns(UserWarning, match="redact=False"):
        client = Client(
            login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id, redact=False
        )
    with client:
        hello = sim.say("alice", "keep my secrets")
        feed = client.stream(persist=False)
        panel = client.chat()
        try:
            panel.wait_shown(message_id=hello["message_id"])
            resp = panel.send("kept")[0]
            panel.wait_shown(lambda p: any(m.client_id == resp.client_id for m in p.shown))
            assert client.log[-1].request_headers["Authorization"] == f"Bearer {login.bot_token}"  # kept in the log
            for msg in panel.shown:
                page = panel.exchange_html(msg)
                assert "Bearer &lt;redacted" in page
                assert login.bot_token not in page and hello["context_token"] not in page
        finally:
            panel.close()
            feed.stop()
            feed.wait(10)


def test_the_status_line_says_when_the_feed_has_stopped(sim: Simulator, client: Client) -> None:
    feed = client.stream(persist=False)
    panel = client.chat()
    try:
        (status,) = find(panel.widget, "wxchat-status")
        assert status.value == ""
        feed.stop()
        said = value_set(status, "value", lambda v: "the feed has stopped" in v)
        assert "new messages do not show until one runs again" in said
    finally:
        panel.close()
        feed.wait(10)


def _next_ms() -> None:
    """Let the millisecond clock move on, so two events stamped one after the other never share a time."""
    start = time.time_ns() // 1_000_000
    deadline = time.monotonic() + 1.0
    while time.time_ns() // 1_000_000 <= start and time.monotonic() < deadline:
        pass


def _ids(panel: ChatPanel) -> list[Any]:
    return [m.client_id if m.outgoing else m.message_id for m in panel.shown]


def test_replies_sent_before_the_panel_opened_show_in_time_order(sim: Simulator, client: Client, feed: Feed) -> None:
    q1 = sim.say("alice", "question one")
    feed.wait_rows(1)
    _next_ms()
    a1 = client.send_text(ALICE, "answer one")
    _next_ms()
    q2 = sim.say("alice", "question two")
    feed.wait_rows(2)
    _next_ms()
    (row,) = client.broadcast([ALICE], "answer two", progress=False).rows  # an AsyncClient twin sends it
    assert row.client_id
    _next_ms()
    q3 = sim.say("alice", "question three")
    sim.say("bob", "someone else")
    feed.wait_rows(4)
    panel = client.chat(user=ALICE)
    try:
        panel.wait_shown(lambda p: len(p.shown) == 5)
        expected = [q1["message_id"], a1.client_id, q2["message_id"], row.client_id, q3["message_id"]]
        assert _ids(panel) == expected
        boxes = find(panel.widget, "wxchat-bubble")
        assert [("wxchat-out" in classes(b)) for b in boxes] == [False, True, False, True, False]
        assert "answer one" in body_of(boxes[1]) and "answer two" in body_of(boxes[3])
        assert list(bubbles(panel)) == [str(i) for i in expected]  # the widgets in the same order
        # A send after the panel opened comes through the listener, once.
        a3 = client.send_text(ALICE, "answer three")
        panel.wait_shown(lambda p: a3.client_id in _ids(p))
        assert _ids(panel) == [*expected, a3.client_id]
        panel.select(BOB)
        assert [m.outgoing for m in panel.shown] == [False]
    finally:
        panel.close()


def test_a_send_made_while_the_panel_opens_shows_once(sim: Simulator, client: Client, feed: Feed) -> None:
    sim.say("alice", "hi")
    feed.wait_rows(1)
    earlier = client.send_text(ALICE, "before")
    # Both roads bring the same send: the client's record of its sends and the live listener. The panel's own
    # listener is called first by hand here, the way it fires when a send lands between the two steps of opening.
    real = ChatPanel._seed_sent
    caught: list[ChatPanel] = []

    def seed_after_a_send(panel: ChatPanel) -> None:
        caught.append(panel)
        wire, resp = client._sent_recent[-1][1:]
        panel._on_sent(wire, resp)
        real(panel)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ChatPanel, "_seed_sent", seed_after_a_send)
        panel = client.chat()
    try:
        assert caught == [panel]
        panel.wait_shown(lambda p: len(p.shown) == 2)
        assert [m.client_id for m in panel.shown if m.outgoing] == [earlier.client_id]
        assert panel.conversations[0]["messages"] == 2
    finally:
        panel.close()


def test_an_async_client_panel_shows_replies_sent_before_it_opened(sim: Simulator) -> None:
    login = sim.login_bot("owner")

    async def main() -> None:
        async with AsyncClient(
            login.bot_token, base_url=sim.base_url, cdn_base_url=sim.cdn_base_url, bot_id=login.bot_id
        ) as client:
            feed = client.stream(persist=False)
            try:
                hello = sim.say("alice", "async question")
                await feed.until(1)
                _next_ms()
                sent = await client.send_text(ALICE, "async answer")
                panel = client.chat()
                try:
                    await asyncio.to_thread(panel.wait_shown, lambda p: len(p.shown) == 2)
                    assert _ids(panel) == [hello["message_id"], sent.client_id]
                finally:
                    panel.close()
            finally:
                feed.stop()

    asyncio.run(main())


def test_the_bubble_box_opens_on_the_newest_bubble_and_keeps_its_place_after(
    sim: Simulator, client: Client, feed: Feed
) -> None:
    sim.say("alice", "a1")
    sim.say("bob", "b1")
    feed.wait_rows(2)
    panel = client.chat(user=ALICE)
    try:
        panel.wait_shown(lambda p: len(p.shown) == 1)
        (box,) = find(panel.widget, "wxchat-bubbles")
        # Scrolls from its bottom (the browser keeps a column-reverse box's view on its end), oldest bubble first
        # in the tree all the same; the "older" button sits above it, outside what scrolls.
        assert (box.layout.flex_flow, box.layout.overflow) == ("column-reverse", "auto")
        (bubble_list,) = box.children
        assert "wxchat-bubble-list" in classes(bubble_list)
        assert find(box, "wxchat-older") == [] and len(find(panel.widget, "wxchat-older")) == 1
        # A new message and "older" keep the box (and so where the reader scrolled to) ...
        later = sim.say("alice", "a2")
        panel.wait_shown(message_id=later["message_id"])
        panel.older()
        assert find(panel.widget, "wxchat-bubbles") == [box]
        assert [body_of(b).count("a2") for b in find(box, "wxchat-bubble")] == [0, 1]
        # ... selecting a conversation opens a new one, which starts on the newest bubble.
        panel.select(BOB)
        (fresh,) = find(panel.widget, "wxchat-bubbles")
        assert fresh is not box and box.children == ()
        assert ["b1" in body_of(b) for b in find(fresh, "wxchat-bubble")] == [True]
        assert panel.bubble_widgets == tuple(find(fresh, "wxchat-bubble"))
    finally:
        panel.close()
