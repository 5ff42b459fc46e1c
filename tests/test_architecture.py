"""The layers of ``pipeline/`` and the honesty of ``dvc.yaml``'s code deps, read from the source.

* No import cycle, lazy or not (nor through ``if TYPE_CHECKING:`` imports), and no import
  against the layer order of ``docs/architecture.md``; ``pipeline`` never imports ``stages``.
* Every stage's code deps are exactly its command's import closure: a file the command runs
  and ``dvc.yaml`` does not list would leave cached outputs stale when it changes (the worst
  kind of bug: nothing fails, the numbers are just old); a listed file it never runs reruns the
  stage for nothing. ``python -m tests.imports stages.<name>`` prints the right list.
"""

from __future__ import annotations

import shlex

import pytest
import yaml

from tests.imports import REPO, all_modules, closure, direct_imports, minimal_deps, module_file

# docs/architecture.md: a module may import its own package and lower layers only.
LAYERS = {
    "pipeline": 0,  # base: errors, atomic, progress, config, runtime, plots
    "pipeline.data": 1,
    "pipeline.features": 2,
    "pipeline.models": 2,
    "pipeline.demo": 2,
    "pipeline.evaluation": 3,
    "pipeline.training": 4,
    "pipeline.chat": 5,
    "pipeline.serve": 6,
    "stages": 7,
}


def package_of(module: str) -> str:
    """``pipeline.data.vocab`` -> ``pipeline.data``; ``pipeline.config`` -> ``pipeline`` (base)."""
    parts = module.split(".")
    if parts[0] == "stages" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2]) if (REPO / parts[0] / parts[1]).is_dir() else parts[0]


def test_packages_are_the_documented_layers():
    packages = {package_of(m) for m in all_modules()}
    assert packages == set(LAYERS), packages ^ set(LAYERS)
    for package in LAYERS:  # each says what it holds and what it may import
        doc = (module_file(package).read_text().split('"""') + ["", ""])[1]
        assert len(doc.strip()) > 40, f"{package}/__init__.py needs a docstring"


def test_imports_follow_the_layers():
    wrong = []
    for module, path in all_modules().items():
        here = package_of(module)
        for target in direct_imports(path, typing=True):
            there = package_of(target)
            if there != here and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = {
        m: {t for t in direct_imports(p, typing=True) if t != m} for m, p in all_modules().items()
    }
    # package __init__ files are run by their children's imports, not the other way round
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    seen, stack, cycles = set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(" -> ".join([*stack[stack.index(m) :], m]))
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            visit(t)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _stages() -> dict[str, dict]:
    """dvc.yaml's stages, ``foreach`` templates with ``${item}`` left in place."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def _command_module(cmd: str) -> str:
    args = shlex.split(cmd)
    assert args[:2] == ["python", "-m"], f"{cmd!r}: stages run as `python -m stages.<name>`"
    return args[2]


def _code_deps(stage: dict) -> set:
    files = set()
    for dep in stage["deps"]:
        path = REPO / dep
        if dep.startswith(("pipeline", "stages")):
            assert path.exists(), f"dvc.yaml dep {dep} does not exist"
            files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return files


@pytest.mark.parametrize("name", list(_stages()))
def test_stage_code_deps_are_its_import_closure(name):
    stage = _stages()[name]
    module = _command_module(stage["cmd"])
    needed, listed = closure(module), _code_deps(stage)
    missing = sorted(str(p.relative_to(REPO)) for p in needed - listed)
    extra = sorted(str(p.relative_to(REPO)) for p in listed - needed)
    want = "\n".join(f"  - {d}" for d in minimal_deps(needed))
    assert not missing and not extra, (
        f"{name}: deps miss {missing} and list {extra} that `{module}` never runs; "
        f"its code deps are:\n{want}"
    )


def test_closure_sees_lazy_imports(tmp_path):
    """A function-level import counts (the stage runs it); a TYPE_CHECKING one does not."""
    source = (
        "def f():\n    from pipeline.chat import answer\nif TYPE_CHECKING:\n    import stages.cli\n"
    )
    path = tmp_path / "m.py"
    path.write_text(source)
    found = direct_imports(path)
    assert "pipeline.chat.answer" in found and "stages.cli" not in found


def test_every_path_a_stage_writes_is_in_its_cmd():
    """Outputs are named once, in the cmd: stage code builds no output path of its own."""
    for name, stage in _stages().items():
        given = [arg for arg in shlex.split(stage["cmd"]) if not arg.startswith("-")]
        for out in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            path = out if isinstance(out, str) else next(iter(out))
            assert any(path == arg or path.startswith(arg.rstrip("/") + "/") for arg in given), (
                f"{name}: output {path} is not given by its cmd"
            )
