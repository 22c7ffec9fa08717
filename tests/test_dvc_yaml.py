"""dvc.yaml: each stage lists the code it runs, so `dvc repro` re-runs exactly what changed."""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
DISPATCH = "pipeline/stages.py"  # every stage's entry point; it imports each stage's code


def imported_modules(path: str) -> set[str]:
    """The package's modules a module imports, anywhere in it, as paths like pipeline/x.py."""
    found = set()
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            candidate = name.replace(".", "/") + ".py"
            if name.startswith("pipeline.") and (REPO / candidate).exists():
                found.add(candidate)
    return found


def closure(paths: set[str]) -> set[str]:
    seen, todo = set(), list(paths)
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_modules(path))
    return seen


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_depends_on_every_module_its_code_imports(stage):
    listed = {d for d in STAGES[stage].get("deps", []) if str(d).startswith("pipeline/")}
    missing = closure(listed - {DISPATCH}) - listed
    assert not missing, f"dvc.yaml stage {stage!r} runs code it does not list: {sorted(missing)}"
