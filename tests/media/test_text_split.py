"""Long text: where ``split_text`` cuts, and what ``send_text`` does with the parts (budget, ids, errors)."""

from __future__ import annotations

import json
import random
import unicodedata

import httpx
import pytest

from openclaw_nb import errors as E
from openclaw_nb.client import Client
from openclaw_nb.protocol import constants as C
from openclaw_nb.protocol.media import SplitSendResp, split_text


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def check_parts(text: str, parts: list[str], max_bytes: int) -> None:
    """The invariants of every split: parts fit, are non-empty, appear in order, and only whitespace is
    dropped between them."""
    assert parts, "a non-empty text gives at least one part"
    pos = 0
    for i, part in enumerate(parts):
        assert part, f"part {i} is empty"
        assert utf8(part) <= max_bytes, f"part {i} has {utf8(part)} bytes > {max_bytes}"
        found = text.find(part, pos)
        assert found >= 0, f"part {i} is not a piece of the text after position {pos}"
        assert text[pos:found].strip() == "", f"non-whitespace dropped before part {i}: {text[pos:found]!r}"
        pos = found + len(part)
    assert text[pos:].strip() == "", "non-whitespace dropped at the end"


# --- where it cuts -----------------------------------------------------------------------------------


def test_text_that_fits_is_unchanged() -> None:
    text = "  hello\n\n world  \n"
    assert split_text(text, 100) == [text]
    exact = "é" * 8  # 16 bytes exactly
    assert split_text(exact, 16) == [exact]


def test_paragraph_beats_sentence() -> None:
    p1 = "One sentence here. " * 12  # ~230 bytes, with sentence ends all along
    p2 = "Another paragraph. " * 12
    text = p1.strip() + "\n\n" + p2.strip()
    parts = split_text(text, 300)
    assert parts == [p1.strip(), p2.strip()]


def test_sentence_when_no_paragraph_fits() -> None:
    text = "Alpha beta gamma. Delta epsilon zeta! Eta theta iota? Kappa lambda mu."
    parts = split_text(text, 40)
    assert parts == ["Alpha beta gamma. Delta epsilon zeta!", "Eta theta iota? Kappa lambda mu."]
    check_parts(text, parts, 40)


def test_cjk_sentences_need_no_space() -> None:
    sentence = "这是一个中文句子。"  # 9 characters, 27 bytes
    text = sentence * 4
    parts = split_text(text, 60)
    assert parts == [sentence * 2, sentence * 2]
    assert all(p.endswith("。") for p in parts)


def test_line_then_word_boundaries() -> None:
    text = "first line of the text\nsecond line of the text"
    assert split_text(text, 30) == ["first line of the text", "second line of the text"]
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit"
    parts = split_text(words, 20)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in parts)
    assert " ".join(parts) == words


def test_character_cut_never_splits_a_utf8_sequence() -> None:
    for ch in ("é", "中", "😀"):
        text = ch * 50
        for max_bytes in range(4, 30):
            parts = split_text(text, max_bytes)
            check_parts(text, parts, max_bytes)
            assert "".join(parts) == text
            per_part = max_bytes // utf8(ch)
            assert all(len(p) == per_part for p in parts[:-1]), "parts are filled as far as whole characters fit"


def test_combining_marks_stay_with_their_letter() -> None:
    text = "e\u0301" * 40  # e + combining acute: 3 bytes per visible letter
    for max_bytes in range(4, 20):
        parts = split_text(text, max_bytes)
        assert "".join(parts) == text
        for part in parts:
            assert not unicodedata.combining(part[0]), f"a part starts with a lone combining mark: {part!r}"


def test_zwj_sequences_stay_whole_when_they_fit() -> None:
    family = "👩\u200d👩\u200d👧"  # 3 emoji joined by ZWJ: 18 bytes
    text = family * 6
    parts = split_text(text, 40)
    assert "".join(parts) == text
    for part in parts:
        assert not part.startswith("\u200d") and not part.endswith("\u200d")
        assert part.count("👩") == 2 * part.count("👧")


def test_a_short_first_paragraph_does_not_cost_a_message() -> None:
    # Cutting after "Hi." would leave a 3-byte part; the splitter takes a finer boundary further on.
    body = "Word " * 100
    text = "Hi.\n\n" + body
    parts = split_text(text, 200)
    assert utf8(parts[0]) > 50
    assert len(parts) == -(-utf8(text) // 200) or len(parts) == -(-utf8(text) // 200) + 1
    check_parts(text, parts, 200)


def test_max_bytes_below_one_character_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        split_text("abcdef", 3)


def test_random_texts_keep_every_invariant() -> None:
    rng = random.Random(20240611)
    alphabet = ["a", "b", "Z", " ", " ", "\n", "\n\n", ".", "!", "。", "é", "中", "文", "😀", "e\u0301", "\u200d", "\t"]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
        if not text.strip():
            continue
        max_bytes = rng.randint(4, 120)
        parts = split_text(text, max_bytes)
        if utf8(text) <= max_bytes:
            assert parts == [text]
        else:
            check_parts(text, parts, max_bytes)
            for part in parts:
                part.encode("utf-8").decode("utf-8")  # whole characters only


def test_large_text_is_split_in_few_parts() -> None:
    text = ("A sentence of moderate length, for the record. " * 40 + "\n\n") * 40  # ~77 KB
    parts = split_text(text, C.MAX_TEXT_BYTES)
    check_parts(text, parts, C.MAX_TEXT_BYTES)
    assert len(parts) <= -(-utf8(text) // C.MAX_TEXT_BYTES) + 1


# --- send_text ---------------------------------------------------------------------------------------


def make(handler=None) -> tuple[Client, list[dict]]:
    sent: list[dict] = []
    ids = iter(range(1000, 2000))

    def record(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        sent.append(body["msg"])
        if handler is not None:
            return handler(len(sent))
        return httpx.Response(200, json={"ret": 0, "message_id": next(ids)})

    client = Client("tok", base_url="http://api.test", transport=httpx.MockTransport(record), record=False)
    client._sleep = lambda s: None  # type: ignore[method-assign]
    peer = client.peer("u@im.wechat")
    peer.context_token = "ctx"
    return client, sent


def texts(sent: list[dict]) -> list[str]:
    return [msg["item_list"][0]["text_item"]["text"] for msg in sent]


def test_send_text_splits_into_messages_each_counted() -> None:
    client, sent = make()
    text = "First paragraph here.\n\nSecond paragraph, a bit longer than the first.\n\nThird."
    resp = client.send_text("u@im.wechat", text, max_bytes=50)
    assert texts(sent) == ["First paragraph here.", "Second paragraph, a bit longer than the first.", "Third."]
    assert all(msg["context_token"] == "ctx" for msg in sent)
    assert len({msg["client_id"] for msg in sent}) == 3
    assert isinstance(resp, SplitSendResp)
    assert [p.message_id for p in resp.parts] == [1000, 1001, 1002] and resp.message_id == 1002
    assert resp.unsent == [] and resp.client_id == sent[-1]["client_id"]
    assert client.peer("u@im.wechat").sends_on_token == 3


def test_short_text_is_one_plain_message() -> None:
    client, sent = make()
    resp = client.send_text("u@im.wechat", "hello")
    assert texts(sent) == ["hello"] and not isinstance(resp, SplitSendResp)


def test_default_limits_are_the_official_clients_and_the_servers() -> None:
    client, sent = make()
    client.send_text("u@im.wechat", "é" * C.MAX_TEXT_BYTES)  # 16,384 characters: 4,000 per message
    assert [len(t) for t in texts(sent)] == [4000, 4000, 4000, 4000, 384]
    sent.clear()
    client.send_text("u@im.wechat", "é" * C.MAX_TEXT_BYTES, max_chars=None)  # twice the server's bound in bytes
    assert len(sent) == 2 and all(utf8(t) <= C.MAX_TEXT_BYTES for t in texts(sent))


def test_over_budget_says_so_before_sending_anything() -> None:
    client, sent = make()
    client.peer("u@im.wechat").sends_on_token = 8
    with pytest.raises(E.UsageError) as info:
        client.send_text("u@im.wechat", "a. " * 30, max_bytes=20)
    assert sent == []
    message = str(info.value)
    assert "only 2 of 10 sends are left" in message and "send_what_fits=True" in message
    assert "nothing was sent" in message


def test_send_what_fits_sends_the_first_parts() -> None:
    client, sent = make()
    client.peer("u@im.wechat").sends_on_token = 8
    text = "One.\n\nTwo.\n\nThree.\n\nFour."
    resp = client.send_text("u@im.wechat", text, max_bytes=8, send_what_fits=True)
    assert texts(sent) == ["One.", "Two."]
    assert isinstance(resp, SplitSendResp) and resp.unsent == ["Three.", "Four."]


def test_no_sends_left_refuses_even_what_fits() -> None:
    client, sent = make()
    client.peer("u@im.wechat").sends_on_token = 10
    with pytest.raises(E.UsageError, match="only 0 of 10"):
        client.send_text("u@im.wechat", "One.\n\nTwo.", max_bytes=5, send_what_fits=True)
    assert sent == []


def test_explicit_foreign_token_is_not_budgeted_here() -> None:
    client, sent = make()
    client.peer("u@im.wechat").sends_on_token = 10
    client.send_text("u@im.wechat", "One.\n\nTwo.", context_token="other", max_bytes=5)
    assert texts(sent) == ["One.", "Two."] and all(m["context_token"] == "other" for m in sent)


def test_given_client_id_numbers_the_parts() -> None:
    client, sent = make()
    client.send_text("u@im.wechat", "One.\n\nTwo.", max_bytes=5, client_id="mine")
    assert [m["client_id"] for m in sent] == ["mine-1", "mine-2"]


def test_failure_midway_says_what_was_sent() -> None:
    def handler(n: int) -> httpx.Response:
        body = {"ret": 0, "message_id": n} if n == 1 else {"ret": -2, "errmsg": ""}
        return httpx.Response(200, json=body)

    client, sent = make(handler)
    with pytest.raises(E.SendRejectedError) as info:
        client.send_text("u@im.wechat", "One.\n\nTwo.\n\nThree.", max_bytes=6)
    assert len(sent) == 2
    assert "parts 1-1 of 3 were sent" in "".join(info.value.__notes__)


@pytest.mark.parametrize("bad", [0, 3, -1, "16k", 2.5, True])
def test_bad_max_bytes(bad: object) -> None:
    client, sent = make()
    with pytest.raises(E.UsageError, match="max_bytes"):
        client.send_text("u@im.wechat", "hello", max_bytes=bad)  # type: ignore[arg-type]
    assert sent == []
