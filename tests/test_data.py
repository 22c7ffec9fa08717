from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataConfig
from pipeline.data import (DataError, Schema, coerce, infer_schema, load_competition, read_csv,
                           validate_test, validate_train)

from .conftest import write_competition


HOUSES = {"id_column": "Id", "target": "SalePrice", "log_target": True}


def data_config(directory: Path, **kw) -> DataConfig:
    return DataConfig(train=str(directory / "train.csv"), test=str(directory / "test.csv"),
                      sample_submission=str(directory / "sample_submission.csv"),
                      **{**HOUSES, **kw})


def load_with(tmp_path: Path, train: pd.DataFrame, test: pd.DataFrame, **kw):
    directory = write_competition(tmp_path / "bad", train, test)
    return load_competition(data_config(directory, **kw))


def test_loads_and_types_a_good_competition(competition: Path):
    train, test, schema = load_competition(data_config(competition))
    assert len(train) == 150 and len(test) == 50
    assert schema.columns["GrLivArea"] == "numeric"
    assert schema.columns["Neighborhood"] == "categorical"
    assert train["OverallQual"].dtype == "float64"  # ints become floats: test may have gaps
    assert "SalePrice" not in test.columns


# --- each bad input names the file, the column and the line -------------------------------

def test_missing_required_column(tmp_path, houses):
    train, test = houses
    with pytest.raises(DataError, match=r"train\.csv, column 'SalePrice': required column"):
        load_with(tmp_path, train.drop(columns="SalePrice"), test)


def test_missing_id_column(tmp_path, houses):
    train, test = houses
    with pytest.raises(DataError, match=r"train\.csv, column 'Id'"):
        load_with(tmp_path, train.drop(columns="Id"), test)


def test_target_missing_in_train(tmp_path, houses):
    train, test = houses
    train.loc[4, "SalePrice"] = np.nan
    with pytest.raises(DataError, match=r"column 'SalePrice', line 6: target is missing"):
        load_with(tmp_path, train, test)


@pytest.mark.parametrize("value", [0.0, -5.0])
def test_non_positive_target(tmp_path, houses, value):
    train, test = houses
    train.loc[9, "SalePrice"] = value
    with pytest.raises(DataError, match=r"column 'SalePrice', line 11: target must be positive"):
        load_with(tmp_path, train, test)


def test_non_positive_target_is_fine_without_log(tmp_path, houses):
    train, test = houses
    train.loc[9, "SalePrice"] = -5.0
    frame, _, _ = load_with(tmp_path, train, test, log_target=False)
    assert frame.loc[9, "SalePrice"] == -5.0


def test_duplicate_id(tmp_path, houses):
    train, test = houses
    train.loc[20, "Id"] = train.loc[3, "Id"]
    with pytest.raises(DataError, match=r"column 'Id', line 22: duplicate id 4 \(first seen on "
                                        r"line 5\)"):
        load_with(tmp_path, train, test)


def test_duplicate_id_in_test(tmp_path, houses):
    train, test = houses
    test.loc[7, "Id"] = test.loc[0, "Id"]
    with pytest.raises(DataError, match=r"test\.csv, column 'Id', line 9: duplicate id"):
        load_with(tmp_path, train, test)


def test_non_integer_id_when_ids_are_declared_integer(tmp_path, houses):
    train, test = houses
    train["Id"] = train["Id"].astype(str)
    train.loc[2, "Id"] = "abc"
    with pytest.raises(DataError, match=r"column 'Id', line 4: id is not an integer: 'abc'"):
        load_with(tmp_path, train, test, id_type="integer")


def test_non_numeric_value_in_numeric_column(tmp_path, houses):
    train, test = houses
    train["GrLivArea"] = train["GrLivArea"].astype(str)
    train.loc[30, "GrLivArea"] = "big"
    with pytest.raises(DataError, match=r"train\.csv, column 'GrLivArea', line 32: not a "
                                        r"number: 'big'"):
        load_with(tmp_path, train, test)


def test_non_numeric_value_in_test_only(tmp_path, houses):
    train, test = houses
    test["GrLivArea"] = test["GrLivArea"].astype(str)
    test.loc[5, "GrLivArea"] = "n/a?"
    with pytest.raises(DataError, match=r"test\.csv, column 'GrLivArea', line 7: not a number"):
        load_with(tmp_path, train, test)


def test_infinite_value(tmp_path, houses):
    train, test = houses
    train.loc[1, "GrLivArea"] = np.inf
    with pytest.raises(DataError, match=r"column 'GrLivArea', line 3: value inf is infinite"):
        load_with(tmp_path, train, test)


def test_empty_file(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    (directory / "test.csv").write_text("")
    with pytest.raises(DataError, match=r"test\.csv: file is empty"):
        load_competition(data_config(directory))


def test_header_only_file(tmp_path, houses):
    train, test = houses
    with pytest.raises(DataError, match=r"train\.csv: file has a header but no data rows"):
        load_with(tmp_path, train.iloc[:0], test)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv: file not found"):
        read_csv(tmp_path / "nowhere.csv")


def test_test_columns_differ(tmp_path, houses):
    train, test = houses
    bad = test.drop(columns="MSZoning").assign(Extra=1)
    with pytest.raises(DataError, match=r"test\.csv: columns differ from the training file's: "
                                        r"missing 'MSZoning'; not in the training file: 'Extra'"):
        load_with(tmp_path, train, bad)


def test_target_in_test(tmp_path, houses):
    train, test = houses
    with pytest.raises(DataError, match=r"test\.csv, column 'SalePrice': the test file must not"):
        load_with(tmp_path, train, test.assign(SalePrice=1.0))


def test_ragged_rows(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    lines = (directory / "train.csv").read_text().splitlines()
    lines[5] += ",1,2"
    (directory / "train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train\.csv: malformed CSV: line 6 has"):
        load_competition(data_config(directory))


def test_wrong_delimiter(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    train.to_csv(directory / "train.csv", index=False, sep=";")
    with pytest.raises(DataError, match=r"train\.csv: only one column found.*';'-delimited"):
        load_competition(data_config(directory))


def test_non_utf8_bytes(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    raw = (directory / "train.csv").read_bytes().replace(b"North", "Nörth".encode("latin-1"), 1)
    (directory / "train.csv").write_bytes(raw)
    with pytest.raises(DataError, match=r"train\.csv, line \d+: not valid UTF-8 \(byte 0xf6\)"):
        load_competition(data_config(directory))


# --- schema and coercion --------------------------------------------------------------------

def test_overrides_beat_inference(houses):
    train, _ = houses
    schema = infer_schema(train, DataConfig(**HOUSES,
                                            column_types={"OverallQual": "categorical"},
                                            drop_columns=("YrSold",)))
    assert schema.columns["OverallQual"] == "categorical"
    assert "YrSold" not in schema.columns and "Id" not in schema.columns
    assert "OverallQual" not in schema.inferred


def test_numeric_category_labels_match_between_int_and_float_files():
    schema = Schema("Id", "y", {"Code": "categorical"})
    ints = coerce(pd.DataFrame({"Id": [1, 2], "Code": [60, 20]}), schema, "a")
    floats = coerce(pd.DataFrame({"Id": [3, 4], "Code": [60.0, np.nan]}), schema, "b")
    assert ints["Code"].tolist() == ["60", "20"]
    assert floats["Code"].iloc[0] == "60" and pd.isna(floats["Code"].iloc[1])


def test_validators_accept_good_frames(houses):
    train, test = houses
    cfg = DataConfig(**HOUSES)
    validate_train(train, cfg, "train.csv")
    validate_test(test, train, cfg, "test.csv")
