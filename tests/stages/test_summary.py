"""The summary stage: its budget line reads the stage times noted beside the directories it
was given, wherever the process runs."""

from __future__ import annotations

import json
import time

from pipeline.config import config_from_dict
from pipeline.io import write_json
from pipeline.runtime import record_time, timings_dir
from pipeline.stages import summary

from ..conftest import small_params


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
