"""The final model: fold-fitted preprocessing, the trained fold models, the blend weights.

One object that takes the raw test frame (as read from test.csv) and returns predictions on
the competition's scale; the predict stage and the MLflow pyfunc both call `predict_frame`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from sklearn.base import RegressorMixin
from sklearn.pipeline import Pipeline

from pipeline.cv import stack_transforms
from pipeline.data import Schema, coerce
from pipeline.metrics import from_model_scale
from pipeline.model import BatchedMLP
from pipeline.train import TrainedMLPs, predict_batched


class Member(Protocol):
    def predict(self, x: torch.Tensor) -> np.ndarray:
        """Fold matrices [K, M, d] -> model-scale predictions [M], averaged over its models."""


@dataclass
class MLPMember:
    """Trained BatchedMLP weights (one model per fold and seed), stored as numpy arrays."""

    architecture: dict
    state: dict[str, np.ndarray]
    target_mean: np.ndarray
    target_std: np.ndarray
    target_range: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_trained(cls, trained: TrainedMLPs) -> MLPMember:
        m = trained.model
        architecture = {"n_models": m.n_models, "n_inputs": m.weights[0].shape[1],
                        "width": m.weights[0].shape[2], "depth": len(m.weights) - 1,
                        "dropout": m.dropout, "activation": m.activation,
                        "linear_skip": m.linear_skip}
        state = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
        return cls(architecture, state, trained.target_mean, trained.target_std,
                   trained.target_range)

    def predict(self, x: torch.Tensor) -> np.ndarray:
        model = BatchedMLP(**self.architecture)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in self.state.items()})
        return predict_batched(model, self.target_mean, self.target_std, x,
                               self.target_range).mean(axis=0)


@dataclass
class EstimatorMember:
    """One fitted scikit-learn regressor per fold."""

    estimators: list[RegressorMixin]

    def predict(self, x: torch.Tensor) -> np.ndarray:
        return np.mean([est.predict(x[k].numpy()) for k, est in enumerate(self.estimators)],
                       axis=0)


@dataclass
class FinalModel:
    """Everything needed to go from a raw test frame to submission prices."""

    schema: Schema
    log_target: bool
    preprocessors: list[Pipeline]
    width: int
    members: dict[str, Member]
    weights: dict[str, float]

    def predict_model_scale(self, frame: pd.DataFrame) -> np.ndarray:
        """Blended predictions on the model scale for a typed (coerced) frame."""
        x = stack_transforms(self.preprocessors, frame, self.width)
        return sum(w * self.members[name].predict(x) for name, w in self.weights.items())

    def predict_frame(self, raw: pd.DataFrame, source: str = "input frame") -> np.ndarray:
        """Predictions on the competition's scale for a raw frame as read from test.csv."""
        frame = coerce(raw, self.schema, source)
        return from_model_scale(self.predict_model_scale(frame), self.log_target)


def blend_weight(first: np.ndarray, second: np.ndarray, actual: np.ndarray) -> float:
    """The weight w in [0, 1] minimising RMSE of w*first + (1-w)*second (fitted on OOF)."""
    diff = first - second
    denom = float(diff @ diff)
    if denom == 0.0:
        return 1.0
    return float(np.clip(diff @ (actual - second) / denom, 0.0, 1.0))
