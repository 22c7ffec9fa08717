"""The competition metric and the target scale the models are trained on."""

from __future__ import annotations

import numpy as np


def to_model_scale(target: np.ndarray, log_target: bool | str) -> np.ndarray:
    """The target as the models learn it: log prices for a log-RMSE metric, log(1 + y) for
    RMSLE (`log_target="log1p"`), else as is."""
    target = np.asarray(target, dtype=np.float64)
    if log_target == "log1p":
        return np.log1p(target)
    return np.log(target) if log_target else target


def from_model_scale(values: np.ndarray, log_target: bool | str) -> np.ndarray:
    """Model-scale predictions back to the competition's scale (never below 0 for RMSLE,
    which rejects negative predictions; clipping only moves them closer to any target)."""
    values = np.asarray(values, dtype=np.float64)
    if log_target == "log1p":
        return np.expm1(np.maximum(values, 0.0))
    return np.exp(values) if log_target else values


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error; on model-scale values this is the competition metric."""
    actual, predicted = np.asarray(actual, np.float64), np.asarray(predicted, np.float64)
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"rmse needs two equal, non-empty shapes: {actual.shape} vs "
                         f"{predicted.shape}")
    return float(np.sqrt(np.mean((actual - predicted) ** 2)))
