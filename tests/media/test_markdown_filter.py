"""The Markdown filter of ``send_text(..., markdown="official")``: the official client's rules, case by case,
and properties that hold for any text (it only ever removes, and leaves text without its markers alone)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openclaw_nb.protocol.text import apply_markdown, filter_markdown, has_cjk

CASES = [  # (before, after), each checked against the official client's filter while written
    ("plain text, nothing to do", "plain text, nothing to do"),
    ("![logo](https://example.com/logo.png)", ""),
    ("before ![a](b) after", "before  after"),
    ("![alt] no link", "![alt] no link"),
    ("unclosed ![alt](http://x", "unclosed ![alt](http://x"),
    ("##### 五级标题", "五级标题"),
    ("###### Six", "Six"),
    ("####### Seven", "####### Seven"),
    ("#### Four", "#### Four"),
    ("#####no space", "#####no space"),
    ("  ##### indented", "  ##### indented"),
    ("*中文*", "中文"),
    ("_中文_", "中文"),
    ("***粗斜体***", "粗斜体"),
    ("___粗斜体___", "粗斜体"),
    ("**粗体**", "**粗体**"),
    ("*latin*", "*latin*"),
    ("***latin***", "***latin***"),
    ("mixed *abc 中* end", "mixed abc 中 end"),
    ("*open 中文\nnext", "*open 中文\nnext"),
    ("* list item", "* list item"),
    ("- item *重点*", "- item 重点"),
    ("> 引用 *强调*", "> 引用 强调"),
    ("***\n*中*", "***\n中"),
    ("---", "---"),
    ("```\n*中* ![x](y)\n##### h\n```\n*中*", "```\n*中* ![x](y)\n##### h\n```\n中"),
    ("`*中*`", "`中`"),
    ("| a | *表* |", "| a | 表 |"),
    ("snake_case_name", "snake_case_name"),
    ("2 * 3 * 4", "2 * 3 * 4"),
    ("한국어 *강조*", "한국어 강조"),
    ("かな _強調_", "かな 強調"),
    ("*a**b*", "*a**b*"),
    ("wow!", "wow!"),
]


@pytest.mark.parametrize(("before", "after"), CASES)
def test_official_rules(before: str, after: str) -> None:
    assert filter_markdown(before) == after


def is_subsequence(small: str, big: str) -> bool:
    rest = iter(big)
    return all(ch in rest for ch in small)


MARKDOWNISH = st.text(alphabet=st.sampled_from(list("*_![]()#`->| \n\tab中文~")), max_size=60)


@given(MARKDOWNISH)
def test_the_filter_only_removes(text: str) -> None:
    out = filter_markdown(text)
    assert len(out) <= len(text) and is_subsequence(out, text)


@given(st.text(alphabet=st.sampled_from(list("*_[]()`->| \n\tabc~.,")), max_size=80))
def test_text_without_images_headings_or_cjk_is_unchanged(text: str) -> None:
    assert not has_cjk(text)
    assert filter_markdown(text) == text


@given(st.text(alphabet=st.characters(blacklist_characters="*_!#\n"), max_size=40))
def test_text_without_markers_is_unchanged(text: str) -> None:
    assert filter_markdown(text) == text


def test_modes() -> None:
    assert apply_markdown("*中*", None) == "*中*" and apply_markdown("*中*", "official") == "中"
    with pytest.raises(ValueError, match=r"markdown must be None \(send the text as given\) or one of 'official'"):
        apply_markdown("x", "commonmark")


def test_a_long_text_is_filtered_in_one_pass() -> None:
    text = ("段落 *重点* and ![img](u) **bold**.\n" * 20_000)[:-1]
    out = filter_markdown(text)
    assert out == ("段落 重点 and  **bold**.\n" * 20_000)[:-1]
