"""Every QR status branch against the simulator over real HTTP on 127.0.0.1, with both drivers.

A scripted phone (helpers.Phone) scans, confirms or expires QR codes as the login reports each step, so the
tests never wait on wall-clock time for the simulator to do something.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from pathlib import Path

import httpx
import pytest

from openclaw_nb.client import AsyncClient, Client
from openclaw_nb.login import LoginError
from openclaw_nb.protocol.login import (
    Finished,
    LoginEvent,
    LoginResult,
    LoginState,
    Outcome,
    PollFailed,
    PollRecovered,
    QrIssued,
    Redirected,
    StatusChanged,
    VerifyCodeRequested,
)
from openclaw_nb.sim import Simulator
from openclaw_nb.store import Credentials, Store

from .conftest import FAST
from .helpers import CountingTransport, Phone, faults_after_the_scan, typed


def status_requests(sim: Simulator) -> list[dict]:
    return [r for r in sim.requests if r["endpoint"] == "get_qrcode_status"]


def test_confirmed_sync(sim: Simulator, home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    phone = Phone(sim, user="alice")
    with Client(base_url=sim.base_url) as client:
        result = client.login(display="none", on_event=phone, **FAST)
        bot = sim.bots[result.bot_id]
        # The client is ready: new token, the returned baseurl, the bot id.
        assert client.token == bot.token and client.bot_id == bot.bot_id and client.base_url == sim.base_url
        assert client.get_updates(timeout=2).ret in (0, None)
        assert all(bot.token not in repr(ex) for ex in client.log)
    assert phone.states() == [LoginState.WAITING, LoginState.SCANNED, LoginState.CONFIRMED]
    assert result.ok and result.outcome == Outcome.CONFIRMED and result.new_token
    assert "login: Scanned: confirm the login on the phone" in caplog.text and bot.token not in caplog.text
    assert result.user_id == "alice@im.wechat" and result.qr_codes == 1
    saved = json.loads(Path(result.saved_to or "").read_text())
    assert saved["bot_token"] == bot.token and saved["ilink_bot_id"] == bot.bot_id
    assert Path(result.saved_to or "").parent == home / "accounts"
    (qr_request,) = [r for r in sim.requests if r["endpoint"] == "get_bot_qrcode"]
    assert qr_request["method"] == "POST" and qr_request["body"]["local_token_list"] == []
    assert qr_request["query"] == {"bot_type": "3"}


def test_confirmed_async(sim: Simulator, home: Path) -> None:
    phone = Phone(sim)

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            result = await client.login(display="none", on_event=phone, **FAST)
            assert result.ok and client.token == sim.bots[result.bot_id].token
            assert (await client.get_updates(timeout=2)).ret in (0, None)

    asyncio.run(main())
    assert phone.states()[-1] == LoginState.CONFIRMED


def test_verify_code_wrong_then_right(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(verify_code="246810", count=1)
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, ask=typed(["111111", "246810"]), **FAST)
    assert result.ok
    asked = [ev.wrong for ev in phone.events if isinstance(ev, VerifyCodeRequested)]
    assert asked == [False, True]
    sent = [r["query"].get("verify_code") for r in status_requests(sim)]
    assert [c for c in sent if c] == ["111111", "246810"]
    assert "Verify code accepted: confirm the login on the phone" in phone.messages()


def test_verify_code_blocked_refreshes_the_qr(sim: Simulator, home: Path) -> None:
    sim.configure(max_wrong_verify_codes=2)
    sim.set_qr_scenario(verify_code="999999", count=1)  # only the first QR code asks for a code
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, ask=typed(["1", "2"]), **FAST)
    issued = [ev for ev in phone.events if isinstance(ev, QrIssued)]
    assert [ev.reason for ev in issued] == ["first", "blocked"]
    assert sim.qrcodes[phone.qrcodes[0]].status == "verify_code_blocked"
    assert result.ok and result.qr_codes == 2


def test_expired_then_refreshed(sim: Simulator, home: Path) -> None:
    phone = Phone(sim, expire=2)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, **FAST)
    issued = [ev for ev in phone.events if isinstance(ev, QrIssued)]
    assert [(ev.qr.number, ev.reason) for ev in issued] == [(1, "first"), (2, "expired"), (3, "expired")]
    assert [ev.message for ev in issued][1] == "The QR code expired: refreshed 2/3"
    assert result.ok and result.qr_codes == 3


def test_expired_three_times_gives_up(sim: Simulator, home: Path) -> None:
    phone = Phone(sim, expire=99)
    before = sim.state.request_counts["get_bot_qrcode"]
    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
        client.login(display="none", on_event=phone, **FAST)
    assert sim.state.request_counts["get_bot_qrcode"] - before == 3
    result = info.value.result
    assert result.outcome == Outcome.EXPIRED and result.reason == "The QR code expired 3 times"
    assert "login()" in str(info.value)
    assert phone.states()[-1] == LoginState.FAILED
    assert not (home / "accounts").exists()


def test_scaned_but_redirect_polls_the_second_host(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(redirect=True, count=1)
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, **FAST)
    (redirected,) = [ev for ev in phone.events if isinstance(ev, Redirected)]
    assert redirected.base_url == sim.redirect_base_url and redirected.base_url.startswith("http://")
    roles = [r["host_role"] for r in status_requests(sim)]
    assert roles[0] == "primary" and roles[-1] == "redirect"
    assert roles.index("redirect") == roles.count("primary")  # never back to the first host
    assert result.ok and result.credentials is not None and result.credentials.baseurl == sim.base_url


def test_redirect_with_verify_code_on_the_second_host(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(redirect=True, verify_code="135790", count=1)
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, ask=typed(["135790"]), **FAST)
    assert result.ok
    (with_code,) = [r for r in status_requests(sim) if r["query"].get("verify_code")]
    assert with_code["host_role"] == "redirect"


def test_binded_redirect_uses_the_saved_login(sim: Simulator, home: Path) -> None:
    with Client(base_url=sim.base_url, record=False) as client:
        first = client.login(display="none", on_event=Phone(sim, user="alice"), **FAST)
    saved_path = Path(first.saved_to or "")
    before = saved_path.read_bytes(), os.stat(saved_path).st_ino
    # Same user, same bot: its token goes out in local_token_list, and the server says "already bound".
    phone = Phone(sim, user="alice")
    with Client(base_url=sim.base_url, record=False) as client:
        again = client.login(display="none", on_event=phone, **FAST)
        assert client.token == first.credentials.bot_token  # type: ignore[union-attr]
    assert again.ok and again.outcome == Outcome.BINDED and not again.new_token
    assert again.bot_id == first.bot_id and again.saved_to == str(saved_path)
    assert (saved_path.read_bytes(), os.stat(saved_path).st_ino) == before  # nothing rewritten
    bodies = [r["body"] for r in sim.requests if r["endpoint"] == "get_bot_qrcode"]
    assert bodies[-1]["local_token_list"] == [first.credentials.bot_token]  # type: ignore[union-attr]
    assert phone.messages()[-1].startswith("Already bound to this client")


def test_binded_redirect_with_several_saved_logins_names_them(sim: Simulator, home: Path) -> None:
    store = Store()
    for user in ("alice", "bob"):
        login = sim.login_bot(user)
        store.save_credentials(Credentials(login.bot_token, login.ilink_bot_id, login.baseurl, login.ilink_user_id))
    sim.set_qr_scenario(binded=True, count=1)
    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
        client.login(display="none", on_event=Phone(sim), **FAST)
    assert "Client.from_saved(bot_id)" in str(info.value) and client.token is None


def test_network_errors_and_client_timeouts_count_as_wait(sim: Simulator, home: Path) -> None:
    # The phone scans at once, but the next two polls are cut by a connection reset and the third is held
    # past the client's timeout: all three read as "wait", and the login carries on.
    sim.add_fault(reset=1.0, count=2, endpoints=["get_qrcode_status"])
    sim.add_fault(delay_ms=1500, count=1, endpoints=["get_qrcode_status"])
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, poll_timeout=0.5, **FAST)
    assert result.ok
    assert sim.faults == []  # every fault was met
    assert phone.states() == [LoginState.WAITING, LoginState.SCANNED, LoginState.CONFIRMED]


def test_deadline(sim: Simulator, home: Path) -> None:
    phone = Phone(sim, scan=False)
    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
        client.login(display="none", on_event=phone, **{**FAST, "deadline": 0.8})
    result = info.value.result
    assert result.outcome == Outcome.DEADLINE and "0.8 seconds" in result.reason
    assert result.elapsed >= 0.8  # it did not give up early (how late it stopped is the machine's business)
    assert phone.states() == [LoginState.WAITING, LoginState.FAILED]


def test_an_unscanned_qr_is_polled_until_the_server_expires_it(sim: Simulator, home: Path) -> None:
    # The client's own idea of a QR code's lifetime (qr_active_seconds) replaces nothing: the code is polled on
    # (each poll held the simulator's long-poll window, far past that lifetime) until the server says
    # "expired"; only then comes code 2/3, which the user scans.
    phone = Phone(sim, scan=False)

    def on_event(event: LoginEvent) -> None:
        phone(event)
        if isinstance(event, QrIssued) and event.qr.number == 2:
            sim.confirm(event.qr.qrcode)

    async def main() -> LoginResult:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            handle = client.start_login(on_event=on_event, qr_active_seconds=0.01, **FAST)
            await asyncio.wait_for(_until(lambda: len(phone.qrcodes) == 1), 5)
            first = phone.qrcodes[0]
            polls = lambda: [r for r in status_requests(sim) if r["query"]["qrcode"] == first]  # noqa: E731
            await asyncio.wait_for(_until(lambda: len(polls()) >= 3), 10)
            sim.expire(first)
            return await asyncio.wait_for(handle, 10)

    result = asyncio.run(main())
    assert result.ok and result.qr_codes == 2
    issued = [(ev.qr.number, ev.reason) for ev in phone.events if isinstance(ev, QrIssued)]
    assert issued == [(1, "first"), (2, "expired")]
    assert [r["endpoint"] for r in sim.requests].count("get_bot_qrcode") == 2


def test_cancel_async_makes_no_request_afterwards(sim: Simulator, home: Path) -> None:
    counting = CountingTransport()

    async def main() -> None:
        async with AsyncClient(base_url=sim.base_url, record=False, transport=counting) as client:
            polling = asyncio.Event()

            def on_event(event):  # type: ignore[no-untyped-def]
                if isinstance(event, QrIssued):
                    polling.set()

            handle = client.start_login(on_event=on_event, **FAST)
            await asyncio.wait_for(polling.wait(), 5)
            # Let a status poll get under way (the simulator holds it), then cancel in the middle of it.
            await asyncio.wait_for(_until(lambda: sim.state.request_counts["get_qrcode_status"] > before), 5)
            handle.cancel()
            with pytest.raises(LoginError) as info:
                await handle
            assert info.value.result.outcome == Outcome.CANCELLED and handle.status == LoginState.CANCELLED
            assert handle.task.done() and client.token is None
            sent = len(counting.paths)
            # Nothing is left that could send another poll: no task but this one is alive on the loop.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
            assert others == [], f"tasks still scheduled after cancel: {others}"
            assert len(counting.paths) == sent and client.token is None

    before = sim.state.request_counts["get_qrcode_status"]
    asyncio.run(main())


async def _until(predicate) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` every few milliseconds (the caller puts a deadline around it)."""
    while not predicate():
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("fault", ["reset", "http_502", "http_504"])
def test_no_answer_after_the_scan_keeps_scanned(sim: Simulator, home: Path, fault: str) -> None:
    # Scanned; then the next status poll is cut (connection reset) or answered by a gateway (502/504). That
    # reads as "wait" with no news: the status stays "scanned" while the user confirms on the phone.
    phone = Phone(sim)

    def on_event(event: LoginEvent) -> None:
        if isinstance(event, StatusChanged) and event.state == LoginState.SCANNED:
            sim.add_fault(**{fault: 1.0}, count=1, endpoints=["get_qrcode_status"])
        phone(event)  # confirms on "scanned": the poll after the faulty one brings "confirmed"

    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=on_event, **FAST)
    assert result.ok
    assert sim.faults == []  # the fault was met
    assert phone.states() == [LoginState.WAITING, LoginState.SCANNED, LoginState.CONFIRMED]
    assert "Waiting for a scan" not in phone.messages()


def test_verify_code_lost_to_a_reset_is_sent_again(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(verify_code="246810", count=1)
    phone = Phone(sim)

    def on_event(event: LoginEvent) -> None:
        if isinstance(event, VerifyCodeRequested):
            # The poll that carries the code is cut before the server sees it.
            sim.add_fault(reset=1.0, count=1, endpoints=["get_qrcode_status"])
        phone(event)

    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=on_event, ask=typed(["246810"]), **FAST)
    assert result.ok and sim.faults == []
    assert [ev.wrong for ev in phone.events if isinstance(ev, VerifyCodeRequested)] == [False]
    assert not any("wrong" in m for m in phone.messages())
    # The server saw the code once (the cut request never reached it), right, and counted no wrong code.
    assert [r["query"]["verify_code"] for r in status_requests(sim) if r["query"].get("verify_code")] == ["246810"]
    assert sim.qrcodes[phone.qrcodes[0]].wrong_codes == 0


def test_confirmed_with_another_baseurl_switches_the_client(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(baseurl="redirect", count=1)  # confirmed names the second host as the API base
    assert sim.redirect_base_url != sim.base_url
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=Phone(sim), **FAST)
        assert result.credentials is not None and result.credentials.baseurl == sim.redirect_base_url
        assert client.base_url == sim.redirect_base_url
        client.get_updates(timeout=2)  # the next call goes to the returned baseurl
    (qr_request,) = [r for r in sim.requests if r["endpoint"] == "get_bot_qrcode"]
    (updates,) = [r for r in sim.requests if r["endpoint"] == "get_updates"]
    assert qr_request["host_role"] == "primary" and updates["host_role"] == "redirect"
    saved = json.loads(Path(result.saved_to or "").read_text())
    assert saved["baseurl"] == sim.redirect_base_url
    with Client.from_saved(result.bot_id, record=False) as again:
        assert again.base_url == sim.redirect_base_url


def test_confirmed_without_bot_id_over_http(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(omit=["ilink_bot_id"], count=1)
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client, pytest.raises(LoginError) as info:
        client.login(display="none", on_event=phone, **FAST)
    assert client.token is None
    result = info.value.result
    assert result.outcome == Outcome.ERROR and "sent no ilink_bot_id" in result.reason
    assert "client.log" in result.hint and phone.states()[-1] == LoginState.FAILED
    (bot,) = sim.bots.values()  # the server did confirm (and made a bot); the client can't tell which
    assert bot.token not in str(info.value) and bot.token not in repr(result)
    assert not (home / "accounts").exists()


def test_unanswered_verify_code_prompt_ends_at_the_deadline_async(sim: Simulator, home: Path) -> None:
    # ask() blocks (nobody types) until the login has ended; the flow must not wait for it: the deadline ends
    # the login, and the event loop is never blocked by the question.
    sim.set_qr_scenario(verify_code="111111", count=1)
    released = threading.Event()
    timed_out: list[bool] = []

    def ask(prompt: str) -> str:
        if not released.wait(30):
            timed_out.append(True)
        raise EOFError

    phone = Phone(sim)

    def on_event(event: LoginEvent) -> None:
        phone(event)
        if isinstance(event, Finished):
            released.set()

    async def main() -> LoginResult:
        async with AsyncClient(base_url=sim.base_url, record=False) as client:
            with pytest.raises(LoginError) as info:
                await client.login(display="none", on_event=on_event, ask=ask, **{**FAST, "deadline": 2.0})
            return info.value.result

    try:
        result = asyncio.run(main())
    finally:
        released.set()
    assert result.outcome == Outcome.DEADLINE and not timed_out
    assert LoginState.NEED_VERIFY_CODE in phone.states()


def test_new_simulator_knobs_over_the_control_api(sim: Simulator, home: Path) -> None:
    # The knobs the tests above use, as a simulator in another process takes them (POST /_sim/...).
    with httpx.Client(base_url=sim.base_url) as http:
        for kind, status, text in (("http_502", 502, "Bad Gateway"), ("http_504", 504, "Gateway Timeout")):
            rule = http.post("/_sim/faults", json={kind: 1.0, "count": 1, "endpoints": ["get_qrcode_status"]})
            assert rule.status_code == 200 and rule.json()["rule"][kind] == 1.0
            answer = http.get("/ilink/bot/get_qrcode_status", params={"qrcode": "x"})
            assert (answer.status_code, answer.text) == (status, text)
        scenario = http.post("/_sim/qr_scenario", json={"count": 1, "baseurl": "redirect", "omit": ["ilink_user_id"]})
        assert scenario.status_code == 200 and scenario.json()["omit"] == ["ilink_user_id"]
        bad = http.post("/_sim/qr_scenario", json={"omit": ["status"]})
        assert bad.status_code >= 400 and "omit" in bad.text
    phone = Phone(sim, user="gus")
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, **FAST)
    assert result.credentials is not None and result.credentials.baseurl == sim.redirect_base_url
    assert result.user_id is None  # left out of the confirmed answer


# --- what the official client does (issue 14): failed polls are "wait", a redirect lasts, a code is re-sent ---


FAILING = ("http_524", "http_400", "not_json", "http_500", "http_429")


def test_a_login_survives_a_524_a_400_and_other_failed_polls(sim: Simulator, home: Path) -> None:
    phone = Phone(sim, user="hana")
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=faults_after_the_scan(sim, phone, *FAILING), **FAST)
    assert result.ok and result.user_id == "hana@im.wechat"
    assert sim.faults == []  # every fault was met, each by one poll: nothing is retried inside a poll
    failed = [ev for ev in phone.events if isinstance(ev, PollFailed)]
    assert [ev.failures for ev in failed] == [1, 2, 3, 4, 5]
    for ev, named in zip(failed, ("HTTP 524", "HTTP 400", "JSON", "HTTP 500", "HTTP 429"), strict=True):
        assert named in ev.error and ev.state == LoginState.SCANNED, ev
    (recovered,) = [ev for ev in phone.events if isinstance(ev, PollRecovered)]
    assert recovered.failures == 5
    assert phone.states() == [LoginState.WAITING, LoginState.SCANNED, LoginState.CONFIRMED]


def test_failed_polls_are_logged_as_warnings(sim: Simulator, home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="openclaw_nb.login")
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=faults_after_the_scan(sim, phone, "http_524"), **FAST)
    assert result.ok
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "A status poll failed: get_qrcode_status got HTTP 524" in warning.getMessage()
    token = result.credentials.bot_token  # type: ignore[union-attr]
    assert token not in caplog.text


def test_redirect_then_expiry_then_the_same_redirect_host(sim: Simulator, home: Path) -> None:
    # QR 1 is scanned and redirected, then expires; QR 2 (fetched from the default host as always) is polled
    # on the redirect host from its first poll, scanned and confirmed there.
    sim.set_qr_scenario(redirect=True, count=1)
    phone = Phone(sim, user="ivan", confirm=False)

    def on_event(event: LoginEvent) -> None:
        phone(event)  # scans every new code
        if isinstance(event, Redirected):
            sim.expire(phone.qrcodes[-1])
        elif isinstance(event, StatusChanged) and event.state == LoginState.SCANNED:
            sim.confirm(phone.qrcodes[-1])

    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=on_event, **FAST)
        assert client.base_url == sim.base_url  # the confirmed answer's baseurl
    assert result.ok and result.qr_codes == 2
    first, second = phone.qrcodes
    polls = status_requests(sim)
    roles_of_first = [r["host_role"] for r in polls if r["query"]["qrcode"] == first]
    assert roles_of_first[0] == "primary" and roles_of_first[-1] == "redirect"
    assert {r["host_role"] for r in polls if r["query"]["qrcode"] == second} == {"redirect"}
    assert {r["host_role"] for r in sim.requests if r["endpoint"] == "get_bot_qrcode"} == {"primary"}
    assert [type(ev).__name__ for ev in phone.events].count("Redirected") == 1


def test_confirmed_without_baseurl_after_a_redirect_keeps_the_default_host(sim: Simulator, home: Path) -> None:
    sim.set_qr_scenario(redirect=True, omit=["baseurl"], count=1)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=Phone(sim), **FAST)
        assert client.base_url == sim.base_url
    assert [r["host_role"] for r in status_requests(sim)][-1] == "redirect"  # confirmed there
    assert result.credentials is not None and result.credentials.baseurl == sim.base_url
    assert json.loads(Path(result.saved_to or "").read_text())["baseurl"] == sim.base_url


def test_a_verify_code_answered_late_is_sent_until_the_verdict(sim: Simulator, home: Path) -> None:
    # The server answers the first two polls that carry the code with "wait": the code goes out again with
    # each poll (it is typed once), and the third one gets "scaned".
    sim.set_qr_scenario(verify_code="246810", verify_late=2, count=1)
    phone = Phone(sim)
    with Client(base_url=sim.base_url, record=False) as client:
        result = client.login(display="none", on_event=phone, ask=typed(["246810"]), **FAST)
    assert result.ok
    sent = [r["query"].get("verify_code") for r in status_requests(sim)]
    assert [c for c in sent if c] == ["246810"] * 3
    assert sent[sent.index("246810") + 3 :] == [None] * (len(sent) - sent.index("246810") - 3)
    assert [ev.wrong for ev in phone.events if isinstance(ev, VerifyCodeRequested)] == [False]
    qr = sim.qrcodes[phone.qrcodes[0]]
    assert qr.codes_held == 2 and qr.wrong_codes == 0
    assert "Verify code accepted: confirm the login on the phone" in phone.messages()
