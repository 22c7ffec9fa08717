"""Every storage or tracking URL shown to a user has its password masked, in every form."""

import pytest

from pipeline.services import masked


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://me:secret@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
    ("postgresql+psycopg://me@db/x?password=secret&sslmode=require",
     "postgresql+psycopg://me@db/x?password=***&sslmode=require"),
    ("postgresql://db/x?user=me&PASSWORD=secret", "postgresql://db/x?user=me&PASSWORD=***"),
    ("mysql+pymysql://me:secret@db/x", "mysql+pymysql://me:***@db/x"),
    ("http://me:secret@mlflow:5000", "http://me:***@mlflow:5000"),
    ("host=db user=me password=secret dbname=x", "host=db user=me password=*** dbname=x"),
    ("sqlite:///data/optuna.db", "sqlite:///data/optuna.db"),
    ("journal:data/optuna/journal.log", "journal:data/optuna/journal.log"),
])
def test_masked_hides_the_password(url, shown):
    assert masked(url) == shown
    assert "secret" not in masked(url)
