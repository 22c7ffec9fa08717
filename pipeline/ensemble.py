"""The final model: fold-fitted preprocessing, the trained fold models, the blend weights.

One object that takes the raw test frame (as read from test.csv) and returns predictions on
the competition's scale; the predict stage and the MLflow pyfunc both check the frame with
`validated` (what prepare runs on test.csv) and predict it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from sklearn.base import RegressorMixin
from sklearn.pipeline import Pipeline

from pipeline.data.read import ReadOptions
from pipeline.data.schema import Schema
from pipeline.data.validate import typed_test
from pipeline.features import stack_transforms
from pipeline.metrics import TargetScale
from pipeline.nn.model import BatchedMLP, predict_batched


class Member(Protocol):
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fold matrices [K, M, d] -> model-scale predictions [M], averaged over its models."""


@dataclass
class MLPMember:
    """Trained BatchedMLP weights (one model per fold and seed), stored as numpy arrays."""

    architecture: dict
    state: dict[str, np.ndarray]
    target_mean: np.ndarray
    target_std: np.ndarray
    target_range: tuple[np.ndarray, np.ndarray] | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        model = BatchedMLP(**self.architecture)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in self.state.items()})
        return predict_batched(model, self.target_mean, self.target_std, torch.from_numpy(x),
                               self.target_range).mean(axis=0)


@dataclass
class MLPBatches:
    """MLP members trained in separate batches (seeds: `ensemble.seed_batch`), averaged over
    all their models as one batch of them would be."""

    batches: list[MLPMember]

    def predict(self, x: np.ndarray) -> np.ndarray:
        models = [len(b.target_mean) for b in self.batches]
        return sum(n * b.predict(x) for n, b in zip(models, self.batches, strict=True)) \
            / sum(models)


@dataclass
class EstimatorMember:
    """One fitted scikit-learn regressor per fold."""

    estimators: list[RegressorMixin]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.mean([est.predict(x[k]) for k, est in enumerate(self.estimators)], axis=0)


@dataclass
class FinalModel:
    """Everything needed to go from a raw test frame to submission prices.

    `views` are sets of fold-fitted preprocessors (one per fold); each member reads the
    matrices of one view, and the members' model-scale predictions are blended by `weights`.
    `reading` says how the competition's CSV files are read (the id as text, the declared
    missing strings), so a test file or a request is read as the training data was.
    """

    schema: Schema
    scale: TargetScale
    views: dict[str, tuple[list[Pipeline], int]]  # view -> (fold preprocessors, matrix width)
    members: dict[str, tuple[str, Member]]  # name -> (view it reads, member)
    weights: dict[str, float]
    reading: ReadOptions = ReadOptions()

    def predict_model_scale(self, frame: pd.DataFrame) -> np.ndarray:
        """Blended predictions on the model scale for a typed (coerced) frame."""
        needed = {view for view, _ in self.members.values()}
        x = {view: stack_transforms(self.views[view][0], frame, self.views[view][1])
             for view in needed}
        return sum(self.weights[name] * member.predict(x[view])
                   for name, (view, member) in self.members.items())

    def validated(self, raw: pd.DataFrame, source: str = "input frame") -> pd.DataFrame:
        """A raw test frame checked exactly as prepare checks test.csv, and typed."""
        return typed_test(raw, self.schema, self.reading, source)

    def predict_frame(self, raw: pd.DataFrame, source: str = "input frame") -> np.ndarray:
        """Predictions on the competition's scale for a raw frame as read from test.csv."""
        return self.predict_typed(self.validated(raw, source))

    def predict_typed(self, frame: pd.DataFrame) -> np.ndarray:
        """Predictions on the competition's scale for a `validated` frame."""
        return self.scale.from_model(self.predict_model_scale(frame))


def blend_weights(predictions: dict[str, np.ndarray], actual: np.ndarray) -> dict[str, float]:
    """Non-negative weights summing to 1 that minimise the RMSE of the blended predictions.

    Solved exactly, not by an iterative optimiser (SLSQP returned its starting point, with
    success, at some target scales): with weights summing to 1 the blend's error is the
    weighted sum of the members' errors, so for every subset of members the best weights
    summing to 1 are one least-squares solve on errors scaled to unit size; the subsets whose
    weights come out non-negative are the candidates, and the one whose blend has the lowest
    RMSE wins. Each member alone is a candidate, so the blend is never worse than its best
    member on these rows. Members are few (the MLP and the references): 2**n solves is cheap.
    Fitted on out-of-fold predictions only; a few weights on a thousand rows barely flatter
    the blended OOF score.
    """
    names = list(predictions)
    errors = np.column_stack([np.asarray(predictions[n], np.float64) for n in names])
    errors = errors - np.asarray(actual, np.float64)[:, None]
    scale = np.sqrt(np.mean(errors ** 2))
    errors = errors / scale if scale > 0 else errors
    best, best_mse = None, np.inf
    for size in range(1, len(names) + 1):
        for subset in combinations(range(len(names)), size):
            weights = np.zeros(len(names))
            weights[list(subset)] = _sum_to_one_lstsq(errors[:, subset])
            if (weights < 0).any():
                continue
            mse = float(np.mean((errors @ weights) ** 2))
            if mse < best_mse:  # strict: ties keep the smaller (earlier) subset
                best, best_mse = weights, mse
    return {n: float(w) for n, w in zip(names, best, strict=True)}


def _sum_to_one_lstsq(errors: np.ndarray) -> np.ndarray:
    """The weights summing to 1 that minimise ||errors @ w||: w = e_last + basis @ v, where
    the basis spans the weight changes that keep the sum, and v is an ordinary least-squares
    solve (rank-deficient columns, such as two identical members, are handled by lstsq)."""
    n = errors.shape[1]
    if n == 1:
        return np.ones(1)
    basis = np.vstack([np.eye(n - 1), -np.ones((1, n - 1))])  # columns sum to 0
    v, *_ = np.linalg.lstsq(errors @ basis, -errors[:, -1], rcond=None)
    weights = basis @ v
    weights[-1] += 1.0
    return weights
