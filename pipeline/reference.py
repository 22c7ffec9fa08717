"""The reference models the MLP is compared with, on the same folds and features."""

from __future__ import annotations

from sklearn.base import RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Lasso

from pipeline.config import ReferenceConfig


def linear_reference(cfg: ReferenceConfig) -> RegressorMixin:
    """A regularised linear model (Lasso) on the preprocessed features."""
    return Lasso(alpha=cfg.linear_alpha, max_iter=50_000, tol=1e-4)


def gbm_reference(cfg: ReferenceConfig, seed: int) -> RegressorMixin:
    """Gradient-boosted trees on the preprocessed features."""
    return HistGradientBoostingRegressor(
        max_iter=cfg.gbm_max_iter,
        learning_rate=cfg.gbm_learning_rate,
        max_leaf_nodes=cfg.gbm_max_leaf_nodes,
        min_samples_leaf=cfg.gbm_min_samples_leaf,
        max_features=cfg.gbm_max_features,
        l2_regularization=cfg.gbm_l2_regularization,
        early_stopping=False,
        random_state=seed,
    )


def reference_models(cfg: ReferenceConfig, seed: int) -> dict[str, RegressorMixin]:
    """The reference models by the name their scores are reported under."""
    return {"linear": linear_reference(cfg), "gbm": gbm_reference(cfg, seed)}
