"""The target scale the models learn on, and the competition metric on that scale."""

from __future__ import annotations

from enum import StrEnum

import numpy as np


class TargetScale(StrEnum):
    """How the target is modelled, and so what the metric is (`data.log_target` in params).

    none (`log_target: false`): the target as is, the metric is RMSE;
    log (`true`): log(target), the metric is RMSE of logs (House Prices), targets must be > 0;
    log1p (`log1p`): log(1 + target), the metric is RMSLE, targets must be >= 0.
    """

    NONE = "none"
    LOG = "log"
    LOG1P = "log1p"

    @classmethod
    def from_param(cls, value: object) -> TargetScale:
        """The scale for a `data.log_target` value: false, true or "log1p"."""
        if isinstance(value, TargetScale):
            return value
        if value is False:
            return cls.NONE
        if value is True:
            return cls.LOG
        if value == "log1p":
            return cls.LOG1P
        raise ValueError(f"expected true/false or log1p, got {value!r}")

    @property
    def param(self) -> bool | str:
        """The value as written in params.yaml (`data.log_target`)."""
        return {TargetScale.NONE: False, TargetScale.LOG: True, TargetScale.LOG1P: "log1p"}[self]

    @property
    def metric(self) -> str:
        return {TargetScale.NONE: "RMSE", TargetScale.LOG: "RMSE of log(target)",
                TargetScale.LOG1P: "RMSLE"}[self]

    @property
    def label(self) -> str:
        """The model scale's name, for axis labels."""
        return {TargetScale.NONE: "target", TargetScale.LOG: "log target",
                TargetScale.LOG1P: "log(1 + target)"}[self]

    def describe(self) -> str:
        """One phrase for the prepare stage's report."""
        return {TargetScale.NONE: "modelled as is: the metric is RMSE",
                TargetScale.LOG: "modelled as log(target): the metric is RMSE of log(target)",
                TargetScale.LOG1P: "modelled as log(1 + target): the metric is RMSLE"}[self]

    def invalid(self, values: np.ndarray) -> tuple[np.ndarray, str]:
        """Which values this scale cannot take (targets, or predictions on the competition's
        scale), and the rule they break; nothing is invalid for `none`."""
        values = np.asarray(values, dtype=np.float64)
        if self is TargetScale.LOG:
            return values <= 0, "positive"
        if self is TargetScale.LOG1P:
            return values < 0, "non-negative"
        return np.zeros(values.shape, dtype=bool), ""

    def to_model(self, target: np.ndarray) -> np.ndarray:
        """The target as the models learn it."""
        target = np.asarray(target, dtype=np.float64)
        if self is TargetScale.LOG:
            return np.log(target)
        if self is TargetScale.LOG1P:
            return np.log1p(target)
        return target

    def from_model(self, values: np.ndarray) -> np.ndarray:
        """Model-scale predictions back to the competition's scale (never below 0 for RMSLE,
        which rejects negative predictions; clipping only moves them closer to any target)."""
        values = np.asarray(values, dtype=np.float64)
        if self is TargetScale.LOG:
            return np.exp(values)
        if self is TargetScale.LOG1P:
            return np.expm1(np.maximum(values, 0.0))
        return values


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error; on model-scale values this is the competition metric."""
    actual, predicted = np.asarray(actual, np.float64), np.asarray(predicted, np.float64)
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"rmse needs two equal, non-empty shapes: {actual.shape} vs "
                         f"{predicted.shape}")
    return float(np.sqrt(np.mean((actual - predicted) ** 2)))
