"""The final model: the tuned MLP trained over seeds and feature views on the CV folds, its
views blended, then the references blended in, each with weights fitted on OOF predictions.
Pure."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.config import Config
from pipeline.config.fields import AUTO
from pipeline.cv import CVResult, FoldSetup, cross_validate_mlp, oof_id_column, setup_folds
from pipeline.data.read import ReadOptions
from pipeline.data.schema import Schema
from pipeline.ensemble import FinalModel, MLPBatches, MLPMember, blend_weights
from pipeline.metrics import rmse
from pipeline.nn.train import EpochCallback, TrainedMLPs
from pipeline.reference import References
from pipeline.runtime import resolve_device


@dataclass
class FittedModel:
    """The final model and what its cross-validation measured."""

    model: FinalModel
    oof: pd.DataFrame  # id (cv.oof_id_column), fold, excluded_from_fit, actual, predicted,
    # predicted_<member>
    metrics: dict  # oof_rmse(_fit_rows), mlp_oof_rmse(_fit_rows), mlp_weight
    fold_scores: list[float]
    weights: dict[str, float]  # "mlp" (all views together) and each blended reference
    mlp: dict[str, CVResult]  # per feature view
    view_weights: dict[str, float]  # each feature view's share of "mlp"


def feature_views(cfg: Config) -> tuple[str, ...]:
    """The numeric scalings the final MLP is trained on."""
    return cfg.ensemble.feature_views or (cfg.features.numeric_scaling,)


def seed_batch(cfg: Config) -> int:
    """The seeds trained in one batch: `ensemble.seed_batch` (the plan's with auto; a config
    the plan has not filled in trains them all at once), at most `ensemble.n_seeds`."""
    batch = cfg.ensemble.seed_batch
    return cfg.ensemble.n_seeds if batch == AUTO else min(batch, cfg.ensemble.n_seeds)


def seed_batches(cfg: Config) -> int:
    """The batches each view's seeds are trained in (`seed_batch` seeds each)."""
    return -(-cfg.ensemble.n_seeds // seed_batch(cfg))


def fit_final_model(train: pd.DataFrame, schema: Schema, cfg: Config, params: dict,
                    references: References | None = None, setup: FoldSetup | None = None,
                    on_epoch: EpochCallback | None = None,
                    reading: ReadOptions | None = None) -> FittedModel:
    """Train the tuned MLP on each feature view over `ensemble.n_seeds` seeds (in batches of
    `ensemble.seed_batch`), blend the views
    (OOF-fitted weights: a view that hurts gets little or none; docs/model.md), and blend in
    the references named by `ensemble.blend_with` (the same way).

    `setup` (folds and the base view's preprocessing) is reused when given; `on_epoch` is
    called after every epoch of every view. `reading` (how the training data's CSVs were
    read; default: as `cfg.data` declares) goes with the model.
    """
    missing = [n for n in cfg.ensemble.blend_with
               if references is None or n not in references.members]
    if missing:
        raise ValueError(f"ensemble.blend_with names {missing}, which were not cross-validated")
    base_view = cfg.features.numeric_scaling
    views = feature_views(cfg)
    setups = {v: setup if setup is not None and v == base_view
              else setup_folds(train, schema, cfg, v) for v in views}
    first = setups[views[0]]
    folds, y = first.folds, first.y
    kept = ~folds.excluded
    model_cfg = cfg.model.replace(params, "model.")
    device = resolve_device(cfg.base.device)
    mlp = {v: cross_validate_mlp(setups[v].features, y, folds, model_cfg, cfg.base.seed,
                                 cfg.ensemble.n_seeds, on_epoch=on_epoch, device=device,
                                 scored=cfg.tune.objective_rows,
                                 seed_batch=seed_batch(cfg))
           for v in views}
    view_weights = blend_weights({v: r.oof[kept] for v, r in mlp.items()}, y[kept])
    oof = {"mlp": sum(view_weights[v] * mlp[v].oof for v in views)}
    for name in cfg.ensemble.blend_with:
        oof[name] = references.oof[name]
    weights = blend_weights({k: v[kept] for k, v in oof.items()}, y[kept])
    final = sum(weights[k] * oof[k] for k in weights)

    model_views = {f"mlp_{v}": setups[v].features.view for v in views}
    members = {f"mlp_{v}": (f"mlp_{v}", mlp_member(mlp[v].trained))
               for v in views}
    member_weights = {f"mlp_{v}": weights["mlp"] * view_weights[v] for v in views}
    for name in cfg.ensemble.blend_with:
        view, fitted = references.view_of(name)
        model_views[view] = fitted
        members[name] = (view, references.members[name])
        member_weights[name] = weights[name]
    model = FinalModel(schema, schema.scale, model_views, members, member_weights,
                       reading or ReadOptions.of(cfg.data))

    per_view = {f"predicted_mlp_{v}": r.oof for v, r in mlp.items()} if len(views) > 1 else {}
    ids = train[schema.id_column].to_numpy()
    oof_frame = pd.DataFrame({oof_id_column(schema.id_column): ids,
                              "fold": folds.fold_of_row(), "excluded_from_fit": folds.excluded,
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
        view_weights=view_weights,
    )


def mlp_member(batches: list[TrainedMLPs]) -> MLPMember | MLPBatches:
    """The trained fold models (of each seed batch) as a final-model member: architecture and
    weights as arrays."""
    members = []
    for trained in batches:
        m = trained.model
        state = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
        members.append(MLPMember(m.architecture(), state, trained.target_mean,
                                 trained.target_std, trained.target_range))
    return members[0] if len(members) == 1 else MLPBatches(members)


def learning_curves(results: dict[str, CVResult], n_folds: int) -> pd.DataFrame:
    """Long-form learning curves: view, epoch, fold, seed, train and validation RMSE."""
    rows = []
    for view, result in results.items():
        first_seed = 0
        for trained in result.trained:
            history = trained.history
            for i, epoch in enumerate(history["epoch"]):
                for m, (tr, va) in enumerate(zip(history["train_rmse"][i],
                                                 history["val_rmse"][i], strict=True)):
                    rows.append({"view": view, "epoch": int(epoch), "fold": m % n_folds,
                                 "seed": first_seed + m // n_folds, "train_rmse": float(tr),
                                 "val_rmse": float(va)})
            first_seed += trained.model.n_models // n_folds
    return pd.DataFrame(rows)
