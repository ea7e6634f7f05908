"""The project's import graph as the code states it: every `pipeline` and `stages` module a module
imports, at any depth of its code (imports inside functions included, since a stage's heavy imports
are lazy on purpose). The stage code table (codehash.py), the DVC stages' code deps (dvcdeps.py) and
the layering test (tests/test_layers.py) all read it from here.

Imports made by name at run time (importlib with a string) are not in it: that is how the runner and
the `seds` command table reach what they are handed without depending on it. Nor are imports under
`if TYPE_CHECKING:`, which never run (they name types for annotations).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("pipeline", "stages")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """pipeline.a.b -> pipeline/a/b.py or pipeline/a/b/__init__.py under `root` (None: not ours)."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    """pipeline/a/b.py -> pipeline.a.b; pipeline/a/__init__.py -> pipeline.a."""
    parts = list(Path(path).resolve().relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _ours(name: str) -> bool:
    return name.split(".")[0] in PROJECT_PACKAGES


def _runs(tree: ast.Module) -> list[ast.AST]:
    """Every node of `tree` outside `if TYPE_CHECKING:` blocks."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(child) for part in node.body for child in ast.walk(part))
    return [node for node in ast.walk(tree) if id(node) not in skipped]


def imported_modules(tree: ast.Module, root: Path = ROOT) -> set[str]:
    """Every project module `tree` imports when it runs, with the packages that importing it runs first."""
    found: set[str] = set()
    for node in _runs(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if _ours(alias.name))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _ours(node.module):
            found.add(node.module)
            # `from pipeline.pose import native` imports a module, not a name
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if module_file(f"{node.module}.{alias.name}", root) is not None
            )
    parents = set()
    for name in found:
        parts = name.split(".")
        parents.update(".".join(parts[:i]) for i in range(1, len(parts)))  # importing a.b.c runs a and a.b first
    return {name for name in found | parents if module_file(name, root) is not None}


def parse(path: Path) -> ast.Module:
    return ast.parse(Path(path).read_text(), filename=str(path))


def import_closure(module: str, root: Path = ROOT, skip: Callable[[str], bool] = lambda name: False) -> dict[str, Path]:
    """module name -> file of `module`, its packages, and every project module they import, transitively
    (a module `skip` names is left out, and so is what only it imports)."""
    parts = module.split(".")
    todo, found = [".".join(parts[:i]) for i in range(1, len(parts) + 1)], {}
    while todo:
        name = todo.pop()
        if name in found or skip(name):
            continue
        path = module_file(name, root)
        if path is None:
            continue
        found[name] = path
        todo.extend(imported_modules(parse(path), root))
    return found


def project_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports (packages run by importing excluded: an edge to a module's
    own package __init__ is no dependency of interest), for every module under pipeline/ and stages/."""
    graph = {}
    for package in PROJECT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            graph[name] = {
                m
                for m in imported_modules(parse(path), root)
                if m not in PROJECT_PACKAGES and not name.startswith(m + ".")
            }
    return graph
