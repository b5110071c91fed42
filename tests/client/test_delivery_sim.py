"""Sending against the simulator over real HTTP: a send that may have reached the server is not repeated by
itself (DeliveryUnknownError with its client_id), one that provably did not is; the simulator's de-duplication
is an opt-in knob; long text goes out in 4,000-character parts, through the Markdown filter when asked, and
every message of one reply carries its run_id. Each test runs with Client and with AsyncClient."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import AsyncClient, new_run_id
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.flow import RetryPolicy
from openclaw_nb.protocol.text import TEXT_CHUNK_CHARS
from openclaw_nb.sim import SimConfig, Simulator
from openclaw_nb.sim.state import SimState

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
RETRY_SENDS = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, retry_sends=True)


@pytest.fixture(autouse=True)
def _default_dedupe(sim: Simulator) -> Iterator[None]:
    assert sim.config.dedupe_client_id is False, "the simulator de-duplicates only when asked to"
    yield
    sim.configure(dedupe_client_id=False)


def talk(sim: Simulator, client: Any) -> str:
    """A new user writes to the client's bot, and the client receives it (so it holds a context token)."""
    who = f"u{uuid.uuid4().hex[:10]}@im.wechat"
    sim.say(who, "hello", bot_id=client.bot_id)
    assert any(m.from_user_id == who for m in client.get_updates().messages)
    return who


def sent_to(sim: Simulator, who: str) -> list[Any]:
    return [e for e in sim.outbox if e.msg.get("to_user_id") == who]


def on_sleep(client: Any, action: Any) -> list[float]:
    """Run ``action`` instead of the client's back-off sleep (sync or async client); returns the waits asked."""
    target = getattr(client, "_client", client)
    seen: list[float] = []
    if isinstance(target, AsyncClient):

        async def fake(seconds: float) -> None:
            seen.append(seconds)
            action()

        target._sleep = fake
    else:

        def fake_sync(seconds: float) -> None:
            seen.append(seconds)
            action()

        target._sleep = fake_sync
    return seen


# --- the lost answer: default policy, retry_sends, and the simulator's de-duplication --------------------------


def test_lost_answer_is_not_sent_again_by_default(sim: Simulator, bot_client: Any) -> None:
    who = talk(sim, bot_client)
    sim.add_fault(lost_response=1.0, count=1, endpoints=["send_message"])
    with pytest.raises(E.DeliveryUnknownError) as info:
        bot_client.send_text(who, "only once")
    (stored,) = sent_to(sim, who)  # the server did the send; the client did not repeat it
    assert stored.text == "only once" and stored.msg["client_id"] == info.value.client_id
    err = info.value
    assert isinstance(err, E.TransportError) and err.endpoint == "send_message" and err.attempts == 1
    assert "may or may not have been delivered" in str(err) and repr(err.client_id) in str(err)
    # It may have used one of the token's sends, and the budget counts it so.
    peer = bot_client.peers[who]
    assert peer.sends_on_token == 1 and peer.last_error == f"delivery unknown (client_id {err.client_id})"


def test_lost_answer_with_retry_sends_and_no_dedupe_arrives_twice(sim: Simulator, make_client: Any) -> None:
    login = sim.login_bot()
    client = make_client(login.bot_token, bot_id=login.bot_id, retry=RETRY_SENDS)
    who = talk(sim, client)
    sim.add_fault(lost_response=1.0, count=1, endpoints=["send_message"])
    resp = client.send_text(who, "twice")
    stored = sent_to(sim, who)
    assert [e.text for e in stored] == ["twice", "twice"]  # the duplicate the default policy avoids
    assert {e.msg["client_id"] for e in stored} == {resp.client_id}
    assert resp.message_id == stored[1].msg["message_id"]


def test_lost_answer_with_retry_sends_and_dedupe_arrives_once(sim: Simulator, make_client: Any) -> None:
    sim.configure(dedupe_client_id=True)
    login = sim.login_bot()
    client = make_client(login.bot_token, bot_id=login.bot_id, retry=RETRY_SENDS)
    who = talk(sim, client)
    sim.add_fault(lost_response=1.0, count=1, endpoints=["send_message"])
    resp = client.send_text(who, "once")
    (stored,) = sent_to(sim, who)
    assert stored.text == "once" and resp.message_id == stored.msg["message_id"]


@pytest.mark.parametrize(("dedupe", "copies"), [(False, 2), (True, 1)])
def test_a_resend_with_the_same_client_id(sim: Simulator, bot_client: Any, dedupe: bool, copies: int) -> None:
    sim.configure(dedupe_client_id=dedupe)
    who = talk(sim, bot_client)
    first = bot_client.send_text(who, "again?", client_id="fixed:1-abcdef01")
    again = bot_client.send_text(who, "again?", client_id="fixed:1-abcdef01")
    stored = sent_to(sim, who)
    assert len(stored) == copies and {e.msg["client_id"] for e in stored} == {"fixed:1-abcdef01"}
    assert (first.message_id == again.message_id) is dedupe


# --- other answers that leave the delivery unknown, and a resend ---------------------------------------------


@pytest.mark.parametrize("fault", ["http_500", "http_502", "http_504", "reset"])
def test_no_usable_answer_is_not_retried_and_can_be_resent(sim: Simulator, bot_client: Any, fault: str) -> None:
    who = talk(sim, bot_client)
    sim.add_fault(**{fault: 1.0}, count=1, endpoints=["send_message"])
    with pytest.raises(E.DeliveryUnknownError) as info:
        bot_client.send_text(who, "did it arrive?")
    err = info.value
    assert err.attempts == 1 and err.client_id
    assert err.status_code == (None if fault == "reset" else int(fault[-3:]))
    assert sent_to(sim, who) == []  # these faults answer before the send is done: nothing arrived
    resent = bot_client.send_text(who, "did it arrive?", client_id=err.client_id)
    (stored,) = sent_to(sim, who)
    assert stored.msg["client_id"] == err.client_id == resent.client_id


def test_429_is_a_refusal_and_is_retried(sim: Simulator, bot_client: Any) -> None:
    who = talk(sim, bot_client)
    sleeps = on_sleep(bot_client, lambda: None)
    sim.add_fault(http_429=1.0, retry_after=0, count=1, endpoints=["send_message"])
    bot_client.send_text(who, "after a 429")
    assert [e.text for e in sent_to(sim, who)] == ["after a 429"] and sleeps == [0.0]


def test_a_send_that_could_not_connect_is_retried(make_client: Any) -> None:
    """Connection refused proves the server never saw the request: the send is retried, and arrives once. The
    server starts listening during the client's back-off, on the port the client was refused on."""
    state = SimState(SimConfig(long_poll_timeout=1.0))
    login = state.login_bot()
    ctx = state.say("ann", "hi", login.bot_id)["context_token"]
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))  # bound but not listening: connecting is refused
    port = closed.getsockname()[1]
    client = make_client(login.bot_token, bot_id=login.bot_id, base_url=f"http://127.0.0.1:{port}", retry=FAST_RETRY)
    started: list[Simulator] = []

    def start_server() -> None:
        if not started:
            closed.close()
            started.append(Simulator(state=state, port=port).start())

    try:
        sleeps = on_sleep(client, start_server)
        resp = client.send_text("ann@im.wechat", "after a refusal", context_token=ctx)
        assert len(sleeps) == 1 and started
        (stored,) = [e for e in state.outbox if e.msg.get("to_user_id") == "ann@im.wechat"]
        assert stored.text == "after a refusal" and stored.msg["client_id"] == resp.client_id
    finally:
        closed.close()
        for server in started:
            server.stop()


def test_refused_every_time_says_the_message_was_not_sent(make_client: Any) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    try:
        client = make_client("tok", base_url=f"http://127.0.0.1:{closed.getsockname()[1]}")
        on_sleep(client, lambda: None)
        with pytest.raises(E.TransportError) as info:
            client.send_text("ann@im.wechat", "hello", context_token="ctx")
    finally:
        closed.close()
    assert not isinstance(info.value, E.DeliveryUnknownError) and info.value.attempts == 3
    assert "no connection was made, so the message was not sent" in str(info.value)


# --- text rules -----------------------------------------------------------------------------------------------


def test_long_text_goes_out_in_4000_character_parts(sim: Simulator, bot_client: Any) -> None:
    who = talk(sim, bot_client)
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 370 for i in range(3))  # 5,593 ASCII characters
    resp = bot_client.send_text(who, text)
    texts = [e.text for e in sent_to(sim, who)]
    assert len(texts) == 2 and all(len(t) <= TEXT_CHUNK_CHARS for t in texts)
    assert texts[0].startswith("Paragraph 0.") and "Paragraph 1." in texts[0]
    assert texts[1].startswith("Paragraph 2.")  # cut at the paragraph that no longer fits
    assert [p.message_id for p in resp.parts] == [e.msg["message_id"] for e in sent_to(sim, who)]
    # max_chars=None: only the server's byte bound splits (one message of 5,593 bytes).
    bot_client.send_text(who, text, max_chars=None)
    assert sent_to(sim, who)[-1].text == text


def test_the_byte_bound_still_applies_to_wide_characters(sim: Simulator, bot_client: Any) -> None:
    who = talk(sim, bot_client)
    text = "😀" * 4500  # 4,500 characters of 4 bytes: 18,000 bytes, over the server's 16 KiB
    bot_client.send_text(who, text, max_chars=None)
    texts = [e.text for e in sent_to(sim, who)]
    assert "".join(texts) == text and all(len(t.encode()) <= C.MAX_TEXT_BYTES for t in texts) and len(texts) == 2
    assert all(e.problems == [] for e in sent_to(sim, who))


def test_markdown_official_filters_what_arrives(sim: Simulator, bot_client: Any) -> None:
    who = talk(sim, bot_client)
    source = "##### 小结\n*重要*: see ![chart](https://example.com/c.png)the **numbers** and *this*.\n"
    bot_client.send_text(who, source)  # off by default: sent as given
    bot_client.send_text(who, source, markdown="official")
    assert [e.text for e in sent_to(sim, who)] == [source, "小结\n重要: see the **numbers** and *this*.\n"]
    with pytest.raises(E.UsageError, match="empty after the Markdown filter"):
        bot_client.send_text(who, "![only](an-image.png)", markdown="official")
    with pytest.raises(E.UsageError, match=r"markdown must be None .* 'official'"):
        bot_client.send_text(who, "x", markdown="github")
    assert len(sent_to(sim, who)) == 2


def test_run_id_tags_every_message_of_a_reply(sim: Simulator, bot_client: Any) -> None:
    who = talk(sim, bot_client)
    run = new_run_id()
    assert str(uuid.UUID(run)) == run
    bot_client.send_text(who, "One.\n\nTwo.", max_chars=5, run_id=run)  # two parts, one reply
    bot_client.send_image(b"\x89PNG\r\n\x1a\n" + b"0" * 64, who, caption="a picture", run_id=run, progress=False)
    bot_client.send_text(who, "not a reply")
    stored = sent_to(sim, who)
    assert [e.msg.get("run_id") for e in stored] == [run, run, run, run, None]
    assert [e.item_types for e in stored][2:4] == [[C.ItemType.TEXT], [C.ItemType.IMAGE]]
    assert "run_id" not in sim.requests[-1]["body"]["msg"]
    with pytest.raises(E.UsageError, match="run_id must be a non-empty string"):
        bot_client.send_text(who, "x", run_id="")
    with pytest.raises(E.UsageError, match="run_id must be a non-empty string"):
        bot_client.send_file(b"x", who, run_id=5)
