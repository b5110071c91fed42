"""Lost responses (issue 15, "Tests that stay"): a ``sendmessage`` whose answer is lost leaves one message at
the simulator; when every attempt's answer is lost, the error says the message may have been delivered and
carries the ``client_id``, and a re-send with it is safe. Both drivers, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.protocol.flow import RetryPolicy
from openclaw_nb.sim import Simulator

#: Sends retried (the opt-in), fast, three attempts.
RETRY_SENDS = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, retry_sends=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(long_poll_timeout=0.5, dedupe_client_id=True) as s:
        yield s


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> Iterator[None]:
    yield
    sim.clear_faults()


def run(driver: str, login: Any, sim: Simulator, action: Any) -> Any:
    """Run ``action(client)`` with a Client, or an AsyncClient on its own loop (``action`` may return a
    coroutine there)."""
    kw: dict[str, Any] = {"base_url": sim.base_url, "bot_id": login.bot_id, "retry": RETRY_SENDS, "record": False}
    if driver == "sync":
        with Client(login.bot_token, **kw) as client:
            return action(client)

    async def main() -> Any:
        async with AsyncClient(login.bot_token, **kw) as client:
            return await action(client)

    return asyncio.run(main())


def talk(sim: Simulator, login: Any, driver: str) -> str:
    """A new user writes to the bot and the client sees it (so it holds the user's context token)."""
    who = f"u{uuid.uuid4().hex[:10]}@im.wechat"
    sim.say(who, "hello", bot_id=login.bot_id)
    return who


def stored(sim: Simulator, who: str) -> list[Any]:
    return [e for e in sim.outbox if e.msg.get("to_user_id") == who]


def receive_and(driver: str, then: Any) -> Any:
    """An action that first takes the waiting messages (context tokens), then runs ``then(client)``."""
    if driver == "sync":

        def sync_action(client: Any) -> Any:
            client.get_updates()
            return then(client)

        return sync_action

    async def async_action(client: Any) -> Any:
        await client.get_updates()
        result = then(client)
        return await result if asyncio.iscoroutine(result) else result

    return async_action


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_one_lost_answer_leaves_one_message(sim: Simulator, driver: str) -> None:
    login = sim.login_bot()
    who = talk(sim, login, driver)
    sim.add_fault(lost_response=1.0, count=1, endpoints=["send_message"])
    resp = run(driver, login, sim, receive_and(driver, lambda c: c.send_text(who, "exactly one")))
    (entry,) = stored(sim, who)  # the second attempt was recognised by its client_id
    assert entry.text == "exactly one" and entry.msg["client_id"] == resp.client_id
    assert resp.message_id == entry.msg["message_id"]


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_every_answer_lost_says_so_and_a_resend_with_the_client_id_is_safe(sim: Simulator, driver: str) -> None:
    login = sim.login_bot()
    who = talk(sim, login, driver)
    sim.add_fault(lost_response=1.0, endpoints=["send_message"])  # every attempt's answer is lost

    def send(client: Any) -> Any:
        return client.send_text(who, "did it arrive?")

    with pytest.raises(E.DeliveryUnknownError) as info:
        run(driver, login, sim, receive_and(driver, send))
    err = info.value
    assert err.attempts == 3 and err.endpoint == "send_message"
    assert "may or may not have been delivered" in str(err) and repr(err.client_id) in str(err)
    (entry,) = stored(sim, who)  # three attempts, one message: the simulator de-duplicates by client_id
    assert entry.msg["client_id"] == err.client_id
    sim.clear_faults()
    again = run(
        driver, login, sim, receive_and(driver, lambda c: c.send_text(who, "did it arrive?", client_id=err.client_id))
    )
    assert [e.msg["message_id"] for e in stored(sim, who)] == [again.message_id]  # still one message
