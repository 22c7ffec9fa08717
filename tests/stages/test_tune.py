"""The tune stage: on targets at the edge of what the data accepts, and when its time cap
cuts the study short (its outputs and the summary say so)."""

from __future__ import annotations

import json
import logging
import math

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
