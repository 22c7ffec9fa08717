"""K-fold cross-validation: fold splits, per-fold preprocessing, out-of-fold predictions.

Every fold fits its own preprocessing on its own training rows, so no statistic of a
validation row leaks into the model that predicts it. The score is the RMSE of the
out-of-fold predictions over every training row, on the model scale (log-RMSE for prices).
Pure: returns results, never logs or writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.base import RegressorMixin, clone
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from pipeline.config import FeaturesConfig, ModelConfig
from pipeline.data import Schema
from pipeline.features import build_preprocessor, excluded_from_fit
from pipeline.metrics import rmse, to_model_scale
from pipeline.train import CheckpointCallback, TrainedMLPs, fit_mlps


@dataclass(frozen=True)
class Folds:
    """Which rows each fold fits on and which it predicts."""

    fit_rows: list[np.ndarray]  # training part minus rows excluded from fitting
    val_rows: list[np.ndarray]
    excluded: np.ndarray  # bool per training row: left out of every fit, still scored

    @property
    def n_folds(self) -> int:
        return len(self.val_rows)


@dataclass
class FoldFeatures:
    """The fitted per-fold preprocessing and its output for the training rows."""

    preprocessors: list[Pipeline]
    x: torch.Tensor  # [K, N, width] float32: fold k's view of every training row
    width: int  # widest fold matrix; narrower folds are zero-padded

    def transform(self, frame: pd.DataFrame) -> torch.Tensor:
        """Another frame (test rows) as seen by each fold: [K, M, width]."""
        return stack_transforms(self.preprocessors, frame, self.width)


@dataclass
class CVResult:
    """Out-of-fold predictions (model scale) and scores of one cross-validated model."""

    oof: np.ndarray  # [N]
    fold_scores: list[float]
    score: float  # RMSE over all training rows
    score_fit_rows: float  # RMSE over the rows not excluded from fitting
    trained: TrainedMLPs | list[RegressorMixin]


def make_folds(train: pd.DataFrame, n_folds: int, seed: int,
               fit_exclude: tuple = ()) -> Folds:
    """Shuffled K-fold split of the training rows; rows matching fit_exclude never fit."""
    excluded = excluded_from_fit(train, fit_exclude)
    splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fit_rows, val_rows = [], []
    for train_part, val_part in splitter.split(np.zeros(len(train))):
        fit_rows.append(train_part[~excluded[train_part]])
        val_rows.append(val_part)
    return Folds(fit_rows, val_rows, excluded)


def fit_fold_features(train: pd.DataFrame, folds: Folds, schema: Schema,
                      cfg: FeaturesConfig) -> FoldFeatures:
    """Fit one preprocessor per fold on its fitting rows and transform all training rows."""
    preprocessors = [build_preprocessor(schema, cfg).fit(train.iloc[rows])
                     for rows in folds.fit_rows]
    matrices = [p.transform(train) for p in preprocessors]
    width = max(m.shape[1] for m in matrices)
    return FoldFeatures(preprocessors, _stack(matrices, width), width)


def stack_transforms(preprocessors: list[Pipeline], frame: pd.DataFrame,
                     width: int) -> torch.Tensor:
    """Each fitted preprocessor's view of `frame`, zero-padded to `width`: [K, M, width]."""
    return _stack([p.transform(frame) for p in preprocessors], width)


def model_target(train: pd.DataFrame, schema: Schema, log_target: bool) -> np.ndarray:
    """The training target on the model scale."""
    return to_model_scale(train[schema.target].to_numpy(), log_target)


def cross_validate_mlp(features: FoldFeatures, y: np.ndarray, folds: Folds, cfg: ModelConfig,
                       seed: int, n_seeds: int = 1,
                       on_checkpoint: CheckpointCallback | None = None) -> CVResult:
    """Train one MLP per fold and seed (all in one batch); OOF predictions average the seeds."""
    trained = fit_mlps(features.x, torch.as_tensor(y, dtype=torch.float32),
                       folds.fit_rows * n_seeds, folds.val_rows * n_seeds, cfg, seed,
                       on_checkpoint)
    k = folds.n_folds
    per_fold = [np.mean([trained.val_predictions[s * k + f] for s in range(n_seeds)], axis=0)
                for f in range(k)]
    return _result(per_fold, y, folds, trained)


def cross_validate_estimator(features: FoldFeatures, y: np.ndarray, folds: Folds,
                             estimator: RegressorMixin) -> CVResult:
    """Fit a clone of a scikit-learn regressor per fold on the fold's preprocessed rows."""
    fitted, per_fold = [], []
    for k, (fit_rows, val_rows) in enumerate(zip(folds.fit_rows, folds.val_rows, strict=True)):
        x = features.x[k].numpy()
        model = clone(estimator).fit(x[fit_rows], y[fit_rows])
        fitted.append(model)
        per_fold.append(model.predict(x[val_rows]))
    return _result(per_fold, y, folds, fitted)


def _result(per_fold: list[np.ndarray], y: np.ndarray, folds: Folds,
            trained: TrainedMLPs | list[RegressorMixin]) -> CVResult:
    oof = np.empty(len(y))
    for rows, pred in zip(folds.val_rows, per_fold, strict=True):
        oof[rows] = pred
    kept = ~folds.excluded
    return CVResult(
        oof=oof,
        fold_scores=[rmse(y[rows], pred)
                     for rows, pred in zip(folds.val_rows, per_fold, strict=True)],
        score=rmse(y, oof),
        score_fit_rows=rmse(y[kept], oof[kept]),
        trained=trained,
    )


def _stack(matrices: list[np.ndarray], width: int) -> torch.Tensor:
    out = torch.zeros(len(matrices), matrices[0].shape[0], width, dtype=torch.float32)
    for k, m in enumerate(matrices):
        out[k, :, : m.shape[1]] = torch.as_tensor(np.asarray(m, dtype=np.float32))
    return out
