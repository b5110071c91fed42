"""A security review's findings: no copy of an exchange's state, no response header, no interrupted redaction
and no attribute of the recorder lets an unredacted secret out."""

from __future__ import annotations

import copy
import json
import pickle
import warnings
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import httpx
import pytest

from openclaw_nb.protocol.redact import fingerprint, redact
from openclaw_nb.recorder import Exchange, Recorder, capture

from .helpers import LoopbackServer, SessionSecrets


def _forms(secret: str) -> list[str]:
    # The raw value and the ways it could be spelled in a URL or a JSON string.
    return sorted({secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]})


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [form for secret in secrets for form in _forms(secret) if form in text]


Session = tuple[Recorder, LoopbackServer, SessionSecrets]


def test_the_state_of_an_exchange_not_yet_looked_at_is_redacted(recorded_session: Session) -> None:
    rec, server, sec = recorded_session
    ex = rec[2]  # get_updates: the bot token in its Authorization header, context tokens in its answer
    raw = ex._raw
    assert raw is not None, "precondition: the exchange still holds its raw parts"
    # The raw holder refuses every way out, naming what to use instead.
    for way_out in (raw.__getstate__, lambda: pickle.dumps(raw), lambda: copy.copy(raw), lambda: copy.deepcopy(raw)):
        with pytest.raises(TypeError, match=r"unredacted.*pickle or copy the Exchange"):
            way_out()
    state = ex.__getstate__()
    assert ex._raw is None  # settled (redacted) by the look
    dumped = pickle.dumps(state)
    assert not _leaks(dumped.decode("utf-8", "replace"), sec.all), "a secret in Exchange.__getstate__()"
    assert fingerprint(server.state.bot_token).encode() in dumped
    again = Exchange._of(state)
    assert again.request_headers == ex.request_headers and again.response_body == ex.response_body


def test_url_headers_and_secrets_named_in_other_headers_are_redacted(server: LoopbackServer, tmp_path: Path) -> None:
    state = server.state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clear = Recorder(redact=False)
    rec = Recorder()
    for recorder in (rec, clear):
        with httpx.Client(transport=recorder.wrap(httpx.HTTPTransport())) as http:
            r = http.get(f"{server.base_url}/moved")
        assert r.status_code == 302
    secrets = [state.download_param, state.bot_token]
    # The wire (and an unredacted recorder) carried both secrets in those headers...
    assert unquote(clear[-1].response_headers["location"]).endswith(state.download_param)
    assert _leaks(json.dumps(clear[-1].response_headers), secrets)
    # ... the redacted recorder keeps the URLs and the text, with each secret's placeholder in its place.
    ex = rec[-1]
    headers = {k.lower(): v for k, v in ex.response_headers.items()}
    placeholder = redact(state.download_param)
    assert headers["location"] == f"{server.base_url}/c2c/download?encrypted_query_param={placeholder}"
    assert headers["content-location"] == f"/c2c/download?filekey=f1&encrypted_query_param={placeholder}"
    assert headers["x-debug"] == f"retry with token={redact(state.bot_token)}"
    har = rec.to_har()
    assert har["log"]["entries"][0]["response"]["redirectURL"] == headers["location"]
    outputs = [repr(ex), ex._repr_html_(), json.dumps(har), json.dumps(ex.to_dict())]
    outputs.append(rec.to_jsonl(tmp_path / "moved.jsonl").read_text())
    assert not _leaks("\n".join(outputs), secrets)


def test_an_interrupted_redaction_is_done_again_on_the_next_look(
    recorded_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, server, sec = recorded_session
    ex = rec[2]
    assert ex._raw is not None, "precondition: the exchange still holds its raw parts"
    real = capture.redact_url
    calls: list[str] = []

    def interrupted(url: str) -> str:
        # A Ctrl-C in the middle of redaction (after the headers, before the URL): not producible on demand.
        calls.append(url)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(url)

    monkeypatch.setattr(capture, "redact_url", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _ = ex.url
    assert ex._raw is not None  # nothing settled, nothing dropped
    # The next look redacts it in full, not a stand-in for a failed build.
    assert ex.error is None
    assert ex.request_headers["Authorization"] == "Bearer " + fingerprint(server.state.bot_token)
    assert ex.response_body["ret"] == 0
    assert not _leaks(repr(ex), sec.all)


def test_a_recorder_s_redaction_cannot_be_turned_off_after_it_is_made(server: LoopbackServer) -> None:
    rec = Recorder()
    with pytest.raises(AttributeError, match=r"Recorder\(redact=False\)"):
        rec.redacted = False
    assert rec.redacted is True
    token = server.state.bot_token
    body = {"context_token": server.state.context_token}
    with httpx.Client(transport=rec.wrap(httpx.HTTPTransport())) as http:
        r = http.post(f"{server.base_url}/ilink/bot/getconfig", headers={"Authorization": f"Bearer {token}"}, json=body)
    assert r.json()["ret"] == 0
    assert rec[-1].redacted and not _leaks(repr(rec[-1]), server.state.secrets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert Recorder(redact=False).redacted is False
