"""Files that survive a crash. :class:`AppendLog` writes each JSONL line at once (a killed process loses nothing
it wrote) and fsyncs in batches (a power cut loses at most the unsynced batch); :func:`read_lines` reads every
whole line back and reports a torn last line instead of failing on it; :func:`atomic_write_bytes` replaces a
file so readers see the old one or the new one, never a mix.

Used by the client's store, the live feed's row log, the stream's consumption marks, ``save_log`` and the
simulator's state file and journal (this module imports nothing else of the package).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

#: Mode of files and folders the project creates for logs that may hold message content.
FILE_MODE = 0o600


class TornLineWarning(UserWarning):
    """A JSONL file ended in a partial line (a write cut short by a crash); the whole lines were read."""


def read_lines(path: str | os.PathLike[str], *, warn: bool = True) -> tuple[list[bytes], str | None]:
    """The whole lines of a file as bytes (stripped, empty ones skipped) and its torn tail, if any. Bytes, so
    that a line with invalid UTF-8 is the reader's to repair on its own, not fatal to the file.

    A last line without its newline is what a crash in the middle of an append leaves: it is left out and
    returned as the second value (with a :class:`TornLineWarning` when ``warn``), never raised about.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    torn: str | None = None
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        torn = data[cut:].decode("utf-8", "replace")
        data = data[:cut]
        if warn:
            warnings.warn(
                f"{os.fspath(path)} ends in a partial line of {len(torn):,} characters (a write cut short, e.g. "
                "by a crash); every whole line was read and the next append starts on a fresh line",
                TornLineWarning,
                stacklevel=2,
            )
    return [line for line in (raw.strip() for raw in data.split(b"\n")) if line], torn


def one_line(text: str) -> str:
    """``text`` as one JSONL line: a raw newline inside would split a record in two (JSON never needs one)."""
    return text.replace("\r", " ").replace("\n", " ")


class AppendLog:
    """An append-only line file: :meth:`append` writes at once, :meth:`sync` makes it durable.

    Opened lazily; if the file ends in a torn line (a crash mid-append: a SIGKILL can stop a large write part
    way), the next append starts on a new line so the torn part stays one bad line instead of spoiling the next
    good one. ``drop_torn=True`` (for a file only this process writes, whose lost tail is written again) cuts
    a torn last line off when the file is opened instead. New files and folders are private (0600 / 0700).
    Thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], *, drop_torn: bool = False) -> None:
        self.path = Path(path)
        self.drop_torn = drop_torn
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._unsynced = False

    def _open(self) -> int:
        if self._fd is None:
            parent = self.path.parent
            if not parent.exists():
                # Every missing folder 0700 (mkdir(parents=True) would give the parents the default mode).
                ensure_private_dir(parent)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
            size = os.fstat(fd).st_size
            if self.drop_torn and size and os.pread(fd, 1, size - 1) != b"\n":
                with open(self.path, "rb") as fh:
                    keep = fh.read().rfind(b"\n") + 1
                os.ftruncate(fd, keep)
            self._fd = fd
        return self._fd

    @staticmethod
    def _fresh_line(fd: int) -> bytes:
        # Checked before every append, not only at open: another writer (or a crash of one) may have left a
        # partial line since.
        size = os.fstat(fd).st_size
        return b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""

    def append(self, lines: Iterable[str]) -> int:
        """Write ``lines`` (each made one line) in one write; returns the bytes written."""
        data = "".join(one_line(line) + "\n" for line in lines).encode("utf-8")
        if not data:
            return 0
        with self._lock:
            fd = self._open()
            view = memoryview(self._fresh_line(fd) + data)
            while view:
                view = view[os.write(fd, view) :]
            self._unsynced = True
        return len(data)

    def sync(self) -> None:
        """fsync what was appended since the last call (nothing to do if nothing was)."""
        with self._lock:
            if self._fd is None or not self._unsynced:
                return
            self._unsynced = False
            fd = os.dup(self._fd)  # fsync'd outside the lock (appends go on), safe from a close meanwhile
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def truncate(self) -> None:
        """Empty the file (durably)."""
        with self._lock:
            fd = self._open()
            os.ftruncate(fd, 0)
            os.fsync(fd)
            self._unsynced = False

    def close(self) -> None:
        self.sync()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __repr__(self) -> str:
        return f"<AppendLog {self.path}>"


__all__ = ["AppendLog", "TornLineWarning", "one_line", "read_lines"]


#: Age in seconds after which a leftover temporary file of an atomic write is taken for the remains of a
#: crash (a write in progress, by this process or another, is far younger) and removed.
STALE_TEMP_SECONDS = 60.0
_TEMP_SUFFIX = ".tmp"


def ensure_private_dir(folder: Path) -> Path:
    """Create ``folder`` and any missing parents with mode 0700 (whatever the umask). A folder that already
    exists is left as it is: it may be ``/tmp`` or a folder the user keeps other things in."""
    missing: list[Path] = []
    here = folder
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made by someone else meanwhile: not ours to chmod
        try:
            os.chmod(created, 0o700)  # mkdir's mode is filtered by the umask
        except OSError:
            pass
    return folder


def _temp_prefix(name: str) -> str:
    return f".{name}."


def clean_temp_files(
    folder: Path, names: Iterable[str] | None = None, *, older_than: float | None = STALE_TEMP_SECONDS
) -> list[Path]:
    """Remove the temporary files that interrupted atomic writes left in ``folder``: those of ``names`` (the
    target file names) or of any file, and only those older than ``older_than`` seconds (None: whatever their
    age). Returns the files removed."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    prefixes = tuple(_temp_prefix(n) for n in names) if names is not None else (".",)
    if not prefixes:
        return []
    now = time.time()
    removed = []
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefixes) and name.endswith(_TEMP_SUFFIX)):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if older_than is not None and now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a mix. Missing folders are
    created 0700; an existing one keeps its mode."""
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=_TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
