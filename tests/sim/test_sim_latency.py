"""The ``latency_ms`` knob: every iLink API and CDN request waits that long before it is served, without
blocking the server (other requests go on meanwhile), and the control API answers at once.

No test reads a clock: a held request shows as a client read timeout far shorter than the latency, and
"not blocking" as many held requests all finishing inside one timeout that serving them one after another
would overrun.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from simhelpers import IDENTITY, call, sim_config, text_msg

from openclaw_nb import cli
from openclaw_nb.protocol.endpoints import CDN_DOWNLOAD_PATH, build_request
from openclaw_nb.sim import SimConfig, SimError, Simulator
from openclaw_nb.sim.state import CDN_PREFIX

#: A latency no test waits out: a request under it can only end by the client giving up.
HELD_MS = 2000
#: How long the client waits for a held request before it gives up.
GIVE_UP = 0.4


@pytest.fixture(scope="module")
def own_sim() -> Iterator[Simulator]:
    # A simulator of its own: a request this module leaves sleeping in the server must not reach a later
    # test's state once it wakes.
    with Simulator(sim_config()) as sim:
        yield sim


@pytest.fixture
def lsim(own_sim: Simulator) -> Iterator[Simulator]:
    own_sim.reset(sim_config())
    yield own_sim
    own_sim.state.configure(latency_ms=0)


def _api(sim: Simulator, endpoint: str, payload: dict[str, object], token: str, timeout: float) -> httpx.Response:
    spec = build_request(endpoint, payload, identity=IDENTITY, token=token)
    with httpx.Client(base_url=sim.base_url, timeout=timeout) as http:
        return http.request(spec.method, spec.path, headers=spec.headers, content=spec.content)


def test_the_knob_is_validated_like_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    assert SimConfig(latency_ms=20).latency_ms == 20 and SimConfig().latency_ms == 0
    for bad in (-1, float("nan"), float("inf"), "20", True, None, 10**9):
        with pytest.raises(SimError, match=r"latency_ms is a finite number from 0 to 60,000"):
            SimConfig(latency_ms=bad)  # type: ignore[arg-type]
    assert cli.main(["sim", "--set", "latency_ms=-5"]) == 2
    assert "latency_ms is a finite number" in capsys.readouterr().err


def test_control_api_sets_it_and_answers_at_once(lsim: Simulator) -> None:
    with httpx.Client(base_url=lsim.base_url, timeout=5) as http:
        assert http.post("/_sim/config", json={"latency_ms": HELD_MS}).json()["latency_ms"] == HELD_MS
        bad = http.post("/_sim/config", json={"latency_ms": "slow"})
        assert bad.status_code == 400 and "latency_ms" in bad.json()["error"]
    assert lsim.state.config.latency_ms == HELD_MS
    # The control API is not the network under test: it answers within a timeout far below the latency.
    with httpx.Client(base_url=lsim.base_url, timeout=GIVE_UP * 4) as http:
        assert http.get("/_sim/state").status_code == 200


@pytest.mark.parametrize("route", ["api", "cdn"])
def test_api_and_cdn_requests_are_held(lsim: Simulator, route: str) -> None:
    login = lsim.login_bot("alice")
    ctx = lsim.say("alice", "hi")["context_token"]

    def request(timeout: float) -> httpx.Response:
        if route == "api":
            return _api(lsim, "send_message", text_msg("alice@im.wechat", ctx), login.bot_token, timeout)
        with httpx.Client(timeout=timeout) as http:
            return http.get(f"{lsim.base_url}{CDN_PREFIX}{CDN_DOWNLOAD_PATH}", params={"encrypted_query_param": "x"})

    lsim.state.configure(latency_ms=HELD_MS)
    with pytest.raises(httpx.ReadTimeout):
        request(GIVE_UP)
    lsim.state.configure(latency_ms=0)
    answered = request(10)  # the same request with no latency: served
    if route == "api":
        assert answered.status_code == 200 and answered.json()["ret"] == 0
    else:
        assert answered.status_code == 404 and answered.headers["x-error-message"] == "unknown encrypted_query_param"


def test_held_requests_do_not_block_the_server(lsim: Simulator) -> None:
    # 16 requests each held 400 ms: served side by side they all end well inside a 4 s timeout; a server that
    # slept on its event loop would take 6.4 s for the last one, which then times out.
    token = lsim.login_bot("alice").bot_token
    lsim.state.configure(latency_ms=400)

    def one(_: int) -> int:
        return _api(lsim, "get_config", {"ilink_user_id": "alice@im.wechat"}, token, timeout=4).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(one, range(16))) == [200] * 16


def test_long_polls_keep_their_meaning(lsim: Simulator) -> None:
    token = lsim.login_bot("alice").bot_token
    lsim.state.configure(latency_ms=30)
    with httpx.Client(base_url=lsim.base_url, timeout=10) as http:
        empty = call(http, "get_updates", {"get_updates_buf": ""}, token=token)
        assert empty["ret"] == 0 and empty["msgs"] == []  # held its window, then answered empty
        lsim.say("alice", "waiting")
        page = call(http, "get_updates", {"get_updates_buf": empty["get_updates_buf"]}, token=token)
        assert [m["item_list"][0]["text_item"]["text"] for m in page["msgs"]] == ["waiting"]
