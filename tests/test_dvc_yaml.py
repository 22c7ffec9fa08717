"""dvc.yaml: each stage lists exactly the code it runs, so `dvc repro` re-runs exactly what
changed: no stale output called up to date, no stage re-run by code it never imports."""

import functools
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PACKAGE = REPO / "pipeline"

CLOSURE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()
                        if (n == "pipeline" or n.startswith("pipeline.")) and
                        getattr(m, "__file__", None))))
"""


def stage_module(stage: str) -> str:
    """The module a stage runs: `python -m pipeline <stage>` dispatches to pipeline.stages.X."""
    cmd = STAGES[stage]["cmd"].split()
    assert cmd[:3] == ["python", "-m", "pipeline"], cmd
    return "pipeline.stages." + cmd[3].replace("-", "_")


@functools.cache
def import_closure(module: str) -> frozenset[str]:
    """The package's files a fresh interpreter has loaded once `module` is imported."""
    out = subprocess.run([sys.executable, "-c", CLOSURE, module], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return frozenset(str(Path(f).resolve().relative_to(REPO)) for f in json.loads(out))


def listed_code(stage: str) -> tuple[set[str], set[str]]:
    """The code files and the code folders a stage lists in its deps."""
    deps = [str(d) for d in STAGES[stage].get("deps", []) if str(d).startswith("pipeline")]
    folders = {d.rstrip("/") for d in deps if (REPO / d).is_dir()}
    return set(deps) - folders, folders


def package_modules(folder: str) -> set[str]:
    return {str(p.relative_to(REPO)) for p in (REPO / folder).rglob("*.py")}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_lists_exactly_the_code_it_imports(stage):
    closure = import_closure(stage_module(stage))
    files, folders = listed_code(stage)
    covered = files | {m for folder in folders for m in package_modules(folder)}
    missing = closure - covered
    assert not missing, f"dvc.yaml stage {stage!r} runs code it does not list: {sorted(missing)}"
    never = files - closure
    assert not never, f"dvc.yaml stage {stage!r} lists code it never imports: {sorted(never)}"
    for folder in folders:
        unused = package_modules(folder) - closure
        assert not unused, (f"dvc.yaml stage {stage!r} lists {folder}/ but imports only part "
                            f"of it; list the modules instead (unused: {sorted(unused)})")


def test_every_module_is_code_some_stage_or_command_runs():
    """No module is left out of every closure but by being a CLI-only module or the library
    API (the estimator, which no stage imports)."""
    not_stage_code = {"pipeline/cli.py", "pipeline/__main__.py",
                      "pipeline/stages/tune_worker.py", "pipeline/stages/summary.py",
                      "pipeline/estimator.py"}
    reached = set().union(*(import_closure(stage_module(s)) for s in STAGES))
    orphans = package_modules("pipeline") - reached - not_stage_code
    assert not orphans, f"modules no stage imports: {sorted(orphans)}"


def test_the_plots_page_template_loads_no_script_from_the_network():
    """.dvc/config points `dvc plots show` at a template with vega inlined (DVC's own loads
    it from a CDN and renders blank offline); scripts/vendor-vega.sh writes it."""
    config = (REPO / ".dvc" / "config").read_text()
    assert "html_template = plots-offline.html" in config
    page = (REPO / ".dvc" / "plots-offline.html").read_text(encoding="utf-8")
    assert "{plot_divs}" in page  # where DVC puts the plots
    assert "{scripts}" not in page  # where DVC would put its CDN links
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    for library in ("vega 5.", "vega-lite 5.", "vega-embed 6."):
        assert f"/* {library}" in page, library
    assert "vegaEmbed" in page


# A small project's run, as quick as the stages allow: for the tests that break a stage
QUICK = {"tune": {"n_trials": 1, "n_startup_trials": 1}, "model": {"epochs": 4},
         "ensemble": {"n_seeds": 1, "feature_views": ["standard"]},
         "reference": {"gbm_max_rounds": 10}}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A small copy of the project after one good `dvc repro`."""
    from .test_end_to_end import dvc, run, small_project

    project = small_project(tmp_path_factory.mktemp("persist"))
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in QUICK.items():
        params[section] = {**params[section], **values}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(project, "git", "commit", "-qam", "quick params")
    dvc(project, "repro")
    return project


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def dvc_status(project: Path) -> dict:
    from .test_end_to_end import dvc

    return json.loads(dvc(project, "status", "--json").stdout or "{}")


@pytest.mark.slow
def test_a_stage_that_fails_under_dvc_repro_leaves_its_previous_outputs(built):
    """DVC deletes a stage's outputs before running it unless they are `persist: true`: a bad
    train.csv once left no data/prepared at all. The stage's own swap keeps the old set."""
    from .test_end_to_end import dvc

    before = contents(built / "data/prepared")
    train_csv = built / "data/raw/train.csv"
    good = train_csv.read_bytes()
    train = pd.read_csv(train_csv)
    train.loc[5, "SalePrice"] = -1
    train.to_csv(train_csv, index=False)
    try:
        failed = dvc(built, "repro", check=False)
        assert failed.returncode != 0
        assert "column 'SalePrice', line 7: target must be positive" in failed.stderr
        assert contents(built / "data/prepared") == before
        assert not list((built / "data").glob(".prepared.*"))
    finally:
        train_csv.write_bytes(good)
    assert dvc_status(built) == {}  # the old outputs are the ones dvc.lock records


@pytest.mark.slow
def test_a_stage_killed_under_dvc_repro_leaves_its_previous_output(built):
    """SIGKILL to `dvc repro` and the stage it runs (the whole process group, as a closed
    terminal or an out-of-memory kill) once deleted data/submission.csv."""
    submission = built / "data/submission.csv"
    before = submission.read_bytes()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", "predict"],
                            cwd=built, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    try:
        for line in proc.stderr:  # DVC has removed the outputs it removes by then
            seen.append(line)
            if "predict: predict the test file" in line:
                break
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "predict: predict the test file" in seen[-1], "".join(seen)
    assert proc.returncode == -signal.SIGKILL
    assert submission.read_bytes() == before
    assert dvc_status(built) == {}


@pytest.mark.slow
def test_a_stage_run_under_dvc_replaces_its_whole_output_set(built):
    """Persisted outputs are not deleted by DVC, so the stage itself replaces the whole set:
    no file of an older run is left inside."""
    from .test_end_to_end import dvc

    stale = built / "data/prepared/stale.txt"
    stale.write_text("written by an older run")
    dvc(built, "repro", "-f", "-s", "prepare")
    assert not stale.exists()
    assert dvc_status(built) == {}
