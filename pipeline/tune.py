"""The Optuna study: search space, seeded sampler, pruner, objective. The only optuna import.

The objective cross-validates the MLP with sampled parameters. All folds train at once, so
the pruner sees, every `eval_every` epochs, the mean validation log-RMSE over the folds
(step = epoch) and can stop a poor trial long before its folds finish.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import optuna

from pipeline.config import Config, PrunerConfig, SearchDimension, to_dict, with_overrides
from pipeline.cv import FoldFeatures, Folds, cross_validate_mlp

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
PARENT_RUN_ATTR = "mlflow_parent_run_id"


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
    """Leave progress reporting to the CLI: Optuna logs only warnings."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_study(storage: str | optuna.storages.BaseStorage | None, name: str, seed: int,
               n_startup_trials: int, pruner: PrunerConfig) -> optuna.Study:
    """Create the study, or load it if the storage already holds one of that name.

    The sampler's seed is offset by the trials the study already holds: a resumed study then
    draws new points (re-seeding with the bare seed would replay the first random trials),
    and the same history still gives the same next trials.
    """
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                load_if_exists=True)
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials),
                                               n_startup_trials=n_startup_trials)
    study.pruner = make_pruner(pruner)
    return study


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
              on_trial: Callable[[TrialRecord], None] | None = None) -> None:
    """Run trials until the study holds `n_trials` finished ones (counting earlier runs)."""
    remaining = n_trials - finished_trials(study)
    if remaining <= 0:
        return
    callbacks = [optuna.study.MaxTrialsCallback(n_trials, states=FINISHED)]
    if on_trial is not None:
        callbacks.append(lambda _study, frozen: on_trial(to_record(frozen)))
    study.optimize(objective, n_trials=remaining, n_jobs=n_jobs, callbacks=callbacks,
                   timeout=None if timeout_minutes is None else timeout_minutes * 60,
                   catch=(FloatingPointError,))


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
    """One row per trial (number, state, value, params) for the stage's trials.csv."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
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
