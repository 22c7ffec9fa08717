"""Tracking against a real MLflow store (SQLite in a temp dir): figures, registry, champion."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image as mpimg
import mlflow
import pandas as pd
import pytest

from pipeline import report
from pipeline.config import TrackingConfig
from pipeline.registry import Registration, lineage, register_final_model
from pipeline.tracking import (
    CHAMPION_METRIC,
    EXPERIMENT_NOTE,
    FinalRun,
    Tracker,
    headline_metrics,
)

from .conftest import REPO
from .test_report import PNG_MAGIC, oof_frame, trials_frame


class Constant(mlflow.pyfunc.PythonModel):
    """A stand-in for the final model: the registry logic does not care what it predicts."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"y": [self.value] * len(model_input)})


@pytest.fixture(scope="module")
def tracker(tmp_path_factory) -> Iterator[Tracker]:
    """One store for the module (creating its tables takes seconds); each test registers
    under its own model names."""
    store = tmp_path_factory.mktemp("mlflow")
    cwd = os.getcwd()
    os.chdir(store)  # the store's artifacts go beside it, in the temp dir
    try:
        yield Tracker(f"sqlite:///{store / 'mlflow.db'}", "test", "train", 7, "abc123")
    finally:
        os.chdir(cwd)


def final_run(tracker: Tracker, score: float) -> FinalRun:
    """A finished final run holding the champion metric and a small logged model."""
    run_id = tracker.client.create_run(tracker.experiment_id, run_name="final model",
                                       tags={**tracker.tags, "run_kind": "final"}).info.run_id
    tracker.client.log_metric(run_id, CHAMPION_METRIC, score)
    mlflow.set_tracking_uri(tracker.uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(score),
                                       pip_requirements=[])
    return FinalRun(run_id, info.model_uri)


LINEAGE = lineage("SalePrice", "log", "fit", "abc123")


def register(tracker: Tracker, final: FinalRun, name: str, alias: str, description: str = "",
             **changes: str) -> Registration:
    """Register as the train stage does, on the module's lineage but for `changes`."""
    return register_final_model(tracker, final, name, alias, {**LINEAGE, **changes},
                                description)


def champion(tracker: Tracker, name: str = "prices", alias: str = "champion") -> str:
    return str(tracker.client.get_model_version_by_alias(name, alias).version)


def test_first_version_becomes_champion_and_only_a_lower_score_takes_the_alias(tracker):
    first = register(tracker, final_run(tracker, 0.30), "prices", "champion")
    assert (first.version, first.promoted, first.previous_version) == ("1", True, None)
    assert champion(tracker) == "1"
    assert "first champion" in first.describe()

    worse = register(tracker, final_run(tracker, 0.40), "prices", "champion")
    assert (worse.version, worse.promoted) == ("2", False)
    assert (worse.previous_version, worse.previous_score) == ("1", pytest.approx(0.30))
    assert champion(tracker) == "1"
    assert "champion stays version 1" in worse.describe()

    tie = register(tracker, final_run(tracker, 0.30), "prices", "champion")
    assert not tie.promoted and champion(tracker) == "1"  # a tie is not a win

    better = register(tracker, final_run(tracker, 0.20), "prices", "champion")
    assert (better.version, better.promoted) == ("4", True)
    assert champion(tracker) == "4"
    assert "beats champion version 1" in better.describe()

    version = tracker.client.get_model_version("prices", "4")
    assert version.tags[CHAMPION_METRIC] == "0.200000"
    assert version.tags["data_hash"] == "abc123"
    assert "mlflow.source.git.commit" in version.tags
    loaded = mlflow.pyfunc.load_model("models:/prices@champion")
    assert loaded.predict(pd.DataFrame({"x": [1]}))["y"].tolist() == [0.20]


def test_the_longest_name_of_every_allowed_character_registers_and_loads_by_its_alias(tracker):
    name = "0Az.-_" + "9" * 249  # 255 characters: letters, digits, '.', '-', '_'
    assert TrackingConfig(registered_model=name).registered_model == name
    result = register(tracker, final_run(tracker, 0.5), name, "champion")
    uri = re.search(r"models:/\S+", result.describe()).group()  # the URI the log prints
    assert uri == f"models:/{name}@champion"
    loaded = mlflow.pyfunc.load_model(uri)
    assert loaded.predict(pd.DataFrame({"x": [1]}))["y"].tolist() == [0.5]


def test_a_champion_without_a_score_is_replaced(tracker):
    # a version registered by hand, from a run that has no oof_rmse, holds the alias
    bare_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    mlflow.set_tracking_uri(tracker.uri)
    with mlflow.start_run(run_id=bare_id):
        bare = mlflow.pyfunc.log_model(name="model", python_model=Constant(0), pip_requirements=[])
    version = mlflow.register_model(bare.model_uri, "unscored", tags=LINEAGE)
    tracker.client.set_registered_model_alias("unscored", "champion", version.version)
    result = register(tracker, final_run(tracker, 0.9), "unscored", "champion")
    assert result.promoted and result.previous_version == "1" and result.previous_score is None
    assert "has no cv_rmse" in result.describe()
    assert champion(tracker, "unscored") == result.version == "2"


def test_registration_is_per_name_and_alias(tracker):
    register(tracker, final_run(tracker, 0.3), "per-name", "champion")
    other = register(tracker, final_run(tracker, 0.9), "per-name", "candidate")
    assert other.promoted and other.previous_version is None  # nothing held that alias
    assert champion(tracker, "per-name") == "1"
    assert champion(tracker, "per-name", "candidate") == "2"
    elsewhere = register(tracker, final_run(tracker, 0.9), "rents", "champion")
    assert (elsewhere.version, elsewhere.promoted) == ("1", True)


def test_figures_become_png_artifacts_under_plots(tracker, tmp_path):
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    figs = {**report.study_figures(trials_frame(), {"lr": 1.0}),
            "predicted_vs_actual": report.predicted_vs_actual(oof_frame(), "log")}
    try:
        tracker.log_figures(run_id, figs)
    finally:
        report.close(figs)
    listed = {a.path for a in tracker.client.list_artifacts(run_id, "plots")}
    assert listed == {"plots/optimisation_history.png", "plots/param_importances.png",
                      "plots/predicted_vs_actual.png"}
    local = tracker.client.download_artifacts(run_id, "plots", str(tmp_path))
    for stem in figs:
        path = f"{local}/{stem}.png"
        with open(path, "rb") as handle:
            assert handle.read(8) == PNG_MAGIC
        assert mpimg.imread(path).shape[0] > 100


def test_describe_says_what_happened():
    kept = Registration("m", "champion", "3", 0.25, False, "2", 0.2)
    assert kept.describe() == ("registered m version 3 (cv_rmse 0.25000); champion stays "
                               "version 2 (0.20000 is not beaten)")
    moved = Registration("m", "champion", "3", 0.15, True, "2", 0.2)
    assert "models:/m@champion -> version 3" in moved.describe()


KILLED_WHILE_LOGGING = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import pandas as pd
    import pipeline.tracking as tracking

    def killed(*args, **kwargs):  # the process dies while MLflow writes the model
        os.kill(os.getpid(), signal.SIGKILL)

    tracking.log_pyfunc = killed
    tracker = tracking.Tracker(sys.argv[1], "test", "train", 7, "abc123")
    frame = pd.DataFrame({"x": [1.0]})
    tracker.log_final_model("final model", {}, {"oof_rmse": 0.1}, {}, Path("model.pkl"),
                            frame, frame, [], {}, model_sha256="0" * 64)
""")


def test_a_run_left_running_by_a_killed_process_is_marked_failed_by_its_stage(tracker):
    """A kill during model logging leaves the final run RUNNING; the next train stage on
    this host sees its process is gone and marks it FAILED. Live runs are left alone."""
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_LOGGING, tracker.uri],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = tracker.client.search_runs(
        [tracker.experiment_id],
        "attributes.status = 'RUNNING' and attributes.run_name = 'final model'")
    assert len(left) == 1 and left[0].data.tags["owner"].endswith(f":{killed_pid(left[0])}")
    live = tracker.client.create_run(tracker.experiment_id, run_name="live",
                                     tags=tracker.tags).info.run_id  # this process's
    other_stage = tracker.client.create_run(
        tracker.experiment_id, tags={**left[0].data.tags, "dvc_stage": "tune"}).info.run_id
    lines = Tracker(tracker.uri, "test", "train", 7, "abc123").fail_abandoned_runs()
    run = tracker.client.get_run(left[0].info.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failed_because"].startswith("left RUNNING by process ")
    assert lines == [f"marked MLflow run {run.info.run_id} (final model) FAILED: process "
                     f"{run.data.tags['owner']} left it RUNNING and is gone"]
    assert tracker.client.get_run(live).info.status == "RUNNING"
    assert tracker.client.get_run(other_stage).info.status == "RUNNING"  # not train's
    for run_id in (live, other_stage):
        tracker.client.set_terminated(run_id)


def killed_pid(run) -> str:
    return run.data.tags["owner"].rpartition(":")[2]


def _trial(tracker: Tracker, parent: str, number: int, state: str, value: float | None,
           fold_scores: list[float], checkpoints: dict[int, float],
           scores: dict[str, float] | None = None) -> mlflow.entities.Run:
    run_id = tracker.log_trial(parent, "study-x", number, state, value, {"lr": 0.01},
                               fold_scores, checkpoints, None, None, scores=scores)
    return tracker.client.get_run(run_id)


def test_trial_runs_pruned_finished_and_tagged_failed_failed_one_headline_name(tracker):
    parent = tracker.start_study_run("study-x", None)
    complete = _trial(tracker, parent, 0, "COMPLETE", 0.21, [0.2, 0.22], {2: 0.3, 4: 0.21},
                      {"cv_rmse_all_rows": 0.25, "cv_rmse_fit_rows": 0.21})
    pruned = _trial(tracker, parent, 1, "PRUNED", 0.5, [], {2: 0.6, 4: 0.5},
                    {"cv_rmse_all_rows": 0.55, "cv_rmse_fit_rows": 0.5})
    failed = _trial(tracker, parent, 2, "FAIL", None, [], {})
    assert [r.info.status for r in (complete, pruned, failed)] == ["FINISHED", "FINISHED",
                                                                   "FAILED"]
    assert [r.data.tags["state"] for r in (complete, pruned, failed)] == [
        "complete", "pruned", "failed"]
    assert complete.data.metrics == {"cv_rmse": 0.21, "fold_0_rmse": 0.2, "fold_1_rmse": 0.22,
                                     "val_rmse": 0.21, "cv_rmse_all_rows": 0.25,
                                     "cv_rmse_fit_rows": 0.21}
    # a pruned trial's partial score must not sort among finished trials' scores
    assert not any(k.startswith("cv_rmse") for k in pruned.data.metrics)
    assert pruned.data.metrics["pruned_at_epoch"] == 4
    curve = tracker.client.get_metric_history(pruned.info.run_id, "val_rmse")
    assert [(m.step, m.value) for m in curve] == [(2, 0.6), (4, 0.5)]  # step = epoch
    for run in (complete, pruned, failed):
        assert run.data.tags["mlflow.parentRunId"] == parent


def test_only_the_best_trial_carries_the_best_trial_tag(tracker):
    parent = tracker.start_study_run("study-best", None)
    ids = [tracker.log_trial(parent, "study-best", n, "COMPLETE", v, {}, [v], {}, None, None)
           for n, v in enumerate([0.3, 0.2])]
    assert tracker.mark_best_trial("study-best", 1) == ids[1]
    # a resumed study finds a better trial: the tag moves
    ids.append(tracker.log_trial(parent, "study-best", 2, "COMPLETE", 0.1, {}, [0.1], {},
                                 None, None))
    assert tracker.mark_best_trial("study-best", 2) == ids[2]
    tags = [tracker.client.get_run(i).data.tags.get("best_trial") for i in ids]
    assert tags == [None, None, "true"]


def test_study_run_ends_with_the_headline_and_a_description(tracker):
    parent = tracker.start_study_run("study-d", None)
    assert "Optuna study study-d" in tracker.client.get_run(parent).data.tags[
        "mlflow.note.content"]
    tracker.end_study_run(parent, {"cv_rmse": 0.2, "finished_trials": 3}, {"lr": 0.01},
                          description="three trials")
    run = tracker.client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.metrics["cv_rmse"] == 0.2
    assert run.data.params == {"best_lr": "0.01"}
    assert run.data.tags["mlflow.note.content"] == "three trials"


def test_experiment_has_a_description_and_a_users_own_stays(tracker, tmp_path):
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert "cv_rmse" in experiment.tags["mlflow.note.content"]
    assert "`scored_rows`" in experiment.tags["mlflow.note.content"]  # says which rows
    old = EXPERIMENT_NOTE.split(" Every run's")[0] + " (an earlier version of it)."
    tracker.client.set_experiment_tag(tracker.experiment_id, "mlflow.note.content", old)
    again = Tracker(tracker.uri, "test", "train", 7, "abc123")  # ours, outdated: replaced
    assert again.client.get_experiment(again.experiment_id).tags[
        "mlflow.note.content"] == EXPERIMENT_NOTE
    tracker.client.set_experiment_tag(tracker.experiment_id, "mlflow.note.content", "mine")
    again = Tracker(tracker.uri, "test", "train", 7, "abc123")
    assert again.client.get_experiment(again.experiment_id).tags["mlflow.note.content"] == "mine"


def test_runs_log_the_training_data_as_a_dataset(tracker):
    frame = pd.DataFrame({"Id": [1, 2, 3], "x": [1.0, None, 3.0], "price": [10.0, 20.0, 30.0]})
    tracker.use_training_data(frame, "data/raw/train.csv", "price")
    try:
        run_id = tracker.start_study_run("study-data", None)
    finally:
        tracker.dataset = None  # the module's other tests log no dataset
    (logged,) = tracker.client.get_run(run_id).inputs.dataset_inputs
    assert logged.dataset.name == "train.csv"
    assert logged.dataset.digest == "abc123"  # the data hash every run is tagged with
    assert "data/raw/train.csv" in logged.dataset.source
    assert {(t.key, t.value) for t in logged.tags} == {("mlflow.data.context", "training")}
    assert '"num_rows": 3' in logged.dataset.profile


def test_tables_are_json_table_artifacts(tracker, tmp_path):
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    tracker.log_tables(run_id, {"fold_scores": pd.DataFrame({"fold": [0, 1],
                                                             "final": [0.1, 0.2]})})
    assert [a.path for a in tracker.client.list_artifacts(run_id)] == ["fold_scores.json"]
    local = tracker.client.download_artifacts(run_id, "fold_scores.json", str(tmp_path))
    table = json.loads(Path(local).read_text())  # MLflow's table format: columns and rows
    assert table == {"columns": ["fold", "final"], "data": [[0, 0.1], [1, 0.2]]}


def test_registered_model_and_version_have_descriptions(tracker):
    result = register(tracker, final_run(tracker, 0.3), "described", "champion",
                                  description="from run x")
    version = tracker.client.get_model_version("described", result.version)
    assert version.description == "from run x"
    model = tracker.client.get_registered_model("described")
    assert "models:/described@champion" in model.description
    tracker.client.update_registered_model("described", description="my own words")
    register(tracker, final_run(tracker, 0.2), "described", "champion")
    assert tracker.client.get_registered_model("described").description == "my own words"


def test_a_champion_from_before_the_rename_is_still_compared(tracker):
    """A final run logged before cv_rmse was the headline carries oof_rmse instead."""
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    tracker.client.log_metric(run_id, "oof_rmse", 0.1)
    mlflow.set_tracking_uri(tracker.uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(0.1),
                                       pip_requirements=[])
    version = mlflow.register_model(info.model_uri, "legacy", tags=LINEAGE)
    tracker.client.set_registered_model_alias("legacy", "champion", version.version)
    worse = register(tracker, final_run(tracker, 0.2), "legacy", "champion")
    assert not worse.promoted and worse.previous_score == pytest.approx(0.1)


def test_a_version_on_another_target_scale_rows_or_data_starts_a_new_lineage(tracker):
    """Scores on the log scale and on the raw scale (or on other rows, another target or
    other data) do not compare: a version differing in any takes the alias as the first of a
    new lineage, and the line says what differed; within a lineage the lower score wins."""
    register(tracker, final_run(tracker, 1.25), "scales", "champion", target_scale="none")
    logged = register(tracker, final_run(tracker, 0.036), "scales", "champion")
    assert logged.promoted and champion(tracker, "scales") == logged.version
    assert logged.new_lineage == ("target_scale none -> log",)
    assert logged.describe() == (
        "registered scales version 2 (cv_rmse 0.03600); champion version 1 differs in "
        "target_scale none -> log, so its cv_rmse (1.25000) does not compare: a new lineage, "
        "models:/scales@champion -> version 2")
    back = register(tracker, final_run(tracker, 1.3), "scales", "champion", target_scale="none")
    assert back.promoted and back.new_lineage == ("target_scale log -> none",)
    same = register(tracker, final_run(tracker, 1.4), "scales", "champion", target_scale="none")
    assert not same.promoted and same.new_lineage == ()  # same lineage, a higher score
    for key, value in (("target", "Rent"), ("scored_rows", "all"), ("data_hash", "other")):
        moved = register(tracker, final_run(tracker, 9.9), "scales", "champion",
                         target_scale="none", **{key: value})
        assert moved.promoted and moved.new_lineage == (f"{key} {LINEAGE[key]} -> {value}",)
        register(tracker, final_run(tracker, 9.9), "scales", "champion", target_scale="none")
    version = tracker.client.get_model_version("scales", back.version)
    assert {k: version.tags[k] for k in LINEAGE} == {**LINEAGE, "target_scale": "none"}


def test_a_champion_without_lineage_tags_is_a_lineage_of_its_own(tracker):
    """A version registered before versions were tagged with what they compare on."""
    old = final_run(tracker, 0.01)
    version = mlflow.register_model(old.model_uri, "untagged")
    tracker.client.set_registered_model_alias("untagged", "champion", version.version)
    new = register(tracker, final_run(tracker, 0.2), "untagged", "champion")
    assert new.promoted and new.new_lineage == (
        "target not recorded -> SalePrice", "target_scale not recorded -> log",
        "scored_rows not recorded -> fit", "data_hash not recorded -> abc123")


@pytest.mark.parametrize("rows, expected", [("fit", 0.11), ("all", 0.12)])
def test_cv_rmse_is_on_the_objective_rows_and_both_figures_keep_their_names(rows, expected):
    assert headline_metrics(0.12, 0.11, rows) == {"cv_rmse": expected, "cv_rmse_all_rows": 0.12,
                                                  "cv_rmse_fit_rows": 0.11}


def test_every_run_is_tagged_with_the_rows_cv_rmse_is_on(tracker):
    scored = Tracker(tracker.uri, "test", "tune", 7, "abc123", scored_rows="fit")
    run_id = scored.start_study_run("study-rows", None)
    run = scored.client.get_run(run_id)
    assert run.data.tags["scored_rows"] == "fit"
    assert "rows not excluded from fitting" in run.data.tags["mlflow.note.content"]
