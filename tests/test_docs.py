"""The protocol reference, docs/protocol.md, stays complete and self-contained: every endpoint, simulator knob,
fault knob, QR scenario flag and kind of wire drift is described in it, its links lead somewhere, the README
points to it, and no file in the repository points outside it for the protocol any more."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from openclaw_nb.protocol import drift as D
from openclaw_nb.protocol.endpoints import CDN_DOWNLOAD_PATH, CDN_UPLOAD_PATH, ENDPOINT_LIST
from openclaw_nb.sim.state import FaultRule, QrScenario, SimConfig

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "protocol.md"
README = ROOT / "README.md"

#: What no file may name any more (spelled in two pieces, so this file does not name them either).
FORBIDDEN = ("../" + "shared", "PROTOCOL" + ".md")
#: Folders that are not part of the repository's content: VCS data, environments, caches, generated output.
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".ipynb_checkpoints",
    "node_modules",
    "build",
    "dist",
}
SKIP_PATHS = {ROOT / "tests" / "artifacts", ROOT / "benchmarks" / "results"}


def doc_text() -> str:
    assert DOC.is_file(), "docs/protocol.md, the project's protocol reference, is missing"
    return DOC.read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The ``## title`` section of ``text`` up to the next ``## `` heading (its ``###`` parts included)."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert found, f"docs/protocol.md lost its '## {title}' section"
    return found.group(1)


def first_cells(text: str) -> dict[str, str]:
    """Every name written in backticks in the first cell of a table row, mapped to its whole row."""
    names: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            for name in re.findall(r"`([^`]+)`", line.split("|")[1]):
                names.setdefault(name, line)
    return names


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)  # not in code blocks
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_every_endpoint_is_documented_with_its_method_and_path() -> None:
    text = section(doc_text(), "Endpoints")
    missing = [f"{ep.method} {ep.path}" for ep in ENDPOINT_LIST if f"`{ep.method} {ep.path}" not in text]
    assert missing == [], "add these endpoints to the Endpoints table of docs/protocol.md"
    rows = first_cells(text)
    assert [ep.name for ep in ENDPOINT_LIST if ep.name not in rows] == [], "each endpoint has a row named after it"
    for name, path, method in (("cdn_upload", CDN_UPLOAD_PATH, "POST"), ("cdn_download", CDN_DOWNLOAD_PATH, "GET")):
        assert f"`{method} {{cdn}}{path}" in rows[name], f"the {name} row shows its method and path"


def test_every_simulator_knob_has_a_row_with_its_default() -> None:
    rows = first_cells(section(doc_text(), "The simulator's knobs and faults"))
    knobs = dataclasses.fields(SimConfig)
    assert len(knobs) > 20, "SimConfig lost its fields?"
    assert [f.name for f in knobs if f.name not in rows] == [], "add these SimConfig knobs to the knob table"
    plain = {f.name: f.default for f in knobs if isinstance(f.default, (bool, int, float, type(None)))}
    plain.pop("id_floor")  # written as 2^63
    wrong = {name: value for name, value in plain.items() if cells(rows[name])[1] != str(value)}
    assert wrong == {}, "the knob table's defaults differ from SimConfig's"


def test_every_fault_knob_and_qr_scenario_flag_is_named() -> None:
    text = section(doc_text(), "The simulator's knobs and faults")
    rows = first_cells(text)
    knobs = [f.name for f in dataclasses.fields(FaultRule) if f.name != "id"]
    assert {"http_400", "http_4xx_status", "http_524", "not_json", "lost_response"} <= set(knobs)
    assert [k for k in knobs if k not in rows] == [], "add these FaultRule knobs to the fault table"
    for name in knobs:
        assert len(cells(rows[name])[1]) > 10, f"say what the fault knob {name} does"
    flags = [f.name for f in dataclasses.fields(QrScenario)]
    scenarios = text.split("**QR scenarios**", 1)[1].split("\n\n", 1)[0]
    assert [f for f in flags if f"`{f}`" not in scenarios] == [], "name these QrScenario flags under QR scenarios"


def test_every_kind_of_drift_is_explained() -> None:
    text = section(doc_text(), "The drift report")
    kinds = {name: value for name, value in vars(D).items() if name.isupper() and isinstance(value, str)}
    assert set(kinds) >= {"UNKNOWN_FIELD", "UNEXPECTED_TYPE", "UNKNOWN_VALUE", "REPAIRED", "UNDECODABLE"}
    rows = first_cells(text)
    for name, value in kinds.items():
        assert name in rows, f"the drift kinds table has no row for {name}"
        _constant, shown, meaning = cells(rows[name])
        assert shown == f"`{value}`", f"{name}'s row shows its value as {shown}, but the code says {value!r}"
        assert len(meaning) > 40, f"explain what {name} means"


def test_every_field_of_the_drift_report_is_described() -> None:
    rows = first_cells(section(doc_text(), "The drift report"))
    fields = [f.name for f in dataclasses.fields(D.DriftEntry)]
    assert [f for f in fields if f not in rows] == [], "describe these drift report columns"
    assert D.DriftLog().frame().columns.tolist() == fields, "the frame's columns are the entry's fields"


def test_contents_lists_every_section_and_every_link_leads_somewhere() -> None:
    text = doc_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    contents = section(text, "Contents")
    listed = re.findall(r"^- \[[^\]]+\]\(#([^)]+)\)$", contents, re.M)
    assert listed == [slug(h) for h in headings if h != "Contents"], "the contents list every ## section in order"
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # no external links are expected, but they are not checked here
        file_part, _, anchor = target.partition("#")
        path = (DOC.parent / file_part).resolve() if file_part else DOC
        missing = not path.exists() or not path.is_relative_to(ROOT)
        if missing or (anchor and (path.suffix != ".md" or anchor not in anchors(path))):
            broken.append(target)
    assert broken == [], "these links of docs/protocol.md lead nowhere"


def test_readme_links_the_reference() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "](docs/protocol.md)" in readme.split("## Who it is for", 1)[1].split("\n## ", 1)[0], (
        "the README's 'Who it is for' section links docs/protocol.md"
    )


def repository_files() -> list[Path]:
    out: list[Path] = []

    def walk(folder: Path) -> None:
        for path in folder.iterdir():
            if path.is_dir():
                if path.name not in SKIP_DIRS and path not in SKIP_PATHS and not path.name.endswith(".egg-info"):
                    walk(path)
            elif path.is_file():
                out.append(path)

    walk(ROOT)
    return out


@pytest.mark.parametrize("needle", FORBIDDEN, ids=["parent-folder", "briefing"])
def test_no_file_points_outside_the_repository_for_the_protocol(needle: str) -> None:
    files = repository_files()
    assert DOC in files and Path(__file__).resolve() in files and ROOT / ".ci" / "run" in files
    offenders = [str(p.relative_to(ROOT)) for p in files if needle.encode() in p.read_bytes()]
    assert offenders == [], f"these files still name {needle!r}: point to docs/protocol.md instead"
