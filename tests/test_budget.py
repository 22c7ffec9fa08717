"""A tiny budget on tiny data: the plan decides the counts, every stage keeps to them, the run
ends within the budget, and a second run with the same plan rebuilds the same bytes."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import optuna
import pytest
import yaml

from pipeline import cli
from pipeline.config import ModelConfig
from pipeline.plan import Plan
from pipeline.tune.study import Spend

from .conftest import make_houses, small_params, write_competition

pytestmark = pytest.mark.slow
BUDGET_MINUTES = 1.5
GIVEN = ["--prepared", "prepared"]
PLANNING = [["prepare", "--out", "prepared"], ["plan", *GIVEN, "--out", "plan"]]
AFTER_THE_PLAN = [
    ["tune", *GIVEN, "--plan", "plan", "--out", "tune", "--storage-dir", "optuna"],
    ["reference", *GIVEN, "--plan", "plan", "--out", "reference"],
    ["train", *GIVEN, "--plan", "plan", "--best-params", "tune/best_params.json",
     "--references", "reference/reference_models.pkl", "--out", "models"],
    ["predict", "--model", "models/model.pkl", "--out", "submission.csv"],
    ["evaluate", "--train-dir", "models", "--reference-dir", "reference", "--tune-dir", "tune",
     "--out", "reports"],
]
# every stage output after prepare (the Optuna and MLflow stores are not outputs)
OUTPUTS = ("plan", "tune", "reference", "models", "reports", "submission.csv")


def run_stages(root: Path, stages: list[list[str]]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("OPTUNA_STORAGE", raising=False)
        for args in stages:
            assert cli.main(["--params", "params.yaml", *args]) == 0, args


def output_bytes(root: Path) -> dict[str, bytes]:
    files = {}
    for name in OUTPUTS:
        path = root / name
        for file in sorted([path] if path.is_file() else path.rglob("*")):
            if file.is_file():
                files[str(file.relative_to(root))] = file.read_bytes()
    return files


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory) -> tuple[Path, float, dict[str, bytes]]:
    """The whole run once (its seconds), then every stage after the plan again with the same
    plan and a new study (the Optuna storage removed): the first run's output bytes and the
    project as the second run left it."""
    root = tmp_path_factory.mktemp("budget")
    write_competition(root / "raw", make_houses(150, seed=1),
                      make_houses(50, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(root / "raw", base={"budget_minutes": BUDGET_MINUTES},
                          tracking={"uri": f"sqlite:///{root / 'mlflow.db'}"})
    params["model"] = {"depth": 1, "width": 16}  # every size auto
    params["tune"] = {"search_space": {"lr": "auto", "dropout": {"low": 0.0, "high": 0.3}},
                      "pruner": {"kind": "median", "n_startup_trials": 1}}
    params["ensemble"] = {"feature_views": ["standard"], "blend_with": ["linear", "gbm"]}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    started = time.monotonic()
    run_stages(root, PLANNING + AFTER_THE_PLAN)
    seconds = time.monotonic() - started
    first = output_bytes(root)
    for name in ("optuna", *OUTPUTS[1:]):
        path = root / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_stages(root, AFTER_THE_PLAN)
    return root, seconds, first


def test_the_run_ends_within_the_budget(budgeted):
    _, seconds, _ = budgeted
    assert seconds <= 1.1 * BUDGET_MINUTES * 60


def test_a_second_run_with_the_same_plan_rebuilds_the_same_bytes(budgeted):
    root, _, first = budgeted
    second = output_bytes(root)
    assert set(second) == set(first)
    assert len(first) > 15
    cut = [json.loads(second[f"{stage}/time_cap.json"]) for stage in ("tune", "reference")]
    assert not any(record["hit"] for record in cut), cut  # else the clock had its say
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, differ


def test_the_study_spent_its_share_and_the_final_fit_took_its_networks_seeds(budgeted):
    """The study ran until its trials' cost by the plan's timings filled its share (the
    last trial started below it), and the final fit trained the seeds the plan gives the
    best trial's network."""
    root, _, _ = budgeted
    plan = Plan.from_dict(json.loads((root / "plan" / "plan.json").read_text()))
    best = json.loads((root / "tune" / "best_params.json").read_text())
    study = optuna.load_study(study_name=best["study"],
                              storage=f"sqlite:///{root / 'optuna' / 'optuna.db'}")
    model = ModelConfig.model_validate(best["model"])
    spend = Spend.planned(plan, model)
    trials = study.trials
    assert len(trials) >= 2
    assert spend.spent(trials) >= plan.study_seconds > spend.spent(trials[:-1])
    assert best["model"]["epochs"] == plan.epochs
    assert best["model"]["batch_size"] == plan.batch_size == 128
    metrics = json.loads((root / "models" / "train_metrics.json").read_text())
    assert metrics["n_seeds"] == plan.seeds_for(model)


def test_the_plan_holds_decisions_not_clock_readings(budgeted):
    root, _, _ = budgeted
    plan = json.loads((root / "plan" / "plan.json").read_text())
    assert not [key for key in plan if key.startswith("measured") or "epoch_seconds" in key]
    assert plan["overhead_seconds"] % 10 == 0  # rounded up: a tenth of a second apart is alike
