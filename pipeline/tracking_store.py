"""The MLflow tracking store: which URI, and a client that fails fast with one line.

A database store is created on first use; a server or database that cannot be reached, or a
database missing one of MLflow's tables, is a ServiceError naming it (password masked), not
minutes of MLflow's retries or a failure at the first write that needs the table.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.store.model_registry.dbmodels.models  # noqa: F401 - declares the registry's tables
import mlflow.store.tracking.dbmodels.models  # noqa: F401 - declares the tracking tables
import sqlalchemy
import sqlalchemy.exc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.db.base_sql_model import Base

from pipeline.services import ServiceError, from_params, masked

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(configured: str | None) -> str:
    """MLFLOW_TRACKING_URI if set, else params' tracking.uri (without a password), else the
    embedded SQLite file."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if configured:
        return from_params(configured, "tracking.uri", "MLFLOW_TRACKING_URI")
    return DEFAULT_TRACKING_URI


def absolute_store(uri: str) -> str:
    """A SQLite store's URI with its file's absolute path (sqlite:///mlflow.db from the
    working directory); other URIs as they are. MLflow caches one store per URI string, so a
    relative one would keep pointing at the file of the directory it was first opened in."""
    if not uri.startswith("sqlite:///"):
        return uri
    database, sep, query = uri.removeprefix("sqlite:///").partition("?")
    if not database or database == ":memory:" or Path(database).is_absolute():
        return uri
    return f"sqlite:///{Path(database).resolve()}{sep}{query}"


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: `mlruns/` beside the file of a SQLite store
    (for the default sqlite:///mlflow.db that is ./mlruns, MLflow's own default), so a stage
    writes only beside the store it was given, never into the working directory; for a
    server or another database, None: the store's own default."""
    if not uri.startswith("sqlite:///"):
        return None
    database = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return (Path(database).resolve().parent / "mlruns").as_uri()


def open_client(uri: str, attempts: int = 8) -> MlflowClient:
    """A client of the store; a database store is created (migrated) on first use, and when
    several workers start on a fresh database at once, all but one fail and retry. A SQLite
    file that does not exist yet is created, with its folder; a store that cannot be opened
    is a ServiceError naming it."""
    uri = absolute_store(uri)
    _check_database(uri)
    for attempt in range(attempts):
        try:
            client = MlflowClient(tracking_uri=uri)
            _check_tables(uri)
            return client
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError,
                MlflowException) as exc:
            if attempt == attempts - 1:
                raise _unusable(uri, exc) from exc
            time.sleep(0.5 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
            raise _unusable(uri, exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _check_tables(uri: str) -> None:
    """A database store holds every table MLflow's models declare (the client checks only the
    schema's version): a table dropped or lost would fail the first write that needs it,
    after a stage's work."""
    if not uri.startswith(("sqlite", "postgresql", "mysql", "mssql")):
        return
    engine = sqlalchemy.create_engine(uri)
    try:
        present = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    missing = sorted(set(Base.metadata.tables) - present)
    if missing:
        tables = f"table {missing[0]}" if len(missing) == 1 else f"tables {', '.join(missing)}"
        anew = ("move the file aside and a new store is created" if uri.startswith("sqlite")
                else "point tracking.uri at a new database")
        raise ServiceError(f"the MLflow tracking store {masked(uri)} lacks the {tables}: it is "
                           f"damaged, or was made by another program; restore it from a "
                           f"backup, or {anew} (set by tracking.uri in params.yaml or "
                           "MLFLOW_TRACKING_URI)")


def _check_database(uri: str, timeout: int = 10) -> None:
    """Fail fast on a tracking URI that names no store, or a database server that cannot be
    reached or lacks the database: MLflow would retry for minutes, then raise."""
    if "://" not in uri and not uri.startswith("databricks"):  # a bare path: the file store
        raise ServiceError(f"not an MLflow tracking URI: {masked(uri)}, expected e.g. "
                           "sqlite:///mlflow.db, postgresql+psycopg://user@host:5432/db or "
                           "http://host:5000 (set by tracking.uri in params.yaml or "
                           "MLFLOW_TRACKING_URI)")
    if not uri.startswith(("postgresql", "mysql")):
        return
    try:
        engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": timeout})
        try:
            engine.connect().close()
        finally:
            engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
        raise _unusable(uri, exc) from exc


def _unusable(uri: str, exc: BaseException) -> ServiceError:
    reason = str(getattr(exc, "orig", None) or exc).replace(uri, masked(uri)).strip().splitlines()
    return ServiceError(f"cannot open the MLflow tracking store {masked(uri)}: "
                        f"{reason[0] if reason else type(exc).__name__} (set by tracking.uri "
                        "in params.yaml or MLFLOW_TRACKING_URI)")


def check_server(uri: str, timeout: float = 10.0) -> None:
    """Fail fast, with the URI in the message, when a tracking server does not answer: the
    MLflow client would otherwise retry for minutes before giving up."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"cannot reach the MLflow tracking server {masked(uri)}: {reason} "
                           "(set by tracking.uri in params.yaml or MLFLOW_TRACKING_URI)") from exc


@contextlib.contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """mlflow's module-level functions (log_model, register_model) pointed at `uri`, then
    back. mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI, which resolve_tracking_uri
    reads first: it is put back as it was (unset if it was), or a later stage in the same
    process would log to this store."""
    previous = mlflow.get_tracking_uri()
    variable = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if variable is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = variable
