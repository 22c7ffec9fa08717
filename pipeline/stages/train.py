"""train: the final model with the best params, over seeds and feature views, blended with the
references; saved with its OOF predictions and curves, logged to MLflow and registered (the
champion alias moves only if it scores better)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from pipeline import report
from pipeline.config import Config
from pipeline.cv import setup_folds
from pipeline.data.prepared import Prepared, load_prepared
from pipeline.data.read import ReadOptions, read_csv
from pipeline.final import FittedModel, feature_views, fit_final_model, learning_curves
from pipeline.io import atomic_dir, load_pickle, read_json, save_pickle, write_csv, write_json
from pipeline.plan import read_plan
from pipeline.progress import steps
from pipeline.reference import References
from pipeline.registry import register_final_model
from pipeline.runtime import record_time, set_threads
from pipeline.tracking import (
    CHAMPION_METRIC,
    FOLD_CURVES,
    HEADLINE_METRIC,
    FinalRun,
    Tracker,
)
from pipeline.tracking_store import resolve_tracking_uri

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, plan_dir: Path, best_params_path: Path,
        references_path: Path, out_dir: Path) -> dict:
    """Write `out_dir`: model.pkl and its SHA-256 record model.pkl.sha256,
    oof_predictions.csv, learning_curves.csv, train_metrics.json."""
    started = time.monotonic()
    set_threads(None, cfg.base.threads)
    plan = read_plan(plan_dir)
    prepared = load_prepared(prepared_dir)
    best = read_json(best_params_path)
    references: References = load_pickle(references_path)
    views = feature_views(cfg)
    cfg = plan.apply(cfg)
    n_seeds = cfg.ensemble.n_seeds
    with steps(cfg.cv.n_folds, "fold preprocessing", "folds") as progress:
        setup = setup_folds(prepared.train, prepared.schema, cfg,
                            on_fold=lambda _: progress.update())
    log.info("training %d folds x %d seeds x %d feature views with %s", setup.folds.n_folds,
             n_seeds, len(views), report.rounded(best["params"]))
    epochs = cfg.model.replace(best["params"], "model.").epochs
    with steps(epochs * len(views), f"final fit ({setup.folds.n_folds} folds x {n_seeds} "
               f"seeds x {len(views)} views)", "epochs") as progress:
        fitted = fit_final_model(prepared.train, prepared.schema, cfg, best["params"],
                                 references if cfg.ensemble.blend_with else None, setup,
                                 on_epoch=lambda _: progress.update(),
                                 reading=prepared.reading)
    metrics = fitted.metrics
    log.info("MLP: OOF RMSE %.5f (%.5f without the %d rows excluded from fitting)",
             metrics["mlp_oof_rmse"], metrics["mlp_oof_rmse_fit_rows"],
             int(setup.folds.excluded.sum()))
    log.info("final model (weights %s): OOF RMSE %.5f (%.5f without excluded rows)",
             {k: round(v, 3) for k, v in fitted.weights.items()}, metrics["oof_rmse"],
             metrics["oof_rmse_fit_rows"])
    summary = {**metrics, "fold_rmse": fitted.fold_scores, "weights": fitted.weights,
               "params": best["params"], "n_seeds": n_seeds, "feature_views": list(views)}
    curves = learning_curves(fitted.mlp, setup.folds.n_folds)
    tracker = Tracker(resolve_tracking_uri(cfg.tracking.uri), cfg.tracking.experiment, "train",
                      cfg.base.seed, prepared.data_hash)
    for line in tracker.fail_abandoned_runs():
        log.info("%s", line)
    tracker.use_training_data(prepared.train, cfg.data.train, prepared.schema.target)
    with atomic_dir(out_dir) as tmp:
        write_csv(tmp / "oof_predictions.csv", fitted.oof)
        write_csv(tmp / "learning_curves.csv", curves)
        write_json(tmp / "train_metrics.json", summary)
        digest = save_pickle(tmp / "model.pkl", fitted.model)
        figs = report.figures(fitted.oof, curves, prepared.schema.scale.label)
        try:
            final = _log_final_run(tracker, cfg, fitted, best, views, prepared, tmp, figs,
                                   references, digest, curves)
        finally:
            report.close(figs)
    log.info("logged the final model to MLflow run %s", final.run_id)
    if cfg.tracking.registered_model:
        registration = register_final_model(
            tracker, final, cfg.tracking.registered_model, cfg.tracking.champion_alias,
            f"From run {final.run_id} ({CHAMPION_METRIC} {metrics['oof_rmse']:.5f}, study "
            f"{best['study']}, data {prepared.data_hash}).")
        log.info("%s", registration.describe())
    record_time("train", started)
    return summary


def _log_final_run(tracker: Tracker, cfg: Config, fitted: FittedModel, best: dict,
                   views: tuple[str, ...], prepared: Prepared, out_dir: Path,
                   figs: dict[str, Figure], references: References,
                   model_sha256: str, curves: pd.DataFrame) -> FinalRun:
    """The final run: params, scores, OOF predictions, curves, figures and the pyfunc."""
    schema = prepared.schema
    served = _as_served(prepared)
    raw_test = read_csv(cfg.data.test, served)
    example_in = raw_test.head(5)
    example_out = pd.DataFrame({schema.id_column: example_in[schema.id_column],
                                schema.target: fitted.model.predict_frame(example_in)})
    own = {HEADLINE_METRIC if k == "oof_rmse" else k: v for k, v in fitted.metrics.items()}
    return tracker.log_final_model(
        "final model",
        params={**best["params"], "n_seeds": cfg.ensemble.n_seeds, "n_folds": cfg.cv.n_folds,
                "feature_views": ",".join(views),
                "blend_with": ",".join(cfg.ensemble.blend_with) or "none"},
        metrics={**own, **{f"weight_{k}": v for k, v in fitted.weights.items()},
                 **{f"fold_{k}_rmse": v for k, v in enumerate(fitted.fold_scores)},
                 # the references on the same folds, so the MLflow UI compares them too
                 **{f"{report.reference_key(name)}_{k}": v
                    for name, scores in references.scores.items()
                    for k, v in scores.items() if k != "fold_rmse"}},
        curves=report.curve_metrics(curves, FOLD_CURVES),
        model_path=out_dir / "model.pkl",
        signature_frame=_signature_frame(cfg, raw_test, served),
        input_example=example_in, output_example=example_out,
        artifacts=[out_dir / "oof_predictions.csv", out_dir / "learning_curves.csv"],
        extra_tags={"optuna_study": best["study"],
                    "study_run_id": tracker.find_study_run(best["study"]) or ""},
        model_sha256=model_sha256, figures=figs,
        tables={"fold_scores": report.fold_table(fitted.oof)},
        description=_description(cfg, fitted, best, views))


def _description(cfg: Config, fitted: FittedModel, best: dict, views: tuple[str, ...]) -> str:
    """The final run's description: what was trained, its score, where the details are."""
    blend = " + ".join(f"{w:.3f} x {name}" for name, w in fitted.weights.items())
    return (f"Final model: the MLP with trial {best['trial']}'s params of study "
            f"{best['study']}, {cfg.cv.n_folds} folds x {cfg.ensemble.n_seeds} seeds x "
            f"{len(views)} feature views ({', '.join(views)}), blended as {blend}. "
            f"`{HEADLINE_METRIC}` {fitted.metrics['oof_rmse']:.5f} (out-of-fold RMSE, model "
            "scale); per fold: `fold_0_rmse`, ... and the table `fold_scores.json` (every "
            "member). Learning curves (Model metrics tab): `train_rmse` and `val_rmse` per "
            f"epoch, the mean over folds; each fold's under `{FOLD_CURVES}/`. Plots under "
            "`plots/`.")


def _as_served(prepared: Prepared) -> ReadOptions:
    """The CSV files read as a request to the served model arrives (`mlflow models predict`
    reads a CSV with pandas): integer ids as numbers, text ids as text."""
    text_ids = prepared.schema.id_type == "text"
    return replace(prepared.reading, id_column=prepared.schema.id_column if text_ids else None)


def _signature_frame(cfg: Config, raw_test: pd.DataFrame, served: ReadOptions) -> pd.DataFrame:
    """Raw train (minus target) and test rows together, as pandas reads them: an integer
    column with a gap in either file is float64, so the served model's signature accepts
    missing values wherever the competition's data has them, and test.csv as it is."""
    raw_train = read_csv(cfg.data.train, served).drop(columns=[cfg.data.target])
    return pd.concat([raw_train, raw_test], ignore_index=True)
