"""The package's import rules (docs/architecture.md), read from the source with ``ast``:

- imports go one way: base ← protocol core ← simulator / drivers ← notebook layer ← command line;
- the run-time import graph has no cycle (imports under ``if TYPE_CHECKING:`` don't run and don't count);
- no module imports a private name (``_Stream``) from another room.

A room is a subpackage (``protocol``, ``sim``, ``recorder``, ``frames``, ``notebook``) or a top-level module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "openclaw_nb"

#: Modules every layer may use: the version, the errors and the crash-safe file primitives.
BASE = {"openclaw_nb._version", "openclaw_nb.errors", "openclaw_nb.journal"}
#: The entry points that put the layers together.
TOP = {"openclaw_nb", "openclaw_nb.__main__", "openclaw_nb.cli", "openclaw_nb.demo"}
#: Layer -> the layers it may import. The drivers may start a simulator (``replay(log)`` against a fresh one).
ALLOWED = {
    "base": {"base"},
    "protocol": {"base", "protocol"},
    "sim": {"base", "protocol", "sim"},
    "drivers": {"base", "protocol", "sim", "drivers"},
    "notebook": {"base", "protocol", "sim", "drivers", "notebook"},
    "top": {"base", "protocol", "sim", "drivers", "notebook", "top"},
}
SUBPACKAGES = ("protocol", "sim", "recorder", "frames", "notebook")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["openclaw_nb", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def layer(module: str) -> str:
    if module in BASE:
        return "base"
    if module in TOP:
        return "top"
    for name in ("protocol", "sim", "notebook"):
        if module == f"openclaw_nb.{name}" or module.startswith(f"openclaw_nb.{name}."):
            return name
    return "drivers"


def room(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in SUBPACKAGES:
        return ".".join(parts[:2])
    if len(parts) == 2 and parts[1] in SUBPACKAGES:
        return module
    return module


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            assert isinstance(node, ast.If)
            for other in node.orelse:
                yield from _runtime_imports(other)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def imports(module: str) -> Iterator[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every run-time import of the package's own code."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "openclaw_nb":
                    yield alias.name, None, node.lineno
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        if target.split(".")[0] != "openclaw_nb":
            continue
        for alias in node.names:
            as_module = f"{target}.{alias.name}"
            if as_module in MODULES:
                yield as_module, None, node.lineno
            else:
                yield target, alias.name, node.lineno


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def test_the_rules_see_the_package() -> None:
    assert {"openclaw_nb.client", "openclaw_nb.protocol.models", "openclaw_nb.sim.app"} <= set(MODULES)
    assert layer("openclaw_nb.sim.app") == "sim" and layer("openclaw_nb.recorder.log") == "drivers"
    edges = graph()
    assert "openclaw_nb.protocol.models" in edges["openclaw_nb.protocol.endpoints"]
    # A function-level import counts; one under TYPE_CHECKING does not.
    tree = ast.parse("if TYPE_CHECKING:\n    import openclaw_nb.a\ndef f():\n    import openclaw_nb.b\n")
    assert [a.name for n in _runtime_imports(tree) for a in n.names] == ["openclaw_nb.b"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_one_way(module: str) -> None:
    mine = layer(module)
    wrong = [
        f"line {line}: {target} ({layer(target)})"
        for target, _, line in imports(module)
        if layer(target) not in ALLOWED[mine]
    ]
    assert not wrong, f"{module} ({mine} layer) may import only {sorted(ALLOWED[mine])}; it imports " + "; ".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_room(module: str) -> None:
    crossing = [
        f"line {line}: {name} from {target}"
        for target, name, line in imports(module)
        if name and name.startswith("_") and not name.startswith("__") and room(target) != room(module)
    ]
    assert not crossing, f"{module} imports private names of another room (make them public there): {crossing}"


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            pytest.fail("import cycle: " + " -> ".join(cycle))
