"""One function per dvc.yaml stage: read inputs, call the pure code, write outputs atomically.

Paths come from the CLI (and so from dvc.yaml); settings from the Config. Progress goes to
`logging`; the CLI decides how it is shown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline import workflow
from pipeline.config import Config, to_dict, with_overrides
from pipeline.data import DataError, Schema, describe_schema, load_competition, read_csv
from pipeline.ensemble import FinalModel
from pipeline.features import validate_feature_config
from pipeline.io import (
    atomic_dir,
    load_pickle,
    read_json,
    safe_url,
    save_pickle,
    write_csv,
    write_json,
    write_parquet,
)
from pipeline.submission import build_submission, validate_submission, write_submission

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pipeline.tracking import FinalRun, Tracker

log = logging.getLogger("pipeline")


@dataclass
class Prepared:
    """The prepare stage's output, loaded."""

    train: pd.DataFrame
    test: pd.DataFrame
    schema: Schema
    data_hash: str


# --- prepare -------------------------------------------------------------------------------

def prepare(cfg: Config, out_dir: Path) -> Prepared:
    """Validate the raw CSVs, infer column kinds, write typed frames and the schema."""
    from pipeline.tracking import file_hash

    train, test, schema = load_competition(cfg.data)
    try:
        validate_feature_config(schema, cfg.features)
    except ValueError as exc:
        raise DataError("params.yaml", str(exc)) from exc
    if cfg.data.sample_submission:
        sample = read_csv(cfg.data.sample_submission, schema.text_columns)
        expected = [cfg.data.id_column, cfg.data.target]
        if list(sample.columns) != expected:
            raise DataError(cfg.data.sample_submission, f"columns are {list(sample.columns)}, "
                            f"expected {expected}")
        if sorted(sample[cfg.data.id_column]) != sorted(test[cfg.data.id_column]):
            raise DataError(cfg.data.sample_submission, "ids differ from the test file's ids",
                            cfg.data.id_column)
    data_hash = file_hash([cfg.data.train, cfg.data.test])
    log.info("%s: %d rows; %s: %d rows", cfg.data.train, len(train), cfg.data.test, len(test))
    for line in describe_schema(schema).splitlines():
        log.info("%s", line)
    for note in schema.warnings:
        log.warning("check: %s", note)
    with atomic_dir(out_dir) as tmp:
        write_parquet(tmp / "train.parquet", train)
        write_parquet(tmp / "test.parquet", test)
        (tmp / "schema.json").write_text(schema.to_json() + "\n", encoding="utf-8")
        write_json(tmp / "meta.json", {"data_hash": data_hash, "train_rows": len(train),
                                       "test_rows": len(test)})
    log.info("column kinds and notes: %s", Path(out_dir) / "schema.json")
    return Prepared(train, test, schema, data_hash)


def load_prepared(prepared_dir: Path) -> Prepared:
    prepared_dir = Path(prepared_dir)
    schema = Schema.from_json((prepared_dir / "schema.json").read_text(encoding="utf-8"))
    return Prepared(
        train=pd.read_parquet(prepared_dir / "train.parquet"),
        test=pd.read_parquet(prepared_dir / "test.parquet"),
        schema=schema,
        data_hash=read_json(prepared_dir / "meta.json")["data_hash"],
    )


# --- tune ----------------------------------------------------------------------------------

def default_storage(storage_dir: Path) -> str:
    return f"sqlite:///{Path(storage_dir) / 'optuna.db'}"


def resolve_storage(cfg: Config, storage_dir: Path) -> str:
    """OPTUNA_STORAGE if set, else params' tune.storage, else SQLite under storage_dir."""
    url = os.environ.get("OPTUNA_STORAGE") or cfg.tune.storage
    if url:
        return url
    Path(storage_dir).mkdir(parents=True, exist_ok=True)
    return default_storage(storage_dir)


@dataclass
class Tuning:
    """An open study with its MLflow parent run: what the tune stage and its workers share."""

    study: Any  # optuna.Study (optuna is imported by pipeline.tune only)
    storage: str
    name: str
    tracker: Any  # pipeline.tracking.Tracker
    parent_run: str
    objective: Callable[[Any], float]
    on_trial: Callable[[Any], None]


def open_tuning(cfg: Config, prepared_dir: Path, storage_dir: Path,
                worker: str | None = None) -> Tuning:
    """Open (or create) the study and its MLflow parent run; build the objective."""
    from pipeline import tune as tuning
    from pipeline.tracking import Tracker, resolve_tracking_uri

    tuning.quiet_optuna()
    prepared = load_prepared(prepared_dir)
    setup = workflow.setup_folds(prepared.train, prepared.schema, cfg)
    url = resolve_storage(cfg, storage_dir)
    storage = tuning.make_storage(url, cfg.tune)
    name = tuning.study_name(cfg, prepared.data_hash)
    study = tuning.open_study(storage, name, cfg.base.seed, cfg.tune.n_startup_trials,
                              cfg.tune.pruner, worker=worker)
    tracker = Tracker(resolve_tracking_uri(cfg.tracking.uri), cfg.tracking.experiment,
                      "tune" if worker is None else "tune-worker", cfg.base.seed,
                      prepared.data_hash)
    parent = study_parent_run(study, storage, tracker, name)

    def on_trial(record: tuning.TrialRecord) -> None:
        tracker.log_trial(parent, name, record.number, record.state, record.value,
                          record.params, record.fold_scores, record.checkpoints,
                          record.started, record.finished)
        finished = tuning.finished_trials(study)
        complete = tuning.trial_counts(study).get("COMPLETE", 0)
        best = study.best_value if complete else float("nan")
        value = f"{record.value:.5f}" if record.value is not None else "-"
        log.info("trial %d %s: %s (best %.5f) [%d/%d]", record.number, record.state.lower(),
                 value, best, finished, cfg.tune.n_trials)

    objective = tuning.make_objective(setup.features, setup.y, setup.folds, cfg)
    return Tuning(study, url, name, tracker, parent, objective, on_trial)


def study_parent_run(study: Any, storage: Any, tracker: Any, name: str,
                     wait_seconds: float = 60.0) -> str:
    """The study's one MLflow parent run, however many workers open the study at once.

    Its id is a study attribute per tracking store. When it is missing, one worker wins the
    right to create it (an atomic claim in the study storage: a study named after it, deleted
    once the id is recorded) and the others wait for it.
    """
    import time

    from pipeline import tune as tuning

    attr = f"{tuning.PARENT_RUN_ATTR}:{tracker.key}"
    run_id = tuning.get_study_attr(study, attr)
    if run_id and tracker.run_exists(run_id):
        return tracker.start_study_run(name, run_id)
    claim = f"{name}:{attr}"
    if tuning.claim_once(storage, claim):
        # the claim is released once the id is recorded, so winning it may also mean that
        # the previous holder has just finished: look again before creating a run
        run_id = tuning.get_study_attr(study, attr)
        if not (run_id and tracker.run_exists(run_id)):
            run_id = tracker.start_study_run(name, None)
            tuning.set_study_attr(study, attr, run_id)
        tuning.release_claim(storage, claim)
        return run_id
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        run_id = tuning.get_study_attr(study, attr)
        if run_id and tracker.run_exists(run_id):
            return run_id
        time.sleep(0.5)
    # the claimant died before recording its run, or the run was deleted since
    run_id = tracker.find_study_run(name) or tracker.start_study_run(name, None)
    tuning.set_study_attr(study, attr, run_id)
    return run_id


def tune(cfg: Config, prepared_dir: Path, out_dir: Path, storage_dir: Path) -> dict:
    """Run (or resume) the Optuna study until it holds tune.n_trials finished trials, with
    any workers sharing it; write best_params.json and trials.csv from the study."""
    from pipeline import tune as tuning

    t = open_tuning(cfg, prepared_dir, storage_dir)
    study, name = t.study, t.name
    log.info("study %s in %s: %d of %d trials already finished", name, safe_url(t.storage),
             tuning.finished_trials(study), cfg.tune.n_trials)
    status = "FAILED"
    try:
        tuning.run_study(study, t.objective, cfg.tune.n_trials, cfg.tune.timeout_minutes,
                         cfg.tune.n_jobs, t.on_trial, wait_for_others=True)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        summary = {"finished_trials": tuning.finished_trials(study)}
        best_params = {}
        try:
            best = tuning.best_trial(study)
            summary["best_cv_rmse"] = best.value
            best_params = best.params
        except RuntimeError:
            pass
        t.tracker.end_study_run(t.parent_run, summary, best_params, status)

    best = tuning.best_trial(study)
    result = {"study": name, "storage": safe_url(t.storage), "trial": best.number,
              "value": best.value, "fold_scores": best.fold_scores, "params": best.params,
              "model": to_dict(with_overrides(cfg.model, best.params)),
              "mlflow_parent_run_id": t.parent_run}
    trials = pd.DataFrame(tuning.trials_table(study))
    write_csv(Path(out_dir) / "trials.csv", trials)
    importances, why_not = tuning.param_importances(study, cfg.base.seed)
    if why_not:
        log.info("no parameter importances plot: %s", why_not)
    _log_study_figures(t.tracker, t.parent_run, trials, importances)
    t.tracker.log_metrics(t.parent_run, {f"importance_{k}": v for k, v in importances.items()})
    t.tracker.log_artifacts(t.parent_run, [Path(out_dir) / "trials.csv"])
    write_json(Path(out_dir) / "best_params.json", result)
    return result


@dataclass
class WorkerReport:
    """What one tune worker did."""

    worker: str
    study: str
    ran: dict[str, int]  # trial state -> how many this worker ran
    study_counts: dict[str, int]  # trial state -> how many the study holds

    def line(self, n_trials: int) -> str:
        ran = sum(self.ran.values())
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.ran.items())) or "none"
        finished = self.study_counts.get("COMPLETE", 0) + self.study_counts.get("PRUNED", 0)
        return (f"worker {self.worker} ran {ran} trials ({states}); study {self.study} holds "
                f"{finished} finished of {n_trials}")


def tune_worker(cfg: Config, prepared_dir: Path, storage_dir: Path,
                max_trials: int | None = None) -> WorkerReport:
    """Contribute trials to the shared study until it holds tune.n_trials finished ones (or
    this worker ran `max_trials`); write no stage output: the tune stage does that."""
    from pipeline import tune as tuning

    me = tuning.worker_id()
    t = open_tuning(cfg, prepared_dir, storage_dir, worker=me)
    if t.storage.startswith("sqlite"):
        log.warning("the study lives in SQLite (%s): parallel workers may stop on 'database is "
                    "locked'; use PostgreSQL (or a journal file on one machine), see README, "
                    "Scaling out", t.storage)
    log.info("worker %s joins study %s in %s: %d of %d trials finished", me, t.name,
             safe_url(t.storage), tuning.finished_trials(t.study), cfg.tune.n_trials)
    ran = tuning.run_study(t.study, t.objective, cfg.tune.n_trials, cfg.tune.timeout_minutes,
                           cfg.tune.n_jobs, t.on_trial, max_trials=max_trials)
    counts: dict[str, int] = {}
    for record in ran:
        counts[record.state] = counts.get(record.state, 0) + 1
    return WorkerReport(me, t.name, counts, tuning.trial_counts(t.study))


def _log_study_figures(tracker: Tracker, run_id: str, trials: pd.DataFrame,
                       importances: dict[str, float]) -> None:
    """The optimisation history and, when there are some, the parameter importances."""
    from pipeline import report

    figs = report.study_figures(trials, importances)
    try:
        tracker.log_figures(run_id, figs)
    finally:
        report.close(figs)


# --- train ---------------------------------------------------------------------------------

def train(cfg: Config, prepared_dir: Path, best_params_path: Path, references_path: Path,
          out_dir: Path) -> dict:
    """Train the final model with the best params; save it, its OOF predictions and curves;
    log it to MLflow and register it (the champion alias moves only if it scores better)."""
    from pipeline import report
    from pipeline.tracking import Tracker, resolve_tracking_uri

    prepared = load_prepared(prepared_dir)
    best = read_json(best_params_path)
    references = load_pickle(references_path)
    setup = workflow.setup_folds(prepared.train, prepared.schema, cfg)
    views = cfg.ensemble.feature_views or (cfg.features.numeric_scaling,)
    log.info("training %d folds x %d seeds x %d feature views with %s", setup.folds.n_folds,
             cfg.ensemble.n_seeds, len(views), best["params"])
    fitted = workflow.fit_final_model(prepared.train, prepared.schema, cfg, best["params"],
                                      references if cfg.ensemble.blend_with else None, setup)
    metrics = fitted.metrics
    log.info("MLP: OOF RMSE %.5f (%.5f without the %d rows excluded from fitting)",
             metrics["mlp_oof_rmse"], metrics["mlp_oof_rmse_fit_rows"],
             int(setup.folds.excluded.sum()))
    log.info("final model (weights %s): OOF RMSE %.5f (%.5f without excluded rows)",
             {k: round(v, 3) for k, v in fitted.weights.items()}, metrics["oof_rmse"],
             metrics["oof_rmse_fit_rows"])
    summary = {**metrics, "fold_rmse": fitted.fold_scores, "weights": fitted.weights,
               "params": best["params"]}
    out_dir = Path(out_dir)
    write_csv(out_dir / "oof_predictions.csv", fitted.oof)
    curves = workflow.learning_curves(fitted.mlp, setup.folds.n_folds)
    write_csv(out_dir / "learning_curves.csv", curves)
    write_json(out_dir / "train_metrics.json", summary)
    save_pickle(out_dir / "model.pkl", fitted.model)

    schema = prepared.schema
    tracker = Tracker(resolve_tracking_uri(cfg.tracking.uri), cfg.tracking.experiment, "train",
                      cfg.base.seed, prepared.data_hash)
    figs = report.figures(fitted.oof, curves, cfg.data.log_target)
    try:
        final = _log_final_model(tracker, cfg, fitted, best, views, schema, out_dir, figs,
                                 references)
    finally:
        report.close(figs)
    log.info("logged the final model to MLflow run %s", final.run_id)
    if cfg.tracking.registered_model:
        registration = tracker.register_final_model(final, cfg.tracking.registered_model,
                                                    cfg.tracking.champion_alias)
        log.info("%s", registration.describe())
    return summary


def _log_final_model(tracker: Tracker, cfg: Config, fitted: workflow.FittedModel, best: dict,
                     views: tuple[str, ...], schema: Schema, out_dir: Path,
                     figs: dict[str, Figure], references: workflow.References) -> FinalRun:
    """The final run: params, scores, OOF predictions, curves, figures and the pyfunc."""
    from pipeline.report import reference_key

    raw_test = read_csv(cfg.data.test, schema.text_columns)
    example_in = raw_test.head(5)
    example_out = pd.DataFrame({schema.id_column: example_in[schema.id_column],
                                schema.target: fitted.model.predict_frame(example_in)})
    metrics = fitted.metrics
    return tracker.log_final_model(
        "final model",
        params={**best["params"], "n_seeds": cfg.ensemble.n_seeds, "n_folds": cfg.cv.n_folds,
                "feature_views": ",".join(views),
                "blend_with": ",".join(cfg.ensemble.blend_with) or "none"},
        metrics={**metrics, **{f"weight_{k}": v for k, v in fitted.weights.items()},
                 # the references on the same folds, so the MLflow UI compares them too
                 **{f"{reference_key(name)}_{k}": v
                    for name, scores in references.scores.items()
                    for k, v in scores.items() if k != "fold_rmse"}},
        step_metrics={"fold_rmse": fitted.fold_scores},
        model_path=out_dir / "model.pkl",
        signature_frame=_signature_frame(cfg, raw_test, schema.text_columns),
        input_example=example_in, output_example=example_out,
        artifacts=[out_dir / "oof_predictions.csv", out_dir / "learning_curves.csv"],
        extra_tags={"optuna_study": best["study"],
                    "study_run_id": best.get("mlflow_parent_run_id", "")},
        figures=figs)


def _signature_frame(cfg: Config, raw_test: pd.DataFrame,
                     text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Raw train (minus target) and test rows together, as pandas reads them: an integer
    column with a gap in either file is float64, so the served model's signature accepts
    missing values wherever the competition's data has them, and test.csv as it is."""
    raw_train = read_csv(cfg.data.train, text_columns).drop(columns=[cfg.data.target])
    return pd.concat([raw_train, raw_test], ignore_index=True)


# --- reference -----------------------------------------------------------------------------

def reference(cfg: Config, prepared_dir: Path, out_dir: Path) -> dict:
    """Cross-validate the reference models on the MLP's folds and features; keep the fitted
    fold models so the train stage can blend them in."""
    prepared = load_prepared(prepared_dir)
    setup = workflow.setup_folds(prepared.train, prepared.schema, cfg)
    refs = workflow.score_references(prepared.train, prepared.schema, cfg, setup)
    for name, s in refs.scores.items():
        log.info("reference %s: OOF RMSE %.5f (%.5f without excluded rows)", name,
                 s["oof_rmse"], s["oof_rmse_fit_rows"])
    out_dir = Path(out_dir)
    write_csv(out_dir / "oof_predictions.csv",
              workflow.references_frame(refs, prepared.train, prepared.schema, setup.y))
    write_json(out_dir / "reference_metrics.json", refs.scores)
    save_pickle(out_dir / "reference_models.pkl", refs)
    return refs.scores


# --- predict -------------------------------------------------------------------------------

def predict(cfg: Config, model_path: Path, out_path: Path) -> pd.DataFrame:
    """Predict the raw test file, check the submission against the sample, write it."""
    model: FinalModel = load_pickle(model_path)
    schema = model.schema
    raw_test = read_csv(cfg.data.test, schema.text_columns)
    predictions = model.predict_frame(raw_test, source=cfg.data.test)
    submission = build_submission(raw_test[schema.id_column], predictions, schema.id_column,
                                  schema.target)
    sample = (read_csv(cfg.data.sample_submission, schema.text_columns)
              if cfg.data.sample_submission else None)
    validate_submission(submission, raw_test[schema.id_column], sample,
                        positive=cfg.data.log_target is True,
                        sample_path=cfg.data.sample_submission or "",
                        non_negative=cfg.data.log_target == "log1p")
    write_submission(out_path, submission)
    log.info("wrote %s: %d rows", out_path, len(submission))
    return submission


# --- evaluate ------------------------------------------------------------------------------

def evaluate(cfg: Config, train_dir: Path, reference_dir: Path, best_params_path: Path,
             metrics_path: Path, plots_dir: Path, curve_path: Path | None = None) -> dict:
    """Put the model's scores beside the references' and draw the diagnostic plots; write
    the learning curve averaged over folds for `dvc plots`."""
    from pipeline import report

    train_dir = Path(train_dir)
    summary = report.metrics_summary(read_json(train_dir / "train_metrics.json"),
                                     read_json(Path(reference_dir) / "reference_metrics.json"),
                                     read_json(best_params_path))
    oof = pd.read_csv(train_dir / "oof_predictions.csv")
    history = pd.read_csv(train_dir / "learning_curves.csv")
    figs = report.figures(oof, history, cfg.data.log_target)
    try:
        with atomic_dir(plots_dir) as tmp:
            for stem, fig in figs.items():
                fig.savefig(tmp / f"{stem}.png", dpi=100)
    finally:
        report.close(figs)
    if curve_path is not None:
        write_csv(curve_path, report.mean_learning_curve(history))
    write_json(metrics_path, summary)
    return summary
