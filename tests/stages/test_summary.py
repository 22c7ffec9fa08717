"""The summary: a run over its budget, or cut short by a time cap, is said loudly, naming the
stage that overran its plan or was cut; it reads the stage times noted beside the
directories it was given, wherever the process runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline.config import config_from_dict
from pipeline.io import write_json
from pipeline.plan import TIME_CAP_FILE, cap_record
from pipeline.runtime import record_time, timings_dir
from pipeline.stages import summary

from ..conftest import small_params

PLAN = {"device": "cpu", "batch_size": 128, "epochs": 200, "n_trials": 150, "n_seeds": 5,
        "overhead_seconds": 70.0, "reference_seconds": 90.0, "study_seconds": 666.0,
        "final_seconds": 84.0}


def finished_run(root: Path, stage_minutes: dict[str, float]) -> dict[str, Path]:
    """The files a finished run leaves, with these stage wall times."""
    write_json(root / "reports" / "metrics.json", {
        "oof_rmse": 0.12, "oof_rmse_fit_rows": 0.11, "mlp_oof_rmse": 0.125,
        "mlp_oof_rmse_fit_rows": 0.112, "blend_weights": {"mlp": 0.6, "linear": 0.4},
        "fold_rmse": {"fold_0": 0.12, "fold_1": 0.12},
        "reference": {"linear": {"oof_rmse": 0.125, "oof_rmse_fit_rows": 0.112}}})
    write_json(root / "tune" / "best_params.json",
               {"trial": 3, "study": "mlp-abc", "value": 0.11, "params": {"dropout": 0.3}})
    write_json(root / "plan" / "plan.json", PLAN)
    for stage, minutes in stage_minutes.items():
        write_json(root / "timings" / f"{stage}.json", {"seconds": minutes * 60})
    return {"metrics": root / "reports" / "metrics.json", "tune": root / "tune",
            "plan": root / "plan", "reference": root / "reference"}


def show(root: Path, paths: dict[str, Path], used_minutes: float, monkeypatch) -> str:
    monkeypatch.chdir(root)
    cfg = config_from_dict({"data": {"id_column": "Id", "target": "y"},
                            "tracking": {"uri": f"sqlite:///{root / 'mlflow.db'}"}})
    return summary.run(cfg, paths["metrics"], paths["tune"], root / "models",
                       root / "submission.csv", started=time.time() - used_minutes * 60,
                       plan_dir=paths["plan"], reference_dir=paths["reference"])


def test_a_run_over_its_budget_says_so_and_which_stage_overran_its_plan(tmp_path, monkeypatch):
    paths = finished_run(tmp_path, {"plan": 0.1, "tune": 13.2, "reference": 1.0, "train": 1.2})
    text = show(tmp_path, paths, 16.9, monkeypatch)
    (line,) = [line for line in text.splitlines() if "16.9 of 15 min" in line]
    assert line.startswith("OVER BUDGET: used 16.9 of 15 min (+13%): tune took 13.2 min of "
                           "its planned 11.1"), line


def test_a_run_within_its_budget_says_what_it_used(tmp_path, monkeypatch):
    paths = finished_run(tmp_path, {"plan": 0.1, "tune": 10.0, "reference": 1.0, "train": 1.2})
    text = show(tmp_path, paths, 13.0, monkeypatch)
    assert "time:       used 13.0 of 15 min (" in text
    assert "OVER BUDGET" not in text and "TIME CAP" not in text


def test_over_budget_with_no_stage_over_its_plan_blames_the_rest():
    line = summary.time_line(15, {"tune": 600.0, "reference": 60.0, "train": 60.0}, PLAN,
                             15.5 * 60)
    assert line.startswith("OVER BUDGET: used 15.5 of 15 min (+3%): start-ups and the other "
                           "stages took 3.5 min of the planned 1.2")


@pytest.mark.parametrize("stage", ["tune", "reference"])
def test_a_stage_cut_by_its_time_cap_is_said_loudly(tmp_path, monkeypatch, stage):
    paths = finished_run(tmp_path, {"tune": 10.0})
    write_json(paths["tune"] / TIME_CAP_FILE, cap_record("tune", 750, None))
    write_json(paths["reference"] / TIME_CAP_FILE, cap_record("reference", 180, None))
    write_json(paths[stage] / TIME_CAP_FILE, cap_record(stage, 750, "what was cut"))
    text = show(tmp_path, paths, 13.0, monkeypatch)
    (line,) = [line for line in text.splitlines() if "TIME CAP" in line]
    assert line.startswith(f"TIME CAP HIT in {stage}: what was cut; rerun")


def test_the_summary_reads_the_times_the_stages_noted_beside_its_inputs(tmp_path, capsys):
    """The stages note their time beside their --prepared, the summary reads it beside its
    --tune-dir: under the default layout (data/prepared, data/tune) both are data/timings,
    and nothing is read from (or written to) the working directory."""
    data = tmp_path / "data"
    assert timings_dir(data / "prepared") == timings_dir(data / "tune") == data / "timings"
    record_time(timings_dir(data / "prepared"), "tune", time.monotonic() - 600)
    assert json.loads((data / "timings" / "tune.json").read_text())["seconds"] >= 600
    write_json(data / "tune" / "best_params.json",
               {"trial": 3, "study": "s", "value": 0.1, "params": {"lr": 0.01}})
    write_json(tmp_path / "metrics.json",
               {"oof_rmse": 0.1, "oof_rmse_fit_rows": 0.09, "mlp_oof_rmse": 0.11,
                "mlp_oof_rmse_fit_rows": 0.1, "reference": {}, "blend_weights": {"mlp": 1.0},
                "fold_rmse": {"fold_0": 0.1}})
    cfg = config_from_dict(small_params(tmp_path / "raw"))
    text = summary.run(cfg, tmp_path / "metrics.json", data / "tune", tmp_path / "models",
                       tmp_path / "submission.csv", plan_dir=tmp_path / "plan")
    assert "(tune 10.0) of a" in text, text
    capsys.readouterr()
