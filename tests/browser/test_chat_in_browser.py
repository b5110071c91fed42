"""Notebook 04's class on phones, in a real browser: JupyterLab runs notebooks/04-teaching-demo.ipynb (the
teaching demo itself) with its chat panel, and two phone pages, alice's and bob's, open in Debian's Chromium
next to it, each in its own browser context, as two students' phones would be.

What a class would do, checked where a person looks:

- the notebook's cells up to the chat panel run with the keyboard; the phone links are read from the output
  of ``%wx_sim phone alice bob``;
- alice sends a text and a photo (a PNG the test draws, through the page's file input), bob quotes the bot's
  help text (bubble → Quote → Send); the panel shows a text bubble and an image bubble (the photo decrypted, at
  its own size) in alice's conversation and a quote bubble in bob's;
- the teacher replies to alice in the panel's reply box (typed, Send clicked): alice's phone shows the reply,
  and its typing indicator came on while the panel sent (a MutationObserver on the page's ``typing`` element
  counts each time it was shown: the indicator may be on for a few milliseconds only); bob's phone saw neither;
- the panel follows the conversation: its bubble box (taller content than the box) opens on the newest bubble,
  selecting a conversation shows its newest, a bubble added at the bottom shows; scrolled up, a new message
  from alice does not move the view, and scrolling back down shows it (bounding boxes of the last bubble
  against the box's);
- the notebook's ``%wx_send bob ...`` cell replies to bob: bob's phone shows it, alice's does not, and the
  panel shows it in bob's conversation, in view;
- the rest of the notebook runs to its end with nothing on stderr.

The notebook's stand-in cell (the simulator playing the students, for a run without a class) is skipped:
here the phones are played by the browser. Screenshots of both phones and of the panel go to tests/artifacts/
(ignored by git). Skipped when Chromium or Playwright is missing, except under CI (``CI`` set).
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from . import jupyterlab
from .jupyterlab import ARTIFACTS, KERNEL, UI, Lab, launch_chromium, wait_for_connected_kernel

NOTEBOOK = "04-teaching-demo.ipynb"
#: Seconds a phone page may take to show what was sent or received.
PHONE = 30.0
PHONE_VIEWPORT = {"width": 390, "height": 720}
PHOTO_SIZE = (150, 100)

ALICE_TEXT = "Is question 2 about the reply window?"
BOB_TEXT = "Which one should I try first?"
ALICE_MORE = "And question 3?"
PANEL_REPLY = "Yes: question 2 is about the 24 h reply window. Nice photo!"
CELL_REPLY = "Start with /time, then /stats"  # the start of what the notebook's %wx_send cell sends to bob
HELP_TEXT = "I am the course helper"  # the start of the bot's answer to bob's /help, which bob quotes
#: A line of ``%wx_sim phone alice bob``: the user's short name and the link to their phone page.
PHONE_LINK = re.compile(r"^(alice|bob)@im\.wechat: (http://127\.0\.0\.1:\d+/_sim/phone/\S+)$", re.M)

#: Counts the times the page's typing indicator was shown (its ``hidden`` attribute went away). Mutation
#: records are replayed in order, so an indicator that came on and went off between two callbacks counts too.
WATCH_TYPING = """() => {
  const el = document.querySelector('[data-testid=typing]');
  window.typingShown = 0;
  new MutationObserver((records) => {
    records.forEach((r, i) => {
      const before = r.oldValue !== null;
      const after = i + 1 < records.length ? records[i + 1].oldValue !== null : el.hasAttribute('hidden');
      if (before && !after) window.typingShown += 1;
    });
  }).observe(el, {attributes: true, attributeFilter: ['hidden'], attributeOldValue: true});
}"""


def _photo() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", PHOTO_SIZE, "#e8f4ff")
    ImageDraw.Draw(image).rectangle((10, 10, 140, 90), outline="#1a73e8", width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _open_phone(browser: Any, link: str, user: str) -> Any:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=PHONE_VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(PHONE * 1000)
    page.goto(link)
    expect(page.locator("[data-testid=me]")).to_have_text(user)
    expect(page.locator("[data-testid=status]")).to_have_text("connected")
    return page


#: Where the newest bubble is in the panel's scrolling box: [box top, box bottom, bubble top, bubble bottom, the
#: box's scrollHeight, its clientHeight, its scrollTop].
NEWEST = """box => {
  const bubbles = box.querySelectorAll('.wxchat-bubble');
  const last = bubbles[bubbles.length - 1].getBoundingClientRect();
  const own = box.getBoundingClientRect();
  return [own.top, own.bottom, last.top, last.bottom, box.scrollHeight, box.clientHeight, box.scrollTop];
}"""


def _newest_in_view(panel: Any, text: str | None = None) -> list[float]:
    """Check that the newest bubble of the panel (holding ``text``) is wholly inside the visible part of the box."""
    from playwright.sync_api import expect

    if text is not None:
        expect(panel.locator(".wxchat-bubbles .wxchat-bubble").last).to_contain_text(text)
    box = panel.locator(".wxchat-bubbles")
    where: list[float] = box.evaluate(NEWEST)
    top, bottom, bubble_top, bubble_bottom = where[:4]
    assert top - 1 <= bubble_top and bubble_bottom <= bottom + 1, f"the newest bubble is out of view: {where}"
    return where


def _send(phone: Any, text: str) -> None:
    phone.locator("[data-testid=composer]").fill(text)
    phone.locator("[data-testid=send]").click()


@pytest.mark.browser
def test_phones_and_the_chat_panel_in_chromium(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chat_index = jupyterlab.cell_index(NOTEBOOK, "teach-chat")
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        phones: dict[str, Any] = {}
        try:
            page.set_default_timeout(UI * 1000)
            page.goto(lab.notebook_url(NOTEBOOK))
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            cells = notebook.locator(".jp-Cell")

            def cell(cell_id: str) -> Any:
                return cells.nth(jupyterlab.cell_index(NOTEBOOK, cell_id))

            expect(cells.first).to_be_visible()
            wait_for_connected_kernel(lab)

            # The teaching demo up to the chat panel, run with Shift+Enter as a teacher would.
            cells.first.click()
            page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and selects the next
            for _ in range(chat_index + 1):
                page.keyboard.press("Shift+Enter")
            panel = cell("teach-chat").locator(".wxchat-panel")
            expect(panel).to_be_visible(timeout=KERNEL * 1000)
            expect(panel.locator(".wxchat-header")).to_contain_text("alice@im.wechat")

            printed = cell("teach-phones").locator(".jp-OutputArea-output").inner_text()
            links = dict(PHONE_LINK.findall(printed))
            assert sorted(links) == ["alice", "bob"], f"the phone links the notebook printed: {printed!r}"
            alice = phones["alice"] = _open_phone(browser, links["alice"], "alice")
            bob = phones["bob"] = _open_phone(browser, links["bob"], "bob")

            # alice writes and sends a photo from her "device".
            _send(alice, ALICE_TEXT)
            expect(alice.locator("[data-testid=bubble-out]", has_text=ALICE_TEXT)).to_be_visible()
            alice.locator("[data-testid=attach]").set_input_files(
                {"name": "homework.png", "mimeType": "image/png", "buffer": _photo()}
            )
            expect(alice.locator("[data-testid=bubble-out] [data-testid=bubble-image]")).to_be_visible()

            # bob quotes the bot's answer to his /help: tap the bubble, Quote, write, Send.
            bob.locator("[data-testid=bubble-in]", has_text=HELP_TEXT).click()
            bob.locator("[data-testid=quote]").click()
            expect(bob.locator("[data-testid=quote-preview]")).to_contain_text(HELP_TEXT)
            _send(bob, BOB_TEXT)
            sent_quote = bob.locator("[data-testid=bubble-out]", has_text=BOB_TEXT)
            expect(sent_quote.locator("[data-testid=bubble-quote]")).to_contain_text(HELP_TEXT)

            # The panel: alice's text and photo in her conversation (selected), bob's quote in his.
            incoming = panel.locator(".wxchat-bubble.wxchat-in")
            expect(incoming.and_(page.locator(".wxchat-text")).filter(has_text=ALICE_TEXT)).to_be_visible(
                timeout=KERNEL * 1000
            )
            photo = incoming.and_(page.locator(".wxchat-image")).locator("img.wxchat-media")
            expect(photo).to_be_visible(timeout=KERNEL * 1000)
            natural = photo.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
            assert tuple(natural) == PHOTO_SIZE, f"the panel's image is not alice's photo: {natural}"
            # The bubbles overflow the box here, and the box opens on the newest (the photo), not the oldest.
            scroll_height, client_height = _newest_in_view(panel, "[image]")[4:6]
            assert scroll_height > client_height, "alice's conversation should be taller than the box"
            panel.locator("button.wxchat-conv", has_text="bob@im.wechat").click()
            expect(panel.locator(".wxchat-header")).to_contain_text("bob@im.wechat")
            quoted = incoming.filter(has_text=BOB_TEXT)
            expect(quoted.locator(".wxchat-quote")).to_contain_text(HELP_TEXT)
            _newest_in_view(panel, BOB_TEXT)  # a conversation selected shows its newest bubble

            # The teacher answers alice in the panel's reply box; her phone shows "typing…" and the reply.
            panel.locator("button.wxchat-conv", has_text="alice@im.wechat").click()
            expect(panel.locator(".wxchat-header")).to_contain_text("alice@im.wechat")
            for phone in (alice, bob):
                phone.evaluate(WATCH_TYPING)
            panel.locator(".wxchat-reply-text textarea").fill(PANEL_REPLY)
            panel.locator("button.wxchat-send").click()
            expect(alice.locator("[data-testid=bubble-in]", has_text=PANEL_REPLY)).to_be_visible()
            alice.wait_for_function("() => window.typingShown > 0")
            expect(alice.locator("[data-testid=typing]")).to_be_hidden()  # sendtyping 2 once the reply was sent
            expect(panel.locator(".wxchat-bubble.wxchat-out", has_text=PANEL_REPLY)).to_be_visible()
            expect(panel.locator(".wxchat-status")).to_contain_text("sent to alice@im.wechat")
            assert bob.evaluate("() => window.typingShown") == 0, "bob's phone showed typing for alice's reply"
            expect(bob.locator("[data-testid=bubble-in]", has_text=PANEL_REPLY)).to_have_count(0)
            alice.screenshot(path=str(ARTIFACTS / "browser-04-phone-alice.png"))
            _newest_in_view(panel, PANEL_REPLY)  # a bubble added while at the bottom shows
            panel.scroll_into_view_if_needed()
            panel.screenshot(path=str(ARTIFACTS / "browser-04-chat-panel.png"))

            # Scrolled up to read older bubbles, the teacher is not pulled down when alice writes again.
            box = panel.locator(".wxchat-bubbles")
            box.evaluate("box => { box.scrollTop = -box.scrollHeight; }")  # (the box scrolls from its bottom)
            first = panel.locator(".wxchat-bubbles .wxchat-bubble").first
            before = first.bounding_box()
            _send(alice, ALICE_MORE)
            expect(panel.locator(".wxchat-bubbles .wxchat-bubble").last).to_contain_text(ALICE_MORE)
            after = first.bounding_box()
            assert before and after and abs(after["y"] - before["y"]) <= 1, f"the view moved: {before} -> {after}"
            bottom, newest_top = box.evaluate(NEWEST)[1:3]
            assert newest_top >= bottom - 1, "scrolled up, the new bubble should wait below the visible part"
            box.evaluate("box => { box.scrollTop = 0; }")  # back to the bottom: it is there
            _newest_in_view(panel, ALICE_MORE)

            # The notebook's %wx_send cell (the stand-in cell before it is skipped: the browser played the phones).
            cell("teach-reply").locator(".jp-InputPrompt").click()
            page.keyboard.press("Escape")
            page.keyboard.press("Shift+Enter")
            expect(cell("teach-reply").locator(".jp-OutputArea-output")).to_contain_text(
                "sent to bob@im.wechat", timeout=KERNEL * 1000
            )
            expect(bob.locator("[data-testid=bubble-in]", has_text=CELL_REPLY)).to_be_visible()
            expect(alice.locator("[data-testid=bubble-in]", has_text=CELL_REPLY)).to_have_count(0)
            panel.locator("button.wxchat-conv", has_text="bob@im.wechat").click()
            expect(panel.locator(".wxchat-bubble.wxchat-out", has_text=CELL_REPLY)).to_be_visible()
            _newest_in_view(panel, CELL_REPLY)
            bob.screenshot(path=str(ARTIFACTS / "browser-04-phone-bob.png"))

            # The rest of the notebook (stop the feed, unload: the simulator stops) runs to the end, no errors.
            # (Clicking in the panel made its cell the selected one: select the first cell after %wx_send.)
            cell("teach-23").locator(".jp-InputPrompt").click()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run Selected Cell and All Below").first.click()
            last = cells.nth(jupyterlab.last_code_cell_index(NOTEBOOK)).locator(".jp-InputPrompt")
            expect(last).to_have_text(re.compile(r"\[\d+\]:"), timeout=KERNEL * 1000)
            stderr = notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            expect(stderr).to_have_count(0)
            # Only the cells meant to run did: the stand-in students never ran, the %wx_send cell ran once.
            expect(cell("teach-stand-in").locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[ \]:"))
            expect(cell("teach-reply").locator(".jp-OutputArea-output")).to_contain_text("sent to bob@im.wechat")
            expect(alice.locator("[data-testid=status]")).to_have_text("the simulator stopped")
        except Exception:
            # What the pages looked like when it went wrong, to read with the test's error.
            page.screenshot(path=str(ARTIFACTS / "browser-04-failure-notebook.png"), full_page=True)
            for name, phone in phones.items():
                phone.screenshot(path=str(ARTIFACTS / f"browser-04-failure-{name}.png"))
            raise
        finally:
            browser.close()
