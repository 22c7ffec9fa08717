"""Every storage or tracking URL shown to a user has its password masked, in every form, and a
full run with passwords in both URL forms and in PGPASSWORD writes none of them anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml

from pipeline.services import ServiceError, from_params, masked

from .conftest import REPO, make_houses, small_params, write_competition


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://me:secret@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
    ("postgresql+psycopg://me@db/x?password=secret&sslmode=require",
     "postgresql+psycopg://me@db/x?password=***&sslmode=require"),
    ("postgresql://db/x?user=me&PASSWORD=secret", "postgresql://db/x?user=me&PASSWORD=***"),
    ("mysql+pymysql://me:secret@db/x", "mysql+pymysql://me:***@db/x"),
    ("http://me:secret@mlflow:5000", "http://me:***@mlflow:5000"),
    ("host=db user=me password=secret dbname=x", "host=db user=me password=*** dbname=x"),
    ("host=db password = 'sec ret' dbname=x", "host=db password=*** dbname=x"),
    ("sqlite:///data/optuna.db", "sqlite:///data/optuna.db"),
    ("journal:data/optuna/journal.log", "journal:data/optuna/journal.log"),
    ("postgresql://:secret@db/x", "postgresql://:***@db/x"),  # no user, a password
    ("postgresql://me:se%40cret@db/x", "postgresql://me:***@db/x"),  # percent-encoded
    ("postgresql://me:se@cret@db/x", "postgresql://me:***@db/x"),  # an unencoded @
    ("postgresql:///x?host=/run/pg&sslpassword=secret", "postgresql:///x?host=/run/pg&"
                                                        "sslpassword=***"),
    ("postgresql://me@db/x?password=secret#frag", "postgresql://me@db/x?password=***#frag"),
])
def test_masked_hides_the_password(url, shown):
    assert masked(url) == shown
    assert "secret" not in masked(url) and "cret" not in masked(url)


def test_a_password_in_params_yaml_is_refused_naming_the_key():
    """params.yaml and dvc.lock (which records the tune stage's params) are committed."""
    assert from_params("postgresql+psycopg://me@db/x", "tune.storage", "OPTUNA_STORAGE") == \
        "postgresql+psycopg://me@db/x"
    for url in ("postgresql+psycopg://me:secret@db/x", "postgresql://me@db/x?password=secret"):
        with pytest.raises(ServiceError, match=r"^tune.storage in params.yaml holds a password "
                                               r"\(postgresql.*\*\*\*.*\); .*set OPTUNA_STORAGE") \
                as raised:
            from_params(url, "tune.storage", "OPTUNA_STORAGE")
        assert "secret" not in str(raised.value)


# every dvc.yaml stage in turn, as `python -m pipeline -v <stage>` runs it, in one process
EVERY_STAGE = """
import sys
from pipeline.cli import main
for stage in ("prepare", "plan", "tune", "reference", "train", "predict", "evaluate", "summary"):
    code = main(["-v", stage])
    if code:
        sys.exit(f"{stage}: exit {code}")
"""
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
SECRETS = {"userinfo": "Userinfo-Secret-5e1f", "query": "Query-Secret-9a7c",
           "environment": "Env-Secret-3d2b"}


@pytest.fixture
def two_databases():
    """Two fresh PostgreSQL databases (study, runs), dropped afterwards; skip without one."""
    import psycopg

    admin = POSTGRES.replace("+psycopg", "") + "/postgres"
    try:
        psycopg.connect(admin, autocommit=True, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES} is not reachable ({exc}); CI provides it")
    names = [f"t_secret_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("optuna", "mlflow")]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield names
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def with_password(base: str, database: str, form: str) -> str:
    """The server's URL for a database, a password added in the userinfo or query form."""
    scheme, rest = base.split("://", 1)
    userinfo, host = rest.rsplit("@", 1) if "@" in rest else ("postgres", rest)
    user = userinfo.split(":", 1)[0]
    if form == "userinfo":
        return f"{scheme}://{user}:{SECRETS['userinfo']}@{host}/{database}"
    return f"{scheme}://{user}@{host}/{database}?password={SECRETS['query']}"


@pytest.mark.slow
@pytest.mark.postgres
def test_no_password_reaches_any_output_or_log_of_a_full_run(tmp_path, two_databases):
    """Every stage through the command line, verbose (the libraries' messages too), with the
    study storage's password in its userinfo, the tracking store's as ?password= and a third
    in PGPASSWORD (the server trusts local connections, so any password is accepted): no
    output file, artifact, stored run, study attribute or log line holds any of them."""
    root = tmp_path / "project"
    write_competition(root / "raw",  make_houses(120, seed=1),
                      make_houses(40, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(root / "raw", reference={"gbm_max_rounds": 30},
                          tracking={"experiment": "secrets", "registered_model": "secret-test"})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    storage = with_password(POSTGRES, two_databases[0], "userinfo")
    tracking = with_password(POSTGRES, two_databases[1], "query")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPTUNA_"))},
           "PYTHONPATH": str(REPO), "OPTUNA_STORAGE": storage, "MLFLOW_TRACKING_URI": tracking,
           "PGPASSWORD": SECRETS["environment"]}
    done = subprocess.run([sys.executable, "-c", EVERY_STAGE], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    logs = [done.stdout, done.stderr]
    written = [p for p in root.rglob("*") if p.is_file()]
    assert {"best_params.json", "model.pkl", "submission.csv", "metrics.json", "MLmodel"} <= \
        {p.name for p in written}  # the artifacts are in ./mlruns here
    best = json.loads((root / "data" / "tune" / "best_params.json").read_text())
    assert best["storage"] == masked(storage) and "***" in best["storage"]
    assert f"--backend-store-uri {masked(tracking)}" in done.stdout  # the summary
    stored = [json.dumps(stored_runs(tracking)), json.dumps(study_attrs(storage))]
    for name, secret in SECRETS.items():
        for path in written:
            assert secret.encode() not in path.read_bytes(), f"{name} password in {path}"
        for text in logs + stored:
            assert secret not in text, f"{name} password in a log or a stored run"


def stored_runs(uri: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    return [[e.artifact_location for e in experiments],
            *[[r.data.params, r.data.tags, r.info.artifact_uri] for r in runs],
            *[[v.source, v.tags] for v in client.search_model_versions()]]


def study_attrs(url: str) -> list:
    import optuna

    storage = optuna.storages.RDBStorage(url)
    studies = [optuna.load_study(study_name=s.study_name, storage=storage)
               for s in optuna.get_all_study_summaries(storage)]
    return [[s.study_name, s.user_attrs, [[t.user_attrs, t.system_attrs] for t in s.trials]]
            for s in studies]
