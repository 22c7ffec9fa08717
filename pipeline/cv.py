"""K-fold cross-validation: fold splits, per-fold preprocessing, out-of-fold predictions.

Every fold fits its own preprocessing on its own training rows, so no statistic of a
validation row leaks into the model that predicts it. Scores are RMSEs of the out-of-fold
predictions on the model scale (log-RMSE for prices), over every training row and over the
rows not excluded from fitting; `tune.objective_rows` ("all" or "fit") names the one that
is the headline (`cv_rmse`) and that the MLP's checkpoints score. Pure: returns results,
never logs or writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.base import RegressorMixin, clone
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from pipeline.config import Config, ConfigError, FeaturesConfig, ModelConfig
from pipeline.config.fields import AUTO
from pipeline.data.schema import Schema
from pipeline.features import (
    build_preprocessor,
    build_tree_preprocessor,
    code_levels,
    excluded_from_fit,
    n_categorical,
    stack_transforms,
    wide_columns,
)
from pipeline.metrics import TargetScale, rmse
from pipeline.nn.train import CheckpointCallback, EpochCallback, TrainedMLPs, fit_mlps

# A fold's fitting rows must show each column's spread: one row has none, so its columns
# are scaled by 1 and the model meets raw units, far beyond anything it was fitted on.
MIN_FIT_ROWS = 2


@dataclass(frozen=True)
class Folds:
    """Which rows each fold fits on and which it predicts."""

    fit_rows: list[np.ndarray]  # training part minus rows excluded from fitting
    val_rows: list[np.ndarray]
    excluded: np.ndarray  # bool per training row: left out of every fit, still scored

    @property
    def n_folds(self) -> int:
        return len(self.val_rows)

    def scored_rows(self, rows: str) -> list[np.ndarray] | None:
        """Per fold, a mask over its validation rows: those a score on `rows` counts ("all",
        or "fit": the rows not excluded from fitting); None when that is every row."""
        if rows == "all" or not self.excluded.any():
            return None
        return [~self.excluded[v] for v in self.val_rows]

    def first(self, n: int) -> Folds:
        """The first `n` folds (a trial's, tune.trial_folds): they predict only their own
        validation rows."""
        return Folds(self.fit_rows[:n], self.val_rows[:n], self.excluded)

    def fold_of_row(self) -> np.ndarray:
        """The fold that predicts each training row."""
        out = np.empty(len(self.excluded), dtype=int)
        for k, rows in enumerate(self.val_rows):
            out[rows] = k
        return out


@dataclass
class FoldFeatures:
    """The fitted per-fold preprocessing and its output for the training rows."""

    preprocessors: list[Pipeline]
    x: torch.Tensor  # [K, N, width] float32: fold k's view of every training row
    width: int  # widest fold matrix; narrower folds are zero-padded
    n_categorical: int = 0  # a trees view's leading category-code columns
    code_levels: tuple[int, ...] = ()  # the MLP view's leading level-code columns' codes

    @property
    def view(self) -> tuple[list[Pipeline], int]:
        """What a final model keeps to read new rows as these folds do."""
        return self.preprocessors, self.width


@dataclass
class FoldSetup:
    """The folds, each fold's fitted preprocessing, and the model-scale target."""

    folds: Folds
    features: FoldFeatures
    y: np.ndarray


@dataclass
class CVResult:
    """Out-of-fold predictions (model scale) and scores of one cross-validated model."""

    oof: np.ndarray  # [N]
    fold_scores: list[float]
    score: float  # RMSE over all training rows (that the folds predict)
    score_fit_rows: float  # RMSE over the rows not excluded from fitting
    # the MLP's seed batches in seed order (`cross_validate_mlp`), or one regressor per fold
    trained: list[TrainedMLPs] | list[RegressorMixin]

    def score_on(self, rows: str) -> float:
        """The score on `rows` (tune.objective_rows): "all" or "fit"."""
        return self.score_fit_rows if rows == "fit" else self.score


def make_folds(train: pd.DataFrame, n_folds: int, seed: int,
               fit_exclude: tuple = ()) -> Folds:
    """Shuffled K-fold split of the training rows; rows matching fit_exclude never fit.
    Each fold fits on at least MIN_FIT_ROWS rows."""
    excluded = excluded_from_fit(train, fit_exclude)
    usable = int(len(train) - excluded.sum())
    needed = min_training_rows(n_folds)
    if len(train) < needed or usable < needed:
        raise ConfigError(f"cv.n_folds: {n_folds} folds need at least {needed} training rows "
                          f"left for fitting (each fold fits on at least {MIN_FIT_ROWS}), the "
                          f"data has {usable}")
    splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fit_rows, val_rows = [], []
    for train_part, val_part in splitter.split(np.zeros(len(train))):
        fit_rows.append(train_part[~excluded[train_part]])
        val_rows.append(val_part)
    if any(len(rows) < MIN_FIT_ROWS for rows in fit_rows):
        raise ConfigError(f"features.fit_exclude leaves a fold fewer than {MIN_FIT_ROWS} rows "
                          "to fit on")
    return Folds(fit_rows, val_rows, excluded)


def min_training_rows(n_folds: int) -> int:
    """The fewest rows K-fold splits into `n_folds` folds each fitting on MIN_FIT_ROWS rows
    (a fold fits on all rows but its validation share, ceil(rows / n_folds))."""
    rows = n_folds
    while rows - -(-rows // n_folds) < MIN_FIT_ROWS:
        rows += 1
    return rows


def fit_fold_features(train: pd.DataFrame, folds: Folds, schema: Schema, cfg: FeaturesConfig,
                      seed: int = 0, on_fold: Callable[[int], None] | None = None,
                      trees: bool = False) -> FoldFeatures:
    """Fit one preprocessor per fold on its fitting rows and transform all training rows; the
    fitting rows keep the encodings their fit made for them (cross-fitted target encodings,
    so no row is encoded with its own target). `trees`: the tree models' view (category codes
    first, numbers unscaled: `features.build_tree_preprocessor`)."""
    y = model_target(train, schema)
    wide = (wide_columns(train, schema, cfg)
            if cfg.wide_categories == "embedding" and not trees else None)
    preprocessors, fitted = [], []
    for k, rows in enumerate(folds.fit_rows):
        preprocessor = (build_tree_preprocessor(schema, cfg, seed) if trees
                        else build_preprocessor(schema, cfg, seed, wide))
        fitted.append(preprocessor.fit_transform(train.iloc[rows], y[rows]))
        preprocessors.append(preprocessor)
        if on_fold is not None:
            on_fold(k)
    x = stack_transforms(preprocessors, train)
    for k, rows in enumerate(folds.fit_rows):
        x[k, rows, : fitted[k].shape[1]] = fitted[k]
    codes = n_categorical(preprocessors[0]) if trees else 0
    # every fold codes the same columns; a column's table holds the most codes any fold has
    levels = tuple(max(column) for column in zip(*map(code_levels, preprocessors),
                                                 strict=True))
    return FoldFeatures(preprocessors, torch.from_numpy(x), x.shape[2], codes, levels)


def setup_folds(train: pd.DataFrame, schema: Schema, cfg: Config,
                numeric_scaling: str | None = None,
                on_fold: Callable[[int], None] | None = None,
                first: int | None = None, level_codes: bool = True) -> FoldSetup:
    """Folds and per-fold preprocessing (optionally with another numeric scaling), of every
    fold or of the `first` ones (a trial's); `on_fold(k)` after fold k's preprocessing is
    fitted. `level_codes=False`: wide columns one-hot whatever `features.wide_categories`
    says (the linear reference's view: a code is no number to it)."""
    features_cfg = cfg.features
    if numeric_scaling is not None:
        features_cfg = features_cfg.replace({"numeric_scaling": numeric_scaling})
    if not level_codes:
        features_cfg = features_cfg.replace({"wide_categories": "onehot"})
    folds = make_folds(train, cfg.cv.n_folds, cfg.base.seed, cfg.features.fit_exclude)
    if first is not None:
        folds = folds.first(first)
    features = fit_fold_features(train, folds, schema, features_cfg, cfg.base.seed, on_fold)
    return FoldSetup(folds, features, model_target(train, schema))


def trial_folds(cfg: Config) -> int:
    """The folds a trial trains (the first ones): tune.trial_folds (as the plan resolves it),
    at most cv.n_folds; every fold while it is "auto"."""
    folds = cfg.tune.trial_folds
    return cfg.cv.n_folds if folds == AUTO else min(folds, cfg.cv.n_folds)


def model_target(train: pd.DataFrame, schema: Schema) -> np.ndarray:
    """The training target on the model scale."""
    return TargetScale(schema.target_scale).to_model(train[schema.target].to_numpy())


def cross_validate_mlp(features: FoldFeatures, y: np.ndarray, folds: Folds, cfg: ModelConfig,
                       seed: int, n_seeds: int = 1,
                       on_checkpoint: CheckpointCallback | None = None,
                       on_epoch: EpochCallback | None = None,
                       device: str = "cpu", scored: str = "all",
                       seed_batch: int | None = None) -> CVResult:
    """Train one MLP per fold and seed (on `device`), `seed_batch` seeds in one batch (default
    all: one batch; batch b draws from seed + b); OOF predictions average the seeds.
    Checkpoints (`on_checkpoint`, learning curves, early stopping) score the validation rows
    `scored` names (tune.objective_rows: "all" or "fit"); `on_epoch` counts every batch's
    epochs."""
    score_rows = folds.scored_rows(scored)
    target = torch.tensor(y, dtype=torch.float64)
    size = n_seeds if seed_batch is None else max(1, min(seed_batch, n_seeds))
    batches = []
    for b, first in enumerate(range(0, n_seeds, size)):
        seeds = min(size, n_seeds - first)
        batches.append(fit_mlps(
            features.x, target, folds.fit_rows * seeds, folds.val_rows * seeds, cfg, seed + b,
            on_checkpoint, on_epoch=on_epoch, device=device,
            score_rows=None if score_rows is None else score_rows * seeds,
            code_levels=features.code_levels))
    predictions = [p for trained in batches for p in trained.val_predictions]
    k = folds.n_folds
    per_fold = [np.mean([predictions[s * k + f] for s in range(n_seeds)], axis=0)
                for f in range(k)]
    return _result(per_fold, y, folds, batches)


def cross_validate_estimator(features: FoldFeatures, y: np.ndarray, folds: Folds,
                             estimator: RegressorMixin,
                             on_fold: Callable[[int], None] | None = None) -> CVResult:
    """Fit a clone of a scikit-learn regressor per fold on the fold's preprocessed rows."""
    fitted, per_fold = [], []
    for k, (fit_rows, val_rows) in enumerate(zip(folds.fit_rows, folds.val_rows, strict=True)):
        x = features.x[k].numpy()
        model = clone(estimator).fit(x[fit_rows], y[fit_rows])
        fitted.append(model)
        per_fold.append(model.predict(x[val_rows]))
        if on_fold is not None:
            on_fold(k)
    return _result(per_fold, y, folds, fitted)


def _result(per_fold: list[np.ndarray], y: np.ndarray, folds: Folds,
            trained: list[TrainedMLPs] | list[RegressorMixin]) -> CVResult:
    """The scores over the rows the folds predict (every row, unless `folds` are some of
    them: then `oof` is NaN on the others)."""
    oof = np.full(len(y), np.nan)
    scored = np.zeros(len(y), dtype=bool)
    for rows, pred in zip(folds.val_rows, per_fold, strict=True):
        oof[rows] = pred
        scored[rows] = True
    kept = ~folds.excluded & scored
    return CVResult(
        oof=oof,
        fold_scores=[rmse(y[rows], pred)
                     for rows, pred in zip(folds.val_rows, per_fold, strict=True)],
        score=rmse(y[scored], oof[scored]),
        score_fit_rows=rmse(y[kept], oof[kept]),
        trained=trained,
    )


# The out-of-fold tables' own columns (models/oof_predictions.csv and the references'), beside
# the id and one `predicted_<member>` column per member
OOF_COLUMNS = ("fold", "excluded_from_fit", "actual", "predicted")


def oof_id_column(id_column: str) -> str:
    """The id's column in the out-of-fold tables: its own name, or `id_<name>` when that name
    is one of the tables' own columns (OOF_COLUMNS, or `predicted_...`), which would
    otherwise overwrite the ids."""
    if id_column in OOF_COLUMNS or id_column.startswith("predicted_"):
        return f"id_{id_column}"
    return id_column
