"""tune: run (or resume) the Optuna study until it holds tune.n_trials finished trials, with
any workers sharing it; write best_params.json and trials.csv from the study."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from pipeline import report
from pipeline.config import Config, to_dict
from pipeline.config.fields import AUTO
from pipeline.io import atomic_dir, read_json, write_csv, write_json
from pipeline.plan import PRUNED_WORK, Plan
from pipeline.progress import Progress
from pipeline.runtime import record_time, set_threads
from pipeline.services import masked
from pipeline.tracking import Tracker
from pipeline.tune.session import open_tuning
from pipeline.tune.study import run_study
from pipeline.tune.trials import (
    TrialRecord,
    best_trial,
    finished_trials,
    full_trial_seconds,
    param_importances,
    trials_table,
)

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, plan_dir: Path, out_dir: Path,
        storage_dir: Path) -> dict:
    """Write `out_dir`: best_params.json (the best trial's params and model, the full trials'
    wall time) and trials.csv."""
    started = time.monotonic()
    set_threads(None, cfg.base.threads, cfg.tune.n_jobs)
    plan = Plan.from_dict(read_json(Path(plan_dir) / "plan.json"))
    seconds = plan.study_deadline_seconds(cfg)
    deadline = None if seconds is None else started + seconds
    cfg = plan.apply(cfg)
    n_trials = None if cfg.tune.n_trials == AUTO else cfg.tune.n_trials
    progress = Progress(n_trials or plan.expected_trials, "study", "trials")

    def on_record(record: TrialRecord, best: float) -> None:
        notes = {"best": round(best, 5) if best == best else "-"}
        if deadline is not None:
            notes["time left"] = f"{max(deadline - time.monotonic(), 0) / 60:.1f} min"
        progress.update(1, **notes)

    t = open_tuning(cfg, prepared_dir, storage_dir, deadline=deadline, on_record=on_record)
    study, name = t.study, t.name
    log.info("study %s in %s: %d trials already finished; running %s", name,
             masked(t.storage), finished_trials(study),
             f"until it holds {n_trials}" if n_trials else
             f"for {seconds / 60:.1f} min (the study's share of the budget)")
    status = "FAILED"
    try:
        run_study(study, t.objective, n_trials, deadline, cfg.tune.n_jobs, t.on_trial,
                  wait_for_others=True, trial_estimate=plan.trial_seconds * PRUNED_WORK)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        progress.close()
        summary = {"finished_trials": finished_trials(study)}
        best_params = {}
        try:
            best = best_trial(study)
            summary["best_cv_rmse"] = best.value
            best_params = best.params
        except RuntimeError:
            pass
        t.tracker.end_study_run(t.parent_run, summary, best_params, status)

    best = best_trial(study)
    result = {"study": name, "storage": masked(t.storage), "trial": best.number,
              "value": best.value, "fold_scores": best.fold_scores, "params": best.params,
              "model": to_dict(cfg.model.replace(best.params, "model."))}
    trials = pd.DataFrame(trials_table(study))
    importances, why_not = param_importances(study, cfg.base.seed)
    if why_not:
        log.info("no parameter importances plot: %s", why_not)
    with atomic_dir(out_dir) as tmp:
        write_csv(tmp / "trials.csv", trials)
        write_json(tmp / "best_params.json", result)
        _log_study(t.tracker, t.parent_run, trials, importances, tmp / "trials.csv")
    record_time("tune", started, trials=finished_trials(study),
                full_trial_seconds=full_trial_seconds(study))
    return result


def _log_study(tracker: Tracker, run_id: str, trials: pd.DataFrame,
               importances: dict[str, float], trials_path: Path) -> None:
    """The optimisation history, the importances when there are some, and the trials table."""
    figs = report.study_figures(trials, importances)
    try:
        tracker.log_figures(run_id, figs)
    finally:
        report.close(figs)
    tracker.log_metrics(run_id, {f"importance_{k}": v for k, v in importances.items()})
    tracker.log_artifacts(run_id, [trials_path])
