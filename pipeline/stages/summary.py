"""summary: what the last run scored, and where its results are and how to open them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.config import Config
from pipeline.io import read_json
from pipeline.report import reference_key, rounded
from pipeline.runtime import timings_dir
from pipeline.services import masked
from pipeline.tracking_store import resolve_tracking_uri


def run(cfg: Config, metrics_path: Path, tune_dir: Path, train_dir: Path,
        submission: Path, started: float | None = None, plan_dir: Path = Path("data/plan")) -> str:
    """Print (and return) the summary; `started` (a Unix time) is when the run began."""
    metrics = read_json(metrics_path)
    best = read_json(Path(tune_dir) / "best_params.json")
    uri = resolve_tracking_uri(cfg.tracking.uri)
    lines = [
        "",
        "OOF RMSE (model scale)            all rows  without rows excluded from fitting",
        f"  final model                      {metrics['oof_rmse']:.5f}  "
        f"{metrics['oof_rmse_fit_rows']:.5f}",
        f"  MLP alone                        {metrics['mlp_oof_rmse']:.5f}  "
        f"{metrics['mlp_oof_rmse_fit_rows']:.5f}",
        *(f"  {reference_key(name).replace('_', ' ', 1):32s} "
          f"{s['oof_rmse']:.5f}  {s['oof_rmse_fit_rows']:.5f}"
          for name, s in metrics["reference"].items()),
        "final model = " + " + ".join(f"{w:.3f} x {name}"
                                      for name, w in metrics["blend_weights"].items())
        + " (weights fitted on OOF predictions)",
        "per fold: " + ", ".join(f"{v:.4f}" for v in metrics["fold_rmse"].values()),
        f"best trial: #{best['trial']} of study {best['study']} (CV {best['value']:.5f}) "
        f"with {rounded(best['params'])}",
        f"submission: {submission}",
        f"model:      {Path(train_dir) / 'model.pkl'} (also logged to MLflow)",
        f"MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {masked(uri)}",
    ]
    if cfg.tracking.registered_model:
        lines.append(f"registry:   models:/{cfg.tracking.registered_model}@"
                     f"{cfg.tracking.champion_alias} (the best final model on this target, scale, "
                     "rows and data)")
    lines.append(_time_line(cfg.base.budget_minutes, started, timings_dir(tune_dir)))
    plan_path = Path(plan_dir) / "plan.json"
    if plan_path.exists():
        plan = read_json(plan_path)
        lines.append(f"device:     {plan['measured']['device']}; sizes: batch "
                     f"{plan['batch_size']}, {plan['epochs']} epochs (data/plan/plan.json)")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _time_line(budget_minutes: float, started: float | None, timings: Path) -> str:
    """How much of the budget the run used: the whole run when its start is known, else
    the stages that ran last (their wall time, noted by each in `timings`)."""
    stages = {p.stem: json.loads(p.read_text())["seconds"] for p in timings.glob("*.json")}
    parts = ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in sorted(stages.items()))
    if started is not None:
        used = (time.time() - started) / 60
        return f"time:       used {used:.1f} of {budget_minutes:g} min ({parts})"
    return (f"time:       the stages that ran last took {sum(stages.values()) / 60:.1f} min "
            f"({parts}) of a {budget_minutes:g} min budget")
