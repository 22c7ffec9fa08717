"""The pipeline's steps as plain functions on DataFrames, for notebooks and the stages.

    cfg = load_config("params.yaml")
    train, test, schema = load_competition(cfg.data)
    cv = cross_validate(train, schema, cfg)             # OOF predictions and fold scores
    refs = score_references(train, schema, cfg)         # the reference models, same folds
    fitted = fit_final_model(train, schema, cfg, {"lr": 3e-3}, refs)
    prices = fitted.model.predict_frame(raw_test_frame)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import Config, with_overrides
from pipeline.cv import (
    CVResult,
    FoldFeatures,
    Folds,
    cross_validate_estimator,
    cross_validate_mlp,
    fit_fold_features,
    make_folds,
    model_target,
)
from pipeline.data import Schema
from pipeline.ensemble import EstimatorMember, FinalModel, MLPMember, blend_weights
from pipeline.metrics import rmse
from pipeline.reference import reference_models


@dataclass
class FoldSetup:
    """The folds, each fold's fitted preprocessing, and the model-scale target."""

    folds: Folds
    features: FoldFeatures
    y: np.ndarray


@dataclass
class References:
    """The reference models cross-validated on the MLP's folds: scores, OOF predictions, and
    the fitted fold models with the preprocessing they read (to blend them into the final
    model without training them twice)."""

    scores: dict[str, dict]
    oof: dict[str, np.ndarray]
    members: dict[str, EstimatorMember]
    view: tuple[list, int]  # (fold preprocessors, matrix width)


@dataclass
class FittedModel:
    """The final model and what its cross-validation measured."""

    model: FinalModel
    oof: pd.DataFrame  # id, fold, excluded_from_fit, actual, predicted, predicted_<member>
    metrics: dict  # oof_rmse(_fit_rows), mlp_oof_rmse(_fit_rows), mlp_weight
    fold_scores: list[float]
    weights: dict[str, float]  # "mlp" (all views together) and each blended reference
    mlp: dict[str, CVResult]  # per feature view


def setup_folds(train: pd.DataFrame, schema: Schema, cfg: Config,
                numeric_scaling: str | None = None) -> FoldSetup:
    """Folds and per-fold preprocessing (optionally with another numeric scaling)."""
    features_cfg = cfg.features
    if numeric_scaling is not None:
        features_cfg = dataclasses.replace(features_cfg, numeric_scaling=numeric_scaling)
    folds = make_folds(train, cfg.cv.n_folds, cfg.base.seed, cfg.features.fit_exclude)
    features = fit_fold_features(train, folds, schema, features_cfg)
    return FoldSetup(folds, features, model_target(train, schema, cfg.data.log_target))


def cross_validate(train: pd.DataFrame, schema: Schema, cfg: Config,
                   params: dict | None = None, n_seeds: int = 1) -> CVResult:
    """OOF predictions and scores of the MLP with params.yaml's model overridden by `params`."""
    setup = setup_folds(train, schema, cfg)
    model_cfg = with_overrides(cfg.model, params or {})
    return cross_validate_mlp(setup.features, setup.y, setup.folds, model_cfg, cfg.base.seed,
                              n_seeds)


def fit_final_model(train: pd.DataFrame, schema: Schema, cfg: Config, params: dict,
                    references: References | None = None,
                    setup: FoldSetup | None = None) -> FittedModel:
    """Train the tuned MLP on each feature view over `ensemble.n_seeds` seeds, average the
    views, and blend in the references named by `ensemble.blend_with` (OOF-fitted weights).

    `setup` (folds and the base view's preprocessing) is reused when given.
    """
    base_view = cfg.features.numeric_scaling
    views = cfg.ensemble.feature_views or (base_view,)
    setups = {v: setup if setup is not None and v == base_view
              else setup_folds(train, schema, cfg, v) for v in views}
    first = setups[views[0]]
    folds, y = first.folds, first.y
    kept = ~folds.excluded
    model_cfg = with_overrides(cfg.model, params)
    mlp = {v: cross_validate_mlp(setups[v].features, y, folds, model_cfg, cfg.base.seed,
                                 cfg.ensemble.n_seeds) for v in views}
    oof = {"mlp": np.mean([r.oof for r in mlp.values()], axis=0)}
    missing = [n for n in cfg.ensemble.blend_with
               if references is None or n not in references.members]
    if missing:
        raise ValueError(f"ensemble.blend_with names {missing}, which were not cross-validated")
    for name in cfg.ensemble.blend_with:
        oof[name] = references.oof[name]
    weights = blend_weights({k: v[kept] for k, v in oof.items()}, y[kept])
    final = sum(weights[k] * oof[k] for k in weights)

    model_views = {f"mlp_{v}": (setups[v].features.preprocessors, setups[v].features.width)
                   for v in views}
    members = {f"mlp_{v}": (f"mlp_{v}", MLPMember.from_trained(mlp[v].trained))
               for v in views}
    member_weights = {f"mlp_{v}": weights["mlp"] / len(views) for v in views}
    if cfg.ensemble.blend_with:
        model_views["reference"] = references.view
        for name in cfg.ensemble.blend_with:
            members[name] = ("reference", references.members[name])
            member_weights[name] = weights[name]
    model = FinalModel(schema, cfg.data.log_target, model_views, members, member_weights)

    fold_of_row = np.empty(len(y), dtype=int)
    for k, rows in enumerate(folds.val_rows):
        fold_of_row[rows] = k
    per_view = {f"predicted_mlp_{v}": r.oof for v, r in mlp.items()} if len(views) > 1 else {}
    oof_frame = pd.DataFrame({schema.id_column: train[schema.id_column].to_numpy(),
                              "fold": fold_of_row, "excluded_from_fit": folds.excluded,
                              "actual": y, "predicted": final,
                              **{f"predicted_{k}": v for k, v in oof.items()}, **per_view})
    return FittedModel(
        model=model,
        oof=oof_frame,
        metrics={"oof_rmse": rmse(y, final), "oof_rmse_fit_rows": rmse(y[kept], final[kept]),
                 "mlp_oof_rmse": rmse(y, oof["mlp"]),
                 "mlp_oof_rmse_fit_rows": rmse(y[kept], oof["mlp"][kept]),
                 "mlp_weight": weights["mlp"]},
        fold_scores=[rmse(y[rows], final[rows]) for rows in folds.val_rows],
        weights=weights,
        mlp=mlp,
    )


def score_references(train: pd.DataFrame, schema: Schema, cfg: Config,
                     setup: FoldSetup | None = None) -> References:
    """Cross-validate the reference models on the MLP's folds and base features."""
    setup = setup or setup_folds(train, schema, cfg)
    y, kept = setup.y, ~setup.folds.excluded
    scores, oof, members = {}, {}, {}
    for name, estimator in reference_models(cfg.reference, cfg.base.seed).items():
        result = cross_validate_estimator(setup.features, y, setup.folds, estimator)
        scores[name] = {"oof_rmse": result.score, "oof_rmse_fit_rows": result.score_fit_rows,
                        "fold_rmse": result.fold_scores}
        oof[name] = result.oof
        members[name] = EstimatorMember(result.trained)
    average = np.mean(list(oof.values()), axis=0)
    scores["reference_average"] = {"oof_rmse": rmse(y, average),
                                   "oof_rmse_fit_rows": rmse(y[kept], average[kept])}
    return References(scores, oof, members,
                      (setup.features.preprocessors, setup.features.width))


def references_frame(refs: References, train: pd.DataFrame, schema: Schema,
                     y: np.ndarray) -> pd.DataFrame:
    """The references' OOF predictions, one column each, beside the id and the actual value."""
    return pd.DataFrame({schema.id_column: train[schema.id_column].to_numpy(), "actual": y,
                         **{f"predicted_{k}": v for k, v in refs.oof.items()}})


def learning_curves(results: dict[str, CVResult], n_folds: int) -> pd.DataFrame:
    """Long-form learning curves: view, epoch, fold, seed, train and validation RMSE."""
    rows = []
    for view, result in results.items():
        history = result.trained.history
        for i, epoch in enumerate(history["epoch"]):
            for m, (tr, va) in enumerate(zip(history["train_rmse"][i],
                                             history["val_rmse"][i], strict=True)):
                rows.append({"view": view, "epoch": int(epoch), "fold": m % n_folds,
                             "seed": m // n_folds, "train_rmse": float(tr),
                             "val_rmse": float(va)})
    return pd.DataFrame(rows)
