"""What the client keeps on disk, per account: credentials, the getupdates cursor, context tokens.

Layout under ``$OPENCLAW_NB_HOME`` (default ``~/.openclaw_nb``), mirroring the official client's files::

    accounts/<bot id>.json                  bot_token, ilink_bot_id, baseurl, ilink_user_id, saved_at
    accounts/<bot id>.sync.json             {"get_updates_buf": ...}
    accounts/<bot id>.pending.sync.json     messages received but not yet consumed (the update stream's)
    accounts/<bot id>.context-tokens.json   {"<user id>": {"context_token": ..., ...}}
    accounts/<bot id>.feed.jsonl            the live feed's rows, one message a line (``client.stream()``'s)

Every write is atomic (a temporary file in the same folder, fsync, ``os.replace``), files are 0600 and the
folders the project creates 0700 (a folder that already exists keeps its mode), so a crash never leaves a
half-written file and other local users can't read a token. A crash in the middle of a write can leave its
temporary file (``.<name>.<random>.tmp``) behind: opening a :class:`Store` removes those older than
:data:`STALE_TEMP_SECONDS`, and :meth:`Store.forget` removes the account's at once.

A saved login is *superseded* when a newer saved login of the same WeChat user (``ilink_user_id``) has another
bot id: the official client deletes such accounts after a login; here they stay until
:meth:`Store.forget_superseded`, but their tokens no longer go into ``local_token_list``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import errors as E
from .journal import (  # the crash-safe file primitives, shared with the simulator
    atomic_write_bytes,
    clean_temp_files,
    ensure_private_dir,
)
from .protocol.redact import redact

ENV_HOME = "OPENCLAW_NB_HOME"
DEFAULT_HOME = "~/.openclaw_nb"
_SAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def home(path: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``path`` if given, else ``$OPENCLAW_NB_HOME``, else ``~/.openclaw_nb``."""
    chosen = path if path is not None else os.environ.get(ENV_HOME) or DEFAULT_HOME
    return Path(chosen).expanduser()


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8"))


def read_json(path: Path) -> Any:
    """Read a JSON file; a damaged one raises UsageError naming the file and what to do."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except ValueError as exc:
        raise E.UsageError(f"{path} is not valid JSON ({exc}); fix or delete it") from None


def safe_name(bot_id: str) -> str:
    """A file name for an account id (``abc@im.bot`` stays readable; path separators can't sneak in)."""
    if not isinstance(bot_id, str) or not bot_id.strip():
        raise E.UsageError("bot_id must be a non-empty string such as 'abc@im.bot'")
    name = _SAFE.sub("_", bot_id.strip())
    if name in (".", ".."):
        raise E.UsageError(f"{bot_id!r} is not a usable bot id")
    return name


@dataclass
class Credentials:
    """A saved login. ``repr`` never shows the whole token."""

    bot_token: str
    ilink_bot_id: str
    baseurl: str
    ilink_user_id: str | None = None
    saved_at: float = field(default_factory=time.time)

    def __repr__(self) -> str:
        return (
            f"Credentials(ilink_bot_id={self.ilink_bot_id!r}, baseurl={self.baseurl!r}, "
            f"ilink_user_id={self.ilink_user_id!r}, bot_token={redact(self.bot_token)}, saved_at={self.saved_at})"
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> Credentials:
        token, bot_id, base = data.get("bot_token"), data.get("ilink_bot_id"), data.get("baseurl")
        if not (isinstance(token, str) and token and isinstance(bot_id, str) and bot_id and isinstance(base, str)):
            where = f" in {source}" if source else ""
            raise E.UsageError(f"saved credentials{where} lack bot_token, ilink_bot_id or baseurl; log in again")
        saved = data.get("saved_at")
        user = data.get("ilink_user_id")
        return cls(
            bot_token=token,
            ilink_bot_id=bot_id,
            baseurl=base,
            ilink_user_id=user if isinstance(user, str) else None,
            saved_at=float(saved) if isinstance(saved, (int, float)) else 0.0,
        )


def superseded_ids(accounts: Iterable[Credentials]) -> set[str]:
    """Bot ids of the logins superseded by a newer one of the same ``ilink_user_id`` (``accounts`` newest
    first, as :meth:`Store.accounts` lists them). A login without a user id supersedes nothing and is never
    superseded."""
    current: set[str] = set()
    out: set[str] = set()
    for creds in accounts:
        user = creds.ilink_user_id
        if not user:
            continue
        if user in current:
            out.add(creds.ilink_bot_id)
        else:
            current.add(user)
    return out


#: The files of one account, by suffix after its safe name.
_ACCOUNT_SUFFIXES = (".json", ".sync.json", ".pending.sync.json", ".context-tokens.json", ".feed.jsonl")


class Store:
    """Files of one data folder. ``Store()`` uses ``$OPENCLAW_NB_HOME`` or ``~/.openclaw_nb``."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.root = home(path)
        # What crashed writes left behind (they may hold a token); a write in progress is far younger.
        clean_temp_files(self.accounts_dir)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def accounts_dir(self) -> Path:
        return self.root / "accounts"

    def _path(self, bot_id: str, suffix: str = ".json") -> Path:
        return self.accounts_dir / f"{safe_name(bot_id)}{suffix}"

    def _writable(self, path: Path) -> Path:
        """``path``, once the data folder exists. A missing data folder is created 0700 itself, because
        ``mkdir(parents=True)`` gives the parents of ``accounts/`` the default mode. An existing one keeps
        its mode: it may be a folder the user chose for other things too."""
        if not self.root.exists():
            ensure_private_dir(self.root)
        return path

    # --- credentials ---

    def save_credentials(self, creds: Credentials) -> Path:
        path = self._writable(self._path(creds.ilink_bot_id))
        atomic_write_json(path, asdict(creds))
        return path

    def load_credentials(self, bot_id: str | None = None) -> Credentials:
        """The saved login of ``bot_id``, or the most recently saved one when ``None``."""
        if bot_id is None:
            accounts = self.accounts()
            if not accounts:
                raise E.UsageError(f"no saved account in {self.accounts_dir}; log in first with client.login()")
            return accounts[0]
        path = self._path(bot_id)
        if not path.exists():
            known = ", ".join(c.ilink_bot_id for c in self.accounts()) or "none"
            raise E.UsageError(f"no saved account {bot_id!r} in {self.accounts_dir} (saved: {known})")
        return Credentials.from_dict(read_json(path), str(path))

    def accounts(self, *, superseded: bool = True) -> list[Credentials]:
        """Saved logins, most recent first. Damaged files are skipped, not fatal. ``superseded=False`` leaves
        out the logins superseded by a newer one of the same WeChat user (see :meth:`superseded`)."""
        out = []
        if self.accounts_dir.is_dir():
            for path in self.accounts_dir.glob("*.json"):
                if path.name.endswith((".sync.json", ".context-tokens.json")) or path.name.startswith("."):
                    continue
                try:
                    out.append(Credentials.from_dict(read_json(path), str(path)))
                except E.UsageError:
                    continue
        out.sort(key=lambda c: (c.saved_at, c.ilink_bot_id), reverse=True)
        if not superseded:
            stale = superseded_ids(out)
            out = [c for c in out if c.ilink_bot_id not in stale]
        return out

    def superseded(self) -> list[Credentials]:
        """Saved logins superseded by a newer saved login of the same WeChat user with another bot id, most
        recent first. Their tokens are likely stale, and a ``binded_redirect`` could not tell them apart."""
        accounts = self.accounts()
        stale = superseded_ids(accounts)
        return [c for c in accounts if c.ilink_bot_id in stale]

    def forget_superseded(self, user_id: str | None = None) -> list[str]:
        """Remove the superseded logins (only ``user_id``'s when given), with their cursors and context tokens,
        as the official client does after each login. Returns the bot ids removed.

        >>> Store().forget_superseded()
        ['0446ad83ade24fb5@im.bot']
        """
        removed = []
        for creds in self.superseded():
            if user_id is None or creds.ilink_user_id == user_id:
                self.forget(creds.ilink_bot_id)
                removed.append(creds.ilink_bot_id)
        return removed

    def forget(self, bot_id: str) -> bool:
        """Remove an account and its cursor and context tokens (and what interrupted writes of them left
        behind). True if anything was removed."""
        removed = False
        names = []
        for suffix in _ACCOUNT_SUFFIXES:
            path = self._path(bot_id, suffix)
            names.append(path.name)
            if path.exists():
                path.unlink()
                removed = True
        return bool(clean_temp_files(self.accounts_dir, names, older_than=None)) or removed

    # --- cursor and context tokens ---

    def save_cursor(self, bot_id: str, get_updates_buf: str) -> None:
        atomic_write_json(self._writable(self._path(bot_id, ".sync.json")), {"get_updates_buf": get_updates_buf})

    def load_cursor(self, bot_id: str) -> str:
        path = self._path(bot_id, ".sync.json")
        if not path.exists():
            return ""
        value = read_json(path)
        cursor = value.get("get_updates_buf") if isinstance(value, dict) else None
        return cursor if isinstance(cursor, str) else ""

    def save_context_tokens(self, bot_id: str, peers: Mapping[str, Mapping[str, Any]]) -> None:
        atomic_write_json(self._writable(self._path(bot_id, ".context-tokens.json")), dict(peers))

    def load_context_tokens(self, bot_id: str) -> dict[str, dict[str, Any]]:
        path = self._path(bot_id, ".context-tokens.json")
        if not path.exists():
            return {}
        value = read_json(path)
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, dict)}
