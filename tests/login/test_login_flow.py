"""The sans-I/O login flow driven by hand: the client's real request flows, scripted replies, a fake clock.

Everything here is decided without a network: which request comes next, what each status does, when the
flow sleeps, gives up or stops. The simulator tests (test_login_sim.py) show the same over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import BaseClient
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.flow import Failure, Reply, RetryPolicy, Send, Sleep
from openclaw_nb.protocol.login import (
    Finished,
    LoginConfig,
    LoginCredentials,
    LoginResult,
    LoginSession,
    LoginState,
    Outcome,
    PollFailed,
    PollRecovered,
    QrIssued,
    Redirected,
    StatusChanged,
    VerifyCodeRequested,
    bound_account,
    local_tokens,
    login_flow,
    qr_lifetime,
    redirect_base,
)
from openclaw_nb.protocol.models import QrCodeResp, QrStatusResp
from openclaw_nb.store import Credentials

BASE = "https://api.test"
TOKEN = "secret-bot-token-0123456789"


@dataclass
class Clock:
    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


def reply(body: dict[str, Any], status: int = 200) -> Reply:
    return Reply(status, {}, json.dumps(body).encode())


QR = {"ret": 0, "qrcode": "qr-1", "qrcode_img_content": "https://scan.test/q/qr-1"}


@dataclass
class Run:
    """Drives a login flow: answers each Send with ``answer(send)``, advances the clock on Sleep (and by a
    request's timeout when the answer is a timeout)."""

    answer: Callable[[Send], Reply | Failure]
    config: LoginConfig = field(default_factory=lambda: LoginConfig(poll_interval=1.0))
    saved: list[Any] = field(default_factory=list)
    on_event: Callable[[Any, LoginSession], None] | None = None
    on_sleep: Callable[[Sleep, LoginSession], None] | None = None
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=1))
    clock: Clock = field(default_factory=Clock)
    sends: list[Send] = field(default_factory=list)
    sleeps: list[Sleep] = field(default_factory=list)

    def go(self) -> tuple[LoginResult, LoginSession]:
        client = BaseClient(base_url=BASE, record=False, retry=self.retry)
        session = LoginSession(self.config, clock=self.clock)
        on_event = self.on_event
        if on_event is not None:
            session.subscribe(lambda ev: on_event(ev, session))
        flow = login_flow(
            session,
            get_qrcode=client._get_bot_qrcode_flow,
            get_status=client._get_qrcode_status_flow,
            base_url=BASE,
            saved=self.saved,
        )
        action: Any = next(flow)
        try:
            while True:
                if isinstance(action, Sleep):
                    self.sleeps.append(action)
                    if self.on_sleep is not None:
                        self.on_sleep(action, session)
                    self.clock.t += action.seconds
                    action = flow.send(None)
                else:
                    assert isinstance(action, Send)
                    self.sends.append(action)
                    outcome = self.answer(action)
                    if isinstance(outcome, Failure) and outcome.timeout:
                        self.clock.t += action.timeout
                    action = flow.send(outcome)
        except StopIteration as stop:
            return stop.value, session

    def status_sends(self) -> list[Send]:
        return [s for s in self.sends if s.call == "get_qrcode_status"]


def scripted(*statuses: dict[str, Any] | Failure | Reply, qr: dict[str, Any] = QR) -> Callable[[Send], Any]:
    """QR requests get ``qr`` (with a fresh id each time); status polls get the statuses in order, then
    time out."""
    queue = list(statuses)
    count = [0]

    def answer(send: Send) -> Reply | Failure:
        if send.call == "get_bot_qrcode":
            count[0] += 1
            return reply({**qr, "qrcode": f"qr-{count[0]}"})
        if not queue:  # then nothing happens: every poll runs into its timeout
            return Failure(httpx.ReadTimeout("nothing new"), timeout=True)
        item = queue.pop(0)
        return item if isinstance(item, (Reply, Failure)) else reply(item)

    return answer


def states(session: LoginSession) -> list[str]:
    out: list[str] = []
    for ev in session.events:
        if not out or out[-1] != ev.state:
            out.append(ev.state)
    return out


def test_confirmed_path_events_and_credentials() -> None:
    run = Run(
        scripted(
            {"status": "wait"},
            {"status": "scaned"},
            {
                "status": "confirmed",
                "bot_token": TOKEN,
                "ilink_bot_id": "b@im.bot",
                "baseurl": "https://b.test/",
                "ilink_user_id": "u@im.wechat",
            },
        )
    )
    result, session = run.go()
    assert result.ok and result.outcome == Outcome.CONFIRMED and result.new_token
    assert result.credentials == LoginCredentials(TOKEN, "b@im.bot", "https://b.test", "u@im.wechat")
    # The flow leaves the final state to the driver (which saves first).
    assert states(session) == [LoginState.WAITING, LoginState.SCANNED]
    assert [s.call for s in run.sends] == ["get_bot_qrcode"] + ["get_qrcode_status"] * 3
    assert json.loads(run.sends[0].content)["local_token_list"] == []
    assert [s.params["qrcode"] for s in run.status_sends()] == ["qr-1"] * 3
    # ~1 s after each answer that is not final.
    assert [s.seconds for s in run.sleeps] == [1.0, 1.0]
    assert TOKEN not in repr(result) and TOKEN not in result.message


def test_local_token_list_newest_ten_without_duplicates() -> None:
    saved = [Credentials(f"tok-{i}", f"b{i}@im.bot", BASE, saved_at=100 - i) for i in range(12)]
    saved.insert(3, Credentials("tok-0", "dup@im.bot", BASE))
    chosen = local_tokens(saved)
    assert [c.bot_token for c in chosen] == [f"tok-{i}" for i in range(10)]
    run = Run(scripted({"status": "expired"}), config=LoginConfig(max_qr_codes=1), saved=saved)
    run.go()
    body = json.loads(run.sends[0].content)
    assert body["local_token_list"] == [f"tok-{i}" for i in range(10)]


def test_poll_timeout_is_capped_by_the_deadline_only() -> None:
    run = Run(
        scripted({"status": "scaned"}, {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"}),
        config=LoginConfig(qr_active_seconds=3, deadline=100),
    )
    run.go()
    first, second = run.status_sends()
    # The QR code's expected lifetime does not cut a poll short: only the server's "expired" ends a code.
    assert first.timeout == second.timeout == C.LONG_POLL_TIMEOUT + C.LONG_POLL_GRACE
    run = Run(scripted({"status": "wait"}), config=LoginConfig(deadline=2))
    result, _ = run.go()
    assert run.status_sends()[0].timeout == 2
    assert result.outcome == Outcome.DEADLINE


def test_deadline_with_timeouts_only_counts_as_wait_until_it_passes() -> None:
    timeouts = Failure(httpx.ReadTimeout("slow"), timeout=True)
    run = Run(lambda s: reply({**QR}) if s.call == "get_bot_qrcode" else timeouts, config=LoginConfig(deadline=50))
    result, session = run.go()
    assert not result.ok and result.outcome == Outcome.DEADLINE
    assert "50 seconds" in result.reason and "login()" in result.hint
    assert run.clock.t - 1000.0 == pytest.approx(50)  # stopped right at the deadline, no request beyond it
    assert states(session) == [LoginState.WAITING]  # a timeout is a plain "wait": no status line for it


def test_no_refresh_of_its_own_only_on_the_servers_expired() -> None:
    # The official client's 5 minutes only decide whether a login in progress can be reused: an unscanned QR
    # code past its expected lifetime is polled on (no refresh used up) until the server says "expired".
    run = Run(
        scripted(*[{"status": "wait"}] * 20, {"status": "expired"}, {"status": "wait"}),
        config=LoginConfig(qr_active_seconds=2.5, max_qr_codes=2, poll_interval=1.0, deadline=60),
    )
    result, session = run.go()
    issued = [ev for ev in session.events if isinstance(ev, QrIssued)]
    assert [(ev.qr.number, ev.reason) for ev in issued] == [(1, "first"), (2, "expired")]
    assert [s.params["qrcode"] for s in run.status_sends()][:21] == ["qr-1"] * 21
    assert "refreshed 2/2" in issued[1].message
    assert result.outcome == Outcome.DEADLINE  # the second code was never expired by the server


def test_expired_refreshes_until_three_qr_codes_then_gives_up() -> None:
    run = Run(scripted(*[{"status": "expired"}] * 3))
    result, session = run.go()
    issued = [ev for ev in session.events if isinstance(ev, QrIssued)]
    assert [(ev.qr.number, ev.qr.of, ev.reason) for ev in issued] == [
        (1, 3, "first"),
        (2, 3, "expired"),
        (3, 3, "expired"),
    ]
    assert [s.params["qrcode"] for s in run.status_sends()] == ["qr-1", "qr-2", "qr-3"]
    assert not result.ok and result.outcome == Outcome.EXPIRED and result.reason == "The QR code expired 3 times"


def test_verify_code_waits_for_the_user_and_reports_a_wrong_code() -> None:
    codes = iter(["111111", "222222"])
    typed_after = 5  # the user types the first code after this many input checks

    def on_event(ev: Any, session: LoginSession) -> None:
        if isinstance(ev, VerifyCodeRequested) and ev.wrong:
            session.submit_code(next(codes))

    def on_sleep(sleep: Sleep, session: LoginSession) -> None:
        waits = [s for s in run.sleeps if s.reason == "waiting for the verify code"]
        if sleep.reason == "waiting for the verify code" and len(waits) == typed_after:
            session.submit_code(next(codes))

    run = Run(
        scripted(
            {"status": "need_verifycode"},
            {"status": "need_verifycode"},
            {"status": "scaned"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        ),
        on_event=on_event,
        on_sleep=on_sleep,
    )
    result, session = run.go()
    assert result.ok
    waits = [s for s in run.sleeps if s.reason == "waiting for the verify code"]
    # While the user types, the flow only sleeps (no status polls), at the input-check interval.
    assert len(waits) == typed_after and all(s.seconds == 0.2 for s in waits)
    sent = [s.params.get("verify_code") for s in run.status_sends()]
    assert sent == [None, "111111", "222222", None]
    asked = [ev.wrong for ev in session.events if isinstance(ev, VerifyCodeRequested)]
    assert asked == [False, True]
    messages = [ev.message for ev in session.events]
    assert any(m.startswith("That verify code was wrong") for m in messages)
    assert "Verify code accepted: confirm the login on the phone" in messages
    assert LoginState.VERIFYING in states(session)


def test_verify_code_blocked_refreshes_the_qr() -> None:
    run = Run(
        scripted(
            {"status": "verify_code_blocked"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        )
    )
    result, session = run.go()
    issued = [ev for ev in session.events if isinstance(ev, QrIssued)]
    assert [ev.reason for ev in issued] == ["first", "blocked"]
    assert "Too many wrong verify codes" in issued[1].message
    assert result.ok and result.qr_codes == 0  # qr_codes is filled in by session.finish()
    assert session.finish(result).qr_codes == 2


def test_redirect_polls_the_other_host_with_the_same_scheme() -> None:
    run = Run(
        scripted(
            {"status": "scaned_but_redirect", "redirect_host": "dc2.test:8443"},
            {"status": "scaned"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        )
    )
    result, session = run.go()
    hosts = [s.base_url for s in run.status_sends()]
    assert hosts == [BASE, "https://dc2.test:8443", "https://dc2.test:8443"]
    (redirected,) = [ev for ev in session.events if isinstance(ev, Redirected)]
    assert redirected.base_url == "https://dc2.test:8443" and redirected.state == LoginState.SCANNED
    # Without a baseurl in the answer the credentials get the default base URL (where QR codes come from), as
    # the official client's: the redirect host served this login's status polls only.
    assert result.credentials is not None and result.credentials.baseurl == BASE
    assert redirect_base("http://127.0.0.1:5000", "127.0.0.1:5001") == "http://127.0.0.1:5001"
    assert redirect_base("https://a.test", "http://b.test/") == "http://b.test"


def test_a_redirect_lasts_for_the_rest_of_the_login() -> None:
    run = Run(
        scripted(
            {"status": "scaned_but_redirect", "redirect_host": "dc2.test"},
            {"status": "expired"},
            {"status": "wait"},
            {"status": "verify_code_blocked"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b", "baseurl": "https://b.test"},
        )
    )
    result, _ = run.go()
    # Refreshed codes are polled on the redirect host too; new codes still come from the default base URL.
    assert [s.base_url for s in run.status_sends()] == [BASE] + ["https://dc2.test"] * 4
    assert [s.params["qrcode"] for s in run.status_sends()] == ["qr-1", "qr-1", "qr-2", "qr-2", "qr-3"]
    assert {s.base_url for s in run.sends if s.call == "get_bot_qrcode"} == {BASE}
    assert result.credentials is not None and result.credentials.baseurl == "https://b.test"


def test_confirmed_without_bot_id_or_token_is_a_clear_failure() -> None:
    result, _ = Run(scripted({"status": "confirmed", "bot_token": TOKEN})).go()
    assert not result.ok and result.outcome == Outcome.ERROR
    assert "sent no ilink_bot_id" in result.reason and TOKEN not in result.message
    result, _ = Run(scripted({"status": "confirmed", "ilink_bot_id": "b@im.bot"})).go()
    assert not result.ok and "sent no bot_token" in result.reason


def test_binded_redirect_rule() -> None:
    one = Credentials(TOKEN, "one@im.bot", BASE, "u@im.wechat")
    two = Credentials("other-token", "two@im.bot", BASE)
    assert bound_account(QrStatusResp(status="binded_redirect"), [one]) is one
    assert bound_account(QrStatusResp(status="binded_redirect"), [one, two]) is None
    assert bound_account(QrStatusResp(status="binded_redirect", ilink_bot_id="two@im.bot"), [one, two]) is two
    assert bound_account(QrStatusResp(status="binded_redirect", bot_token="other-token"), [one, two]) is two
    result, _ = Run(scripted({"status": "binded_redirect"}), saved=[one]).go()
    assert result.ok and result.outcome == Outcome.BINDED and not result.new_token
    assert result.credentials == LoginCredentials.of(one)
    result, _ = Run(scripted({"status": "binded_redirect"}), saved=[one, two]).go()
    assert not result.ok and "Client.from_saved(bot_id)" in result.hint and "two@im.bot" in result.hint
    result, _ = Run(scripted({"status": "binded_redirect"})).go()
    assert not result.ok and "no saved login was sent" in result.reason


def test_gateway_errors_and_transport_failures_read_as_wait() -> None:
    run = Run(
        scripted(
            Reply(502, {}, b"bad gateway"),
            Reply(504, {}, b"gateway timeout"),
            Failure(httpx.ConnectError("refused")),
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        )
    )
    result, session = run.go()
    assert result.ok and len(run.status_sends()) == 4
    assert states(session) == [LoginState.WAITING]


FAILED_POLLS = {
    "524": (Reply(524, {}, b"<html>A timeout occurred</html>"), "HTTP 524"),
    "400": (Reply(400, {}, b'{"errmsg": "bad request"}'), "HTTP 400"),
    "404": (Reply(404, {}, b"not found"), "HTTP 404"),
    "500": (Reply(500, {}, b"oops"), "HTTP 500"),
    "503": (Reply(503, {}, b"unavailable"), "HTTP 503"),
    "429": (Reply(429, {"retry-after": "600"}, b"slow down"), "HTTP 429"),
    "not_json": (Reply(200, {}, b"<html>maintenance</html>"), "JSON"),
    "ret": (Reply(200, {}, b'{"ret": -1, "errmsg": "system busy"}'), "system busy"),
    "network": (Failure(httpx.ConnectError("refused")), "ConnectError"),
    "502": (Reply(502, {}, b"bad gateway"), "HTTP 502"),
}


@pytest.mark.parametrize("failed", FAILED_POLLS.values(), ids=FAILED_POLLS.keys())
def test_every_failed_status_poll_reads_as_wait(failed: tuple[Reply | Failure, str]) -> None:
    # As the official client: any failure of a status poll is "wait"; the login goes on after a short pause,
    # shows the failure, and says when the server answers again. Nothing is retried inside one poll.
    outcome, named = failed
    run = Run(
        scripted(
            {"status": "scaned"},
            outcome,
            outcome,
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        ),
        retry=RetryPolicy(attempts=1),
    )
    result, session = run.go()
    assert result.ok and len(run.status_sends()) == 4
    assert states(session) == [LoginState.WAITING, LoginState.SCANNED]  # a failure is no news
    failures = [ev for ev in session.events if isinstance(ev, PollFailed)]
    assert [ev.failures for ev in failures] == [1, 2]
    assert all(named in ev.error and named in ev.message for ev in failures)
    assert failures[1].message.startswith("A status poll failed (2 in a row)")
    assert failures[1].message.endswith("Still waiting; polling again")
    (recovered,) = [ev for ev in session.events if isinstance(ev, PollRecovered)]
    assert recovered.failures == 2 and recovered.state == LoginState.SCANNED
    assert recovered.message == "The server answers again after 2 failed status polls: confirm the login on the phone"
    # The official client's 1 s between failed polls (failure_pause), whatever poll_interval says.
    assert [(s.reason, s.seconds) for s in run.sleeps] == [
        ("next QR status poll", 1.0),
        ("status poll failed", 1.0),
        ("status poll failed", 1.0),
    ]


def test_failed_polls_end_the_login_only_at_the_deadline() -> None:
    gateway = Reply(524, {}, b"<html>A timeout occurred</html>")
    run = Run(
        lambda s: reply({**QR}) if s.call == "get_bot_qrcode" else gateway,
        config=LoginConfig(deadline=30, failure_pause=2.0),
    )
    result, session = run.go()
    assert not result.ok and result.outcome == Outcome.DEADLINE
    assert len(run.status_sends()) == 15  # one poll every failure_pause, none after the deadline
    assert run.clock.t - 1000.0 == pytest.approx(30)
    assert "the last 15 status polls failed (get_qrcode_status got HTTP 524" in result.reason
    assert "check base_url and the network" in result.hint.lower() and "login()" in result.hint
    assert [ev.failures for ev in session.events if isinstance(ev, PollFailed)] == list(range(1, 16))
    with pytest.raises(E.UsageError, match="failure_pause"):
        LoginConfig(failure_pause=-1)


def test_qr_request_failures() -> None:
    result, _ = Run(lambda s: Reply(200, {}, b'{"ret": -1, "errmsg": "nope"}')).go()
    assert not result.ok and result.reason.startswith("Could not get a QR code") and "nope" in result.reason
    result, _ = Run(lambda s: reply({"ret": 0, "qrcode": "x"})).go()
    assert not result.ok and "qrcode_img_content" in result.reason


def test_unknown_status_counts_as_wait_and_is_reported() -> None:
    run = Run(scripted({"status": "brand_new"}, {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"}))
    result, session = run.go()
    assert result.ok
    assert any("Unknown QR status 'brand_new'" in ev.message for ev in session.events)


def test_a_client_timeout_does_not_undo_scanned() -> None:
    run = Run(
        scripted(
            {"status": "scaned"},
            Failure(httpx.ReadTimeout("slow"), timeout=True),
            {"status": "scaned"},
            {"status": "wait"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        )
    )
    _, session = run.go()
    changes = [ev for ev in session.events if isinstance(ev, StatusChanged)]
    # One "scanned" line (repeats are quiet), then the server's own "wait" (the user backed out).
    assert [ev.state for ev in changes] == [LoginState.SCANNED, LoginState.WAITING]


def test_cancel_stops_before_the_next_request() -> None:
    def on_event(ev: Any, session: LoginSession) -> None:
        if isinstance(ev, StatusChanged) and ev.state == LoginState.SCANNED:
            session.cancel()

    run = Run(scripted({"status": "scaned"}, {"status": "scaned"}), on_event=on_event)
    result, session = run.go()
    assert result.outcome == Outcome.CANCELLED and not result.ok
    assert len(run.status_sends()) == 1
    finished = session.finish(result)
    assert session.state == LoginState.CANCELLED and isinstance(session.events[-1], Finished)
    assert session.finish(LoginResult(ok=True, outcome="confirmed")) is finished  # the first end stays


def test_session_input_checks_and_listener_failures() -> None:
    session = LoginSession(LoginConfig())
    with pytest.raises(E.UsageError, match="no verify code was asked for"):
        session.submit_code("123")
    session.state = LoginState.NEED_VERIFY_CODE
    with pytest.raises(E.UsageError, match="digits"):
        session.submit_code("12a")
    session.submit_code(" 123 ")
    assert session.take_code() == "123"

    def broken(ev: Any) -> None:
        raise RuntimeError("view bug")

    seen: list[str] = []
    session.subscribe(broken)
    unsubscribe = session.subscribe(lambda ev: seen.append(ev.message))
    session.emit(StatusChanged(state=LoginState.SCANNED, message="m1", status="scaned"))
    unsubscribe()
    session.emit(StatusChanged(state=LoginState.SCANNED, message="m2", status="scaned"))
    assert seen == ["m1"] and session.message == "m2"


def test_config_validation_and_server_lifetime() -> None:
    with pytest.raises(E.UsageError):
        LoginConfig(max_qr_codes=0)
    with pytest.raises(E.UsageError):
        LoginConfig(deadline=0)
    with pytest.raises(E.UsageError):
        LoginConfig(poll_timeout=-1)
    assert qr_lifetime(QrCodeResp.from_wire({"qrcode": "q", "expire_seconds": 90}), 300) == 90
    assert qr_lifetime(QrCodeResp.from_wire({"qrcode": "q", "expire_seconds": "x"}), 300) == 300


def test_result_and_credentials_never_show_the_token() -> None:
    creds = LoginCredentials(TOKEN, "b@im.bot", BASE, "u@im.wechat")
    result = LoginResult(ok=True, outcome=Outcome.CONFIRMED, credentials=creds, saved_to="/x/b@im.bot.json")
    for text in (repr(creds), repr(result), str(result), result.message):
        assert TOKEN not in text
    assert "b@im.bot" in result.message and "u@im.wechat" in result.message


def test_client_login_reports_a_confirmed_answer_without_bot_id(tmp_path: Any, monkeypatch: Any) -> None:
    """The one branch the simulator can't produce, end to end through Client.login() and a mock transport."""
    from openclaw_nb.client import Client
    from openclaw_nb.login import LoginError

    monkeypatch.setenv("OPENCLAW_NB_HOME", str(tmp_path))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("get_bot_qrcode"):
            return httpx.Response(200, json=QR)
        return httpx.Response(200, json={"status": "confirmed", "bot_token": TOKEN, "baseurl": BASE})

    with Client(base_url=BASE, transport=httpx.MockTransport(handler), record=False) as client:
        with pytest.raises(LoginError) as info:
            client.login(display="none", poll_interval=0)
        assert client.token is None
    message = str(info.value)
    assert "confirmed the login but sent no ilink_bot_id" in message and TOKEN not in message
    assert not any(tmp_path.iterdir())


def test_no_answer_after_a_scan_keeps_scanned() -> None:
    # A network error, a gateway error or a client timeout after the scan says nothing new: the user is still
    # confirming on the phone, so the status must not go back to "waiting" (nor the QR code be replaced when
    # its waiting time is up: the timeout below runs past qr_active_seconds).
    run = Run(
        scripted(
            {"status": "scaned"},
            Reply(502, {}, b"bad gateway"),
            Failure(httpx.ConnectError("refused")),
            Reply(504, {}, b"gateway timeout"),
            Failure(httpx.ReadTimeout("slow"), timeout=True),
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        ),
        config=LoginConfig(qr_active_seconds=3),
    )
    result, session = run.go()
    assert result.ok and len(run.status_sends()) == 6
    changes = [ev for ev in session.events if isinstance(ev, StatusChanged)]
    assert [ev.state for ev in changes] == [LoginState.SCANNED]
    assert len([ev for ev in session.events if isinstance(ev, QrIssued)]) == 1
    assert states(session) == [LoginState.WAITING, LoginState.SCANNED]


@pytest.mark.parametrize(
    "lost",
    [
        Failure(httpx.ConnectError("reset")),
        Reply(502, {}, b"bad gateway"),
        Reply(504, {}, b"gateway timeout"),
        Failure(httpx.ReadTimeout("slow"), timeout=True),
    ],
    ids=["network", "502", "504", "timeout"],
)
def test_a_verify_code_without_an_answer_is_sent_again(lost: Reply | Failure) -> None:
    # The poll that carried the code got no answer, so the server may never have seen the code: the next poll
    # carries it again, and the need_verifycode that follows a poll without the code is not "wrong".
    def on_event(ev: Any, session: LoginSession) -> None:
        if isinstance(ev, VerifyCodeRequested):
            session.submit_code("111111" if not ev.wrong else "999999")

    run = Run(
        scripted(
            {"status": "need_verifycode"},
            lost,
            {"status": "scaned"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        ),
        on_event=on_event,
    )
    result, session = run.go()
    assert result.ok
    assert [s.params.get("verify_code") for s in run.status_sends()] == [None, "111111", "111111", None]
    assert [ev.wrong for ev in session.events if isinstance(ev, VerifyCodeRequested)] == [False]
    messages = [ev.message for ev in session.events]
    assert messages.count("Checking the verify code…") == 1
    assert "Verify code accepted: confirm the login on the phone" in messages
    assert not any("wrong" in m for m in messages)


def test_a_resent_code_refused_by_the_server_is_wrong() -> None:
    codes = iter(["111111", "222222"])

    def on_event(ev: Any, session: LoginSession) -> None:
        if isinstance(ev, VerifyCodeRequested):
            session.submit_code(next(codes))

    run = Run(
        scripted(
            {"status": "need_verifycode"},
            Failure(httpx.ConnectError("reset")),
            {"status": "need_verifycode"},  # the answer to the code sent again: it was wrong
            {"status": "scaned"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        ),
        on_event=on_event,
    )
    result, session = run.go()
    assert result.ok
    sent = [s.params.get("verify_code") for s in run.status_sends()]
    assert sent == [None, "111111", "111111", "222222", None]
    assert [ev.wrong for ev in session.events if isinstance(ev, VerifyCodeRequested)] == [False, True]


def test_default_deadline_is_eight_minutes() -> None:
    from openclaw_nb.cli import build_parser

    assert LoginConfig().deadline == C.LOGIN_DEADLINE_SECONDS == 8 * 60
    assert LoginSession().config.deadline == 8 * 60
    assert build_parser().parse_args(["login"]).deadline == 8 * 60


def test_a_typed_verify_code_goes_out_with_every_poll_until_the_verdict() -> None:
    # The server answers "wait" (no verdict) twice, a poll fails, the login is redirected: the code goes out
    # with each of those polls, to the new host too, and only "scaned" ends that.
    def on_event(ev: Any, session: LoginSession) -> None:
        if isinstance(ev, VerifyCodeRequested):
            session.submit_code("111111")

    run = Run(
        scripted(
            {"status": "need_verifycode"},
            {"status": "wait"},
            {"status": "wait"},
            Reply(524, {}, b"timeout"),
            {"status": "scaned_but_redirect", "redirect_host": "dc2.test"},
            {"status": "scaned"},
            {"status": "wait"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        ),
        on_event=on_event,
    )
    result, session = run.go()
    assert result.ok
    sends = run.status_sends()
    assert [s.params.get("verify_code") for s in sends] == [None] + ["111111"] * 5 + [None, None]
    assert [s.base_url for s in sends] == [BASE] * 5 + ["https://dc2.test"] * 3
    # Asked once, never called wrong; "checking" until the verdict, then scanned (and the user's own "wait").
    assert [ev.wrong for ev in session.events if isinstance(ev, VerifyCodeRequested)] == [False]
    assert states(session) == [
        LoginState.WAITING,
        LoginState.NEED_VERIFY_CODE,
        LoginState.VERIFYING,
        LoginState.SCANNED,
        LoginState.WAITING,
    ]
    assert "Verify code accepted: confirm the login on the phone" in [ev.message for ev in session.events]


def test_a_verify_code_stops_at_a_new_request_or_a_block() -> None:
    codes = iter(["111111", "222222", "333333"])

    def on_event(ev: Any, session: LoginSession) -> None:
        if isinstance(ev, VerifyCodeRequested):
            session.submit_code(next(codes))

    run = Run(
        scripted(
            {"status": "need_verifycode"},
            {"status": "wait"},
            {"status": "need_verifycode"},  # the verdict on 111111: wrong
            {"status": "wait"},
            {"status": "verify_code_blocked"},  # the verdict on 222222: too many wrong codes
            {"status": "wait"},
            {"status": "need_verifycode"},
            {"status": "scaned"},
            {"status": "confirmed", "bot_token": TOKEN, "ilink_bot_id": "b"},
        ),
        on_event=on_event,
    )
    result, session = run.go()
    assert result.ok
    sent = [(s.params["qrcode"], s.params.get("verify_code")) for s in run.status_sends()]
    assert sent == [
        ("qr-1", None),
        ("qr-1", "111111"),
        ("qr-1", "111111"),
        ("qr-1", "222222"),
        ("qr-1", "222222"),
        ("qr-2", None),  # a new QR code: the blocked code is gone
        ("qr-2", None),
        ("qr-2", "333333"),
        ("qr-2", None),
    ]
    assert [ev.wrong for ev in session.events if isinstance(ev, VerifyCodeRequested)] == [False, True, False]
