"""The MLflow tracking store: which URI wins, and stores that cannot be opened fail fast."""

from __future__ import annotations

import os
import sqlite3
import time

import mlflow
import psycopg
import pytest

from pipeline.services import ServiceError
from pipeline.tracking_store import (
    DEFAULT_TRACKING_URI,
    artifact_location,
    open_client,
    resolve_tracking_uri,
    tracking_uri,
)


def test_the_environment_wins_over_params_and_params_over_the_default(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == DEFAULT_TRACKING_URI
    assert resolve_tracking_uri("sqlite:///other.db") == "sqlite:///other.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env.db")
    assert resolve_tracking_uri("sqlite:///other.db") == "sqlite:///from-env.db"


def test_a_missing_sqlite_store_is_created_with_its_folder(tmp_path):
    uri = f"sqlite:///{tmp_path / 'not' / 'yet' / 'mlflow.db'}"
    open_client(uri)
    assert (tmp_path / "not" / "yet" / "mlflow.db").is_file()


@pytest.mark.parametrize("uri, reason", [
    ("mlflow.db", r"not an MLflow tracking URI: mlflow\.db, expected e\.g\. sqlite:///"),
    ("sqlite://mlflow.db", r"cannot open the MLflow tracking store sqlite://mlflow\.db: "),
    ("sqlite:///{tmp}/a-file/mlflow.db", r"cannot open the MLflow tracking store sqlite:///"
                                         r".*a-file/mlflow\.db: \[Errno 17\] File exists"),
])
def test_a_tracking_store_that_cannot_be_opened_is_one_service_error(tmp_path, uri, reason):
    (tmp_path / "a-file").write_text("not a folder")
    started = time.monotonic()
    with pytest.raises(ServiceError, match=reason) as raised:
        open_client(uri.format(tmp=tmp_path))
    assert "\n" not in str(raised.value) and str(raised.value).endswith(
        "(set by tracking.uri in params.yaml or MLFLOW_TRACKING_URI)")
    assert time.monotonic() - started < 10


def test_a_database_server_without_the_database_fails_fast_with_the_password_masked():
    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3
                        ).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc}); CI provides it")
    uri = "postgresql+psycopg://postgres:s3cret@127.0.0.1:5432/no_such_database_here"
    started = time.monotonic()
    with pytest.raises(ServiceError, match=r"cannot open the MLflow tracking store "
                                           r"postgresql\+psycopg://postgres:\*\*\*@127\.0\.0\.1"
                                           r":5432/no_such_database_here: .*does not exist"):
        open_client(uri)
    assert time.monotonic() - started < 10  # MLflow alone retries for about 100 s


def test_artifacts_go_beside_a_sqlite_store_never_into_the_working_directory(tmp_path,
                                                                            monkeypatch):
    """MLflow puts a SQLite store's artifacts in ./mlruns of whatever directory the process
    runs in (a test run from the checkout once wrote the checkout's mlruns/): a new experiment
    keeps them in mlruns/ beside the store's file."""
    from pipeline.tracking import Tracker

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = tmp_path / "store"
    tracker = Tracker(f"sqlite:///{store / 'mlflow.db'}", "test", "train", 7, "abc123")
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    (tmp_path / "notes.txt").write_text("an artifact")
    tracker.log_artifacts(run_id, [tmp_path / "notes.txt"])
    logged = sorted(p.name for p in (store / "mlruns").rglob("notes.txt"))
    assert logged == ["notes.txt"]
    assert list(elsewhere.iterdir()) == []
    assert artifact_location("postgresql+psycopg://u@h/db") is None  # the server's default
    assert artifact_location("sqlite:///mlflow.db") == (elsewhere / "mlruns").as_uri()


def test_pointing_mlflow_at_a_store_leaves_the_environment_as_it_was(monkeypatch, tmp_path):
    """mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI: put back as it was, a later
    stage in the same process (a test, a notebook) would log to the earlier store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with tracking_uri(f"sqlite:///{tmp_path / 'a.db'}"):
        assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'a.db'}"
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert resolve_tracking_uri(None) == DEFAULT_TRACKING_URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mine.db")
    with tracking_uri(f"sqlite:///{tmp_path / 'a.db'}"):
        pass
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///mine.db"


@pytest.mark.parametrize("table", ["metrics", "model_versions"])
def test_a_store_missing_a_table_is_one_service_error(tmp_path, table):
    """A table dropped from mlflow.db (a damaged or hand-edited store) failed only at the
    first write that needed it, after the work, with SQLAlchemy's traceback."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    open_client(uri)
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute(f"DROP TABLE {table}")
    with pytest.raises(ServiceError) as raised:
        open_client(uri)
    assert str(raised.value) == (
        f"the MLflow tracking store {uri} lacks the table {table}: it is damaged, or was "
        "made by another program; restore it from a backup, or move the file aside and a new "
        "store is created (set by tracking.uri in params.yaml or MLFLOW_TRACKING_URI)")
