"""``openclaw-nb demo``: a scripted tour of the protocol against the embedded simulator, in the terminal.

It starts the simulator, logs in by QR (a simulated user scans and confirms), receives messages from two
simulated users, replies with the typing indicator and text, sends an image, and shows the messages as a
DataFrame and the recorded exchanges. Nothing touches the real server or the user's saved accounts.
"""

from __future__ import annotations

import io
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from .client import Client, new_run_id
from .protocol.constants import ItemType
from .protocol.redact import redact
from .sim import Simulator

USERS = (("alice", "Hi bot! What can you do?"), ("bob", "Hello, is anyone there?"))


def _demo_image() -> bytes:
    """A small PNG drawn locally (a QR code of the project's name), so the demo ships no binary file."""
    import qrcode

    img = qrcode.make("openclaw-nb demo image")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _path(url: str) -> str:
    """The path alone: queries carry secrets (redacted, and long), and the call names what was asked."""
    return urlsplit(url).path


def _table(*headers: str) -> Table:
    """A table that fits an 80-column terminal: rules under the header only, two spaces between columns."""
    return Table(*headers, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))


def _short(user_id: str) -> str:
    return user_id.removesuffix("@im.wechat")


def _item_name(item_type: int | None) -> str:
    try:
        return ItemType(item_type).name.lower() if item_type is not None else "none"
    except ValueError:
        return str(item_type)


def _step(console: Console, number: int, text: str) -> None:
    console.print(f"\n[bold cyan]{number}.[/] [bold]{text}[/]")


def _show_frame(console: Console, received: list[Any], sent: list[dict[str, Any]], bot_id: str) -> None:
    """The messages the bot received and sent, through the same flattening as ``client.stream()``'s feed."""
    from .frames import frame_from_messages, messages_per_user

    def who(user_id: str) -> str:
        return "bot" if user_id == bot_id else _short(user_id)

    df = frame_from_messages([*received, *sent]).sort_values("create_time", kind="stable")
    table = _table("time (UTC)", "from → to", "type", "items", "text")
    for row in df.itertuples():
        text = row.text if isinstance(row.text, str) else ""
        table.add_row(
            row.create_time.strftime("%H:%M:%S.%f")[:-3],
            f"{who(row.from_user_id)} → {who(row.to_user_id)}",
            str(row.message_type),
            row.item_types,
            text,
        )
    console.print(table)
    console.print(f"{len(df)} rows; message_id is {df['message_id'].dtype} (exact above 2^53),", markup=False)
    console.print(f"create_time is {df['create_time'].dtype}; the users are …@im.wechat.", markup=False)
    console.print("Inbound messages per user:")
    console.print(messages_per_user(df)[["messages", "media"]].to_string(), markup=False)
    console.print("(in a notebook, client.stream() fills such a frame live: see notebooks/03)")


def run_demo(console: Console | None = None, *, confirm_after: float = 1.0, long_poll: float = 2.0) -> int:
    """Run the tour; returns the exit code (0 on success)."""
    console = console or Console()
    started = time.perf_counter()
    # An empty data folder for the login, so the user's saved accounts are never read; removed on the way out.
    with (
        tempfile.TemporaryDirectory(prefix="openclaw-nb-demo-") as home,
        Simulator(long_poll_timeout=long_poll, auto_confirm=confirm_after, default_user="owner") as sim,
    ):
        console.print(
            Panel.fit(
                f"simulator  {sim.base_url}\nCDN        {sim.cdn_base_url}\ncontrol    {sim.base_url}/_sim/state",
                title="openclaw-nb demo — everything runs locally",
            )
        )
        with Client(base_url=sim.base_url, cdn_base_url=sim.cdn_base_url) as client:
            _step(console, 1, "Log in by QR code (a simulated user scans and confirms it)")
            client.login(display="terminal", console=console, home=home, save=False)
            client.notify_start()

            _step(console, 2, "Two simulated WeChat users write to the bot")
            for name, text in USERS:
                sim.say(name, text)
                console.print(f"  {name}@im.wechat says: {text!r}")
            received: list[Any] = []
            deadline = time.monotonic() + 10
            while len(received) < len(USERS) and time.monotonic() < deadline:
                received.extend(client.get_updates().messages)
            if len(received) < len(USERS):
                console.print("[red]the messages did not arrive[/]")
                return 1
            console.print("  received (get_updates), each with the token a reply must echo:")
            for msg in received:
                console.print(f"  {msg.from_user_id}: {msg.text!r}", markup=False, overflow="ellipsis")
                token = redact(msg.context_token or "")
                console.print(f"    message_id {msg.message_id} (uint64), context_token {token}", markup=False)

            _step(console, 3, "Reply to each, with the typing indicator on while 'thinking'")
            # One run_id per message answered, on every send of its reply, as the official client tags replies.
            runs = {id(msg): new_run_id() for msg in received}
            for msg in received:
                user = msg.from_user_id or ""
                with client.typing_indicator(user):
                    resp = client.send_text(user, f"You said: {msg.text}", run_id=runs[id(msg)])
                console.print(f"  replied to {user}: message_id {resp.message_id}")

            _step(console, 4, "Send alice an image with a caption (AES-128-ECB encrypted, via the CDN)")
            sent = client.send_image(
                _demo_image(),
                received[0].from_user_id or "",
                caption="Here is a picture",
                name="demo.png",
                run_id=runs[id(received[0])],  # still the reply to alice's message
            )
            up = sent.uploaded
            if up is not None:
                console.print(
                    f"  uploaded {up.file_name} ({up.kind}, {up.rawsize:,} bytes, {up.filesize:,} encrypted)",
                    markup=False,
                )
            for caption in sent.caption:
                console.print(f"  sent the caption first: message_id {caption.message_id}")
            console.print(f"  then the image: message_id {sent.message_id}")

            _step(console, 5, "What the simulated phones received (media decrypted by the simulator)")
            outbox = _table("to", "items", "text / media")
            for entry in sim.outbox:
                media = entry.data
                shown = entry.text or (f"{len(media):,} bytes, decrypted" if media is not None else "")
                kinds = ",".join(_item_name(t) for t in entry.item_types)
                outbox.add_row(entry.msg.get("to_user_id", ""), kinds, shown)
            console.print(outbox)

            client.notify_stop()
            _step(console, 6, "The conversation as a pandas DataFrame: one row per message, both directions")
            _show_frame(console, received, [entry.msg for entry in sim.outbox], client.bot_id or "")

            _step(console, 7, "Every HTTP exchange, as the recorder kept it (secrets redacted)")
            import pandas as pd

            frame = client.log.frame()
            wire = _table("#", "call", "request (query left out)", "HTTP", "ret", "ms")
            wire.columns[2].no_wrap = True  # a path cut short would lose its point: the last column gives way
            for column in wire.columns[3:]:
                column.justify = "right"
            for row in frame.itertuples():
                wire.add_row(
                    str(row.Index),
                    row.call,
                    f"{row.method} {_path(row.url)}",
                    str(row.status),
                    "" if pd.isna(row.ret) else str(row.ret),
                    f"{row.duration_ms:.1f}",
                )
            console.print(wire)
            console.print("per call:")
            console.print(client.log.summary().round(2).to_string())
            console.print("(in a notebook: client.log.show() renders the bodies as collapsible JSON)")
    console.print(f"\n[bold green]done[/] in {time.perf_counter() - started:.1f} s")
    return 0
