"""The served model, logged to a real MLflow store (SQLite in a temp dir) as the train stage
logs it: it checks a request as prepare checks test.csv, and refuses a model file whose
SHA-256 is not the recorded one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline.data.errors import DataError
from pipeline.data.read import ReadOptions, read_csv
from pipeline.io import ModelFileError, load_pickle
from pipeline.tracking import MODEL_SHA256_TAG, FinalRun, Tracker


@pytest.fixture(scope="module")
def served(trained: Path, tmp_path_factory) -> Iterator[tuple[Tracker, FinalRun]]:
    """The trained model logged as the train stage logs it: its run and model URI."""
    store = tmp_path_factory.mktemp("served")
    shutil.copy(trained / "model.pkl", store / "model.pkl")
    shutil.copy(trained / "model.pkl.sha256", store / "model.pkl.sha256")
    served_as = ReadOptions(None, ("NA",))  # a request: integer ids as numbers
    test = read_csv(trained / "raw" / "test.csv", served_as)
    model = load_pickle(store / "model.pkl")
    example = test.head(3)
    cwd = os.getcwd()
    os.chdir(store)  # the store's artifacts go beside it, in the temp dir
    try:
        tracker = Tracker(f"sqlite:///{store / 'mlflow.db'}", "test", "train", 7, "abc")
        final = tracker.log_final_model(
            "final model", params={}, metrics={}, curves={},
            model_path=store / "model.pkl",
            input_example=example,
            output_example=pd.DataFrame({"Id": example["Id"],
                                         "SalePrice": model.predict_frame(example)}),
            artifacts=[], extra_tags={},
            model_sha256=(store / "model.pkl.sha256").read_text().split()[0])
        yield tracker, final
    finally:
        os.chdir(cwd)


def load(tracker: Tracker, final: FinalRun):
    mlflow.set_tracking_uri(tracker.uri)
    return mlflow.pyfunc.load_model(final.model_uri)


def test_the_run_and_the_logged_model_carry_the_model_files_sha256(served, trained):
    tracker, final = served
    recorded = (trained / "model.pkl.sha256").read_text().split()[0]
    assert tracker.client.get_run(final.run_id).data.tags[MODEL_SHA256_TAG] == recorded
    logged = tracker.client.get_logged_model(final.model_uri.removeprefix("models:/"))
    assert logged.tags[MODEL_SHA256_TAG] == recorded


def test_the_served_model_checks_a_request_as_prepare_checks_test_csv(served, trained):
    model = load(*served)
    test = pd.read_csv(trained / "raw" / "test.csv")  # as `mlflow models predict` reads it
    out = model.predict(test)
    np.testing.assert_array_equal(out["Id"], test["Id"])
    expected = load_pickle(trained / "model.pkl").predict_frame(test)
    np.testing.assert_allclose(out["SalePrice"], expected, rtol=1e-12)
    twice = test.assign(Id=test["Id"].where(test.index != 4, test["Id"].iloc[1]))
    with pytest.raises(DataError, match=r"request, column 'Id', row 5: duplicate id 1002 "
                                        r"\(first seen on row 2\)"):
        model.predict(twice)


def test_a_declared_missing_string_in_a_request_is_missing(served, trained):
    """A JSON request may carry NA as text where the CSV had it: read as the CSV was."""
    model = load(*served)
    test = pd.read_csv(trained / "raw" / "test.csv").head(6)
    gaps = test.astype({"MSZoning": object}).assign(MSZoning=None)
    written = test.astype({"MSZoning": object}).assign(MSZoning="NA")
    np.testing.assert_allclose(model.predict(written)["SalePrice"],
                               model.predict(gaps)["SalePrice"], rtol=1e-12)


def test_the_served_model_refuses_a_replaced_model_file(served, tmp_path):
    tracker, final = served
    local = Path(mlflow.artifacts.download_artifacts(final.model_uri, dst_path=str(tmp_path)))
    pickled = next(local.rglob("model.pkl"))
    pickled.write_bytes(pickled.read_bytes() + b"\x00")
    with pytest.raises(ModelFileError, match=r"model\.pkl: its SHA-256 .* is not the one "
                                             r"recorded in model\.pkl\.sha256"):
        mlflow.pyfunc.load_model(str(local))


def test_numbers_are_numbers_and_any_column_may_have_a_gap(served, trained):
    """A float column sent as whole numbers (int64), an int column sent with a gap (float64
    NaN) or as floats, a gap in a column that had none in training, a text column all
    missing: the served model takes them as `predict` takes test.csv (MLflow's typed
    signature refused each: double refuses int64, long refuses NaN)."""
    model = load(*served)
    test = pd.read_csv(trained / "raw" / "test.csv").head(8)
    local = load_pickle(trained / "model.pkl")
    requests = {
        "float column as int64": test.assign(GrLivArea=test["GrLivArea"].astype("int64")),
        "int column as float64": test.assign(OverallQual=test["OverallQual"].astype(float)),
        "a gap in a column without gaps": test.assign(
            OverallQual=test["OverallQual"].where(test.index != 2)),
        "text column all missing": test.assign(MSZoning=np.nan),
    }
    for what, request in requests.items():
        out = model.predict(request)
        np.testing.assert_allclose(out["SalePrice"], local.predict_frame(request), rtol=1e-12,
                                   err_msg=what)
        assert out["SalePrice"].notna().all(), what


def test_a_gap_in_the_id_is_the_models_own_one_line(served, trained):
    model = load(*served)
    test = pd.read_csv(trained / "raw" / "test.csv").head(4)
    with pytest.raises(DataError, match=r"^request, column 'Id', row 3: id is missing$"):
        model.predict(test.assign(Id=test["Id"].where(test.index != 2)))


def test_an_empty_request_is_one_line(served, trained):
    model = load(*served)
    empty = pd.read_csv(trained / "raw" / "test.csv").head(0)
    with pytest.raises(DataError) as raised:
        model.predict(empty)
    assert str(raised.value) == "request: no rows to predict (the request holds none)"
