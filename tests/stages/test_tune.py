"""The tune stage through the command line on targets at the edge of what the data accepts."""

from __future__ import annotations

import json
import math

import pandas as pd
import yaml

from pipeline.cli import main
from pipeline.cv import make_folds
from pipeline.data.prepared import load_prepared

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
                  ["reference", "--prepared", prepared, "--out", str(tmp_path / "reference")]):
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
