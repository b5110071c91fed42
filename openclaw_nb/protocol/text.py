"""Outbound text rules of the official client: the 4,000-character chunk size and its Markdown filter.

Pure functions, no I/O. The filter keeps what WeChat shows well (code fences, tables, rules, bold, emphasis of
Latin text) and takes out what it shows badly: images (``![alt](url)``, dropped whole), the markers of H5/H6
headings, and ``*``/``_`` emphasis markers around text that contains CJK characters (the text stays). Its rules
are the official client's, down to the odd ones (emphasis inside inline code is unwrapped too; an unfinished
image, ``***`` or ``___`` leaves the rest of the text untouched).
"""

from __future__ import annotations

import re

#: Characters per message when the official client sends a long reply (its ``textChunkLimit``). The server's
#: own bound is in bytes (``constants.MAX_TEXT_BYTES``, about 16 KiB of UTF-8); both apply.
TEXT_CHUNK_CHARS = 4000
#: Values of ``send_text(..., markdown=...)``: ``None`` sends the text as given.
MARKDOWN_MODES = ("official",)

# The CJK blocks the filter looks for: radicals to the unified ideographs (including kana and CJK
# punctuation), Hangul syllables, compatibility ideographs. Characters beyond U+FFFF do not count, as in the
# official client (which tests UTF-16 code units).
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Where something may happen inside a line: everything else is copied as it is.
_SPECIAL = re.compile(r"[\n!*_]")


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK character (the filter unwraps emphasis only around such text)."""
    return _CJK.search(text) is not None


def _line_end(text: str, start: int) -> int:
    """Index just past the end of the line that ``start`` is on (past its newline, or the end of the text)."""
    nl = text.find("\n", start)
    return len(text) if nl < 0 else nl + 1


def filter_markdown(text: str) -> str:
    """The official client's Markdown filter, applied to a whole text.

    - ``![alt](url)`` images are removed (an unfinished one is left as it is);
    - ``##### `` and ``###### `` at the start of a line lose their markers (H1-H4 stay);
    - ``*...*``, ``_..._``, ``***...***`` and ``___...___`` around text with CJK characters lose their markers;
      around other text they stay, as does ``**bold**``;
    - fenced code blocks, block quotes, lists, tables and horizontal rules pass unchanged (inside a fence nothing
      is touched; elsewhere the emphasis rule still applies, inline code included).

    >>> filter_markdown("##### 标题\\n*重要* and *kept* ![logo](https://x/logo.png)")
    '标题\\n重要 and *kept* '
    """
    out: list[str] = []
    n = len(text)
    i = 0
    in_fence = False
    line_start = True
    while i < n:
        if in_fence:
            # Line by line, verbatim, until a line that starts with ``` (kept too).
            end = _line_end(text, i)
            out.append(text[i:end])
            in_fence = not text.startswith("```", i)
            i = end
            continue
        if line_start:
            line_start = False
            c = text[i]
            if c == "\n":
                out.append(c)
                line_start = True
                i += 1
            elif text.startswith("```", i):
                end = _line_end(text, i)
                out.append(text[i:end])
                in_fence = line_start = True
                i = end
            elif c == "#":
                hashes = _run(text, i, "#")
                if 5 <= hashes <= 6 and text.startswith(" ", i + hashes):
                    i += hashes + 1  # the heading's text follows as an ordinary line
            elif c in "-*_":
                j = i
                while j < n and text[j] in (c, " "):
                    j += 1
                if (j == n or text[j] == "\n") and text.count(c, i, j) >= 3:  # a horizontal rule
                    end = min(j + 1, n)
                    out.append(text[i:end])
                    line_start = True
                    i = end
            continue
        # Inside a line: copy up to the next character that may start something.
        found = _SPECIAL.search(text, i)
        if found is None:
            out.append(text[i:])
            break
        k = found.start()
        out.append(text[i:k])
        c = text[k]
        i = k
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
        elif c == "!":
            i = _image(text, i, out) if text.startswith("[", i + 1) else _copy(text, i, 1, out)
        elif text.startswith(c * 3, i):
            i = _wrapped(text, i, c * 3, out)
        elif text.startswith(c * 2, i):
            i = _copy(text, i, 2, out)  # bold is kept, and its markers never open anything
        elif i + 1 < n and text[i + 1] not in " \n":
            i, line_start = _emphasis(text, i, c, out)
        else:
            i = _copy(text, i, 1, out)
    return "".join(out)


def _run(text: str, start: int, ch: str) -> int:
    """How many ``ch`` in a row from ``start``."""
    end = start
    while end < len(text) and text[end] == ch:
        end += 1
    return end - start


def _copy(text: str, start: int, count: int, out: list[str]) -> int:
    out.append(text[start : start + count])
    return start + count


def _image(text: str, start: int, out: list[str]) -> int:
    """``![`` at ``start``: drop ``![alt](url)``; keep ``![alt]`` not followed by ``(``; an image left open
    (no ``]``, ``]`` last, or no ``)``) leaves the rest of the text as it is."""
    close = text.find("]", start + 2)
    if close < 0 or close + 1 >= len(text):
        out.append(text[start:])
        return len(text)
    if text[close + 1] != "(":
        out.append(text[start : close + 1])
        return close + 1
    paren = text.find(")", close + 2)
    if paren < 0:
        out.append(text[start:])
        return len(text)
    return paren + 1


def _wrapped(text: str, start: int, marker: str, out: list[str]) -> int:
    """``***`` or ``___`` at ``start``: up to the next same marker (across lines), unwrapped around CJK text."""
    body = start + len(marker)
    close = text.find(marker, body)
    if close < 0:
        out.append(text[start:])
        return len(text)
    content = text[body:close]
    out.append(content if has_cjk(content) else text[start : close + len(marker)])
    return close + len(marker)


def _emphasis(text: str, start: int, marker: str, out: list[str]) -> tuple[int, bool]:
    """``*`` or ``_`` at ``start`` opening emphasis on this line: returns (next index, at a line start)."""
    n = len(text)
    j = start + 1
    while j < n:
        ch = text[j]
        if ch == "\n":  # not closed on its line: kept as typed
            out.append(text[start : j + 1])
            return j + 1, True
        if ch == marker:
            if j + 1 < n and text[j + 1] == marker:
                j += 2  # a doubled marker inside does not close it
                continue
            content = text[start + 1 : j]
            out.append(content if has_cjk(content) else text[start : j + 1])
            return j + 1, False
        j += 1
    out.append(text[start:])
    return n, False


def apply_markdown(text: str, mode: str | None) -> str:
    """``text`` through the filter named by ``mode`` (``None``: unchanged). Raises ``ValueError`` for an
    unknown mode, naming the accepted ones."""
    if mode is None:
        return text
    if mode == "official":
        return filter_markdown(text)
    accepted = ", ".join(repr(v) for v in MARKDOWN_MODES)
    raise ValueError(f"markdown must be None (send the text as given) or one of {accepted}, got {mode!r}")
