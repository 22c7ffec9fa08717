"""A tiny budget on tiny data: every stage keeps to its share and the run ends within it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from pipeline import cli

from .conftest import make_houses, small_params, write_competition

pytestmark = pytest.mark.slow
BUDGET_MINUTES = 1.5


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory) -> tuple[Path, float, list[str]]:
    root = tmp_path_factory.mktemp("budget")
    write_competition(root / "raw", make_houses(150, seed=1),
                      make_houses(50, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(root / "raw", base={"budget_minutes": BUDGET_MINUTES},
                          tracking={"uri": f"sqlite:///{root / 'mlflow.db'}"})
    params["model"] = {"depth": 1, "width": 16}  # every size auto
    params["tune"] = {"search_space": {"lr": "auto", "dropout": {"low": 0.0, "high": 0.3}},
                      "pruner": {"kind": "median", "n_startup_trials": 1}}
    params["ensemble"] = {"feature_views": ["standard"]}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    given = ["--prepared", "prepared"]
    stages = [["prepare", "--out", "prepared"], ["plan", *given, "--out", "plan"],
              ["tune", *given, "--plan", "plan", "--out", "tune", "--storage-dir", "optuna"],
              ["reference", *given, "--out", "reference"],
              ["train", *given, "--plan", "plan", "--best-params", "tune/best_params.json",
               "--references", "reference/reference_models.pkl", "--out", "models"]]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("OPTUNA_STORAGE", raising=False)
        started = time.monotonic()
        for args in stages:
            assert cli.main(["--params", "params.yaml", *args]) == 0, args
        seconds = time.monotonic() - started
    return root, seconds, stages


def test_the_run_ends_within_the_budget(budgeted):
    _, seconds, _ = budgeted
    assert seconds <= 1.1 * BUDGET_MINUTES * 60


def test_the_study_stopped_by_time_with_trials_sized_by_the_plan(budgeted):
    root, _, _ = budgeted
    plan = json.loads((root / "plan" / "plan.json").read_text())
    study = json.loads((root / "timings" / "tune.json").read_text())
    trials = json.loads((root / "tune" / "best_params.json").read_text())
    assert study["trials"] >= 2  # several trials fitted in the share ...
    # ... and no more than it holds: the last one started only if it fit
    assert study["seconds"] <= plan["study_seconds"] + 2 * plan["trial_seconds"] + 30
    assert trials["model"]["epochs"] == plan["epochs"]
    assert trials["model"]["batch_size"] == plan["batch_size"] == 128


def test_the_final_fit_got_the_seeds_its_share_holds(budgeted):
    root, _, _ = budgeted
    plan = json.loads((root / "plan" / "plan.json").read_text())
    metrics = json.loads((root / "models" / "train_metrics.json").read_text())
    expected = max(1, min(5, int(plan["final_seconds"] // plan["trial_seconds"])))
    assert metrics["n_seeds"] == expected
