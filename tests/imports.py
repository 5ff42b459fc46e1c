"""The project's import graph, read from the source (AST) — what the architecture tests hold
``dvc.yaml`` and the layers against.

Every ``import``/``from … import`` of a ``pipeline`` or ``stages`` module counts, at module level
or inside a function (a lazy import runs too); only ``if TYPE_CHECKING:`` blocks, which never
run, are skipped. Importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``.

``python -m tests.imports STAGE_MODULE`` prints a module's closure as the minimal list of
``dvc.yaml`` deps (folders where every file of a folder is in it).
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages")


def module_file(module: str) -> Path | None:
    """``pipeline.data.vocab`` -> ``pipeline/data/vocab.py`` (or its ``__init__.py``)."""
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _nodes(tree: ast.AST, typing: bool = False):
    for node in ast.iter_child_nodes(tree):
        if _type_checking(node) and not typing:
            continue
        yield node
        yield from _nodes(node, typing)


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@cache
def direct_imports(path: Path, typing: bool = False) -> frozenset[str]:
    """Project modules ``path`` imports (lazy imports included; ``TYPE_CHECKING`` ones with
    ``typing``: they never run, but a cycle through them is still a module in the wrong room)."""
    found: set[str] = set()
    for node in _nodes(ast.parse(path.read_text(), str(path)), typing):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from a.b import c``: c may be a module of its own or a name in a/b
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES and module_file(name) is not None:
                found.add(name)
    return frozenset(m for name in found for m in (*_parents(name), name))


def closure(module: str) -> set[Path]:
    """Every project file that running ``module`` (``python -m module``) executes."""
    todo = [*_parents(module), module]
    seen: set[Path] = set()
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(direct_imports(path))
    return seen


def all_modules() -> dict[str, Path]:
    """Every module of the project's packages: dotted name -> file."""
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def minimal_deps(files: set[Path]) -> list[str]:
    """The shortest list of paths (folders where all of a folder's .py files are in ``files``)."""
    out: list[str] = []
    covered: set[Path] = set()
    for path in sorted(files, key=lambda p: (len(p.relative_to(REPO).parts), str(p))):
        if path in covered:
            continue
        best = path
        for folder in path.relative_to(REPO).parents:
            folder = REPO / folder
            if folder == REPO or folder.name in PACKAGES:
                break
            if set(folder.rglob("*.py")) <= files:
                best = folder
        out.append(str(best.relative_to(REPO)))
        covered |= set(best.rglob("*.py")) if best.is_dir() else {best}
    return sorted(out)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}:")
        for dep in minimal_deps(closure(name)):
            print(f"  - {dep}")
