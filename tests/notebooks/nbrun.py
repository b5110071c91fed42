"""Execute the repository's notebooks headless with nbclient and check their key outputs.

Used two ways, so the checks live in one place:

* imported by ``tests/notebooks/test_notebooks.py`` (the package's own venv);
* run as a script by the Binder test inside a fresh venv built from ``binder/``:
  ``python tests/notebooks/nbrun.py notebooks/01-login.ipynb ...`` exits 0 when every notebook ran and
  passed its checks, and prints one line per notebook with its run time.

It imports nothing from pytest or from the package, only nbclient/nbformat (both come with JupyterLab).
The kernel is always the Python running this module (a kernelspec written to a temp dir that is put first on
``JUPYTER_PATH``), so a stray user-wide ``python3`` kernelspec can never run the notebooks with another Python.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
#: Each notebook should run top to bottom in less than this many seconds (the issue's budget). It is enforced
#: per cell (nbclient's timeout); the whole run's time is printed and flagged when over, never asserted:
#: tests do not assert on wall-clock time.
BUDGET_SECONDS = 60.0
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@contextmanager
def kernel_env(home: Path, extra: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """Environment for the kernel: ``OPENCLAW_NB_HOME`` and ``IPYTHONDIR`` in ``home``, and a ``python3``
    kernelspec that runs this very interpreter."""
    spec_root = home / "jupyter"
    spec = spec_root / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (notebook tests)",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    env = {
        "OPENCLAW_NB_HOME": str(home / "openclaw_nb"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_PATH": os.pathsep.join([str(spec_root), os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep),
        # Plots render to PNG outputs; no display is needed.
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        **(extra or {}),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(path: Path, workdir: Path, *, timeout: float = BUDGET_SECONDS) -> tuple[Any, float]:
    """Run the notebook at ``path`` with ``workdir`` as the kernel's cwd; returns (executed notebook, seconds).

    Raises nbclient's ``CellExecutionError`` (with the failing cell and traceback) on any error.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=int(timeout),
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        allow_errors=False,
    )
    started = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - started


# --- reading outputs ------------------------------------------------------------------------------------


def cell(nb: Any, cell_id: str) -> Any:
    for c in nb.cells:
        if c.get("id") == cell_id:
            return c
    raise AssertionError(f"the notebook has no cell with id {cell_id!r} (the checks rely on these ids)")


def text(c: Any) -> str:
    """Everything a cell printed or displayed as text: streams, text/plain and text/html, joined.

    The kernel may split one ``print`` across several stream outputs (it flushes on a timer), so
    consecutive chunks of the same stream are glued back together before anything else is joined.
    """
    parts: list[str] = []
    last_stream: str | None = None
    for out in c.get("outputs", []):
        if out.get("output_type") == "stream":
            chunk = out.get("text", "")
            chunk = "".join(chunk) if isinstance(chunk, list) else chunk
            if last_stream == out.get("name") and parts:
                parts[-1] += chunk
            else:
                parts.append(chunk)
            last_stream = out.get("name")
            continue
        last_stream = None
        data = out.get("data", {})
        for mime in ("text/plain", "text/html"):
            if mime in data:
                value = data[mime]
                parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def mimes(c: Any) -> set[str]:
    return {mime for out in c.get("outputs", []) for mime in out.get("data", {})}


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# --- what each notebook must show ----------------------------------------------------------------------


def plain(c: Any) -> str:
    """The ``text/plain`` of a cell's display outputs (what a frontend without widgets shows), joined."""
    parts = []
    for out in c.get("outputs", []):
        value = out.get("data", {}).get("text/plain")
        if value is not None:
            parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def check_login(nb: Any) -> None:
    widget = cell(nb, "login-widget")
    _expect(WIDGET_MIME in mimes(widget), "client.login() displayed no widget")
    # The widget's text fallback is updated in place as the login goes on: it ends with the result and the
    # URL of the QR code that was scanned (nbconvert output and text-only frontends show this text).
    fallback = plain(widget)
    _expect(
        re.search(r"https?://\S+/_sim/scan/[0-9a-f]+", fallback) is not None,
        f"the widget's text/plain lacks the scan URL: {fallback!r}",
    )
    _expect("Logged in as bot" in fallback, f"the widget's text/plain was not updated: {fallback!r}")
    # The QR code is kept as a static image next to the widget: a notebook viewer or an HTML export without
    # widget state shows it.
    pngs = [out["data"]["image/png"] for out in widget.get("outputs", []) if "image/png" in out.get("data", {})]
    _expect(len(pngs) == 1, f"the widget's output keeps no QR image: {sorted(mimes(widget))}")
    _expect(base64.b64decode("".join(pngs[0])).startswith(b"\x89PNG\r\n\x1a\n"), "the QR image is not a PNG")
    # The text says what a token's repr shows, and the client's repr shows just that.
    about = "".join(cell(nb, "login-10").source)
    _expect("fingerprint" in about and "length" in about, f"the token-repr text: {about!r}")
    shown = text(cell(nb, "login-11"))
    _expect(re.search(r"token=<redacted [0-9a-f]{4}…\(\d+\)>", shown) is not None, f"the client's repr: {shown!r}")
    phone = text(cell(nb, "login-phone"))
    _expect("status: confirmed" in phone, f"the login did not end confirmed: {phone!r}")
    _expect("Logged in as bot" in phone, phone)
    reply = text(cell(nb, "login-reply"))
    _expect("Hi! You wrote: Hello bot" in reply, f"the reply did not reach the simulated phone: {reply!r}")
    verify = text(cell(nb, "login-verify"))
    _expect("need_verifycode" in verify and "confirmed" in verify, f"verify-code path: {verify!r}")
    _expect("scanned by carol@im.wechat" in verify, verify)


def check_protocol(nb: Any) -> None:
    receive = text(cell(nb, "proto-receive"))
    _expect("Hello bot! What is 6 x 7?" in receive and "above 2**63: True" in receive, receive)
    media = text(cell(nb, "proto-media"))
    _expect("the phone decrypted the same PNG: True | problems: none" in media, media)
    download = text(cell(nb, "proto-download"))
    _expect("the same as uploaded: True" in download and "it is the PNG we drew: True" in download, download)
    # The recorder's views: the table, the frame (every endpoint called by hand), the summary, a filtered log.
    shown = text(cell(nb, "proto-23"))
    _expect("protocol log: last 8 of" in shown and "cdn_upload" in shown, f"client.log.show(8): {shown[:300]!r}")
    frame = text(cell(nb, "proto-24"))
    calls = ("get_bot_qrcode", "get_qrcode_status", "notify_start", "get_updates", "send_message", "get_config")
    calls += ("send_typing", "get_upload_url", "cdn_upload", "cdn_download", "notify_stop")
    missing = [call for call in calls if call not in frame]
    _expect(not missing, f"client.log.frame() lacks the calls {missing}: {frame[:300]!r}")
    summary = text(cell(nb, "proto-25"))
    _expect("p50_ms" in summary and "cdn_download" in summary, f"client.log.summary(): {summary[:300]!r}")
    filtered = text(cell(nb, "proto-26"))
    _expect("send_message" in filtered and "cdn_upload" in filtered and "get_updates" not in filtered, filtered[:300])
    har = re.search(r"^(\d+) HAR entries written to \S+session\.har$", text(cell(nb, "proto-28")), re.M)
    _expect(har is not None and int(har.group(1)) >= len(calls), "the HAR export wrote no entries")
    _expect("identical to the live log: True" in text(cell(nb, "proto-jsonl")), "JSONL export did not read back")
    replayed = text(cell(nb, "proto-replay"))
    _expect("replay and recording match" in replayed, f"replay against a fresh simulator: {replayed!r}")
    strict = text(cell(nb, "proto-replay-strict"))
    _expect("differ in 3 places" in strict and "context_token used up" in strict, strict)
    errors = text(cell(nb, "proto-errors"))
    _expect("reply window closed" in errors and "StaleTokenError" in errors, errors)
    drift = text(cell(nb, "proto-drift"))
    for needle in ("sent as '", "(written back as it came)", "last item: type99", "partial quote: 'forty-two'"):
        _expect(needle in drift, f"the drift section lacks {needle!r}: {drift!r}")
    _expect("ID-only quote: 'The answer is forty-two, said the computer'" in drift, drift)
    table = text(cell(nb, "proto-drift-table"))
    for needle in ("msgs[].future_flag", "unknown field", "msgs[].item_list[].type", "unknown value", "message_id"):
        _expect(needle in table, f"client.drift lacks {needle!r}: {table[:500]!r}")
    _expect(re.match(r"0 of [1-9]\d* requests differ", text(cell(nb, "proto-conformance"))) is not None, "conformance")
    article = text(cell(nb, "proto-article-conformance"))
    _expect("get_bot_qrcode" in article and "GET" in article, f"the article's conformance: {article[:500]!r}")
    diffs = text(cell(nb, "proto-diff"))
    for needle in ('request.method: "GET" → "POST"', "request.body.chat_id: missing in B", "get_updates_buf: extra"):
        _expect(needle in diffs, f"the seed-vs-wire diff lacks {needle!r}: {diffs!r}")


def check_analysis(nb: Any) -> None:
    frame = text(cell(nb, "analysis-frame"))
    _expect("49 messages; message_id dtype: UInt64" in frame, f"the feed's frame: {frame[:300]!r}")
    per_user = text(cell(nb, "analysis-per-user"))
    _expect(all(f"{u}@im.wechat" in per_user for u in ("alice", "bob", "carol", "dave")), per_user[:500])
    _expect("image/png" in mimes(cell(nb, "analysis-timeline")), "the timeline cell drew no plot")
    _expect("NaT" in text(cell(nb, "analysis-latency")), "the unanswered picture should have no latency")
    talk = text(cell(nb, "analysis-conversation"))
    _expect("conversation with alice@im.wechat (6 messages)" in talk and "See you there" in talk, talk[:500])
    image = cell(nb, "analysis-image")
    _expect("image/png" in mimes(image) and "bytes after decryption" in text(image), "no inline image")
    dups = text(cell(nb, "analysis-duplicates"))
    _expect("dropped 1 message(s)" in dups and "True" in dups, dups[:500])
    _expect("UBIGINT" in text(cell(nb, "analysis-duckdb")), "DuckDB did not read message_id as UBIGINT")
    back = text(cell(nb, "analysis-readback"))
    _expect("52 rows read back; message ids identical: True" in back, back)


def check_teaching(nb: Any) -> None:
    help_text = text(cell(nb, "teach-help"))
    _expect(all(m in help_text for m in ("%wx_connect", "%wx_send", "%wx_upload", "%wx_sim")), help_text[:300])
    _expect("logged in as the simulated bot" in text(cell(nb, "teach-connect")), "%wx_connect --sim")
    first = text(cell(nb, "teach-serve-1"))
    _expect("typing… shown to alice@im.wechat" in first and "sent to bob@im.wechat" in first, first)
    second = text(cell(nb, "teach-serve-2"))
    _expect("sent image 'stats.png'" in second and "sent to dave@im.wechat" in second, second)
    _expect("Here is how busy the class has been" in text(cell(nb, "teach-outbox")), "the outbox lacks the caption")
    _expect("image/png" in mimes(cell(nb, "teach-chart")), "the decrypted chart is not shown")
    _expect("sent to alice@im.wechat: message_id" in text(cell(nb, "teach-announce")), "%%wx_send")
    _expect("HAR 1.2" in text(cell(nb, "teach-har")), "%wx_log --har")
    # The class on phones: a working-looking link per user, the chat panel as a widget (with its text view), the
    # stand-in students' three messages in the panel, and a reply sent from a cell.
    links = re.findall(r"^(alice|bob)@im\.wechat: https?://\S+/_sim/phone/\1$", text(cell(nb, "teach-phones")), re.M)
    _expect(links == ["alice", "bob"], f"%wx_sim phone alice bob: {text(cell(nb, 'teach-phones'))!r}")
    chat = cell(nb, "teach-chat")
    _expect(WIDGET_MIME in mimes(chat), "the chat panel displayed no widget")
    _expect("▶ alice@im.wechat" in plain(chat), f"the panel's text view: {plain(chat)[:300]!r}")
    shown = text(cell(nb, "teach-stand-in"))
    for needle in ("chat: 4 conversations, 15 messages", "← Which one should I try first?", "← [image]"):
        _expect(needle in shown, f"the panel after the stand-in students wrote lacks {needle!r}: {shown!r}")
    _expect("sent to bob@im.wechat: message_id" in text(cell(nb, "teach-reply")), "%wx_send bob from a cell")


CHECKS: dict[str, Callable[[Any], None]] = {
    "01-login.ipynb": check_login,
    "02-protocol-exploration.ipynb": check_protocol,
    "03-message-analysis.ipynb": check_analysis,
    "04-teaching-demo.ipynb": check_teaching,
}


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def run_and_check(path: Path, workdir: Path) -> float:
    """Execute one notebook and apply its checks; returns its run time in seconds (reported, not asserted)."""
    nb, seconds = execute(path, workdir)
    check = CHECKS.get(path.name)
    if check is None:
        raise AssertionError(f"{path.name} has no output checks in tests/notebooks/nbrun.py")
    check(nb)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    args = parser.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="openclaw-nb-nbrun-") as tmp:
        for path in args.paths or notebooks():
            work = Path(tmp) / path.stem
            work.mkdir()
            with kernel_env(work / "home"):
                try:
                    seconds = run_and_check(path.resolve(), work)
                except Exception as exc:
                    failed += 1
                    print(f"FAIL {path.name}: {type(exc).__name__}: {exc}", flush=True)
                else:
                    # Timing is reported, not asserted: shared CI machines are too noisy for a hard bound.
                    over = f" (over the {BUDGET_SECONDS:.0f} s budget)" if seconds > BUDGET_SECONDS else ""
                    print(f"ok   {path.name} {seconds:.1f} s{over}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
