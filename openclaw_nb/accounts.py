"""Saved accounts: list them (tokens redacted), forget one or the superseded ones, and run several at once.

:class:`Accounts` loads saved logins into :class:`~openclaw_nb.client.AsyncClient` instances that share one
event loop, and :meth:`Accounts.broadcast` sends one message from every account to its own users at once
(:mod:`openclaw_nb.broadcast`), returning one table with a row per target instead of failing as a whole.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import env
from . import errors as E
from .broadcast import BROADCAST_COLUMNS as _CLIENT_COLUMNS
from .broadcast import DEFAULT_CONCURRENCY, BroadcastResult, OnProgress, plan_accounts
from .protocol.redact import redact
from .store import Store, superseded_ids

if TYPE_CHECKING:
    import pandas as pd

    from .client import AsyncClient
    from .recorder import LogBudget

#: The byte budget all the loaded clients' protocol logs share by default (``Accounts.load(log_bytes=...)``):
#: a recorder's own default is 8 MiB, which for 200 accounts would be 1.6 GB.
DEFAULT_SHARED_LOG_BYTES = 64 * 1024 * 1024

#: Columns of :meth:`Accounts.broadcast`'s table: the account (bot id), then a client broadcast's columns.
BROADCAST_COLUMNS = ("account", *_CLIENT_COLUMNS)


#: Columns of :func:`list_accounts`.
ACCOUNT_COLUMNS = ("ilink_bot_id", "ilink_user_id", "baseurl", "bot_token", "saved_at", "superseded")


def list_accounts(home: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Saved accounts, most recent first, tokens redacted.

    ``superseded`` is True for a login replaced by a newer one of the same WeChat user (another bot id): its
    token no longer goes into ``local_token_list``, and :func:`forget_superseded` removes it.

    >>> list_accounts()[["ilink_bot_id", "ilink_user_id", "bot_token", "superseded"]]
                  ilink_bot_id    ilink_user_id              bot_token  superseded
    0  0446ad83ade24fb5@im.bot  owner@im.wechat  <redacted cf2b…(64)>       False
    1  9c1f02aa77d1e3b0@im.bot  owner@im.wechat  <redacted 51e0…(64)>        True
    """
    import pandas as pd

    accounts = Store(home).accounts()
    stale = superseded_ids(accounts)
    rows = [
        {
            "ilink_bot_id": c.ilink_bot_id,
            "ilink_user_id": c.ilink_user_id,
            "baseurl": c.baseurl,
            "bot_token": redact(c.bot_token),
            "saved_at": c.saved_at,
            "superseded": c.ilink_bot_id in stale,
        }
        for c in accounts
    ]
    frame = pd.DataFrame(rows, columns=list(ACCOUNT_COLUMNS))
    frame["saved_at"] = pd.to_datetime(frame["saved_at"], unit="s", utc=True)
    frame["superseded"] = frame["superseded"].astype(bool)
    return frame


def forget(bot_id: str, home: str | os.PathLike[str] | None = None) -> bool:
    """Remove a saved account (credentials, cursor, context tokens). True if anything was removed.

    >>> forget("0446ad83ade24fb5@im.bot")
    """
    return Store(home).forget(bot_id)


def forget_superseded(home: str | os.PathLike[str] | None = None, *, user_id: str | None = None) -> list[str]:
    """Remove the saved logins superseded by a newer login of the same WeChat user (only ``user_id``'s when
    given), as the official client does after each login. Returns the bot ids removed.

    >>> forget_superseded()
    ['0446ad83ade24fb5@im.bot']
    """
    return Store(home).forget_superseded(user_id)


class Accounts:
    """Several logged-in bots as AsyncClients on one event loop.

    >>> accounts = Accounts.load()                           # every saved account
    >>> result = await accounts.broadcast("hello")           # each account to the users it has heard from
    >>> result.frame[result.frame.status != "sent"]
    """

    def __init__(self, clients: Mapping[str, AsyncClient], *, log_budget: LogBudget | None = None) -> None:
        self.clients: dict[str, AsyncClient] = dict(clients)
        #: The byte budget the clients' protocol logs share (None when they were made elsewhere).
        self.log_budget = log_budget
        #: The loop the clients run on when driven from synchronous code outside a notebook (see ``_run``).
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def load(
        cls,
        bot_ids: Iterable[str] | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        log_bytes: int | LogBudget | None = DEFAULT_SHARED_LOG_BYTES,
        **client_kw: Any,
    ) -> Accounts:
        """AsyncClients for the saved accounts ``bot_ids`` (all saved accounts when None).

        ``client_kw`` go to every :class:`~openclaw_nb.client.AsyncClient` (``record=False``, ``retry=``...).
        ``log_bytes`` is one memory budget for all their protocol logs together (64 MiB; the oldest exchanges
        of all are dropped first): bytes, a :class:`~openclaw_nb.recorder.LogBudget`, or None for each
        client's own default budget. The clients share one TLS context.
        """
        from .client import AsyncClient
        from .recorder import LogBudget

        budget = LogBudget(log_bytes) if isinstance(log_bytes, int) and not isinstance(log_bytes, bool) else log_bytes
        if budget is not None and not isinstance(budget, LogBudget):
            raise E.UsageError(
                f"log_bytes is the bytes all the accounts' protocol logs may hold together (an int), a LogBudget, "
                f"or None (each client its own default), got {log_bytes!r}"
            )
        if budget is not None:
            client_kw["log_bytes"] = budget
        store = Store(home)
        creds = store.accounts() if bot_ids is None else [store.load_credentials(b) for b in bot_ids]
        clients: dict[str, AsyncClient] = {}
        for c in creds:
            client = AsyncClient(c.bot_token, base_url=c.baseurl, bot_id=c.ilink_bot_id, **client_kw)
            client._store_home = store.root  # type: ignore[attr-defined]
            clients[c.ilink_bot_id] = client
        return cls(clients, log_budget=budget)

    # --- a read-only mapping of bot id -> client ---

    def __getitem__(self, bot_id: str) -> AsyncClient:
        try:
            return self.clients[bot_id]
        except KeyError:
            raise E.UsageError(f"no account {bot_id!r} loaded (loaded: {', '.join(self.clients) or 'none'})") from None

    def __contains__(self, bot_id: object) -> bool:
        return bot_id in self.clients

    def __iter__(self) -> Iterator[str]:
        return iter(self.clients)

    def __len__(self) -> int:
        return len(self.clients)

    @property
    def bot_ids(self) -> list[str]:
        return list(self.clients)

    def __repr__(self) -> str:
        return f"Accounts({', '.join(self.clients) or 'none'})"

    # --- sending to many ---

    async def broadcast(
        self,
        text_or_media: object,
        to: Mapping[str, Iterable[str]] | Iterable[Sequence[str]] | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        kind: str | None = None,
        caption: str | None = None,
        name: str | None = None,
        markdown: str | None = None,
        progress: bool | None = None,
        on_progress: OnProgress | None = None,
    ) -> BroadcastResult:
        """Send one text or media message from many accounts at once: each account to its own users.

        ``to``: None (each account to every user it has received a message from), ``{bot_id: [users]}``, or
        ``(bot_id, user)`` pairs. At most ``concurrency`` sends are under way at once in all. Everything else
        is as in :meth:`AsyncClient.broadcast <openclaw_nb.client.AsyncClient.broadcast>`: the reply budget
        is checked first, a bar shows progress, and Ctrl-C or a cancellation keeps the table so far.

        Returns one :class:`~openclaw_nb.broadcast.BroadcastResult` for all accounts: its ``.frame`` has an
        ``account`` column first (the bot id), then ``user``, ``status`` (``sent`` / ``rejected`` /
        ``may_have_been_delivered`` / ``skipped`` / ``not_started``), ``message_id``, ``client_id``, ``code``
        and ``reason``, one row per target in the order given. A target whose account is not loaded is
        ``skipped``.

        >>> result = await accounts.broadcast("the class starts at 9 today")
        >>> result.frame.groupby("account").status.value_counts()
        """
        job = plan_accounts(
            self.clients,
            text_or_media,
            to,
            concurrency=concurrency,
            kind=kind,
            caption=caption,
            name=name,
            markdown=markdown,
            progress=progress,
            on_progress=on_progress,
        )
        return await job.run()

    def broadcast_sync(
        self,
        text_or_media: object,
        to: Mapping[str, Iterable[str]] | Iterable[Sequence[str]] | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        kind: str | None = None,
        caption: str | None = None,
        name: str | None = None,
        markdown: str | None = None,
        progress: bool | None = None,
        on_progress: OnProgress | None = None,
    ) -> BroadcastResult:
        """:meth:`broadcast` from synchronous code (a script, or a notebook cell without ``await``). Ctrl-C
        raises :class:`~openclaw_nb.broadcast.BroadcastInterrupted` with the table so far."""
        job = plan_accounts(
            self.clients,
            text_or_media,
            to,
            concurrency=concurrency,
            kind=kind,
            caption=caption,
            name=name,
            markdown=markdown,
            progress=progress,
            on_progress=on_progress,
        )
        if env.running_loop() is not None:
            # A notebook cell: the clients belong to the kernel's loop, which runs the broadcast re-entrantly.
            return env.run_sync(job.run())
        # The accounts' own loop (their connections belong to it), run by a worker thread while this one waits,
        # so that Ctrl-C lands here and stops the broadcast cleanly.
        return job.run_in_thread(self._private_loop(), close_loop=False)

    def _run(self, coro: Any) -> Any:
        """Run a coroutine on the accounts' loop from synchronous code (the kernel's, re-entrantly, in a cell)."""
        if env.running_loop() is not None:
            return env.run_sync(coro)
        return self._private_loop().run_until_complete(coro)

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        # One private loop for every synchronous call: httpx's async pools belong to the loop that opened
        # their connections, so a fresh loop per call (asyncio.run) would strand them.
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    # --- lifecycle ---

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))

    def close(self) -> None:
        """Close every client (and the private loop, if synchronous calls made one)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.run_until_complete(self.aclose())
            self._loop.close()
        elif env.running_loop() is None:
            asyncio.run(self.aclose())
        else:
            env.run_sync(self.aclose())

    async def __aenter__(self) -> Accounts:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Accounts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["ACCOUNT_COLUMNS", "BROADCAST_COLUMNS", "Accounts", "forget", "forget_superseded", "list_accounts"]
