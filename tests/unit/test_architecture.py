"""Seams the code must keep: no import cycles between modules of drill.cli or of
drill.engine, test hooks out of the shipped package, drivers independent of the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DRILL = Path(__file__).resolve().parents[2] / "drill"


def _module(path: Path) -> str:
    parts = path.relative_to(DRILL.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """drill modules imported by ``path``, at any depth (function-level imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("drill"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("drill"))
    return found


MODULES = {_module(p): p for p in DRILL.rglob("*.py")}
GRAPH = {name: {m for m in _imports(path) if m in MODULES} for name, path in MODULES.items()}


def _cycle(package: str) -> list[str] | None:
    """A cycle among the modules of ``package`` (imports of other packages ignored)."""
    inside = {m for m in GRAPH if m.startswith(package + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(GRAPH[node] & inside):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(inside):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


@pytest.mark.parametrize("package", ["drill.cli", "drill.engine", "drill.steps", "drill.runbook"])
def test_no_import_cycles(package: str) -> None:
    assert _cycle(package) is None, " -> ".join(_cycle(package) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    GRAPH["drill.engine.runner"].add("drill.engine.x")
    GRAPH["drill.engine.x"] = {"drill.engine.runner"}
    try:
        assert _cycle("drill.engine") is not None
    finally:
        GRAPH["drill.engine.runner"].discard("drill.engine.x")
        del GRAPH["drill.engine.x"]


def test_drivers_do_not_import_the_engine() -> None:
    for name, imported in GRAPH.items():
        if name.startswith("drill.drivers"):
            assert not {m for m in imported if m.startswith("drill.engine")}, name


def test_no_test_hooks_or_shell_in_the_shipped_package() -> None:
    for path in DRILL.rglob("*.py"):
        text = path.read_text()
        assert "DRILL_TEST_" not in text, path
        assert "shell=True" not in text, path
