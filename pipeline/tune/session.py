"""A study opened for work: its storage, its MLflow parent run, the objective on the prepared
data, and what is logged per trial. The tune stage and every tune worker open one."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import optuna

from pipeline.config import Config
from pipeline.cv import setup_folds, trial_folds
from pipeline.data.prepared import load_prepared
from pipeline.progress import steps
from pipeline.services import from_params
from pipeline.tracking import Tracker
from pipeline.tracking_store import resolve_tracking_uri
from pipeline.tune.objective import default_params, make_objective, make_pruner, study_name
from pipeline.tune.study import (
    PARENT_RUN_ATTR,
    claim_once,
    get_study_attr,
    make_storage,
    open_study,
    quiet_optuna,
    release_claim,
    set_study_attr,
)
from pipeline.tune.trials import METRIC_NAME, TrialRecord, finished_trials, trial_counts

log = logging.getLogger("pipeline")


@dataclass
class Tuning:
    """An open study with its MLflow parent run: what the tune stage and its workers share."""

    study: optuna.Study
    storage: str
    name: str
    tracker: Tracker
    parent_run: str
    objective: Callable[[optuna.Trial], float]
    on_trial: Callable[[TrialRecord], None]
    deadline: float | None  # time.monotonic() when the study's time cap runs out


def resolve_storage(cfg: Config, storage_dir: Path) -> str:
    """OPTUNA_STORAGE if set, else params' tune.storage, else SQLite under storage_dir."""
    if os.environ.get("OPTUNA_STORAGE"):
        return os.environ["OPTUNA_STORAGE"]
    if cfg.tune.storage:
        return from_params(cfg.tune.storage, "tune.storage", "OPTUNA_STORAGE")
    Path(storage_dir).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(storage_dir) / 'optuna.db'}"


def open_tuning(cfg: Config, prepared_dir: Path, storage_dir: Path,
                worker: str | None = None, cap_seconds: float | None = None,
                on_record: Callable[[TrialRecord, float], None] | None = None,
                too_dear: Collection[str] = ()) -> Tuning:
    """Open (or create) the study and its MLflow parent run; build the objective (pruning
    any trial still running once `cap_seconds` have passed from the end of this set-up).
    `cfg` has its sizes resolved by the plan; `on_record(record, best)` follows each logged
    trial (progress); trials of the networks in `too_dear` (the plan's) are pruned unrun."""
    quiet_optuna()
    prepared = load_prepared(prepared_dir)
    folds = trial_folds(cfg)  # a trial's folds: only theirs are fitted
    with steps(folds, "fold preprocessing", "folds") as progress:
        setup = setup_folds(prepared.train, prepared.schema, cfg,
                            on_fold=lambda _: progress.update(), first=folds)
    url = resolve_storage(cfg, storage_dir)
    storage = make_storage(url, cfg.tune)
    name = study_name(cfg, prepared.data_hash)
    study = open_study(storage, name, cfg.base.seed, cfg.tune.n_startup_trials,
                       make_pruner(cfg.tune.pruner), worker=worker)
    first = default_params(cfg.model, cfg.tune.search_space)
    if first is None:
        log.info("the model section's values lie outside tune.search_space: the study starts "
                 "from the sampler's draws, not from them")
    else:  # the study's first trial: the defaults (once: a resumed study has it already)
        study.enqueue_trial(first, skip_if_exists=True)
    tracker = Tracker(resolve_tracking_uri(cfg.tracking.uri), cfg.tracking.experiment,
                      "tune" if worker is None else "tune-worker", cfg.base.seed,
                      prepared.data_hash, cfg.tune.objective_rows)
    if worker is None:  # the stage: its own runs a killed stage left RUNNING
        for line in tracker.fail_abandoned_runs():
            log.info("%s", line)
    tracker.use_training_data(prepared.train, cfg.data.train, prepared.schema.target)
    parent = study_parent_run(study, storage, tracker, name)

    def on_trial(record: TrialRecord) -> None:
        tracker.log_trial(parent, name, record.number, record.state, record.value,
                          record.params, record.fold_scores, record.checkpoints,
                          record.started, record.finished, record.scores)
        complete = trial_counts(study).get("COMPLETE", 0)
        best_value = study.best_value if complete else float("nan")
        best = f" (best {best_value:.5f})" if complete else ""
        log.info("trial %d %s%s [%d finished]", record.number, describe_outcome(record), best,
                 finished_trials(study))
        if on_record is not None:
            on_record(record, best_value)

    # the set-up is part of the run's overhead, not of the study's share
    deadline = None if cap_seconds is None else time.monotonic() + cap_seconds
    objective = make_objective(setup.features, setup.y, setup.folds, cfg, deadline,
                               show_epochs=True, too_dear=too_dear)
    return Tuning(study, url, name, tracker, parent, objective, on_trial, deadline)


def study_parent_run(study: optuna.Study, storage: optuna.storages.BaseStorage,
                     tracker: Tracker, name: str, wait_seconds: float = 60.0) -> str:
    """The study's one MLflow parent run, however many workers open the study at once.

    Its id is a study attribute per tracking store. When it is missing, one worker wins the
    right to create it (an atomic claim in the study storage: a study named after it, deleted
    once the id is recorded) and the others wait for it.
    """
    attr = f"{PARENT_RUN_ATTR}:{tracker.key}"
    run_id = get_study_attr(study, attr)
    if run_id and tracker.run_exists(run_id):
        return tracker.start_study_run(name, run_id)
    claim = f"{name}:{attr}"
    if claim_once(storage, claim):
        # the claim is released once the id is recorded, so winning it may also mean that
        # the previous holder has just finished: look again before creating a run
        run_id = get_study_attr(study, attr)
        if not (run_id and tracker.run_exists(run_id)):
            run_id = tracker.start_study_run(name, None)
            set_study_attr(study, attr, run_id)
        release_claim(storage, claim)
        return run_id
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        run_id = get_study_attr(study, attr)
        if run_id and tracker.run_exists(run_id):
            return run_id
        time.sleep(0.5)
    # the claimant died before recording its run, or the run was deleted since
    run_id = tracker.find_study_run(name) or tracker.start_study_run(name, None)
    set_study_attr(study, attr, run_id)
    return run_id


def describe_outcome(record: TrialRecord) -> str:
    """How a trial ended, for the log: its score, where it was pruned, or that it failed."""
    if record.state == "COMPLETE" and record.value is not None:
        return f"complete: {METRIC_NAME} {record.value:.5f}"
    if record.state == "PRUNED" and record.checkpoints:
        return f"pruned at epoch {max(record.checkpoints)}"
    return record.state.lower()
