"""summary: what the last run scored, where its results are and how to open them, and whether
it kept to its budget and plan (a run over budget, or cut by a time cap, is said loudly)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.config import Config
from pipeline.io import read_json
from pipeline.plan import TIME_CAP_FILE
from pipeline.report import reference_key, rounded
from pipeline.runtime import timings_dir
from pipeline.services import masked
from pipeline.tracking_store import resolve_tracking_uri


def run(cfg: Config, metrics_path: Path, tune_dir: Path, train_dir: Path,
        submission: Path, started: float | None = None, plan_dir: Path = Path("data/plan"),
        reference_dir: Path = Path("data/reference")) -> str:
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
    plan_path = Path(plan_dir) / "plan.json"
    plan = read_json(plan_path) if plan_path.exists() else None
    stages = _stage_seconds(timings_dir(Path(tune_dir)), started)
    lines.append(time_line(cfg.base.budget_minutes, stages, plan,
                           None if started is None else (time.time() - started)))
    if plan is not None:
        lines.append(f"device:     {plan['device']}; sizes: batch {plan['batch_size']}, "
                     f"{plan['epochs']} epochs, ~{plan['n_trials']} trials expected, "
                     f"{plan['n_seeds']} seeds for the dearest network (data/plan/plan.json)")
    lines += cap_lines([Path(tune_dir), Path(reference_dir)])
    text = "\n".join(lines)
    print(text, flush=True)
    return text


# a stage's wall time against the plan's share for it; the others share the plan's overhead
PLANNED = {"tune": "study_seconds", "reference": "reference_seconds", "train": "final_seconds"}
OTHERS = "start-ups and the other stages"


def _stage_seconds(timings: Path, started: float | None) -> dict[str, float]:
    """Each stage's last wall time (its note in `timings`); with `started`, only the stages
    that ran since."""
    return {p.stem: json.loads(p.read_text())["seconds"]
            for p in sorted(timings.glob("*.json"))
            if started is None or p.stat().st_mtime >= started}


def time_line(budget_minutes: float, stages: dict[str, float], plan: dict | None,
              used_seconds: float | None) -> str:
    """How much of the budget the run used (the whole run when its wall time is known, else
    the stages' sum); over the budget, loudly, with the stages that overran their plan."""
    parts = ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in sorted(stages.items()))
    used = (used_seconds if used_seconds is not None else sum(stages.values())) / 60
    if used > budget_minutes:
        return (f"OVER BUDGET: used {used:.1f} of {budget_minutes:g} min "
                f"(+{100 * (used / budget_minutes - 1):.0f}%): "
                f"{overran(stages, plan, used * 60)} ({parts})")
    if used_seconds is not None:
        return f"time:       used {used:.1f} of {budget_minutes:g} min ({parts})"
    return (f"time:       the stages that ran last took {used:.1f} min ({parts}) of a "
            f"{budget_minutes:g} min budget")


def overran(stages: dict[str, float], plan: dict | None, used_seconds: float) -> str:
    """Which parts of the run took longer than the plan gave them, worst first."""
    if plan is None:
        return "no plan to compare with (data/plan/plan.json)"
    over = []
    for stage, key in PLANNED.items():
        if stage in stages and stages[stage] > plan[key]:
            over.append((stages[stage] - plan[key], f"{stage} took {stages[stage] / 60:.1f} "
                         f"min of its planned {plan[key] / 60:.1f}"))
    others = used_seconds - sum(stages.get(stage, 0.0) for stage in PLANNED)
    if others > plan["overhead_seconds"]:
        over.append((others - plan["overhead_seconds"],
                     f"{OTHERS} took {others / 60:.1f} min of the planned "
                     f"{plan['overhead_seconds'] / 60:.1f}"))
    if not over:
        return "no part overran its plan by itself"
    return "; ".join(text for _, text in sorted(over, reverse=True))


def cap_lines(directories: list[Path]) -> list[str]:
    """A loud line per stage whose time cap cut it short (its TIME_CAP_FILE)."""
    lines = []
    for directory in directories:
        path = directory / TIME_CAP_FILE
        if path.exists() and (record := read_json(path))["hit"]:
            lines.append(f"TIME CAP HIT in {record['stage']}: {record['cut']}; rerun on a "
                         "quieter machine or with a larger base.budget_minutes for outputs "
                         "that a rerun reproduces")
    return lines
