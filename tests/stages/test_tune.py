"""The tune stage when its time cap cuts the study short: its outputs and the summary say so."""

from __future__ import annotations

import logging

import yaml

from pipeline.config import load_config
from pipeline.io import read_json
from pipeline.plan import TIME_CAP_FILE
from pipeline.stages import plan, prepare, summary, tune

from ..conftest import make_houses, small_params, write_competition


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
