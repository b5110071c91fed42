"""A security review's findings: no copy of an exchange's state, no response header, no interrupted redaction
and no attribute of the recorder lets an unredacted secret out."""

from __future__ import annotations

import copy
import json
import pickle
from urllib.parse import quote, quote_plus

import pytest

from openclaw_nb.protocol.redact import fingerprint
from openclaw_nb.recorder import Exchange, Recorder

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
