"""The predict stage through the command line: the test file is checked exactly as prepare
checks it, the model is loaded only when its SHA-256 matches the record, and any problem is
one line and exit code 2 with no submission written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from pipeline.io import load_pickle

from ..conftest import file_size_limit, leftovers, run_cli, unwritable


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained model, its params and CSVs, for a test to damage."""
    shutil.copytree(trained, tmp_path / "p")
    root = tmp_path / "p"
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key in ("train", "test", "sample_submission"):
        params["data"][key] = params["data"][key].replace(str(trained), str(root))
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def predict(root: Path, capsys) -> tuple[int, str]:
    code = main(["--params", str(root / "params.yaml"), "-q", "predict", "--model",
                 str(root / "model.pkl"), "--out", str(root / "submission.csv")])
    return code, capsys.readouterr().err


def without_sample(root: Path) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["sample_submission"] = None
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_predict_writes_the_test_ids_as_written(project, capsys):
    code, err = predict(project, capsys)
    assert code == 0, err
    submission = (project / "submission.csv").read_text().splitlines()
    test = pd.read_csv(project / "raw" / "test.csv", dtype=str)
    assert submission[0] == "Id,SalePrice"
    assert [line.split(",")[0] for line in submission[1:]] == test["Id"].tolist()
    model = load_pickle(project / "model.pkl")
    np.testing.assert_allclose([float(line.split(",")[1]) for line in submission[1:]],
                               model.predict_frame(test), rtol=1e-12)


def _drop_id(test: pd.DataFrame) -> pd.DataFrame:
    return test.drop(columns="Id")


def _empty_id(test: pd.DataFrame) -> pd.DataFrame:
    return test.astype({"Id": object}).assign(Id=lambda f: f["Id"].where(f.index != 2, None))


def _duplicate_id(test: pd.DataFrame) -> pd.DataFrame:
    return test.assign(Id=lambda f: f["Id"].where(f.index != 6, f["Id"].iloc[0]))


def _float_id(test: pd.DataFrame) -> pd.DataFrame:
    return test.astype({"Id": object}).assign(
        Id=lambda f: f["Id"].where(f.index != 3, f"{f['Id'].iloc[3]}.0"))


def _extra_column(test: pd.DataFrame) -> pd.DataFrame:
    return test.assign(Extra=1)


@pytest.mark.parametrize("damage, message", [
    (_drop_id, r"test\.csv, column 'Id': required column is missing"),
    (_empty_id, r"test\.csv, column 'Id', line 4: id is missing"),
    (_duplicate_id, r"test\.csv, column 'Id', line 8: duplicate id 1001 \(first seen on "
                    r"line 2\)"),
    (_float_id, r"test\.csv, column 'Id', line 5: id is not an integer: '1004\.0'"),
    (_extra_column, r"test\.csv: columns differ from the training file's: not in the "
                    r"training file: 'Extra'"),
], ids=["no-id-column", "empty-id", "duplicate-id", "float-id", "extra-column"])
def test_predict_checks_the_test_file_as_prepare_does(project, capsys, damage, message):
    """Without a sample submission to catch them, duplicate ids were once written out."""
    without_sample(project)
    test = pd.read_csv(project / "raw" / "test.csv")
    damage(test).to_csv(project / "raw" / "test.csv", index=False)
    code, err = predict(project, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err
    assert not (project / "submission.csv").exists()


def test_predict_compares_sample_submission_ids_as_written(project, capsys):
    sample = pd.read_csv(project / "raw" / "sample_submission.csv", dtype=str)
    sample.loc[0, "Id"] = sample.loc[0, "Id"] + ".0"
    sample.to_csv(project / "raw" / "sample_submission.csv", index=False)
    code, err = predict(project, capsys)
    assert code == 2 and err.strip().endswith("ids differ from "
                                              f"{project / 'raw' / 'sample_submission.csv'}'s "
                                              "ids (compared as written)"), err


def test_predict_refuses_a_model_whose_sha256_is_not_the_recorded_one(project, capsys):
    model = project / "model.pkl"
    model.write_bytes(model.read_bytes() + b"\x00")  # not the bytes the train stage wrote
    code, err = predict(project, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {model}: its SHA-256 (") and "not loaded" in err
    (project / "model.pkl.sha256").unlink()
    code, err = predict(project, capsys)
    assert code == 2 and "no SHA-256 recorded for it (model.pkl.sha256 is missing" in err
    assert not (project / "submission.csv").exists()


@pytest.mark.parametrize("failure", ["file-size limit", "unwritable folder"])
def test_a_submission_that_cannot_be_written_is_one_line_and_the_old_one_stays(
        project, capsys, failure):
    """A full disk (here `ulimit -f`: EFBIG, as ENOSPC) or a folder that cannot be written
    (read-only, immutable): one line naming the file and why, exit 2, the previous submission
    as it was and no temp file left (was a traceback)."""
    folder = project / "out"
    folder.mkdir()
    out = folder / "submission.csv"
    args = ["--params", project / "params.yaml", "-q", "predict", "--model",
            project / "model.pkl", "--out", out]
    assert main(list(map(str, args))) == 0, capsys.readouterr().err
    old = out.read_bytes()
    if failure == "file-size limit":
        done = run_cli(*args, preexec_fn=file_size_limit(len(old) // 2))
        reason = "File too large (the disk or a file-size limit is full)"
    else:
        with unwritable(folder) as why:
            done = run_cli(*args)
        reason = f"{why} ("
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: cannot write {out}: {reason}"), done.stderr
    assert out.read_bytes() == old
    assert leftovers(folder) == []


def test_a_slice_of_the_test_frame_predicts_as_its_rows_do_in_the_whole(trained):
    """Rows go by position, whatever the frame's index (a slice kept its labels and once
    lost every feature value to index alignment)."""
    model = load_pickle(trained / "model.pkl")
    test = pd.read_csv(trained / "raw" / "test.csv")
    whole = model.predict_frame(test)
    np.testing.assert_allclose(model.predict_frame(test.iloc[10:20]), whole[10:20],
                               rtol=1e-12)
