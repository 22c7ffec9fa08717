"""train: the final model with the best params, over seeds and feature views, blended with the
references; saved with its OOF predictions and curves, then logged to MLflow and registered
(the champion alias moves only if it scores better, or starts a new lineage). The outputs are
written before anything is logged: a logging failure is a warning, never a lost model."""

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
from pipeline.final import (
    FittedModel,
    feature_views,
    fit_final_model,
    learning_curves,
    seed_batch,
    seed_batches,
)
from pipeline.io import (
    atomic_dir,
    check_writable,
    load_pickle,
    read_json,
    save_pickle,
    write_csv,
    write_json,
)
from pipeline.plan import read_plan
from pipeline.progress import steps
from pipeline.reference import References
from pipeline.registry import lineage, register_final_model
from pipeline.runtime import record_time, set_threads, timings_dir
from pipeline.tracking import (
    CHAMPION_METRIC,
    FOLD_CURVES,
    HEADLINE_METRIC,
    FinalRun,
    Tracker,
    headline_metrics,
    rows_scored,
)
from pipeline.tracking_store import resolve_tracking_uri

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, plan_dir: Path, best_params_path: Path,
        references_path: Path, out_dir: Path) -> dict:
    """Write `out_dir`: model.pkl and its SHA-256 record model.pkl.sha256,
    oof_predictions.csv, learning_curves.csv, train_metrics.json; then log the model to
    MLflow and register it (a failure there is a warning: the outputs stay)."""
    started = time.monotonic()
    check_writable(out_dir)  # before the fit, not after it
    set_threads(None, cfg.base.threads)
    plan = read_plan(plan_dir)
    prepared = load_prepared(prepared_dir)
    best = read_json(best_params_path)
    references: References = load_pickle(references_path)
    # a store that cannot be opened stops the stage now (one line, exit 2), not after the fit
    tracker = Tracker(resolve_tracking_uri(cfg.tracking.uri), cfg.tracking.experiment, "train",
                      cfg.base.seed, prepared.data_hash, cfg.tune.objective_rows)
    for line in tracker.fail_abandoned_runs():
        log.info("%s", line)
    cfg = plan.apply(cfg, best["params"])  # seeds and views for the best trial's network
    views = feature_views(cfg)
    n_seeds = cfg.ensemble.n_seeds
    with steps(cfg.cv.n_folds, "fold preprocessing", "folds") as progress:
        setup = setup_folds(prepared.train, prepared.schema, cfg,
                            on_fold=lambda _: progress.update())
    batches = seed_batches(cfg)
    log.info("training %d folds x %d seeds x %d feature views with %s%s", setup.folds.n_folds,
             n_seeds, len(views), report.rounded(best["params"]),
             "" if batches == 1 else " (one seed at a time)" if seed_batch(cfg) == 1
             else f" (in batches of at most {seed_batch(cfg)} seeds)")
    epochs = cfg.model.replace(best["params"], "model.").epochs
    with steps(epochs * len(views) * batches, f"final fit ({setup.folds.n_folds} folds x {n_seeds} "
               f"seeds x {len(views)} views)", "epochs") as progress:
        fitted = fit_final_model(prepared.train, prepared.schema, cfg, best["params"],
                                 references if cfg.ensemble.blend_with else None, setup,
                                 on_epoch=lambda _: progress.update(),
                                 reading=prepared.reading)
    metrics = fitted.metrics
    log.info("MLP (views %s): OOF RMSE %.5f (%.5f without the %d rows excluded from fitting)",
             {k: round(v, 3) for k, v in fitted.view_weights.items()},
             metrics["mlp_oof_rmse"], metrics["mlp_oof_rmse_fit_rows"],
             int(setup.folds.excluded.sum()))
    log.info("final model (weights %s): OOF RMSE %.5f (%.5f without excluded rows)",
             {k: round(v, 3) for k, v in fitted.weights.items()}, metrics["oof_rmse"],
             metrics["oof_rmse_fit_rows"])
    summary = {**metrics, "fold_rmse": fitted.fold_scores, "weights": fitted.weights,
               "view_weights": fitted.view_weights,
               "params": best["params"], "n_seeds": n_seeds,
               "seed_batch": seed_batch(cfg),
               "feature_views": list(views)}
    curves = learning_curves(fitted.mlp, setup.folds.n_folds)
    with atomic_dir(out_dir) as tmp:
        write_csv(tmp / "oof_predictions.csv", fitted.oof)
        write_csv(tmp / "learning_curves.csv", curves)
        write_json(tmp / "train_metrics.json", summary)
        digest = save_pickle(tmp / "model.pkl", fitted.model)
    _track(tracker, cfg, fitted, best, views, prepared, Path(out_dir), references, digest,
           curves)
    record_time(timings_dir(prepared_dir), "train", started)
    return summary


def _track(tracker: Tracker, cfg: Config, fitted: FittedModel, best: dict,
           views: tuple[str, ...], prepared: Prepared, out_dir: Path, references: References,
           model_sha256: str, curves: pd.DataFrame) -> None:
    """Log the final run and register its model, once the outputs are written. Whatever
    fails here (a store gone, a full disk, a table missing, MLflow refusing a value) is one
    warning line: the work is done and in `out_dir`, and the stage still succeeds."""
    schema = prepared.schema
    figs = report.figures(fitted.oof, curves, schema.scale.label)
    try:
        tracker.use_training_data(prepared.train, cfg.data.train, schema.target)
        final = _log_final_run(tracker, cfg, fitted, best, views, prepared, out_dir, figs,
                               references, model_sha256, curves)
    except Exception as exc:  # noqa: BLE001 - logging never fails the stage after the work
        log.warning("could not log the final model to MLflow (%s); the model and its outputs "
                    "are in %s, but not in MLflow", _reason(exc), out_dir)
        return
    finally:
        report.close(figs)
    log.info("logged the final model to MLflow run %s", final.run_id)
    if not cfg.tracking.registered_model:
        return
    score = _cv_rmse(fitted, cfg)
    try:
        registration = register_final_model(
            tracker, final, cfg.tracking.registered_model, cfg.tracking.champion_alias,
            lineage(schema.target, schema.target_scale, cfg.tune.objective_rows,
                    prepared.data_hash),
            f"From run {final.run_id} ({CHAMPION_METRIC} {score:.5f} on "
            f"{rows_scored(cfg.tune.objective_rows)}, study {best['study']}, data "
            f"{prepared.data_hash}).")
    except Exception as exc:  # noqa: BLE001 - the model is logged; only the registry failed
        log.warning("could not register the final model in MLflow's model registry (%s); it "
                    "is in MLflow run %s and in %s", _reason(exc), final.run_id, out_dir)
        return
    log.info("%s", registration.describe())


def _cv_rmse(fitted: FittedModel, cfg: Config) -> float:
    """The final model's `cv_rmse`: its OOF RMSE on the rows tune.objective_rows names."""
    return headline_metrics(fitted.metrics["oof_rmse"], fitted.metrics["oof_rmse_fit_rows"],
                            cfg.tune.objective_rows)[HEADLINE_METRIC]


def _reason(exc: BaseException) -> str:
    """An exception as a few words for a log line: its type and its message's first line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _log_final_run(tracker: Tracker, cfg: Config, fitted: FittedModel, best: dict,
                   views: tuple[str, ...], prepared: Prepared, out_dir: Path,
                   figs: dict[str, Figure], references: References,
                   model_sha256: str, curves: pd.DataFrame) -> FinalRun:
    """The final run: params, scores, OOF predictions, curves, figures and the pyfunc."""
    schema = prepared.schema
    example_in = read_csv(cfg.data.test, _as_served(prepared)).head(5)
    example_out = pd.DataFrame({schema.id_column: example_in[schema.id_column],
                                schema.target: fitted.model.predict_frame(example_in)})
    metrics = fitted.metrics
    own = {**headline_metrics(metrics["oof_rmse"], metrics["oof_rmse_fit_rows"],
                              cfg.tune.objective_rows),
           **{k: v for k, v in metrics.items() if k not in ("oof_rmse", "oof_rmse_fit_rows")}}
    return tracker.log_final_model(
        "final model",
        params={**best["params"], "n_seeds": cfg.ensemble.n_seeds,
                "seed_batch": seed_batch(cfg),
                "n_folds": cfg.cv.n_folds,
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
        input_example=example_in, output_example=example_out,
        artifacts=[out_dir / "oof_predictions.csv", out_dir / "learning_curves.csv"],
        extra_tags={"optuna_study": best["study"],
                    "study_run_id": tracker.find_study_run(best["study"]) or "",
                    "target": schema.target, "target_scale": schema.target_scale},
        model_sha256=model_sha256, figures=figs,
        tables={"fold_scores": report.fold_table(fitted.oof)},
        description=_description(cfg, fitted, best, views))


def _description(cfg: Config, fitted: FittedModel, best: dict, views: tuple[str, ...]) -> str:
    """The final run's description: what was trained, its score, where the details are."""
    blend = " + ".join(f"{w:.3f} x {name}" for name, w in fitted.weights.items())
    return (f"Final model: the MLP with trial {best['trial']}'s params of study "
            f"{best['study']}, {cfg.cv.n_folds} folds x {cfg.ensemble.n_seeds} seeds x "
            f"{len(views)} feature views ({', '.join(views)}), blended as {blend}. "
            f"`{HEADLINE_METRIC}` {_cv_rmse(fitted, cfg):.5f}: the out-of-fold RMSE "
            f"(model scale) on {rows_scored(cfg.tune.objective_rows)}, as the trials' "
            f"`{HEADLINE_METRIC}`; `{HEADLINE_METRIC}_all_rows` and `{HEADLINE_METRIC}_fit_rows`"
            " are the figures on every row and on the rows not excluded from fitting. Per fold"
            " (every validation row): `fold_0_rmse`, ... and the table `fold_scores.json` "
            "(every member). Learning curves (Model metrics tab): `train_rmse` and `val_rmse` "
            f"(on the rows `{HEADLINE_METRIC}` is on) per epoch, the mean over folds; each "
            f"fold's under `{FOLD_CURVES}/`. Plots under `plots/`.")


def _as_served(prepared: Prepared) -> ReadOptions:
    """The CSV files read as a request to the served model arrives (`mlflow models predict`
    reads a CSV with pandas): integer ids as numbers, text ids as text."""
    text_ids = prepared.schema.id_type == "text"
    return replace(prepared.reading, id_column=prepared.schema.id_column if text_ids else None)

