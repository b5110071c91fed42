"""How a log looks: a rich table in a terminal, an HTML table with collapsible JSON in a notebook, plain text
everywhere else. rich is imported only when something is rendered.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from typing import Any

from .exchange import Binary, Exchange, Text, _html_details, _pretty_section, _utc

_PREVIEW = 70


def _preview(body: Any) -> str:
    """A one-line hint of a body for the table: compact JSON cut short, or the binary summary."""
    if body is None:
        return ""
    if isinstance(body, (Binary, Text)):
        text = str(body)
    else:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _time(ex: Exchange) -> str:
    return _utc(ex.started).strftime("%H:%M:%S.%f")[:-3]


def _ms(ex: Exchange) -> str:
    return "" if ex.duration_ms is None else f"{ex.duration_ms:.1f}"


class LogTable:
    """The last exchanges of a log, ready to display (see :meth:`openclaw_nb.recorder.Recorder.show`)."""

    def __init__(self, exchanges: Sequence[Exchange], total: int | None = None) -> None:
        self.exchanges = list(exchanges)
        self.total = len(self.exchanges) if total is None else total

    def _title(self) -> str:
        n = len(self.exchanges)
        if n == self.total:
            return f"protocol log: {n} exchange{'s' if n != 1 else ''}"
        return f"protocol log: last {n} of {self.total} exchanges"

    def __rich__(self) -> Any:
        from rich.table import Table
        from rich.text import Text as RichText

        table = Table(title=self._title(), title_justify="left", expand=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("time (UTC)", no_wrap=True)
        table.add_column("call", no_wrap=True, style="bold")
        table.add_column("method", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("ms", justify="right", no_wrap=True)
        table.add_column("try", justify="right")
        table.add_column("request", overflow="fold")
        table.add_column("response / error", overflow="fold")
        for ex in self.exchanges:
            style = "red" if ex.failed else "green"
            answer = ex.error if ex.error and ex.status is None else _preview(ex.response_body)
            # Text objects, not markup strings: bodies may contain "[...]" that rich would read as style tags.
            table.add_row(
                RichText(str(ex.id)),
                RichText(_time(ex)),
                RichText(ex.call),
                RichText(ex.method),
                RichText(ex.outcome, style=style),
                RichText(_ms(ex)),
                RichText(str(ex.attempt)),
                RichText(_preview(ex.request_body)),
                RichText(answer or ""),
            )
        return table

    def __repr__(self) -> str:
        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=120, color_system=None, force_terminal=False, force_jupyter=False)
        console.print(self.__rich__())
        return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th style='text-align:left'>{h}</th>"
            for h in ("#", "time (UTC)", "call", "method", "result", "ms", "try", "request", "response")
        )
        rows = []
        for ex in self.exchanges:
            colour = "#b00020" if ex.failed else "#1b5e20"
            request = _html_details(
                _preview(ex.request_body) or ex.method, _pretty_section(ex.request_headers, ex.request_body)
            )
            if ex.status is None:
                response = f"<code style='color:{colour}'>{html.escape(ex.error or 'no response')}</code>"
            else:
                summary = _preview(ex.response_body) or f"{ex.status} {ex.reason}".strip()
                response = _html_details(summary, _pretty_section(ex.response_headers, ex.response_body))
                if ex.error:
                    response += f"<code style='color:{colour}'>{html.escape(ex.error)}</code>"
            cells = [
                html.escape(str(ex.id)),
                html.escape(_time(ex)),
                f"<b>{html.escape(ex.call)}</b>",
                html.escape(ex.method),
                f"<span style='color:{colour}'>{html.escape(ex.outcome)}</span>",
                html.escape(_ms(ex)),
                html.escape(str(ex.attempt)),
                request,
                response,
            ]
            rows.append(
                "<tr>" + "".join(f"<td style='text-align:left;vertical-align:top'>{c}</td>" for c in cells) + "</tr>"
            )
        return (
            f"<div class='openclaw-log'><b>{html.escape(self._title())}</b>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
