"""The final model: fold-fitted preprocessing, the trained fold models, the blend weights.

One object that takes the raw test frame (as read from test.csv) and returns predictions on
the competition's scale; the predict stage and the MLflow pyfunc both check the frame with
`validated` (what prepare runs on test.csv) and predict it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize
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

    Fitted on out-of-fold predictions only; a few weights on a thousand rows barely flatter
    the blended OOF score.
    """
    names = list(predictions)
    if len(names) == 1:
        return {names[0]: 1.0}
    a = np.column_stack([predictions[n] for n in names])
    start = np.full(len(names), 1 / len(names))
    result = minimize(lambda w: np.mean((a @ w - actual) ** 2), start,
                      jac=lambda w: 2 * a.T @ (a @ w - actual) / len(actual), method="SLSQP",
                      bounds=[(0.0, 1.0)] * len(names),
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
                      options={"ftol": 1e-12, "maxiter": 500})
    weights = np.clip(result.x, 0.0, None)
    weights /= weights.sum()
    return {n: float(w) for n, w in zip(names, weights, strict=True)}
