"""The async suite runs on both HTTP engines of ``AsyncClient`` (httpcore and aiohttp's; issue #19).

A test that makes async clients runs once per engine: ``test_x[httpcore]`` and ``test_x[aiohttp]``. Whether it
does is read from its source, its fixtures' and that of the module's functions and classes they use: an
``AsyncClient``, ``Accounts``, ``AsyncUpdates``, the ``make_client`` fixture, or a sync client's async work
(its QR login, a broadcast). The engine reaches the clients through ``$OPENCLAW_NB_ASYNC_ENGINE``, which a
client made without ``engine=`` reads; clients given a ``transport=`` keep theirs. A test given the sync
driver by ``make_client`` runs once (its calls never touch the async engine), and so do the tests of a module
that sets ``COMPARES_ENGINES = True`` (it compares the engines side by side itself). Without httpx-aiohttp
installed, only httpcore runs.
"""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path
from typing import Any

import pytest

from openclaw_nb.engine import ENGINE_ENV, aiohttp_available

ENGINES = ["httpcore", "aiohttp"] if aiohttp_available() else ["httpcore"]
_ASYNC_CLIENTS = re.compile(
    r"(?<!httpx\.)\bAsyncClient\b|\bAccounts\b|\bAsyncUpdates\b|\bmake_client\b|\.login\(|\bbroadcast\("
)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


_TESTS = str(Path(__file__).resolve().parent)


def _ours(value: Any) -> bool:
    """A function or class written in tests/ (a test module, a conftest, a helper module)."""
    if not (inspect.isfunction(value) or inspect.isclass(value)):
        return False
    try:
        return str(Path(inspect.getfile(value)).resolve()).startswith(_TESTS)
    except (OSError, TypeError):
        return False


def _makes_async_clients(metafunc: pytest.Metafunc) -> bool:
    todo: list[Any] = [metafunc.function]
    for name in metafunc.fixturenames:
        todo += [fixturedef.func for fixturedef in metafunc._arg2fixturedefs.get(name, ())]
    seen: set[int] = set()
    while todo:
        obj = inspect.unwrap(todo.pop()) if callable(todo[-1]) else todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        source = _source(obj)
        if _ASYNC_CLIENTS.search(source):
            return True
        code = getattr(obj, "__code__", None)
        used = _names(code) if code is not None else set(re.findall(r"\w+", source))
        namespace = getattr(obj, "__globals__", None) or vars(inspect.getmodule(obj) or metafunc.module)
        todo += [namespace[name] for name in used if _ours(namespace.get(name))]
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "COMPARES_ENGINES", False):
        return
    if "async_engine" in metafunc.fixturenames and _makes_async_clients(metafunc):
        metafunc.parametrize("async_engine", ENGINES, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the second engine's copy of a test whose client is the sync driver."""
    kept, dropped = [], []
    for item in items:
        params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("make_client") == "sync" and params.get("async_engine", ENGINES[0]) != ENGINES[0]:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def async_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The engine this test's async clients use (None: the test makes none, the default applies)."""
    engine: str | None = getattr(request, "param", None)
    if engine is not None:
        monkeypatch.setenv(ENGINE_ENV, engine)
    return engine
