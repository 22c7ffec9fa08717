"""tune: run (or resume) the Optuna study until it holds tune.n_trials finished trials or, with
auto, until its trials' cost by the plan's timings fills the study's share; with any workers
sharing it; write best_params.json and
trials.csv from the study. The clock only matters if the study's time cap is hit."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import optuna
import pandas as pd

from pipeline import report
from pipeline.config import Config, to_dict
from pipeline.config.fields import AUTO
from pipeline.io import atomic_dir, write_csv, write_json
from pipeline.plan import TIME_CAP_FILE, cap_record, read_plan
from pipeline.progress import Progress
from pipeline.runtime import record_time, set_threads, timings_dir
from pipeline.services import masked
from pipeline.tracking import HEADLINE_METRIC, Tracker, rows_scored
from pipeline.tune.session import open_tuning
from pipeline.tune.study import Spend, run_study
from pipeline.tune.trials import (
    COMPLETE,
    FINISHED,
    MIN_TRIALS_FOR_IMPORTANCES,
    TrialRecord,
    best_trial,
    finished_trials,
    full_trial_seconds,
    importance_caution,
    param_importances,
    trial_counts,
    trials_table,
)

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, plan_dir: Path, out_dir: Path,
        storage_dir: Path) -> dict:
    """Write `out_dir`: best_params.json (the best trial's params and model), trials.csv and
    time_cap.json (whether the study's time cap cut it short)."""
    started = time.monotonic()
    set_threads(None, cfg.base.threads, cfg.tune.n_jobs)
    plan = read_plan(plan_dir)
    cap = plan.study_cap_seconds(cfg)
    n_trials = plan.trials(cfg)
    by_plan = cfg.tune.n_trials == AUTO  # until the trials' planned cost fills the share
    cfg = plan.apply(cfg)
    spend = Spend.planned(plan, cfg.model) if by_plan else None
    # by the plan: progress in the share's planned minutes (the trials' count is not known)
    progress = (Progress(round(plan.study_seconds / 60, 1), "study", "planned min")
                if by_plan else Progress(n_trials, "study", "trials"))

    def on_record(record: TrialRecord, best: float) -> None:
        notes = {"best": f"{best:.5f}" if best == best else "-"}  # as the trial lines say it
        if spend is not None:
            notes["trials"] = finished_trials(t.study)
        if t.deadline is not None:
            notes["cap in"] = f"{max(t.deadline - time.monotonic(), 0) / 60:.1f} min"
        step = 1.0 if spend is None else spend.cost(record.params, record.checkpoints) / 60
        progress.update(step, **notes)

    t = open_tuning(cfg, prepared_dir, storage_dir, cap_seconds=cap, on_record=on_record,
                    too_dear=plan.too_dear)
    study, name = t.study, t.name
    until = (f"its trials' planned cost fills the study's {plan.study_seconds / 60:.1f} min "
             f"(~{n_trials} trials)" if by_plan else f"it holds {n_trials}")
    log.info("study %s in %s: %d trials already finished; running until %s%s", name,
             masked(t.storage), finished_trials(study), until,
             "" if cap is None else f" (time cap {cap / 60:.1f} min)")
    status = "FAILED"
    try:
        run_study(study, t.objective, None if by_plan else n_trials, t.deadline,
                  cfg.tune.n_jobs, t.on_trial, wait_for_others=True, spend=spend)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        progress.close()
        counts = trial_counts(study)
        summary = {"finished_trials": finished_trials(study),
                   **{f"{label}_trials": counts.get(state, 0)
                      for state, label in (("COMPLETE", "complete"), ("PRUNED", "pruned"),
                                           ("FAIL", "failed"))}}
        best_params, best = {}, None
        try:
            best = best_trial(study)
            summary[HEADLINE_METRIC] = best.value
            best_params = best.params
        except RuntimeError:
            pass
        t.tracker.end_study_run(t.parent_run, summary, best_params, status,
                                study_description(name, counts, best, None,
                                                  cfg.tune.objective_rows))

    best = best_trial(study)
    t.tracker.mark_best_trial(name, best.number)
    importances, why_not = param_importances(study, cfg.base.seed)
    caution = importance_caution(study) if importances else None
    if why_not or caution:
        t.tracker.set_description(t.parent_run,
                                  study_description(name, counts, best, why_not or caution,
                                                    cfg.tune.objective_rows))
    log.info("best trial: #%d, %s %.5f, with %s", best.number, HEADLINE_METRIC, best.value,
             report.rounded(best.params))
    result = {"study": name, "storage": masked(t.storage), "trial": best.number,
              "value": best.value, "fold_scores": best.fold_scores, "params": best.params,
              "model": to_dict(cfg.model.replace(best.params, "model."))}
    trials = pd.DataFrame(trials_table(study))
    cut = study_cut(study, n_trials, cap, spend)
    if cut:
        log.warning("TIME CAP: %s", cut)
    if why_not:
        log.info("no parameter importances plot: %s", why_not)
    elif caution:
        log.warning("%s", caution)
    with atomic_dir(out_dir) as tmp:
        write_csv(tmp / "trials.csv", trials)
        write_json(tmp / "best_params.json", result)
        write_json(tmp / TIME_CAP_FILE, cap_record("tune", cap, cut))
        _log_study(t.tracker, t.parent_run, trials, importances, tmp / "trials.csv",
                   len(study.get_trials(deepcopy=False, states=COMPLETE)))
    record_time(timings_dir(prepared_dir), "tune", started, trials=finished_trials(study),
                full_trial_seconds=full_trial_seconds(study))
    return result


def study_cut(study: optuna.Study, n_trials: int, cap: float | None,
              spend: Spend | None = None) -> str | None:
    """What the study's time cap cut, in a sentence, or None: planned trials (or planned
    seconds, with `spend`) that did not run, trials it pruned (earlier runs' too: the study
    holds them)."""
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    by_time = sum(t.user_attrs.get("pruned_by") == "time" for t in finished)
    if spend is None:
        short = n_trials - len(finished) > 0
        done = f"{len(finished)} of the {n_trials} planned trials finished"
    else:
        spent = spend.spent(finished)
        short = spent < spend.share
        done = (f"{len(finished)} trials finished, {spent / 60:.1f} of the study's "
                f"{spend.share / 60:.1f} planned min")
    if by_time == 0 and not short:
        return None
    parts = [done]
    if by_time:
        parts.append(f"{by_time} pruned when the time ran out")
    limit = "" if cap is None else f" ({cap / 60:.1f} min)"
    return (f"the study's time cap{limit} cut it short: {', '.join(parts)}; its best trial, "
            "and every output after it, depend on this machine's speed")


def study_description(name: str, counts: dict[str, int], best: TrialRecord | None,
                      note: str | None, rows: str = "all") -> str:
    """The study run's description: what it holds, which rows its score is on (`rows`,
    tune.objective_rows), its best trial, how far to trust it."""
    states = ", ".join(f"{counts.get(s, 0)} {s.lower().replace('fail', 'failed')}"
                       for s in ("COMPLETE", "PRUNED", "FAIL"))
    text = (f"Optuna study {name}: {states} trials, each a child run (expand this row; sort "
            f"by `{HEADLINE_METRIC}`, the out-of-fold RMSE on {rows_scored(rows)}; "
            f"`val_rmse` per epoch is on the same rows). Pruned trials end FINISHED, tagged "
            f"`state=pruned`, without `{HEADLINE_METRIC}`; their `val_rmse` curve shows where "
            "they stopped.")
    if best is not None:
        text += (f" Best: trial {best.number} (`{HEADLINE_METRIC}` {best.value:.5f}, tagged "
                 f"`best_trial=true`) with {report.rounded(best.params)}.")
    if note:
        text += f" Note: {note}."
    return text


def _log_study(tracker: Tracker, run_id: str, trials: pd.DataFrame,
               importances: dict[str, float], trials_path: Path, n_complete: int) -> None:
    """The optimisation history, the importances (plot and table) when there are some, and
    the trials table."""
    figs = report.study_figures(trials, importances, n_complete, MIN_TRIALS_FOR_IMPORTANCES)
    try:
        tracker.log_figures(run_id, figs)
    finally:
        report.close(figs)
    if importances:
        tracker.log_tables(run_id, {"param_importances": report.importance_table(importances)})
    tracker.log_artifacts(run_id, [trials_path])
