"""The tune stage: on targets at the edge of what the data accepts, and when its time cap
cuts the study short (its outputs and the summary say so)."""

from __future__ import annotations

import json
import logging
import math

import optuna
import pandas as pd
import yaml

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.cv import make_folds
from pipeline.data.prepared import load_prepared
from pipeline.io import read_json
from pipeline.plan import TIME_CAP_FILE
from pipeline.stages import plan, prepare, summary, tune

from ..conftest import make_houses, small_params, write_competition


def test_a_target_of_1e20_without_a_log_scale_completes_its_trials(tmp_path, monkeypatch,
                                                                   capsys):
    # within the data limit (1e30 on the model scale), but its square overflows float32:
    # every trial's RMSE was inf and the stage ended with "no complete trial"
    monkeypatch.chdir(tmp_path)  # the stages note their time in data/timings
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    train = make_houses(40, seed=1)
    train.loc[5, "SalePrice"] = 1e20
    write_competition(tmp_path / "raw", train,
                      make_houses(5, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw", data={"log_target": False})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    prepared, plan = str(tmp_path / "prepared"), str(tmp_path / "plan")
    for stage in (["prepare", "--out", prepared],
                  ["plan", "--prepared", prepared, "--out", plan],
                  ["tune", "--prepared", prepared, "--plan", plan, "--out",
                   str(tmp_path / "tune"), "--storage-dir", str(tmp_path / "optuna")],
                  ["reference", "--prepared", prepared, "--plan", plan, "--out",
                   str(tmp_path / "reference")]):
        code = main(["--params", str(tmp_path / "params.yaml"), "-q", *stage])
        assert code == 0, capsys.readouterr().err
    best = json.loads((tmp_path / "tune" / "best_params.json").read_text())
    assert all(math.isfinite(score) for score in best["fold_scores"])
    # the references fit too: the Lasso of a fold that fits on the 1e20 row is no longer
    # that fold's mean (its coefficients stayed 0)
    oof = pd.read_csv(tmp_path / "reference" / "oof_predictions.csv")
    for column in ("predicted_linear", "predicted_gbm"):
        assert oof[column].notna().all() and oof[column].abs().lt(1e30).all()
    folds = make_folds(load_prepared(tmp_path / "prepared").train, 3, params["base"]["seed"])
    for rows in folds.val_rows:
        assert oof["predicted_linear"].iloc[rows].nunique() > 1


def test_a_study_cut_by_its_time_cap_says_what_was_cut(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    write_competition(tmp_path / "raw", make_houses(150, seed=1),
                      make_houses(50, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw", tune={"n_trials": 200, "timeout_minutes": 0.05},
                          tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(tmp_path / "params.yaml")
    prepare.run(cfg, tmp_path / "prepared")
    plan.run(cfg, tmp_path / "prepared", tmp_path / "plan")
    with caplog.at_level(logging.INFO, logger="pipeline"):
        tune.run(cfg, tmp_path / "prepared", tmp_path / "plan", tmp_path / "tune",
                 tmp_path / "optuna")
    record = read_json(tmp_path / "tune" / TIME_CAP_FILE)
    assert record["hit"] and record["cap_minutes"] == 0.05
    assert record["cut"].startswith("the study's time cap (0.1 min) cut it short: ")
    assert "of the 200 planned trials finished" in record["cut"]
    assert f"TIME CAP: {record['cut']}" in caplog.text
    (line,) = summary.cap_lines([tmp_path / "tune", tmp_path / "reference"])
    assert line.startswith(f"TIME CAP HIT in tune: {record['cut']}; rerun")


def test_the_studys_first_trial_is_the_model_sections_own_values(tmp_path, monkeypatch, capsys):
    """Trial 0 runs params.yaml's model values of the tuned params (enqueued), so the study
    can only improve on them; a rerun resumes without running them again."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    write_competition(tmp_path / "raw", make_houses(40, seed=1),
                      make_houses(5, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw", model={"dropout": 0.123, "width": 16},
                          tune={"n_trials": 3, "search_space": {
                              "dropout": {"low": 0.0, "high": 0.3},
                              "width": {"choices": [8, 16]},
                              "numeric_embedding": {"choices": ["none", "pbld"]}}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    prepared, plan_dir = str(tmp_path / "prepared"), str(tmp_path / "plan")
    tune_args = ["tune", "--prepared", prepared, "--plan", plan_dir, "--out",
                 str(tmp_path / "tune"), "--storage-dir", str(tmp_path / "optuna")]
    for stage in (["prepare", "--out", prepared],
                  ["plan", "--prepared", prepared, "--out", plan_dir], tune_args):
        code = main(["--params", str(tmp_path / "params.yaml"), "-q", *stage])
        assert code == 0, capsys.readouterr().err
    storage = f"sqlite:///{tmp_path / 'optuna' / 'optuna.db'}"
    (summary_,) = [s for s in optuna.get_all_study_summaries(storage)
                   if s.n_trials]
    study = optuna.load_study(study_name=summary_.study_name, storage=storage)
    assert study.trials[0].params == {"dropout": 0.123, "width": 16, "numeric_embedding": "none"}
    assert [t.params for t in study.trials[1:]] != [study.trials[0].params] * 2  # then drawn
    # more trials later: the defaults are not run again
    params["tune"]["n_trials"] = 4
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", str(tmp_path / "params.yaml"), "-q", *tune_args]) == 0
    study = optuna.load_study(study_name=summary_.study_name, storage=storage)
    assert len(study.trials) == 4
    assert sum(t.params == study.trials[0].params for t in study.trials) == 1
