"""The package layers stay as drawn in the README: raw inputs -> etl -> bundle -> app.

Every import in the project's own modules (top-level, inside functions, and under
``TYPE_CHECKING``) is read with :mod:`ast` and checked against :data:`ALLOWED`: a layer may
import only the layers listed for it, so the engine never reaches up into the readers, the
outputs or the app, and nothing in ``etl`` imports the app side. The module graph must also
have no circles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("etl", "viewmodel", "layouts", "callbacks")

#: Layer of a module, by the longest matching prefix.
LAYER_OF = {
    "etl": "base",  # etl/__init__.py: the version
    "etl._errors": "base",
    "etl.safe_json": "base",
    "etl.categories": "base",
    "etl.fips": "base",
    "etl.engine": "engine",
    "etl.config": "config",
    "etl.bundle": "bundle",
    "etl.inputs": "inputs",
    "etl.demo": "demo",
    "etl.outputs": "outputs",
    "etl.pipeline": "pipeline",
    "etl.cli": "pipeline",
    "etl.validate": "pipeline",
    "etl.cli_export": "pipeline",
    "etl.__main__": "pipeline",
    "viewmodel": "viewmodel",
    "layouts": "layouts",
    "callbacks": "callbacks",
    "app": "app",
}

#: Layer -> the layers its modules may import (its own always included).
ALLOWED = {
    "base": {"base"},
    "engine": {"base"},
    "config": {"base", "engine"},
    "bundle": {"base", "engine", "config"},
    "inputs": {"base", "engine", "config", "bundle"},
    "demo": {"base"},
    "outputs": {"base", "engine", "config", "bundle", "inputs"},
    "pipeline": {"base", "engine", "config", "bundle", "inputs", "demo", "outputs"},
    "viewmodel": {"base", "engine", "config", "bundle", "inputs", "outputs"},
    "layouts": {"base", "viewmodel"},
    "callbacks": {"base", "engine", "bundle", "outputs", "viewmodel", "layouts"},
    "app": {"base", "bundle", "viewmodel", "layouts", "callbacks"},
}


def layer_of(module: str) -> str | None:
    """Return the layer of a project module, or None for a third-party one."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        layer = LAYER_OF.get(".".join(parts[:n]))
        if layer is not None:
            return layer
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    mods = {"app": ROOT / "app.py"}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            mods[module_name(path)] = path
    return mods


MODULES = project_modules()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every project module imported by a file: (line, module), names resolved to modules."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.append((node.lineno, sub if sub in MODULES else node.module))
    return [(line, m) for line, m in found if layer_of(m) is not None]


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 50
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_no_import_runs_up_the_layers() -> None:
    wrong = []
    for mod, path in MODULES.items():
        mine = layer_of(mod)
        for line, target in imports_of(path):
            theirs = layer_of(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                rel = path.relative_to(ROOT)
                wrong.append(f"{rel}:{line}: {mine} imports {theirs} ({target})")
    assert wrong == []


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an engine module importing a reader is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from etl.inputs.osm import read_osm_file\nimport numpy\n")
    assert imports_of(bad) == [(1, "etl.inputs.osm")]
    assert "inputs" not in ALLOWED["engine"]
    assert layer_of("etl.engine.network") == "engine"
    assert layer_of("numpy") is None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


@pytest.mark.parametrize("pkg", ["etl", "viewmodel", "layouts", "callbacks"])
def test_no_import_circles(pkg: str) -> None:
    graph = {
        mod: {t for _, t in imports_of(path) if t in MODULES and t != mod}
        for mod, path in MODULES.items()
    }
    # a package's __init__ is not an edge: importing etl.engine.x loads etl/engine/__init__
    assert [c for c in _cycles(graph) if any(m.split(".")[0] == pkg for m in c)] == []
