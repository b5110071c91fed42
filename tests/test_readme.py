"""The README stays true: its endpoint table is the protocol core's table, its test command is CI's, its code
examples run, its simulator control API table is the simulator's routes, and its setup notes match the
packaging and ``.ci/run``."""

from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from openclaw_nb.protocol.endpoints import markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## `` heading (its ``###`` subsections included)."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert found, f"README.md lost its '## {title}' section"
    return found.group(1)


def test_endpoint_table_matches_protocol_core() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- endpoints -->\n(.*?)\n<!-- /endpoints -->", text, re.S)
    assert found, "README.md lost its <!-- endpoints --> markers"
    assert found.group(1).strip() == markdown_table(), "regenerate the README table from markdown_table()"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", text, re.S)
    assert "openclaw-nb demo" in blocks[0]
    assert "pytest" in blocks[1]
    marked = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```\n<!-- /test-command -->", text, re.S)
    assert marked and marked.group(1) == blocks[1]


#: Per Python block of the README (found by a phrase of its code): what it prints when it runs as written.
BLOCK_OUTPUT = {
    'print(client.log.frame()[["call", "status", "duration_ms"]])': ["send_message", "get_updates"],
    "async def main()": ["sent 'hi' to alice: message_id "],
    "print(diff(saved, client.log).same": ["True True"],
    "for msg in client.updates(persist=False)": ["alice@im.wechat hello bot", "bob@im.wechat  hi there"],
    "print(client.drift[": ["msgs[].future_flag", "unknown field"],
    "client.send_video(": ["UploadedMedia(kind='file'", "3 messages for the long text; 9 in all"],
    'sim.send_image("bob", png_bytes)': ["http://127.0.0.1:", "/c2c"],
    "client.broadcast(users": ["5 targets: 4 sent, 1 rejected", "student4@im.wechat  rejected    -2", "'sent': 4"],
}


def python_blocks() -> list[tuple[str, str]]:
    """(the README's text before it, code) of every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text[: m.start()], m.group(1)) for m in re.finditer(r"```python\n(.*?)\n```", text, re.S)]


def test_every_python_block_has_its_expected_output() -> None:
    codes = [code for _, code in python_blocks()]
    for code in codes:
        assert sum(phrase in code for phrase in BLOCK_OUTPUT) == 1, f"add this block to BLOCK_OUTPUT: {code[:200]}"
    for phrase in BLOCK_OUTPUT:
        assert any(phrase in code for code in codes), f"no README block has {phrase!r} any more"


BLOCKS = python_blocks()


@pytest.mark.parametrize(("before", "code"), BLOCKS, ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_every_python_block_runs_as_written(
    before: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each block runs as shown, alone, in a fresh interpreter namespace: nothing undefined, nothing to add.
    A block with top-level ``await`` must say, just before it, that it is for Jupyter."""
    monkeypatch.chdir(tmp_path)  # files a block writes (session.har) land here
    monkeypatch.setenv("OPENCLAW_NB_HOME", str(tmp_path / "home"))
    namespace: dict[str, object] = {"__name__": "__main__"}
    try:
        compiled = compile(code, "README.md", "exec")
    except SyntaxError:
        assert "Jupyter" in before[-400:], "a block with top-level await must say it is for Jupyter"
        compiled = compile(code, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        pending = eval(compiled, namespace)
        if pending is not None:
            asyncio.run(pending)
    else:
        exec(compiled, namespace)
    out = capsys.readouterr().out
    (expected,) = [lines for phrase, lines in BLOCK_OUTPUT.items() if phrase in code]
    for needle in expected:
        assert needle in out, f"{needle!r} not in the block's output: {out[:1000]!r}"
    assert not (tmp_path / "home").exists(), "a README example left files in the user's data folder"


def control_table_routes() -> set[tuple[str, str]]:
    """(method, path) of every route in the README's control API table. A cell may hold several routes
    (`` `GET /_sim/faults` · `POST /_sim/faults` ``) and a bare suffix (`` · `/expire` ``) replaces the last
    path segment of the route before it; query strings are left out."""
    table = section("The simulator").split("### HTTP control API", 1)[1]
    routes: set[tuple[str, str]] = set()
    for row in (line for line in table.splitlines() if line.startswith("| `")):
        method = path = ""
        for token in re.findall(r"`([^`]+)`", row.split("|")[1]):
            found = re.fullmatch(r"(?:(GET|POST|PUT|PATCH|DELETE) )?(/[^?\s]*)(?:\?\S*)?", token)
            assert found, f"not a route: {token!r} in {row!r}"
            if found.group(1):
                method, path = found.group(1), found.group(2)
            else:
                assert path, f"a bare suffix needs a route before it: {row!r}"
                path = path.rsplit("/", 1)[0] + found.group(2)
            routes.add((method, path))
    return routes


def test_control_api_table_lists_exactly_the_simulators_control_routes() -> None:
    from openclaw_nb.sim.app import create_app
    from openclaw_nb.sim.state import CONTROL_PREFIX, SimState

    app = create_app(SimState())
    served = {
        (method, route.path)
        for route in app.app.routes  # type: ignore[attr-defined]
        if route.path.startswith(CONTROL_PREFIX + "/")
        for method in route.methods - {"HEAD"}  # Starlette adds HEAD to every GET
    }
    documented = control_table_routes()
    assert documented - served == set(), "the README documents routes the simulator does not serve"
    assert served - documented == set(), "add these simulator routes to the README's control API table"


def test_control_api_table_names_every_qr_scenario_flag_and_fault_knob() -> None:
    from openclaw_nb.sim.state import FaultRule, QrScenario

    table = section("The simulator").split("### HTTP control API", 1)[1]
    rows = {row.split("|")[1].strip(): row for row in table.splitlines() if row.startswith("| `")}

    def row(prefix: str) -> str:
        return next(r for cell, r in rows.items() if cell.startswith(prefix))

    flags = {f.name for f in dataclasses.fields(QrScenario)} | {"qrcode", "count"}
    knobs = {f.name for f in dataclasses.fields(FaultRule)} - {"id"}
    assert [f for f in sorted(flags) if f'"{f}"' not in row("`POST /_sim/qr_scenario`")] == []
    assert [k for k in sorted(knobs) if f'"{k}"' not in row("`GET /_sim/faults`")] == []


def test_python_version_is_the_same_in_pyproject_readme_and_binder() -> None:
    """pandas 3 needs Python 3.11: the package, the README's setup note and Binder's runtime agree."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    floor = re.fullmatch(r">=\s*(3\.\d+)", project["project"]["requires-python"])
    assert floor, project["project"]["requires-python"]
    version = floor.group(1)
    assert f"Python {version} or newer" in README.read_text(encoding="utf-8")
    assert (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip() == f"python-{version}"
    assert f"Programming Language :: Python :: {version}" in project["project"]["classifiers"]
    tools = project["tool"]
    assert tools["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert tools["mypy"]["python_version"] == version


def test_ci_run_installs_the_system_packages_the_readme_names() -> None:
    """``python3 -m venv`` needs ensurepip (Debian's python3-venv); the browser test needs /usr/bin/chromium."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    browser_test = (ROOT / "tests" / "browser" / "jupyterlab.py").read_text(encoding="utf-8")  # the browser tests
    chromium = re.search(r'^CHROMIUM = "([^"]+)"', browser_test, re.M)
    assert chromium and f"[ ! -x {chromium.group(1)} ]" in ci, "check for the exact path the browser test drives"
    assert 'python3 -c "import ensurepip"' in ci and "apt_install python3-venv" in ci
    readme = README.read_text(encoding="utf-8").split("## Who it is for", 1)[0]
    assert "python3-venv" in readme and "chromium" in readme


def test_drift_example_runs(capsys) -> None:
    """The drift report's example in "Receiving" runs as written and shows what the simulator's newer shapes add."""
    text = section("Receiving: the update stream and live DataFrames").split("wire drift report", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", text, re.S)
    assert snippet, "the drift section lost its example"
    exec(compile(snippet.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "msgs[].future_flag" in out and "unknown field" in out and "msgs[].message_id" in out


def test_sim_usage_line_names_exactly_the_cli_options() -> None:
    """``openclaw-nb sim --help`` and the README's usage line agree, option for option."""
    from openclaw_nb.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = {
        opt for action in sub.choices["sim"]._actions for opt in action.option_strings if opt.startswith("--")
    } - {"--help"}
    found = re.search(r"Or as a process: `openclaw-nb sim (.*?)`", section("The simulator"), re.S)
    assert found, "the simulator section lost its usage line"
    documented = set(re.findall(r"\[(--[a-z-]+)", found.group(1)))
    assert documented == options, f"missing: {sorted(options - documented)}, extra: {sorted(documented - options)}"
