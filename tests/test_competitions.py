"""The whole pipeline on competitions of other shapes than House Prices.

Each competition is built here from scratch and pointed at by a params change only: the
repository's params.yaml with a new `data:` section and House Prices' own feature rules
emptied, as the README's "A new competition" section tells a user to do.

- `wide`: many rows (20 000 train, 5 000 test), few columns, text ids (hashes, some all
  digits with leading zeros), a log-modelled positive target, a sample submission. Every
  dvc.yaml stage command runs in this process (no per-stage interpreter start-up).
- `dated`: an ISO date-time column (inferred), a differently written date column (set in
  params), an ordinal and a numeric code override, a dropped free-text column, integer ids
  named `row_id`, a target that is not log-modelled and often negative, no sample
  submission. Runs under real `dvc repro`.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import cli

from .conftest import REPO
from .test_end_to_end import dvc

pytestmark = pytest.mark.slow

# Small enough for a quick CI run; the same for both competitions.
SMALL = {
    "base": {"seed": 3, "threads": 1},
    "cv": {"n_folds": 3},
    "model": {"depth": 1, "width": 64, "epochs": 12, "batch_size": 128, "lr": 0.01,
              "eval_every": 3},
    "ensemble": {"n_seeds": 1},
    "reference": {"gbm_max_rounds": 30},
    "tune": {"n_trials": 2, "n_startup_trials": 1,
             "pruner": {"kind": "median", "n_startup_trials": 1, "n_warmup_steps": 3},
             "search_space": {"lr": {"low": 0.003, "high": 0.02, "log": True}}},
}
# a clear margin: OOF RMSE at most half the RMSE of predicting the training mean
MARGIN = 0.5


def make_wide(n_rows: int, seed: int) -> pd.DataFrame:
    """Many rows, few columns: text ids, two numbers (one with gaps), a category, a flag."""
    rng = np.random.default_rng(seed)
    ids = [hashlib.sha1(f"{seed}-{i}".encode()).hexdigest()[:12] for i in range(n_rows)]
    ids[:3] = [f"{seed}{i:07d}".zfill(10) for i in range(3)]  # all digits, leading zeros
    size = rng.uniform(0, 10, n_rows)
    age = rng.integers(0, 60, n_rows).astype(float)
    age[rng.random(n_rows) < 0.05] = np.nan
    kind = rng.choice(list("ABCDEFGH"), n_rows)
    flag = rng.integers(0, 2, n_rows)
    kind_effect = pd.Series(kind).map(dict(zip("ABCDEFGH", np.linspace(-0.6, 0.6, 8), strict=True)))
    log_price = (3.0 + 0.25 * size + 0.4 * np.sin(size) - 0.01 * np.nan_to_num(age, nan=30)
                 + kind_effect.to_numpy() + 0.3 * flag + rng.normal(0, 0.1, n_rows))
    return pd.DataFrame({"key": ids, "size": size.round(3), "age": age, "kind": kind,
                         "flag": flag, "price": np.exp(log_price).round(2)})


def make_dated(n_rows: int, seed: int, first_id: int = 0) -> pd.DataFrame:
    """A target driven mostly by the calendar (season, weekday, hour) and a trend."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2014-01-01")
    stamps = start + pd.to_timedelta(rng.integers(0, 3 * 365 * 24, n_rows), unit="h")
    opened = start - pd.to_timedelta(rng.integers(0, 3000, n_rows), unit="D")
    store = rng.integers(1, 7, n_rows)
    grade = rng.choice(["low", "mid", "high"], n_rows)
    x = rng.normal(0, 1, n_rows)
    season = 6 * np.sin(2 * np.pi * stamps.day_of_year.to_numpy() / 365.25)
    weekend = 3 * (stamps.day_of_week.to_numpy() >= 5)
    daytime = 2 * ((stamps.hour.to_numpy() >= 8) & (stamps.hour.to_numpy() < 20))
    trend = 2 * (stamps - start).days.to_numpy() / 1000
    shop = pd.Series(store).map({1: -2, 2: -1, 3: 0, 4: 1, 5: 2, 6: 3}).to_numpy()
    level = pd.Series(grade).map({"low": -1.0, "mid": 0.0, "high": 1.0}).to_numpy()
    age = (start - opened).days.to_numpy() / 1000
    delta = (season + weekend + daytime + trend + shop + level + 1.5 * x + 0.8 * age - 4
             + rng.normal(0, 0.7, n_rows))
    timestamp = stamps.strftime("%Y-%m-%d %H:%M:%S").to_numpy().astype(object)
    timestamp[rng.random(n_rows) < 0.02] = None  # a few missing dates
    return pd.DataFrame({
        "row_id": np.arange(first_id, first_id + n_rows),
        "timestamp": timestamp,
        "opened": opened.strftime("%m/%d/%Y"),
        "store": store,
        "grade": grade,
        "x": x.round(4),
        "comment": [f"note {seed}-{i} about the day" for i in range(n_rows)],
        "delta": delta.round(3),
    })


def competition_project(root: Path, train: pd.DataFrame, test: pd.DataFrame, data: dict,
                        sample: pd.DataFrame | None = None, model: dict | None = None) -> Path:
    """A project with the given CSVs and the repository's params, changed as README says."""
    project = root / "project"
    shutil.copytree(REPO / "pipeline", project / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, project / name)
    raw = project / "data" / "raw"
    raw.mkdir(parents=True)
    train.to_csv(raw / "train.csv", index=False)
    test.to_csv(raw / "test.csv", index=False)
    if sample is not None:
        sample.to_csv(raw / "sample_submission.csv", index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"] = data
    params["features"].update(fill_none=[], derived={}, group_impute={}, fit_exclude=[])
    params["tracking"]["experiment"] = None
    params["tune"]["study_name"] = None
    for section, values in SMALL.items():
        params[section] = {**params[section], **values}
    params["model"].update(model or {})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                ["git", "config", "user.name", "test"],
                [sys.executable, "-m", "dvc", "init", "-q"],
                [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    return project


def run_stages_in_process(project: Path) -> None:
    """Every dvc.yaml stage's command, in order, through the CLI of this process."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("OPTUNA_STORAGE", raising=False)
        for name, stage in stages.items():
            args = shlex.split(stage["cmd"])
            assert args[:3] == ["python", "-m", "pipeline"], stage["cmd"]
            assert cli.main(args[3:]) == 0, f"stage {name} failed"


def mean_prediction_rmse(target: pd.Series, log_target: bool) -> float:
    """RMSE, on the model scale, of predicting the training mean for every row."""
    y = np.log(target.to_numpy()) if log_target else target.to_numpy()
    return float(np.sqrt(np.mean((y - y.mean()) ** 2)))


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    train = make_wide(20_000, seed=1)
    test = make_wide(5_000, seed=2).drop(columns="price")
    sample = pd.DataFrame({"key": test["key"], "price": 1.0})
    data = {"train": "data/raw/train.csv", "test": "data/raw/test.csv",
            "sample_submission": "data/raw/sample_submission.csv",
            "id_column": "key", "target": "price", "log_target": True}
    project = competition_project(tmp_path_factory.mktemp("wide"), train, test, data, sample)
    run_stages_in_process(project)
    return project, train, test


@pytest.fixture(scope="module")
def dated(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame, subprocess.CompletedProcess]:
    train = make_dated(2_000, seed=3)
    test = make_dated(600, seed=4, first_id=2_000).drop(columns="delta")
    data = {"train": "data/raw/train.csv", "test": "data/raw/test.csv",
            "sample_submission": None, "id_column": "row_id", "target": "delta",
            "log_target": False, "drop_columns": ["comment"],
            "column_types": {"opened": "datetime", "store": "categorical", "grade": "ordinal"},
            "ordinal_levels": {"grade": ["low", "mid", "high"]}}
    # fewer rows than `wide`: more, smaller steps to learn the calendar's shape
    project = competition_project(tmp_path_factory.mktemp("dated"), train, test, data,
                                  model={"epochs": 40, "batch_size": 64, "width": 128})
    repro = dvc(project, "repro")
    return project, train, test, repro


def test_wide_competition_submission_keeps_text_ids_verbatim(wide):
    project, _, test = wide
    sub = pd.read_csv(project / "data/submission.csv", dtype={"key": str})
    assert sub.columns.tolist() == ["key", "price"]
    assert sub["key"].tolist() == test["key"].tolist()  # leading zeros and all
    assert sub["key"].iloc[0].startswith("0")
    assert np.isfinite(sub["price"]).all() and (sub["price"] > 0).all()


def test_wide_competition_oof_score_beats_the_mean_by_a_margin(wide):
    project, train, _ = wide
    metrics = json.loads((project / "reports/metrics.json").read_text())
    baseline = mean_prediction_rmse(train["price"], log_target=True)
    assert metrics["oof_rmse"] < MARGIN * baseline, (metrics["oof_rmse"], baseline)
    schema = json.loads((project / "data/prepared/schema.json").read_text())
    assert schema["id_type"] == "text"
    assert schema["columns"] == {"size": "numeric", "age": "numeric", "kind": "categorical",
                                 "flag": "numeric"}


def test_dated_competition_submission(dated):
    project, _, test, _ = dated
    sub = pd.read_csv(project / "data/submission.csv")
    assert sub.columns.tolist() == ["row_id", "delta"]
    np.testing.assert_array_equal(sub["row_id"], test["row_id"])
    assert np.isfinite(sub["delta"]).all()
    assert (sub["delta"] < 0).any()  # negative predictions are fine for a non-log target


def test_dated_competition_oof_score_beats_the_mean_by_a_margin(dated):
    project, train, _, _ = dated
    metrics = json.loads((project / "reports/metrics.json").read_text())
    baseline = mean_prediction_rmse(train["delta"], log_target=False)
    # most of the target's spread is calendar: only the datetime features can explain it
    assert metrics["oof_rmse"] < MARGIN * baseline, (metrics["oof_rmse"], baseline)


def test_dated_competition_schema_reports_what_was_inferred_and_set(dated):
    project, _, _, repro = dated
    schema = json.loads((project / "data/prepared/schema.json").read_text())
    assert schema["columns"] == {"timestamp": "datetime", "opened": "datetime",
                                 "store": "categorical", "grade": "ordinal", "x": "numeric"}
    assert schema["inferred"] == ["timestamp", "x"]
    assert schema["overridden"] == ["opened", "store", "grade"]
    assert schema["dropped"] == ["comment"]
    assert schema["target_scale"] == "none" and schema["id_type"] == "integer"
    assert "inferred datetime (1): timestamp" in repro.stderr + repro.stdout


def test_no_sample_submission_works_under_dvc_and_names_default_from_params(dated):
    project = dated[0]
    assert json.loads(dvc(project, "status", "--json").stdout or "{}") == {}
    best = json.loads((project / "data/tune/best_params.json").read_text())
    assert best["study"].startswith("delta-mlp-")  # study named after the experiment
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("delta")  # experiment named after the target
    final = client.search_runs([experiment.experiment_id],
                               filter_string="tags.run_kind = 'final'")
    assert len(final) == 1
