"""The README's Notebooks, Magics cheat sheet and Recorder sections stay true to the repository."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, f"README.md lost its '## {title}' section"
    return found.group(1)


def test_notebooks_section_lists_exactly_the_notebooks() -> None:
    text = section("Notebooks")
    linked = set(re.findall(r"\]\(notebooks/([\w.-]+\.ipynb)\)", text))
    assert linked == {p.name for p in (REPO / "notebooks").glob("*.ipynb")}


def test_binder_link_and_local_command_point_at_real_files() -> None:
    text = section("Notebooks")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    homepage = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", project["urls"]["Homepage"])
    assert homepage, "pyproject.toml has no GitHub Homepage URL"
    owner_repo = homepage.group(1)
    link = re.search(r"https://mybinder\.org/v2/gh/([^/]+/[^/]+)/HEAD\?urlpath=lab/tree/([\w./-]+)\)", text)
    assert link, "the Binder badge link is missing"
    assert link.group(1) == owner_repo, "the Binder link must name the repository in pyproject's Homepage"
    assert (REPO / link.group(2)).is_file()
    assert "-r binder/requirements.txt" in text and (REPO / "binder" / "requirements.txt").is_file()
    assert (REPO / "binder" / "postBuild").stat().st_mode & 0o111, "binder/postBuild must be executable"


def test_binder_installs_the_fast_simulator() -> None:
    """Binder users get the same simulator speed as the tests: the ``fast`` extra is in binder/requirements.txt."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    lines = (REPO / "binder" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert extras["fast"] and all(requirement in wanted for requirement in extras["fast"]), wanted


def test_magics_cheat_sheet_covers_every_magic() -> None:
    pytest.importorskip("IPython")
    from openclaw_nb.notebook.magics import WxMagics

    text = section("Magics cheat sheet")
    rows = set(re.findall(r"^\| `(%%?\w+)", text, re.M))
    registered = {f"%{name}" for name in WxMagics.magics["line"]} | {f"%%{name}" for name in WxMagics.magics["cell"]}
    assert registered <= rows, f"missing from the cheat sheet: {sorted(registered - rows)}"
    assert rows - {"%load_ext"} <= registered, f"the cheat sheet lists magics that do not exist: {rows - registered}"


def test_recorder_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # it writes session.har and session.jsonl
    code = re.search(r"```python\n(.*?)\n```", section("Recorder"), re.S)
    assert code, "the Recorder example is missing"
    exec(compile(code.group(1), "README.md", "exec"), {})
    assert capsys.readouterr().out.rstrip().endswith("True True")
    assert (tmp_path / "session.har").is_file() and (tmp_path / "session.jsonl").is_file()
