"""A Kaggle-style tabular regression pipeline: K-fold MLP, Optuna, MLflow, DVC.

Each stage is `python -m pipeline <stage>` (see `pipeline.stages`); the pure parts
(`pipeline.cv`, `pipeline.final`, ...) are callable from Python on DataFrames, and
`pipeline.TabularMLPRegressor` is the MLP as a scikit-learn estimator.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TabularMLPRegressor"]


def __getattr__(name: str) -> Any:
    """`pipeline.TabularMLPRegressor`, imported on first use (PEP 562): a stage that imports
    any pipeline module does not load the estimator's module."""
    if name == "TabularMLPRegressor":
        return importlib.import_module("pipeline.estimator").TabularMLPRegressor
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
