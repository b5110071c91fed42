"""Fixtures of the magics tests: a real IPython shell per test module, the extension loaded afresh for every
test, a data folder in tmp_path, and a check after every test that nothing printed carried a secret: none of
any client or simulator made during the test, and no string the test put in a variable named like a secret.

The shell is IPython's singleton (magics reach it through ``get_ipython()``), so it is made once per module
and cleared afterwards, with what an InteractiveShell changes in the interpreter (``__main__``, builtins) put
back.
"""

from __future__ import annotations

import atexit
import builtins
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from openclaw_nb.client import Client
from openclaw_nb.notebook.magics import _secrets_of
from openclaw_nb.sim import Simulator

#: Seconds the simulators hold a long poll: short, so a stopped feed ends quickly.
LONG_POLL = 0.5
#: Variables whose string values the secret check treats as secrets (``token = ...``, ``bot_secret = ...``).
SECRET_NAME = re.compile(r"token|secret|password", re.I)


class TestingShell(InteractiveShell):
    """An InteractiveShell whose :meth:`run` raises what the cell raised, so a happy-path test cannot pass
    while IPython prints an error; :meth:`run_cell` still shows errors the way a notebook does."""

    __test__ = False  # a fixture class, not a test class

    def run(self, cell: str) -> Any:
        result = self.run_cell(cell)
        result.raise_error()
        return result.result


class Captured:
    """What the shell printed, read in pieces by the test and kept whole for the secret check."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.everything: list[str] = []

    def read(self) -> tuple[str, str]:
        out, err = self._capsys.readouterr()
        self.everything += [out, err]
        return out, err


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestingShell]:
    main_module = sys.modules.get("__main__")
    builtin_names = set(vars(builtins))
    with pytest.MonkeyPatch.context() as mp:
        # IPython creates a profile folder and a history database: keep both out of the user's home.
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        InteractiveShell.clear_instance()
        ip = TestingShell.instance(config=config)
        try:
            yield ip
        finally:
            ip.atexit_operations()
            atexit.unregister(ip.atexit_operations)  # done now; a second run at exit would fail
            TestingShell.clear_instance()
            InteractiveShell.clear_instance()
            if main_module is not None:
                sys.modules["__main__"] = main_module
            for name in set(vars(builtins)) - builtin_names:
                delattr(builtins, name)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(path))
    return path


@pytest.fixture
def out(capsys: pytest.CaptureFixture[str]) -> Captured:
    return Captured(capsys)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Client | Simulator]:
    """Every Client and Simulator created during the test (by the magics or by the test), for the secret
    check: a client the magics replaced, or one a failed cell made, still holds its token."""
    objects: list[Client | Simulator] = []
    for cls in (Client, Simulator):
        original = cls.__init__

        def init(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            objects.append(self)

        monkeypatch.setattr(cls, "__init__", init)
    return objects


def secrets_seen(shell: TestingShell, made: list[Client | Simulator]) -> set[str]:
    """The secrets no output may contain: those of every client and simulator made during the test, and the
    strings (8 characters or more) in the shell's variables whose names look like secrets."""
    found: set[str] = set()
    for obj in made:
        found |= _secrets_of(obj, None) if isinstance(obj, Client) else _secrets_of(None, obj)
    magics = shell.magics_manager.registry.get("WxMagics")
    if magics is not None:
        found |= magics._secrets()
    found.update(
        value
        for name, value in shell.user_ns.items()
        if isinstance(value, str) and len(value) >= 8 and SECRET_NAME.search(name)
    )
    return found


@pytest.fixture
def seen_secrets(shell: TestingShell, made: list[Client | Simulator]) -> Callable[[], set[str]]:
    """What the secret check of ``ip`` would look for, were the test to end now."""
    return lambda: secrets_seen(shell, made)


@pytest.fixture
def ip(shell: TestingShell, home: Path, out: Captured, made: list[Client | Simulator]) -> Iterator[TestingShell]:
    """The shell with ``%load_ext openclaw_nb`` run; afterwards the extension is unloaded (stopping any
    simulator and feed), the namespace reset, and every line printed checked for secrets (``secrets_seen``)."""
    shell.run("%load_ext openclaw_nb")
    try:
        yield shell
    finally:
        secrets = secrets_seen(shell, made)
        if "openclaw_nb" in shell.extension_manager.loaded:
            shell.run("%unload_ext openclaw_nb")
        shell.reset()
        out.read()
    printed = "".join(out.everything)
    leaked = [redact_hint(s) for s in secrets if s in printed]
    assert not leaked, f"secrets printed: {leaked}"


def redact_hint(secret: str) -> str:
    return f"{secret[:4]}…({len(secret)})"


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    """A simulator the test starts itself, for the paths that do not use ``%wx_connect --sim``."""
    with Simulator(long_poll_timeout=LONG_POLL) as sim:
        yield sim


@pytest.fixture
def fails(ip: TestingShell, out: Captured) -> Callable[[str], str]:
    """``fails(cell)`` runs a cell that must end as a UsageError: one ``UsageError:`` line on stderr and no
    traceback. Returns the message."""

    def run(cell: str) -> str:
        result = ip.run_cell(cell)
        assert type(result.error_in_exec) is UsageError, f"{cell!r} gave {result.error_in_exec!r}"
        stdout, stderr = out.read()
        lines = [line for line in stderr.splitlines() if line.startswith("UsageError:")]
        assert len(lines) == 1, stderr
        assert "Traceback" not in stderr + stdout
        return lines[0].removeprefix("UsageError: ")

    return run
