"""Client and AsyncClient expose the same API (issue #2: "same constructor and method names; async methods are
awaitable"), and the defaults are the ones docs/protocol.md gives."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from openclaw_nb.client import AsyncClient, BaseClient, Client
from openclaw_nb.protocol import constants as C

#: Public names only one driver has, each on purpose.
ONLY_SYNC = {
    "close": "httpx's naming: the async twin is aclose()",
    "async_twin": "an AsyncClient acting as this client on another loop (the QR login in a kernel, broadcasts); "
    "an AsyncClient is its own",
}
ONLY_ASYNC = {
    "aclose": "httpx's naming: the sync twin is close()",
    "start_login": "starts the login as a task on the running event loop; a sync client has no loop to run it "
    "on, and login() (shared) blocks until done",
}
#: AsyncClient methods that are deliberately *not* coroutine functions: they do no I/O themselves, or they
#: return an object that is itself awaited / iterated with ``async for`` / entered with ``async with``.
ASYNC_NOT_COROUTINES = {
    "from_saved": "a constructor classmethod: reads a local file, no network",
    "peer": "local per-user state",
    "remember_message": "local per-user state",
    "reply_budget": "computed from local state",
    "server_now": "the server's clock as its last Date header showed it: no request",
    "use_credentials": "switches local credentials",
    "stream": "starts a background feed and returns at once",
    "chat": "builds the chat panel widget over the running feed and returns at once",
    "updates": "returns an AsyncUpdates, used with `async for`",
    "typing_indicator": "an async context manager (`async with`)",
    "start_login": "starts a task on the running loop and returns its handle at once",
}
#: Return annotations that name the async twin of the sync type, by design.
ASYNC_RETURNS = {
    "updates": ("Updates", "AsyncUpdates"),
    "typing_indicator": ("Iterator[None]", "AsyncIterator[None]"),
}
#: Constructor parameters whose annotation names the async twin of the sync type.
ASYNC_PARAMETERS = {("__init__", "transport"): ("httpx.BaseTransport | None", "httpx.AsyncBaseTransport | None")}


def public(cls: type) -> dict[str, Any]:
    return {name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")}


def test_same_public_names() -> None:
    sync, asyn = public(Client), public(AsyncClient)
    assert set(sync) - set(asyn) == set(ONLY_SYNC)
    assert set(asyn) - set(sync) == set(ONLY_ASYNC)


def params(func: Any) -> list[tuple[str, Any, Any, str]]:
    return [(p.name, p.kind, p.default, str(p.annotation)) for p in inspect.signature(func).parameters.values()]


def test_same_signatures() -> None:
    sync, asyn = public(Client), public(AsyncClient)
    mismatches = []
    for name in sorted((set(sync) & set(asyn)) | {"__init__"}):
        a, b = getattr(Client, name), getattr(AsyncClient, name)
        if isinstance(inspect.getattr_static(Client, name), property):
            assert isinstance(inspect.getattr_static(AsyncClient, name), property), name
            continue
        if not callable(a):
            continue
        pa, pb = params(a), params(b)
        for i, (x, y) in enumerate(zip(pa, pb, strict=False)):
            if x != y and ASYNC_PARAMETERS.get((name, x[0])) == (x[3], y[3]) and x[:3] == y[:3]:
                pb[i] = x
        if pa != pb:
            mismatches.append(f"{name}: {inspect.signature(a)} != {inspect.signature(b)}")
        ra, rb = inspect.signature(a).return_annotation, inspect.signature(b).return_annotation
        if ra != rb and ASYNC_RETURNS.get(name) != (ra, rb):
            mismatches.append(f"{name} returns {ra} in Client but {rb} in AsyncClient")
    assert mismatches == []


def test_async_methods_are_awaitable_and_sync_ones_are_not() -> None:
    sync, asyn = public(Client), public(AsyncClient)
    plain = []
    for name, value in asyn.items():
        func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        if isinstance(func, property) or not callable(func):
            continue
        if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
            continue
        plain.append(name)
    assert sorted(plain) == sorted(ASYNC_NOT_COROUTINES)
    for name in set(ASYNC_NOT_COROUTINES) - set(ONLY_ASYNC):
        assert name in sync
    for name, value in sync.items():
        func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        assert not inspect.iscoroutinefunction(func), f"Client.{name} must not need await"
    # the context-manager protocols match the driver
    assert hasattr(Client, "__enter__") and hasattr(Client, "__exit__")
    assert inspect.iscoroutinefunction(AsyncClient.__aenter__) and inspect.iscoroutinefunction(AsyncClient.__aexit__)


def test_every_endpoint_method_is_a_coroutine_in_async_client() -> None:
    endpoints = [
        "get_bot_qrcode",
        "get_qrcode_status",
        "get_updates",
        "send_message",
        "get_upload_url",
        "get_config",
        "send_typing",
        "notify_start",
        "notify_stop",
        "cdn_upload",
        "cdn_download",
        "send_text",
    ]
    for name in endpoints:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
        assert callable(getattr(Client, name)) and not inspect.iscoroutinefunction(getattr(Client, name)), name


# --- defaults (docs/protocol.md, "Hosts" and "Timeouts") --------------------------------------------------------


def test_default_hosts() -> None:
    assert C.DEFAULT_BASE_URL == "https://ilinkai.weixin.qq.com"
    assert C.DEFAULT_CDN_BASE_URL == "https://novac2c.cdn.weixin.qq.com/c2c"
    for cls in (Client, AsyncClient):
        client = cls(record=False)
        try:
            assert client.base_url == "https://ilinkai.weixin.qq.com"
            assert client.cdn_base_url == "https://novac2c.cdn.weixin.qq.com/c2c"
        finally:
            if isinstance(client, AsyncClient):
                asyncio.run(client.aclose())
            else:
                client.close()
    defaults = inspect.signature(BaseClient.__init__).parameters
    assert defaults["base_url"].default == C.DEFAULT_BASE_URL
    assert defaults["cdn_base_url"].default == C.DEFAULT_CDN_BASE_URL


def test_default_timeouts() -> None:
    assert C.LONG_POLL_TIMEOUT == 35.0 and C.DEFAULT_LONGPOLLING_TIMEOUT_MS == 35_000
    assert C.SEND_TIMEOUT == 15.0 and C.CONFIG_TIMEOUT == 10.0
    client = Client(record=False)
    try:
        assert client.longpolling_timeout_ms == 35_000  # until the server says otherwise
    finally:
        client.close()


# --- the constructors: real parameters, and a mistyped keyword names them --------------------------------------


def test_constructors_show_their_real_parameters() -> None:
    """help(), signatures and tab completion show every parameter, with BaseClient's defaults, plus transport
    and engine."""
    base = params(BaseClient.__init__)
    for cls in (Client, AsyncClient):
        shown = params(cls)
        assert [p[0] for p in shown] == [p[0] for p in base[1:]] + ["transport", "engine"], cls
        assert shown[:-2] == base[1:], f"{cls.__name__}'s defaults drifted from BaseClient's"
        assert all(kind is not inspect.Parameter.VAR_KEYWORD for _, kind, _, _ in shown)
        assert "base_url" in inspect.getdoc(cls.__init__)  # help() says what they are
        text = str(inspect.signature(cls))
        assert "cdn_base_url" in text and "**" not in text


def test_a_mistyped_keyword_names_the_parameters_that_exist() -> None:
    for cls in (Client, AsyncClient):
        with pytest.raises(TypeError) as failed:
            cls(base_ur="http://127.0.0.1:9")
        message = str(failed.value)
        assert f"{cls.__name__}() has no parameter 'base_ur': did you mean 'base_url'?" in message
        assert "cdn_base_url" in message and "log_size" in message and "transport" in message
    with pytest.raises(TypeError) as failed:
        Client(zzz=1)
    assert "did you mean" not in str(failed.value) and "its parameters are token, base_url" in str(failed.value)


def test_tab_completion_offers_the_constructors_keywords() -> None:
    """IPython completes through jedi: inside ``Client(`` it offers the real keywords."""
    jedi = pytest.importorskip("jedi")
    for cls, typed, offered in ((Client, "cdn_", "cdn_base_url="), (AsyncClient, "log_s", "log_size=")):
        code = f"{cls.__name__}({typed}"
        names = [c.name for c in jedi.Interpreter(code, [{cls.__name__: cls}]).complete()]
        assert offered in names, (code, names)
