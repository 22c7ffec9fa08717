"""The pipeline's steps as plain functions on DataFrames, for notebooks and the stages.

    cfg = load_config("params.yaml")
    train, test, schema = load_competition(cfg.data)
    cv = cross_validate(train, schema, cfg)             # OOF predictions and fold scores
    fitted = fit_final_model(train, schema, cfg, {"lr": 3e-3})
    prices = fitted.model.predict_frame(raw_test_frame)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import Config, with_overrides
from pipeline.cv import (CVResult, FoldFeatures, Folds, cross_validate_estimator,
                         cross_validate_mlp, fit_fold_features, make_folds, model_target)
from pipeline.data import Schema
from pipeline.ensemble import EstimatorMember, FinalModel, MLPMember, blend_weight
from pipeline.metrics import rmse
from pipeline.reference import linear_reference, reference_models


@dataclass
class FoldSetup:
    """The folds, each fold's fitted preprocessing, and the model-scale target."""

    folds: Folds
    features: FoldFeatures
    y: np.ndarray


@dataclass
class FittedModel:
    """The final model and what its cross-validation measured."""

    model: FinalModel
    oof: pd.DataFrame  # id, fold, excluded_from_fit, actual, predicted, predicted_<member>
    metrics: dict  # oof_rmse, oof_rmse_fit_rows, mlp_oof_rmse, mlp_weight
    fold_scores: list[float]
    weights: dict[str, float]
    mlp: CVResult


def setup_folds(train: pd.DataFrame, schema: Schema, cfg: Config) -> FoldSetup:
    folds = make_folds(train, cfg.cv.n_folds, cfg.base.seed, cfg.features.fit_exclude)
    features = fit_fold_features(train, folds, schema, cfg.features)
    return FoldSetup(folds, features, model_target(train, schema, cfg.data.log_target))


def cross_validate(train: pd.DataFrame, schema: Schema, cfg: Config,
                   params: dict | None = None, n_seeds: int = 1) -> CVResult:
    """OOF predictions and scores of the MLP with params.yaml's model overridden by `params`."""
    setup = setup_folds(train, schema, cfg)
    model_cfg = with_overrides(cfg.model, params or {})
    return cross_validate_mlp(setup.features, setup.y, setup.folds, model_cfg, cfg.base.seed,
                              n_seeds)


def fit_final_model(train: pd.DataFrame, schema: Schema, cfg: Config, params: dict,
                    setup: FoldSetup | None = None) -> FittedModel:
    """Train the K fold MLPs over `ensemble.n_seeds` seeds (and the linear blend if asked)."""
    setup = setup or setup_folds(train, schema, cfg)
    folds, y = setup.folds, setup.y
    model_cfg = with_overrides(cfg.model, params)
    mlp = cross_validate_mlp(setup.features, y, folds, model_cfg, cfg.base.seed,
                             cfg.ensemble.n_seeds)
    members = {"mlp": MLPMember.from_trained(mlp.trained)}
    oof = {"mlp": mlp.oof}
    weights = {"mlp": 1.0}
    if cfg.ensemble.blend_linear:
        linear = cross_validate_estimator(setup.features, y, folds,
                                          linear_reference(cfg.reference))
        w = blend_weight(mlp.oof, linear.oof, y)
        members["linear"] = EstimatorMember(linear.trained)
        oof["linear"] = linear.oof
        weights = {"mlp": w, "linear": 1.0 - w}
    final = sum(weights[k] * oof[k] for k in weights)
    kept = ~folds.excluded
    fold_of_row = np.empty(len(y), dtype=int)
    for k, rows in enumerate(folds.val_rows):
        fold_of_row[rows] = k
    oof_frame = pd.DataFrame({schema.id_column: train[schema.id_column].to_numpy(),
                              "fold": fold_of_row, "excluded_from_fit": folds.excluded,
                              "actual": y, "predicted": final,
                              **{f"predicted_{k}": v for k, v in oof.items()}})
    model = FinalModel(schema, cfg.data.log_target, setup.features.preprocessors,
                       setup.features.width, members, weights)
    return FittedModel(
        model=model,
        oof=oof_frame,
        metrics={"oof_rmse": rmse(y, final), "oof_rmse_fit_rows": rmse(y[kept], final[kept]),
                 "mlp_oof_rmse": mlp.score, "mlp_weight": weights["mlp"]},
        fold_scores=[rmse(y[rows], final[rows]) for rows in folds.val_rows],
        weights=weights,
        mlp=mlp,
    )


def score_references(train: pd.DataFrame, schema: Schema, cfg: Config,
                     setup: FoldSetup | None = None) -> tuple[dict, pd.DataFrame]:
    """Scores and OOF predictions of the reference models on the MLP's folds and features."""
    setup = setup or setup_folds(train, schema, cfg)
    y, kept = setup.y, ~setup.folds.excluded
    scores, oof = {}, {}
    for name, estimator in reference_models(cfg.reference, cfg.base.seed).items():
        result = cross_validate_estimator(setup.features, y, setup.folds, estimator)
        scores[name] = {"oof_rmse": result.score, "oof_rmse_fit_rows": result.score_fit_rows,
                        "fold_rmse": result.fold_scores}
        oof[name] = result.oof
    average = np.mean(list(oof.values()), axis=0)
    scores["reference_average"] = {"oof_rmse": rmse(y, average),
                                   "oof_rmse_fit_rows": rmse(y[kept], average[kept])}
    frame = pd.DataFrame({schema.id_column: train[schema.id_column].to_numpy(), "actual": y,
                          **{f"predicted_{k}": v for k, v in oof.items()}})
    return scores, frame


def learning_curves(result: CVResult, n_folds: int) -> pd.DataFrame:
    """Long-form learning curves: epoch, fold, seed, train and validation RMSE."""
    history = result.trained.history
    rows = []
    for i, epoch in enumerate(history["epoch"]):
        for m, (tr, va) in enumerate(zip(history["train_rmse"][i], history["val_rmse"][i])):
            rows.append({"epoch": int(epoch), "fold": m % n_folds, "seed": m // n_folds,
                         "train_rmse": float(tr), "val_rmse": float(va)})
    return pd.DataFrame(rows)
