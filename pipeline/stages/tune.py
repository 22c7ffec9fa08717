"""tune: run (or resume) the Optuna study until it holds tune.n_trials finished trials, with
any workers sharing it; write best_params.json and trials.csv from the study."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline import report
from pipeline.config import Config, to_dict
from pipeline.io import atomic_dir, write_csv, write_json
from pipeline.runtime import set_threads
from pipeline.services import masked
from pipeline.tracking import Tracker
from pipeline.tune.session import open_tuning
from pipeline.tune.study import run_study
from pipeline.tune.trials import best_trial, finished_trials, param_importances, trials_table

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, out_dir: Path, storage_dir: Path) -> dict:
    """Write `out_dir`: best_params.json (the best trial's params and model) and trials.csv."""
    set_threads(None, cfg.base.threads, cfg.tune.n_jobs)
    t = open_tuning(cfg, prepared_dir, storage_dir)
    study, name = t.study, t.name
    log.info("study %s in %s: %d of %d trials already finished", name, masked(t.storage),
             finished_trials(study), cfg.tune.n_trials)
    status = "FAILED"
    try:
        run_study(study, t.objective, cfg.tune.n_trials, cfg.tune.timeout_minutes,
                  cfg.tune.n_jobs, t.on_trial, wait_for_others=True)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
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
