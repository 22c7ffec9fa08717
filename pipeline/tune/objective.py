"""The tuning objective: the search space, the pruner, and the study's identity.

The objective cross-validates the MLP with sampled parameters and returns its OOF RMSE on
the rows `tune.objective_rows` names (every row, or those not excluded from fitting). All
folds train at once, so the pruner sees, every `eval_every` epochs, the mean validation RMSE
over the folds on those same rows (step = epoch) and can stop a poor trial long before its
folds finish.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Collection

import numpy as np
import optuna

from pipeline.config import Config, ModelConfig, PrunerConfig, SearchDimension, to_dict
from pipeline.cv import FoldFeatures, Folds, cross_validate_mlp
from pipeline.plan import network_key
from pipeline.progress import steps
from pipeline.runtime import resolve_device
from pipeline.tune.trials import ATTR_DECIMALS, fold_attrs

# data: keys naming where the files are: the files' bytes (the data fingerprint) count instead
DATA_PATHS = ("train", "test", "sample_submission")


def study_name(cfg: Config, data_fingerprint: str) -> str:
    """Name the study after everything that makes its trials comparable.

    Changing the data (the files' bytes, or any `data:` key but the files' paths: columns
    dropped, kinds, levels, missing-value strings, id, target and its scale), the features,
    the folds, the seed, the model's fixed params or planned sizes, the search space or the
    pruner starts a new study in the same storage; changing only n_trials or timeout (or
    moving the same files) continues the old one. `cfg` has its sizes resolved by the plan.
    """
    data = {k: v for k, v in to_dict(cfg.data).items() if k not in DATA_PATHS}
    identity = {
        "search_space": {k: to_dict(v) for k, v in cfg.tune.search_space.items()},
        "objective_rows": cfg.tune.objective_rows,
        "trial_folds": cfg.tune.trial_folds,
        "pruner": to_dict(cfg.tune.pruner),
        "model": to_dict(cfg.model),
        "features": to_dict(cfg.features),
        "cv": to_dict(cfg.cv),
        "seed": cfg.base.seed,
        "data": data_fingerprint,
        "data_keys": data,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"{cfg.tune.study_name}-{digest}"


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


def default_params(model: ModelConfig, space: dict[str, SearchDimension]) -> dict | None:
    """The model section's own values of the tuned parameters, the study's first trial (so
    it can only improve on them); None when one of them lies outside its dimension."""
    params = {name: getattr(model, name) for name in space}
    for name, dim in space.items():
        value = params[name]
        inside = (value in dim.choices if dim.choices is not None
                  else dim.low <= value <= dim.high)
        if not inside:
            return None
    return params


def _has_complete(trial: optuna.Trial) -> bool:
    """Whether the study holds a complete trial: until it does, time never prunes one."""
    return bool(trial.study.get_trials(deepcopy=False,
                                       states=(optuna.trial.TrialState.COMPLETE,)))


def make_objective(features: FoldFeatures, y: np.ndarray, folds: Folds, cfg: Config,
                   deadline: float | None = None, show_epochs: bool = False,
                   too_dear: Collection[str] = ()) -> Callable[[optuna.Trial], float]:
    """The objective: OOF RMSE of the MLP with the trial's params on the rows
    `tune.objective_rows` names, pruned at checkpoints (scored on the same rows), and
    at the first checkpoint past `deadline` (time.monotonic()): the study's time is up (once
    the study holds a complete trial: a study always ends with a best trial).
    `show_epochs`: each trial shows its epochs' progress. A trial of a network in `too_dear`
    (`network_key`s: the plan's, whose final fit the budget cannot hold) is pruned before it
    trains."""

    device = resolve_device(cfg.base.device)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, cfg.tune.search_space)
        model_cfg = cfg.model.replace(params, "model.")
        if network_key(model_cfg) in too_dear:
            trial.set_user_attr("pruned_by", "budget")
            raise optuna.TrialPruned("the budget's final share cannot hold this network's "
                                     "final fit (the plan's too_dear)")

        def on_checkpoint(epoch: int, val_rmse: np.ndarray) -> None:
            mean = float(np.mean(val_rmse))
            if not math.isfinite(mean):
                raise optuna.TrialPruned(f"validation loss is {mean} at epoch {epoch}")
            trial.report(mean, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
            if deadline is not None and time.monotonic() > deadline and _has_complete(trial):
                trial.set_user_attr("pruned_by", "time")
                raise optuna.TrialPruned(f"the study's time ran out at epoch {epoch}")

        with steps(model_cfg.epochs if show_epochs else None, f"trial {trial.number}",
                   "epochs") as progress:
            result = cross_validate_mlp(
                features, y, folds, model_cfg, cfg.base.seed, on_checkpoint=on_checkpoint,
                on_epoch=(lambda _: progress.update()) if show_epochs else None,
                device=device, scored=cfg.tune.objective_rows)
        for name, value in fold_attrs(result.fold_scores).items():
            trial.set_user_attr(name, value)
        trial.set_user_attr("score_all_rows", round(result.score, ATTR_DECIMALS))
        trial.set_user_attr("score_fit_rows", round(result.score_fit_rows, ATTR_DECIMALS))
        return result.score_on(cfg.tune.objective_rows)

    return objective
