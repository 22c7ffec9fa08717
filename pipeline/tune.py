"""The Optuna study: search space, seeded sampler, pruner, objective. The only optuna import.

The objective cross-validates the MLP with sampled parameters. All folds train at once, so
the pruner sees, every `eval_every` epochs, the mean validation log-RMSE over the folds
(step = epoch) and can stop a poor trial long before its folds finish.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy.exc

from pipeline.config import (
    Config,
    PrunerConfig,
    SearchDimension,
    TuneConfig,
    to_dict,
    with_overrides,
)
from pipeline.cv import FoldFeatures, Folds, cross_validate_mlp
from pipeline.io import ServiceError, safe_url

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
RUNNING = optuna.trial.TrialState.RUNNING
PARENT_RUN_ATTR = "mlflow_parent_run_id"
CONNECT_TIMEOUT_SECONDS = 10  # a storage server that does not answer fails the stage, no hang
MAX_FAILURES_IN_A_ROW = 5


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial as plain data, for tracking and reports."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    value: float | None
    params: dict
    fold_scores: list[float]
    checkpoints: dict[int, float]  # epoch -> mean validation RMSE over the folds
    started: datetime | None
    finished: datetime | None


def study_name(cfg: Config, data_fingerprint: str) -> str:
    """Name the study after everything that makes its trials comparable.

    Changing the search space, features, folds, fixed model params, seed or data starts a new
    study in the same storage; changing only n_trials or timeout continues the old one.
    """
    identity = {
        "search_space": to_dict(cfg.tune.search_space),
        "objective_rows": cfg.tune.objective_rows,
        "pruner": to_dict(cfg.tune.pruner),
        "model": to_dict(cfg.model),
        "features": to_dict(cfg.features),
        "cv": to_dict(cfg.cv),
        "seed": cfg.base.seed,
        "log_target": cfg.data.log_target,
        "data": data_fingerprint,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"{cfg.tune.study_name}-{digest}"


def quiet_optuna() -> None:
    """Leave progress reporting to the CLI: Optuna logs only warnings, and heartbeats, stale
    trial retries and the constant liar (experimental for years, relied on here) stay quiet."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for handler in logging.getLogger("optuna").handlers:  # Ctrl-C gets one line, from the CLI
        handler.addFilter(_not_an_interrupt)


def _not_an_interrupt(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def worker_id() -> str:
    """Who ran a trial: host and process id, recorded on every trial."""
    return f"{socket.gethostname()}:{os.getpid()}"


def make_storage(url: str, cfg: TuneConfig) -> optuna.storages.BaseStorage:
    """The study storage behind a URL, with heartbeats and stale-trial retries where possible.

    Database URLs (sqlite:///, postgresql+psycopg://, mysql+pymysql://) give Optuna's RDB
    storage: a trial whose process stops beating for `grace_period` seconds is marked FAIL
    and queued again (RetryHeartbeatStaleTrialCallback). `journal:PATH` gives the journal
    file storage (several processes on one machine, no heartbeat). A server that cannot be
    reached fails within CONNECT_TIMEOUT_SECONDS with ServiceError.
    """
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:").removeprefix("//"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs: dict = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    heartbeat = {}
    if cfg.heartbeat_interval is not None:
        heartbeat = {
            "heartbeat_interval": cfg.heartbeat_interval,
            "grace_period": cfg.grace_period or 2 * cfg.heartbeat_interval,
            "heartbeat_stale_trial_callback":
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=cfg.max_retries),
        }
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise ServiceError(f"cannot reach the Optuna storage {safe_url(url)}: {reason} "
                               "(set by tune.storage in params.yaml or OPTUNA_STORAGE)") from exc
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 4:  # several workers creating the tables at once: one wins, retry
                raise
            time.sleep(0.2 * (attempt + 1))
        except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
            raise ServiceError(f"not a storage URL Optuna can use: {safe_url(url)} ({exc}); "
                               "e.g. postgresql+psycopg://user:password@host:5432/db or "
                               "sqlite:///path/optuna.db or journal:path/journal.log") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def open_study(storage: str | optuna.storages.BaseStorage | None, name: str, seed: int,
               n_startup_trials: int, pruner: PrunerConfig, *,
               worker: str | None = None) -> optuna.Study:
    """Create the study, or load it if the storage already holds one of that name.

    The sampler's seed is offset by the trials the study already holds: a resumed study then
    draws new points (re-seeding with the bare seed would replay the first random trials),
    and the same history still gives the same next trials. A `worker` (one of several
    processes sharing the study) also offsets it by its id, so workers started together do
    not draw the same points, and its sampler lies about trials still running elsewhere
    (constant liar) so it does not propose their points again. Several workers make the
    sequence of trials depend on timing: a distributed study is not reproducible.
    """
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                load_if_exists=True)
    offset = len(study.trials)
    if worker is not None:
        offset += int(hashlib.sha256(worker.encode()).hexdigest()[:6], 16)
    study.sampler = optuna.samplers.TPESampler(seed=seed + offset,
                                               n_startup_trials=n_startup_trials,
                                               constant_liar=worker is not None)
    study.pruner = make_pruner(pruner)
    return study


def claim_once(storage: str | optuna.storages.BaseStorage, key: str) -> bool:
    """True for exactly one caller per storage and key, whatever the number of workers.

    Creating a study of a given name is atomic in every Optuna storage (a unique name in the
    database, one appender of the journal), so it serves as the election among workers.
    """
    try:
        optuna.create_study(storage=storage, study_name=key)
    except optuna.exceptions.DuplicatedStudyError:
        return False
    return True


def release_claim(storage: str | optuna.storages.BaseStorage, key: str) -> None:
    """Remove a claim once what it guarded is recorded, so it does not linger as a study."""
    try:
        optuna.delete_study(study_name=key, storage=storage)
    except KeyError:  # already gone
        pass


def make_pruner(cfg: PrunerConfig) -> optuna.pruners.BasePruner:
    if cfg.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.n_startup_trials,
                                           n_warmup_steps=cfg.n_warmup_steps)
    if cfg.kind == "percentile":
        return optuna.pruners.PercentilePruner(cfg.percentile,
                                               n_startup_trials=cfg.n_startup_trials,
                                               n_warmup_steps=cfg.n_warmup_steps)
    if cfg.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, cfg.n_warmup_steps))
    return optuna.pruners.NopPruner()


def suggest(trial: optuna.Trial, space: dict[str, SearchDimension]) -> dict:
    """Sample one value per tuned parameter."""
    params = {}
    for name, dim in space.items():
        if dim.choices is not None:
            params[name] = trial.suggest_categorical(name, list(dim.choices))
        elif dim.integer:
            params[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        else:
            params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return params


def make_objective(features: FoldFeatures, y: np.ndarray, folds: Folds,
                   cfg: Config) -> Callable[[optuna.Trial], float]:
    """The objective: OOF RMSE of the MLP with the trial's params, pruned at checkpoints."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, cfg.tune.search_space)
        model_cfg = with_overrides(cfg.model, params)

        def on_checkpoint(epoch: int, val_rmse: np.ndarray) -> None:
            mean = float(np.mean(val_rmse))
            if not math.isfinite(mean):
                raise optuna.TrialPruned(f"validation loss is {mean} at epoch {epoch}")
            trial.report(mean, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        result = cross_validate_mlp(features, y, folds, model_cfg, cfg.base.seed,
                                    on_checkpoint=on_checkpoint)
        trial.set_user_attr("fold_scores", result.fold_scores)
        trial.set_user_attr("score_all_rows", result.score)
        trial.set_user_attr("score_fit_rows", result.score_fit_rows)
        return result.score if cfg.tune.objective_rows == "all" else result.score_fit_rows

    return objective


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_study(study: optuna.Study, objective: Callable[[optuna.Trial], float], n_trials: int,
              timeout_minutes: float | None, n_jobs: int,
              on_trial: Callable[[TrialRecord], None] | None = None, *,
              wait_for_others: bool = False, max_trials: int | None = None,
              poll_seconds: float = 2.0) -> list[TrialRecord]:
    """Run trials until the study holds `n_trials` finished ones (counting earlier runs and
    other workers); return the trials this process ran.

    Trials running in other processes count as under way, so a worker starts one only while
    the study still needs it (workers started at the same moment may add one or two more).
    With `wait_for_others` (the tune stage), it then waits for those trials to finish or,
    when their worker died, to go stale and be retried here. `max_trials` bounds the trials
    this process runs. Heartbeats are needed to tell a running trial from a dead one: without
    them, trials left RUNNING are ignored.
    """
    deadline = None if timeout_minutes is None else time.monotonic() + timeout_minutes * 60
    heartbeat = heartbeat_enabled(study)
    ran: list[TrialRecord] = []
    me = worker_id()

    def tagged(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", me)
        return objective(trial)

    def record(_study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        ran.append(to_record(frozen))
        if on_trial is not None:
            on_trial(ran[-1])

    failures_in_row = 0
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        if max_trials is not None and len(ran) >= max_trials:
            break
        if heartbeat:
            optuna.storages.fail_stale_trials(study)  # a killed worker's trial: FAIL, retried
        trials = study.get_trials(deepcopy=False)
        missing = n_trials - sum(t.state in FINISHED for t in trials)
        if missing <= 0:
            break
        running = sum(t.state == RUNNING for t in trials) if heartbeat else 0
        startable = missing - running
        if startable <= 0:
            if not wait_for_others:
                break
            time.sleep(poll_seconds)
            continue
        batch = min(n_jobs, startable)
        if max_trials is not None:
            batch = min(batch, max_trials - len(ran))
        before = len(ran)
        study.optimize(tagged, n_trials=batch, n_jobs=batch, callbacks=[record],
                       timeout=left, catch=(FloatingPointError,))
        new = ran[before:]
        failures_in_row = failures_in_row + len(new) if new and all(
            r.state == "FAIL" for r in new) else 0
        if failures_in_row >= MAX_FAILURES_IN_A_ROW:
            raise RuntimeError(f"{failures_in_row} trials in a row failed in study "
                               f"{study.study_name!r}; see the log above for the errors")
    return ran


def heartbeat_enabled(study: optuna.Study) -> bool:
    """Whether the study's storage records heartbeats (RDB storages with an interval set)."""
    interval = getattr(study._storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """How many trials the study holds in each state (COMPLETE, PRUNED, FAIL, RUNNING...)."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def to_record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        value=trial.value,
        params=dict(trial.params),
        fold_scores=list(trial.user_attrs.get("fold_scores", [])),
        checkpoints=dict(trial.intermediate_values),
        started=trial.datetime_start,
        finished=trial.datetime_complete,
    )


def best_trial(study: optuna.Study) -> TrialRecord:
    """The best complete trial; raise if the study has none."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"study {study.study_name!r} has no complete trial")
    return to_record(study.best_trial)


def trials_table(study: optuna.Study) -> list[dict]:
    """One row per trial (number, state, value, params, the trial it retries, if any)
    for the stage's trials.csv."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "retry_of": t.system_attrs.get("failed_trial"),
                     **{f"param_{k}": v for k, v in sorted(t.params.items())}})
    return rows


def get_study_attr(study: optuna.Study, key: str) -> str | None:
    return study.user_attrs.get(key)


def set_study_attr(study: optuna.Study, key: str, value: str) -> None:
    study.set_user_attr(key, value)


def param_importances(study: optuna.Study, seed: int) -> tuple[dict[str, float], str | None]:
    """fANOVA importances of the parameters that varied over the complete trials, or an empty
    dict and the reason there are none (too few trials, nothing varied): Optuna would
    otherwise answer with equal shares that mean nothing."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"{len(complete)} complete trial(s); importances need at least 2"
    if len({t.value for t in complete}) < 2:
        return {}, "every complete trial has the same objective value"
    names = sorted({name for t in complete for name in t.params})
    varied = [n for n in names if len({repr(t.params.get(n)) for t in complete}) > 1]
    if not varied:
        return {}, "no parameter varied over the complete trials"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                              params=varied)
    except (ValueError, RuntimeError) as exc:  # e.g. a search space that changed mid-study
        return {}, f"Optuna could not compute them: {exc}"
    return {name: float(value) for name, value in importances.items()}, None
