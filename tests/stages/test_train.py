"""The train stage through the command line: it loads the reference models only when their
SHA-256 matches the record the reference stage wrote beside them; its outputs are written
before MLflow sees them, and a logging failure is a warning, never a lost model; a model
that cannot be written is one line, and the previous model stays."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import read_json, save_pickle, write_json
from pipeline.stages import plan, prepare, reference
from pipeline.tracking_store import tracking_uri

from ..conftest import (
    file_size_limit,
    leftovers,
    make_houses,
    run_cli,
    small_params,
    unwritable,
    write_competition,
)


def test_train_refuses_reference_models_whose_sha256_is_not_the_recorded_one(tmp_path,
                                                                              capsys):
    write_competition(tmp_path / "raw", make_houses(60, seed=1),
                      make_houses(20, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw",
                          tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(tmp_path / "params.yaml")
    prepare.run(cfg, tmp_path / "prepared")
    plan.run(cfg, tmp_path / "prepared", tmp_path / "plan")
    write_json(tmp_path / "best_params.json", {"params": {}, "study": "s"})
    references = tmp_path / "reference" / "reference_models.pkl"
    save_pickle(references, {"stand-in": "for the fitted fold models"})
    references.write_bytes(references.read_bytes().replace(b"stand-in", b"replaced"))
    code = main(["--params", str(tmp_path / "params.yaml"), "-q", "train", "--prepared",
                 str(tmp_path / "prepared"), "--plan", str(tmp_path / "plan"),
                 "--best-params", str(tmp_path / "best_params.json"),
                 "--references", str(references), "--out", str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {references}: its SHA-256 (")
    assert "is not the one recorded in reference_models.pkl.sha256" in err
    assert not (tmp_path / "models").exists()


def ready_to_train(tmp_path: Path, monkeypatch, test: pd.DataFrame | None = None,
                   **sections: dict) -> list[str]:
    """A project in tmp_path (the working directory: MLflow's artifacts and the stages'
    timings go there) with prepare, plan and reference run and best params written; the
    command line of its train stage."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # params.yaml names the store
    train = make_houses(90, seed=1)
    if test is None:
        test = make_houses(20, seed=2, first_id=1001).drop(columns="SalePrice")
    write_competition(tmp_path / "raw", train, test)
    params = small_params(tmp_path / "raw", **{
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "registered_model": "m"},
        **sections})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(tmp_path / "params.yaml")
    prepare.run(cfg, tmp_path / "prepared")
    plan.run(cfg, tmp_path / "prepared", tmp_path / "plan")
    reference.run(cfg, tmp_path / "prepared", tmp_path / "plan", tmp_path / "reference")
    write_json(tmp_path / "best_params.json", {"params": {}, "study": "s", "trial": 0})
    return ["--params", str(tmp_path / "params.yaml"), "-q", "train", "--prepared",
            str(tmp_path / "prepared"), "--plan", str(tmp_path / "plan"), "--best-params",
            str(tmp_path / "best_params.json"), "--references",
            str(tmp_path / "reference" / "reference_models.pkl"), "--out",
            str(tmp_path / "models")]


def final_runs(tmp_path: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("test")
    return client.search_runs([experiment.experiment_id], "tags.run_kind = 'final'")


def test_a_float_column_written_as_whole_numbers_in_test_csv_is_logged_and_served(
        tmp_path, monkeypatch, capsys):
    """train.csv writes GrLivArea `1605.0`, test.csv `1605`: the MLflow signature said
    double, the input example read from test.csv was int64, and logging died after the
    whole fit. cv_rmse is on the rows tune.objective_rows names, as the trials' is."""
    test = make_houses(20, seed=2, first_id=1001).drop(columns="SalePrice")
    test["GrLivArea"] = test["GrLivArea"].astype("int64")
    args = ready_to_train(tmp_path, monkeypatch, test,
                          features={"fit_exclude": [{"GrLivArea": {"greater_than": 2500}}]},
                          tune={"objective_rows": "fit"})
    assert (tmp_path / "raw" / "test.csv").read_text().splitlines()[1].split(",")[2].isdigit()
    assert main(args) == 0, capsys.readouterr().err
    (run,) = final_runs(tmp_path)
    assert run.info.status == "FINISHED"
    metrics = read_json(tmp_path / "models" / "train_metrics.json")
    assert metrics["oof_rmse_fit_rows"] != metrics["oof_rmse"]  # some rows were excluded
    assert run.data.metrics["cv_rmse"] == pytest.approx(metrics["oof_rmse_fit_rows"])
    assert run.data.metrics["cv_rmse_fit_rows"] == pytest.approx(metrics["oof_rmse_fit_rows"])
    assert run.data.metrics["cv_rmse_all_rows"] == pytest.approx(metrics["oof_rmse"])
    assert run.data.tags["scored_rows"] == "fit"
    assert "on the rows not excluded from fitting" in run.data.tags["mlflow.note.content"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = client.get_model_version_by_alias("m", "champion")
    assert {k: version.tags[k] for k in ("target", "target_scale", "scored_rows")} == {
        "target": "SalePrice", "target_scale": "log", "scored_rows": "fit"}
    with tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        served = mlflow.pyfunc.load_model("models:/m@champion").predict(
            pd.read_csv(tmp_path / "raw" / "test.csv"))
    assert len(served) == 20 and served["SalePrice"].notna().all()


def test_a_logging_failure_is_one_warning_and_the_outputs_stay(tmp_path, monkeypatch,
                                                               caplog):
    """MLflow fails after the work is done (here its artifact store is a path under a
    file): the stage warns in one line, keeps every output and exits 0; the run it began
    is marked FAILED, not left RUNNING."""
    args = ready_to_train(tmp_path, monkeypatch)
    (tmp_path / "a-file").write_text("not a folder")
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment(
        "test", artifact_location=str(tmp_path / "a-file" / "artifacts"))
    caplog.clear()  # what prepare said about the data
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        assert main(args) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "\n" not in warned[0]
    assert warned[0].startswith("could not log the final model to MLflow (")
    assert warned[0].endswith(f"the model and its outputs are in {tmp_path / 'models'}, but "
                              "not in MLflow")
    assert {p.name for p in (tmp_path / "models").iterdir()} == {
        "model.pkl", "model.pkl.sha256", "oof_predictions.csv", "learning_curves.csv",
        "train_metrics.json"}
    (run,) = final_runs(tmp_path)
    assert run.info.status == "FAILED"


def test_a_tracking_store_missing_a_table_stops_train_before_the_fit(tmp_path, monkeypatch,
                                                                      capsys):
    args = ready_to_train(tmp_path, monkeypatch)
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()  # the store
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("DROP TABLE metrics")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: the MLflow tracking store sqlite:///{tmp_path / 'mlflow.db'} "
                          "lacks the table metrics: it is damaged")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("failure", ["file-size limit", "unwritable folder"])
def test_a_model_that_cannot_be_written_is_one_line_and_the_old_one_stays(tmp_path, failure):
    """A full disk (`ulimit -f`: EFBIG, as ENOSPC) while the model is written, or a folder
    that cannot be written (found before the fit, not after it): one line naming the file
    and why, exit 2, the previous models/ as it was, no temp left (was a traceback)."""
    write_competition(tmp_path / "raw", make_houses(60, seed=1),
                      make_houses(20, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw",
                          tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(tmp_path / "params.yaml")
    prepare.run(cfg, tmp_path / "prepared")
    plan.run(cfg, tmp_path / "prepared", tmp_path / "plan")
    reference.run(cfg, tmp_path / "prepared", tmp_path / "plan", tmp_path / "reference")
    write_json(tmp_path / "best_params.json", {"params": {}, "study": "s", "trial": 0})
    folder = tmp_path / "out"
    out = folder / "models"
    args = ["--params", tmp_path / "params.yaml", "train", "--prepared",
            tmp_path / "prepared", "--plan", tmp_path / "plan", "--best-params",
            tmp_path / "best_params.json", "--references",
            tmp_path / "reference" / "reference_models.pkl", "--out", out]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    if failure == "file-size limit":
        limit = len(old["model.pkl"]) // 2
        written_before = ("oof_predictions.csv", "learning_curves.csv", "train_metrics.json")
        assert all(len(old[name]) < limit for name in written_before)  # the model fails
        done = run_cli(*args, preexec_fn=file_size_limit(limit))
        line = (f"error: cannot write {out / 'model.pkl'}: File too large (the disk or a "
                "file-size limit is full)")
    else:
        with unwritable(folder) as why:
            done = run_cli(*args)
        line = f"error: cannot write {out}: {why} ("
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(line), done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("error:") == 1, done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert leftovers(folder) == []
    if failure == "unwritable folder":  # found at the start: no fit run for nothing
        assert "training 3 folds" in first.stderr and "training" not in done.stderr


