"""The shape of the code: no import circles in the package or the benchmarks.

An import circle is every import a module makes, at module level or inside
a function, except those under ``if TYPE_CHECKING:`` and those of a module
``__getattr__`` (a name served lazily, on purpose, for compatibility).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, package: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that the module at ``path`` imports."""
    name = module_name(path)
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.FunctionDef) and child.name == "__getattr__":
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = here.split(".")[: len(here.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # ``from package import module`` needs the module, not the
                # package's own names: the package is imported first anyway.
                modules = {f"{base}.{alias.name}" for alias in child.names} & known
                found.update(modules or {base})
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {module for module in found if module in known and module != name}


def circles(package: str) -> list[list[str]]:
    paths = [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    known = {module_name(p) for p in paths}
    graph = {module_name(p): imported(p, package, known) for p in paths}
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, trail: list[str]) -> None:
        if node in trail:
            found.append([*trail[trail.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(graph[node]):
            walk(target, [*trail, node])
        done.add(node)

    for node in sorted(graph):
        walk(node, [])
    return found


# Circles known and left to their owners, each with why it is still there.
KNOWN_CIRCLES: list[list[str]] = []


@pytest.mark.parametrize("package", ["keyval_backend", "benchmarks"])
def test_no_import_circles(package: str) -> None:
    assert [circle for circle in circles(package) if circle not in KNOWN_CIRCLES] == []


def test_the_compatibility_name_is_served_lazily() -> None:
    from keyval_backend import facade, models

    assert models.KeyVal is facade.KeyVal
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        models.Nope  # noqa: B018
