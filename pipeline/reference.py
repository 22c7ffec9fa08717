"""The reference models the MLP is compared with, cross-validated on the same folds and
features; their fitted fold models can be blended into the final model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Lasso

from pipeline.config import ReferenceConfig
from pipeline.cv import FoldSetup, cross_validate_estimator
from pipeline.ensemble import EstimatorMember
from pipeline.metrics import rmse

AVERAGE = "reference_average"  # the references' equal-weight average, scored beside them


@dataclass
class References:
    """The reference models cross-validated on the MLP's folds: scores, OOF predictions, and
    the fitted fold models with the preprocessing they read (to blend them into the final
    model without training them twice)."""

    scores: dict[str, dict]
    oof: dict[str, np.ndarray]
    members: dict[str, EstimatorMember]
    view: tuple[list, int]  # (fold preprocessors, matrix width)


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


def score_references(setup: FoldSetup, cfg: ReferenceConfig, seed: int) -> References:
    """Cross-validate the reference models on the MLP's folds and base features."""
    y, kept = setup.y, ~setup.folds.excluded
    scores, oof, members = {}, {}, {}
    for name, estimator in reference_models(cfg, seed).items():
        result = cross_validate_estimator(setup.features, y, setup.folds, estimator)
        scores[name] = {"oof_rmse": result.score, "oof_rmse_fit_rows": result.score_fit_rows,
                        "fold_rmse": result.fold_scores}
        oof[name] = result.oof
        members[name] = EstimatorMember(result.trained)
    average = np.mean(list(oof.values()), axis=0)
    scores[AVERAGE] = {"oof_rmse": rmse(y, average),
                       "oof_rmse_fit_rows": rmse(y[kept], average[kept])}
    return References(scores, oof, members, setup.features.view)


def references_frame(refs: References, ids: pd.Series, y: np.ndarray) -> pd.DataFrame:
    """The references' OOF predictions, one column each, beside the id and the actual value."""
    return pd.DataFrame({ids.name: ids.to_numpy(), "actual": y,
                         **{f"predicted_{k}": v for k, v in refs.oof.items()}})

