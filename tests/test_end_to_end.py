"""The real stages under real DVC, MLflow and Optuna stores, on a slice of House Prices."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import REPO

pytestmark = pytest.mark.slow

SMALL = {
    "base": {"threads": 1},
    "cv": {"n_folds": 3},
    "model": {"epochs": 8, "width": 32, "eval_every": 2},
    "ensemble": {"n_seeds": 2},
    "reference": {"gbm_max_iter": 30},
    "tune": {"n_trials": 3, "n_startup_trials": 2,
             "pruner": {"kind": "median", "n_startup_trials": 1, "n_warmup_steps": 2}},
}


def small_project(root: Path) -> Path:
    """A copy of the project with 300 training rows, 120 test rows and tiny params."""
    project = root / "project"
    shutil.copytree(REPO / "pipeline", project / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", project / "dvc.yaml")
    raw = project / "data" / "raw"
    raw.mkdir(parents=True)
    train = pd.read_csv(REPO / "data/raw/train.csv").iloc[:300]
    test = pd.read_csv(REPO / "data/raw/test.csv").iloc[:120]
    sample = pd.read_csv(REPO / "data/raw/sample_submission.csv").iloc[:120]
    # keep the two documented outliers so fit_exclude has something to leave out
    outliers = pd.read_csv(REPO / "data/raw/train.csv").query("GrLivArea > 4000 and "
                                                              "SalePrice < 300000")
    pd.concat([train, outliers]).to_csv(raw / "train.csv", index=False)
    test.to_csv(raw / "test.csv", index=False)
    sample.to_csv(raw / "sample_submission.csv", index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in SMALL.items():
        params[section] = {**params[section], **values}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                ["git", "config", "user.name", "test"],
                [sys.executable, "-m", "dvc", "init", "-q"],
                [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    return project


def run(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    result = subprocess.run(list(args), cwd=project, env=env, capture_output=True, text=True,
                            timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(project, sys.executable, "-m", "dvc", *args, check=check)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = small_project(tmp_path_factory.mktemp("e2e"))
    dvc(project, "repro")
    return project


def test_submission_is_valid(project):
    sub = pd.read_csv(project / "data/submission.csv")
    test = pd.read_csv(project / "data/raw/test.csv")
    assert sub.columns.tolist() == ["Id", "SalePrice"]
    np.testing.assert_array_equal(sub["Id"], test["Id"])
    assert np.isfinite(sub["SalePrice"]).all() and (sub["SalePrice"] > 0).all()
    # sane prices: within the training range, give or take
    assert 20_000 < sub["SalePrice"].median() < 500_000


def test_second_repro_is_a_no_op_and_one_param_reruns_only_its_stages(project):
    again = dvc(project, "repro")
    assert "Running stage" not in again.stdout, again.stdout
    status = json.loads(dvc(project, "status", "--json").stdout or "{}")
    assert status == {}
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ensemble"]["n_seeds"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(dvc(project, "status", "--json").stdout)
    assert set(status) == {"train"}, status
    diff = dvc(project, "params", "diff")
    assert "ensemble.n_seeds" in diff.stdout


def test_metrics_show_lists_oof_and_fold_scores(project):
    shown = dvc(project, "metrics", "show").stdout
    for key in ("oof_rmse", "fold_rmse.fold_0", "reference.linear.oof_rmse",
                "reference.gbm.oof_rmse"):
        assert key in shown, shown
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert 0 < metrics["oof_rmse"] < 1.0
    assert len(metrics["fold_rmse"]) == 3


def test_mlflow_holds_study_trials_and_final_model(project):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("house-prices")
    runs = client.search_runs([experiment.experiment_id])
    kinds = {}
    for r in runs:
        kinds.setdefault(r.data.tags.get("run_kind"), []).append(r)
    assert len(kinds["study"]) == 1
    parent = kinds["study"][0]
    assert len(kinds["trial"]) == 3
    best = json.loads((project / "data/tune/best_params.json").read_text())
    for trial in kinds["trial"]:
        assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert trial.data.tags["optuna_study"] == best["study"]
        assert set(trial.data.params) == set(best["params"])
        for tag in ("mlflow.source.git.commit", "data_hash", "dvc_stage", "seed"):
            assert tag in trial.data.tags
    complete = [t for t in kinds["trial"] if t.data.tags["trial_state"] == "COMPLETE"]
    for trial in complete:
        folds = client.get_metric_history(trial.info.run_id, "fold_rmse")
        assert [m.step for m in folds] == [0, 1, 2]
        assert trial.data.metrics["cv_rmse"] > 0
    final = kinds["final"][0]
    assert final.data.metrics["oof_rmse"] == pytest.approx(
        json.loads((project / "models/train_metrics.json").read_text())["oof_rmse"])
    references = json.loads((project / "data/reference/reference_metrics.json").read_text())
    for name in ("linear", "gbm"):  # the comparison is in MLflow too, on the same folds
        assert final.data.metrics[f"reference_{name}_oof_rmse"] == pytest.approx(
            references[name]["oof_rmse"])
    assert final.data.metrics["reference_average_oof_rmse"] == pytest.approx(
        references["reference_average"]["oof_rmse"])
    models = client.search_logged_models([experiment.experiment_id])
    assert any(m.source_run_id == final.info.run_id for m in models)


def test_logged_model_reproduces_the_submission(project):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("house-prices")
    final = mlflow.search_runs([experiment.experiment_id],
                               filter_string="tags.run_kind = 'final'", output_format="list")[0]
    model_uri = f"runs:/{final.info.run_id}/model"
    cwd = os.getcwd()
    os.chdir(project)  # artifacts live beside the store, relative to the project
    try:
        loaded = mlflow.pyfunc.load_model(model_uri)
    finally:
        os.chdir(cwd)
    test = pd.read_csv(project / "data/raw/test.csv")
    predicted = loaded.predict(test)
    sub = pd.read_csv(project / "data/submission.csv")
    np.testing.assert_array_equal(predicted["Id"], sub["Id"])
    np.testing.assert_allclose(predicted["SalePrice"], sub["SalePrice"], rtol=0, atol=0.005)


def test_bad_input_fails_the_stage_with_a_clear_error_and_no_output(tmp_path):
    project = small_project(tmp_path)
    train = pd.read_csv(project / "data/raw/train.csv")
    train.loc[5, "SalePrice"] = -1
    train.to_csv(project / "data/raw/train.csv", index=False)
    result = run(project, sys.executable, "-m", "pipeline", "prepare", "--out", "data/prepared",
                 check=False)
    assert result.returncode == 2
    assert "data/raw/train.csv, column 'SalePrice', line 7: target must be positive" in \
        result.stderr
    assert not (project / "data/prepared").exists()
    assert not list((project / "data").glob(".prepared*"))
