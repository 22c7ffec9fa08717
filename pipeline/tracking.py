"""MLflow runs, params, metrics, artifacts and the served model (the store: tracking_store).

Run structure: one parent run per Optuna study, one child run per trial (params, each fold's
score as `fold_<k>_rmse`, the validation RMSE per checkpoint epoch, the trial's state as a
tag), one run for the final model with the model attached. Every kind of run carries its
headline score under one name, `cv_rmse` (study: its best trial's; trial: its CV score;
final model: its out-of-fold score), always on the rows `tune.objective_rows` names (the
tag `scored_rows`: `fit`, the rows not excluded from fitting, or `all`), so one sort lines
them all up; the figures on either set of rows are `cv_rmse_fit_rows` and
`cv_rmse_all_rows`. A pruned trial is a
normal outcome: its run ends FINISHED with the tag `state=pruned` and no `cv_rmse` (its
partial score would sort among finished ones), and `pruned_at_epoch`. Trial runs are written
with explicit run ids through MlflowClient, never through a global "active run", so parallel
trials cannot collide. Figures arrive drawn (pipeline.report draws them) and are stored as
PNG artifacts under `plots/`; tables as MLflow table artifacts (JSON the UI shows as a grid).

The registry (pipeline.registry) takes the final run's model from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import mlflow
import mlflow.data
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE

from pipeline.serving import log_pyfunc
from pipeline.tracking_store import (
    absolute_store,
    artifact_location,
    check_server,
    open_client,
    tracking_uri,
)

# Optuna trial state -> MLflow run status and the run's `state` tag: a pruned trial finished
# as intended (MLflow draws KILLED as a failure); only a failed trial is FAILED
STATE_TO_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
STATE_TAG = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
MAX_PARAM_LENGTH = 6000
MODEL_SHA256_TAG = "model_sha256"  # the final model file's SHA-256, on its run and model
OWNER_TAG = "owner"  # host:pid of the process that created (or reopened) the run
HEADLINE_METRIC = "cv_rmse"  # on every run kind, on the rows SCORED_ROWS_TAG names; lower wins
CHAMPION_METRIC = HEADLINE_METRIC  # on the final run: its out-of-fold RMSE
SCORED_ROWS_TAG = "scored_rows"  # tune.objective_rows: "fit" or "all"
LEGACY_CHAMPION_METRIC = "oof_rmse"  # what final runs logged before; still read
BEST_TRIAL_TAG = "best_trial"
FOLD_CURVES = "fold_curves"  # prefix of the final model's per-fold learning curves
PLOTS_DIR = "plots"
EXPERIMENT_NOTE_START = "Runs of the tabular MLP pipeline (one DVC stage each)."
EXPERIMENT_NOTE = (
    f"{EXPERIMENT_NOTE_START} `study ...` runs: one per Optuna "
    "study, with a child run per trial (expand the row); `final model` runs: one per `train` "
    "stage, with the model, its learning curves (train_rmse, val_rmse per epoch) and plots. "
    "Every run's headline score is `cv_rmse` (lower is better): sort by it. It is the "
    "out-of-fold RMSE (model scale) on the rows `tune.objective_rows` names, which each run's "
    "tag `scored_rows` says: `fit` (the rows not excluded from fitting) or `all`; "
    "`cv_rmse_fit_rows` and `cv_rmse_all_rows` are the figures on either. A trial's (and so "
    "a study's) is on the validation rows of the folds it trained (`tune.trial_folds`: one "
    "fold on large data, docs/sizing.md); a final model's on every fold's. Pruned trials end "
    "FINISHED with the tag `state=pruned` and have no `cv_rmse`; the best trial is tagged "
    "`best_trial=true`.")
ROWS = {"fit": "the rows not excluded from fitting (tune.objective_rows: fit)",
        "all": "every training row (tune.objective_rows: all)"}


def headline_metrics(all_rows: float, fit_rows: float, rows: str) -> dict[str, float]:
    """`cv_rmse` on the rows `rows` (tune.objective_rows) names, and both figures under
    their own names."""
    return {HEADLINE_METRIC: fit_rows if rows == "fit" else all_rows,
            f"{HEADLINE_METRIC}_all_rows": all_rows, f"{HEADLINE_METRIC}_fit_rows": fit_rows}


def rows_scored(rows: str) -> str:
    """Which rows `cv_rmse` is on, for descriptions."""
    return ROWS[rows]


@dataclass(frozen=True)
class FinalRun:
    """Where the final model went: its run and the logged model's URI."""

    run_id: str
    model_uri: str


def git_commit() -> str:
    """The current commit, suffixed with '-dirty' when tracked files have uncommitted edits."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


class Tracker:
    """A connection to one MLflow experiment, with the tags every run of a stage carries."""

    def __init__(self, uri: str, experiment: str, stage: str, seed: int, data_hash: str,
                 scored_rows: str | None = None) -> None:
        self.uri = absolute_store(uri)
        check_server(uri)
        self.client = open_client(uri)
        self.experiment_id = self._experiment_id(experiment)
        self.stage = stage
        self.scored_rows = scored_rows  # tune.objective_rows: the rows cv_rmse is on
        self.tags = {"mlflow.source.git.commit": git_commit(), "data_hash": data_hash,
                     "dvc_stage": stage, "seed": str(seed), OWNER_TAG: _this_process()}
        if scored_rows is not None:
            self.tags[SCORED_ROWS_TAG] = scored_rows
        self.dataset: DatasetInput | None = None

    def fail_abandoned_runs(self) -> list[str]:
        """Mark FAILED the runs of this stage that a process on this host left RUNNING and
        that no longer exists (killed while logging); return a line for each. Runs owned by
        another host are left alone: whether their process lives cannot be told from here."""
        host = socket.gethostname()
        lines = []
        runs = self.client.search_runs(
            [self.experiment_id], max_results=1000,
            filter_string=f"tags.dvc_stage = '{self.stage}' and attributes.status = 'RUNNING'")
        for run in runs:
            owner = run.data.tags.get(OWNER_TAG, "")
            owner_host, _, pid = owner.rpartition(":")
            if owner_host != host or not pid.isdigit() or owner == _this_process() or \
                    _process_exists(int(pid)):
                continue
            self.client.set_tag(run.info.run_id, "failed_because",
                                f"left RUNNING by process {owner}, which is gone")
            self.client.set_terminated(run.info.run_id, "FAILED")
            lines.append(f"marked MLflow run {run.info.run_id} ({run.info.run_name}) FAILED: "
                         f"process {owner} left it RUNNING and is gone")
        return lines

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            note = found.tags.get(MLFLOW_RUN_NOTE)
            # a user's own description stays; an earlier version of ours is brought up to date
            if note is None or (note.startswith(EXPERIMENT_NOTE_START) and
                                note != EXPERIMENT_NOTE):
                self.client.set_experiment_tag(found.experiment_id, MLFLOW_RUN_NOTE,
                                               EXPERIMENT_NOTE)
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location(self.uri),
                                                 tags={MLFLOW_RUN_NOTE: EXPERIMENT_NOTE})
        except MlflowException:  # another worker created it first
            return self.client.get_experiment_by_name(name).experiment_id

    def use_training_data(self, frame: pd.DataFrame, source: str, target: str) -> None:
        """Log `frame` (the prepared training frame) as every new run's training dataset:
        named after its file, its digest the data hash the runs are tagged with, its source
        the CSV it was read from."""
        with warnings.catch_warnings():  # MLflow's hints about integer columns and about a
            warnings.simplefilter("ignore", UserWarning)  # path it reads two ways say nothing
            dataset = mlflow.data.from_pandas(frame, source=str(source), targets=target,
                                              name=Path(source).name,
                                              digest=self.tags["data_hash"])
            entity = dataset._to_mlflow_entity()
        self.dataset = DatasetInput(entity, [InputTag(MLFLOW_DATASET_CONTEXT, "training")])

    def set_description(self, run_id: str, text: str) -> None:
        """The run's description (the UI's "Description" box and the run list's tooltip)."""
        self.client.set_tag(run_id, MLFLOW_RUN_NOTE, text)

    def _create_run(self, run_name: str, tags: dict[str, str],
                    start_time: int | None = None) -> str:
        run = self.client.create_run(self.experiment_id, start_time=start_time,
                                     run_name=run_name, tags={**self.tags, **tags})
        if self.dataset is not None:
            self.client.log_inputs(run.info.run_id, datasets=[self.dataset])
        return run.info.run_id

    @property
    def key(self) -> str:
        """A short name for this store and experiment, so a study knows its run in each."""
        return hashlib.sha256(f"{self.uri}|{self.experiment_id}".encode()).hexdigest()[:10]

    def run_exists(self, run_id: str) -> bool:
        """Whether the run is in this experiment and not deleted."""
        return self._run_exists(run_id)

    def start_study_run(self, study_name: str, existing_run_id: str | None) -> str:
        """The study's parent run: reopened when the study resumes, else created."""
        if existing_run_id and self._run_exists(existing_run_id):
            self.client.update_run(existing_run_id, status="RUNNING")
            self.client.set_tag(existing_run_id, OWNER_TAG, _this_process())
            return existing_run_id
        rows = f" `{HEADLINE_METRIC}` is on {rows_scored(self.scored_rows)}." \
            if self.scored_rows else ""
        return self._create_run(f"study {study_name}",
                                {"optuna_study": study_name, "run_kind": "study",
                                 MLFLOW_RUN_NOTE: f"Optuna study {study_name}: running; each "
                                                  f"trial is a child run (expand this row).{rows}"})

    def log_trial(self, parent_run_id: str, study_name: str, number: int, state: str,
                  value: float | None, params: dict, fold_scores: list[float],
                  checkpoints: dict[int, float], started: datetime | None,
                  finished: datetime | None, scores: Mapping[str, float] | None = None) -> str:
        """One child run per finished trial: params, `val_rmse` per checkpoint epoch, and
        `cv_rmse` (its objective value) with `fold_<k>_rmse` and `scores` (e.g.
        `cv_rmse_all_rows`, `cv_rmse_fit_rows`) when complete or `pruned_at_epoch` when
        pruned."""
        start_ms = _ms(started) or _now_ms()
        run_id = self._create_run(
            f"trial {number}",
            {MLFLOW_PARENT_RUN_ID: parent_run_id, "optuna_study": study_name,
             "optuna_trial": str(number), "state": STATE_TAG.get(state, state.lower()),
             "run_kind": "trial"},
            start_time=start_ms)
        metrics = [Metric("val_rmse", float(v), start_ms, int(step))
                   for step, v in sorted(checkpoints.items()) if np.isfinite(v)]
        if state == "COMPLETE" and value is not None and np.isfinite(value):
            metrics.append(Metric(HEADLINE_METRIC, float(value), start_ms, 0))
            metrics += [Metric(f"fold_{k}_rmse", float(score), start_ms, 0)
                        for k, score in enumerate(fold_scores)]
            metrics += [Metric(name, float(score), start_ms, 0)
                        for name, score in (scores or {}).items() if np.isfinite(score)]
        if state == "PRUNED" and checkpoints:
            metrics.append(Metric("pruned_at_epoch", float(max(checkpoints)), start_ms, 0))
        self._log_batch(run_id, metrics=metrics, params=params)
        self.client.set_terminated(run_id, STATE_TO_STATUS.get(state, "FAILED"),
                                   end_time=_ms(finished) or _now_ms())
        return run_id

    def mark_best_trial(self, study_name: str, number: int) -> str | None:
        """Tag the best trial's run `best_trial=true` (and only it, in this study); its run id."""
        trials = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.optuna_study = '{study_name}' and tags.run_kind = 'trial'",
            max_results=50_000)
        best = None
        for run in trials:
            is_best = run.data.tags.get("optuna_trial") == str(number)
            if is_best and best is None:
                best = run.info.run_id
                self.client.set_tag(best, BEST_TRIAL_TAG, "true")
            elif BEST_TRIAL_TAG in run.data.tags:  # an earlier best of a resumed study
                self.client.delete_tag(run.info.run_id, BEST_TRIAL_TAG)
        return best

    def end_study_run(self, run_id: str, summary: dict[str, float], best_params: dict,
                      status: str = "FINISHED", description: str | None = None) -> None:
        self._log_batch(run_id, metrics=[Metric(k, float(v), _now_ms(), 0)
                                         for k, v in summary.items()],
                        params={f"best_{k}": v for k, v in best_params.items()},
                        overwrite_params=True)
        if description:
            self.set_description(run_id, description)
        self.client.set_terminated(run_id, status)

    def find_study_run(self, study_name: str) -> str | None:
        """The parent run of a study, if this store has one."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.optuna_study = '{study_name}' and tags.run_kind = 'study'",
            max_results=1)
        return runs[0].info.run_id if runs else None

    def log_figures(self, run_id: str, figures: Mapping[str, Figure]) -> None:
        """Each figure as `plots/<stem>.png` on the run."""
        for stem, fig in figures.items():
            self.client.log_figure(run_id, fig, f"{PLOTS_DIR}/{stem}.png",
                                   save_kwargs={"dpi": 100})

    def log_artifacts(self, run_id: str, paths: Iterable[Path]) -> None:
        for path in paths:
            self.client.log_artifact(run_id, str(path))

    def log_tables(self, run_id: str, tables: Mapping[str, pd.DataFrame]) -> None:
        """Each frame as the table artifact `<name>.json` (a grid in the UI's artifact view)."""
        for name, frame in tables.items():
            self.client.log_table(run_id, frame, f"{name}.json")

    def log_final_model(self, run_name: str, params: dict, metrics: dict[str, float],
                        curves: Mapping[str, Mapping[int, float]], model_path: Path,
                        input_example: pd.DataFrame, output_example: pd.DataFrame,
                        artifacts: Iterable[Path], extra_tags: dict[str, str],
                        model_sha256: str,
                        figures: Mapping[str, Figure] | None = None,
                        tables: Mapping[str, pd.DataFrame] | None = None,
                        description: str | None = None) -> FinalRun:
        """The final model's run: params, scores, per-epoch curves (metric name -> {epoch:
        value}), artifacts, tables, figures and the pyfunc model; the run and the logged
        model tagged with the model file's SHA-256."""
        tags = {**extra_tags, "run_kind": "final", MODEL_SHA256_TAG: model_sha256}
        if description:
            tags[MLFLOW_RUN_NOTE] = description
        run_id = self._create_run(run_name, tags)
        try:
            now = _now_ms()
            batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
            for name, values in curves.items():
                batch += [Metric(name, float(v), now, int(step)) for step, v in values.items()
                          if np.isfinite(v)]
            self._log_batch(run_id, metrics=batch, params=params)
            self.log_artifacts(run_id, artifacts)
            self.log_tables(run_id, tables or {})
            self.log_figures(run_id, figures or {})
            with tracking_uri(self.uri), mlflow.start_run(run_id=run_id):
                info = log_pyfunc(model_path, input_example, output_example)
            self.client.set_logged_model_tags(info.model_id, {MODEL_SHA256_TAG: model_sha256})
        except Exception as exc:
            with contextlib.suppress(Exception):  # the store may be what failed
                self.client.set_tag(run_id, "failed_because", str(exc)[:500])
                self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        return FinalRun(run_id, info.model_uri)

    def _run_exists(self, run_id: str) -> bool:
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        return run.info.experiment_id == self.experiment_id and \
            run.info.lifecycle_stage == "active"

    def _log_batch(self, run_id: str, metrics: list[Metric] = (), params: dict | None = None,
                   overwrite_params: bool = False) -> None:
        params = params or {}
        if overwrite_params:  # a resumed study run already holds best_* params: keep the first
            existing = self.client.get_run(run_id).data.params
            params = {k: v for k, v in params.items() if k not in existing}
        param_list = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for i in range(0, len(param_list), 100):  # MLflow's per-request limits
            self.client.log_batch(run_id, params=param_list[i:i + 100])
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=list(metrics[i:i + 1000]))


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)
