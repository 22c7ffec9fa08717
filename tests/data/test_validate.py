"""Validation and coercion: each bad value names the file, the column and the line."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataConfig
from pipeline.data.errors import DataError
from pipeline.data.read import ReadOptions, read_csv
from pipeline.data.schema import Schema, describe_schema, infer_schema
from pipeline.data.validate import (
    coerce,
    load_competition,
    validate_sample,
    validate_test,
    validate_train,
)

from ..conftest import write_competition
from .conftest import HOUSES, data_config, load_with, with_dates


def test_loads_and_types_a_good_competition(competition: Path):
    train, test, schema = load_competition(data_config(competition))
    assert len(train) == 150 and len(test) == 50
    assert schema.columns["GrLivArea"] == "numeric"
    assert schema.columns["Neighborhood"] == "categorical"
    assert train["OverallQual"].dtype == "float64"  # ints become floats: test may have gaps
    assert "SalePrice" not in test.columns


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


def test_huge_value(tmp_path, houses):
    train, test = houses
    test.loc[4, "GrLivArea"] = 1e300  # finite, but overflows the model's float32
    with pytest.raises(DataError, match=r"test\.csv, column 'GrLivArea', line 6: value 1e\+300 "
                                        r"is infinite or too large \(limit 1e\+30\)"):
        load_with(tmp_path, train, test)


def test_test_columns_differ(tmp_path, houses):
    train, test = houses
    bad = test.drop(columns="MSZoning").assign(Extra=1)
    with pytest.raises(DataError, match=r"test\.csv: columns differ from the training file's: "
                                        r"missing 'MSZoning' \(list training-only columns in "
                                        r"data.drop_columns\); not in the training file: "
                                        r"'Extra'"):
        load_with(tmp_path, train, bad)


def test_dropped_columns_may_be_missing_from_the_test_file(tmp_path, houses):
    train, test = houses
    leak = train.assign(PriceBand=(train["SalePrice"] > 2e5).astype(int))  # only in train
    frame, typed_test, schema = load_with(tmp_path, leak, test, drop_columns=("PriceBand",))
    assert "PriceBand" not in schema.columns and len(typed_test) == len(test)


def test_target_in_test(tmp_path, houses):
    train, test = houses
    with pytest.raises(DataError, match=r"test\.csv, column 'SalePrice': the test file must not"):
        load_with(tmp_path, train, test.assign(SalePrice=1.0))


def test_numeric_category_labels_match_between_int_and_float_files():
    schema = Schema("Id", "y", {"Code": "categorical"})
    ints = coerce(pd.DataFrame({"Id": [1, 2], "Code": [60, 20]}), schema, "a")
    floats = coerce(pd.DataFrame({"Id": [3, 4], "Code": [60.0, np.nan]}), schema, "b")
    assert ints["Code"].tolist() == ["60", "20"]
    assert floats["Code"].iloc[0] == "60" and pd.isna(floats["Code"].iloc[1])


def test_validators_accept_good_frames(houses):
    train, test = houses
    cfg = DataConfig(**HOUSES)
    validate_train(train, cfg, "train.csv", integer_ids=True)
    validate_test(test, infer_schema(train, cfg, "integer"), "test.csv")


def test_text_ids_are_kept_verbatim(tmp_path, houses):
    train, test = houses
    train["Id"] = [f"h{i:05d}" for i in range(len(train))]
    test["Id"] = [f"{i:06d}" for i in range(len(test))]  # all digits, leading zeros
    frame, typed_test, schema = load_with(tmp_path, train, test)  # id_type auto
    assert schema.id_type == "text"
    assert frame["Id"].iloc[0] == "h00000"
    assert typed_test["Id"].tolist() == test["Id"].tolist()


def test_declared_text_ids_keep_leading_zeros_even_when_all_digits(tmp_path, houses):
    train, test = houses
    test["Id"] = [f"{i:06d}" for i in range(len(test))]
    _, typed_test, schema = load_with(tmp_path, train, test, id_type="text")
    assert schema.id_type == "text" and typed_test["Id"].iloc[1] == "000001"


def test_missing_and_duplicate_text_ids(tmp_path, houses):
    train, test = houses
    train["Id"] = [f"h{i}" for i in range(len(train))]
    bad = train.copy()
    bad.loc[6, "Id"] = None
    with pytest.raises(DataError, match=r"column 'Id', line 8: id is missing"):
        load_with(tmp_path, bad, test)
    bad = train.copy()
    bad.loc[9, "Id"] = "h2"
    with pytest.raises(DataError, match=r"column 'Id', line 11: duplicate id h2 \(first seen "
                                        r"on line 4\)"):
        load_with(tmp_path, bad, test)


@pytest.mark.parametrize("contract, key", [
    ({"drop_columns": ("Garage",)}, "data.drop_columns"),
    ({"column_types": {"Garage": "numeric"}}, "data.column_types"),
])
def test_params_naming_a_column_the_file_lacks(tmp_path, houses, contract, key):
    with pytest.raises(DataError, match=rf"train\.csv, column 'Garage': {key} names this "
                                        r"column but the file has no such column"):
        load_with(tmp_path, *houses, **contract)


def test_drop_columns_are_dropped(tmp_path, houses):
    frame, typed_test, schema = load_with(tmp_path, *houses, drop_columns=("YrSold",))
    assert "YrSold" not in schema.columns and schema.dropped == ["YrSold"]
    assert "YrSold" not in frame.columns and "YrSold" not in typed_test.columns


def test_ordinal_value_outside_its_order_is_an_error(tmp_path, houses):
    train, test = houses
    test.loc[3, "ExterQual"] = "Great"
    levels = {"ExterQual": ("Po", "Fa", "TA", "Gd", "Ex")}
    with pytest.raises(DataError, match=r"test\.csv, column 'ExterQual', line 5: 'Great' is "
                                        r"not one of data.ordinal_levels.ExterQual"):
        load_with(tmp_path, train, test, column_types={"ExterQual": "ordinal"},
                  ordinal_levels=levels)


def test_datetime_override_parses_other_formats_and_whole_numbers(tmp_path, houses):
    train, test = (with_dates(f, i) for i, f in enumerate(houses))
    frame, _, schema = load_with(tmp_path, train, test,
                                 column_types={"Listed": "datetime", "Stamp": "datetime"})
    assert schema.overridden == ["Listed", "Stamp"]
    np.testing.assert_array_equal(frame["Listed"], frame["Sold"])
    np.testing.assert_array_equal(frame["Stamp"], frame["Sold"])


def test_unparseable_date_names_its_line(tmp_path, houses):
    train, test = (with_dates(f, i) for i, f in enumerate(houses))
    train.loc[12, "Sold"] = "someday"
    with pytest.raises(DataError, match=r"column 'Sold', line 14: not a date/time: 'someday'"):
        load_with(tmp_path, train, test, column_types={"Sold": "datetime"})


def test_time_zones_become_utc_wall_time():
    schema = Schema("Id", "y", {"When": "datetime"})
    frame = pd.DataFrame({"Id": [1, 2, 3], "When": ["2016-03-01T12:00:00+02:00",
                                                    "2016-03-01 12:00", None]})
    out = coerce(frame, schema, "t.csv")["When"]
    assert out.dt.tz is None
    assert out.iloc[0] == pd.Timestamp("2016-03-01 10:00") and pd.isna(out.iloc[2])
    assert out.iloc[1] == pd.Timestamp("2016-03-01 12:00")


def test_log1p_target_may_be_zero_but_not_negative(tmp_path, houses):
    train, test = houses
    train.loc[9, "SalePrice"] = 0.0
    frame, _, schema = load_with(tmp_path, train, test, log_target="log1p")
    assert frame.loc[9, "SalePrice"] == 0.0
    assert "modelled as log(1 + target): the metric is RMSLE" in describe_schema(schema)
    train.loc[9, "SalePrice"] = -2.0
    with pytest.raises(DataError, match=r"line 11: target must be >= 0 for log_target: log1p"):
        load_with(tmp_path, train, test, log_target="log1p")


@pytest.mark.parametrize("written", ["1004.0", "0012", "+7", "-0", "1e3", " 12"])
def test_an_integer_id_not_written_as_one_is_an_error_never_rewritten(tmp_path, houses,
                                                                      written):
    """With data.id_type: integer an id must read back exactly as written: 1004.0 would be
    written to the submission as 1004 (every id, once pandas read the column as floats)."""
    train, test = houses
    test["Id"] = test["Id"].astype(str)
    test.loc[3, "Id"] = written
    with pytest.raises(DataError, match=rf"test\.csv, column 'Id', line 5: id is not an "
                                        rf"integer: '{re.escape(written)}' \(set data.id_type: "
                                        r"text for ids that are not whole numbers as written"):
        load_with(tmp_path, train, test, id_type="integer")
    _, typed_test, schema = load_with(tmp_path, train, test)  # auto: text ids, verbatim
    assert schema.id_type == "text" and typed_test["Id"].tolist() == test["Id"].tolist()


def test_ids_longer_than_int64(tmp_path, houses):
    train, test = houses
    test["Id"] = test["Id"].astype(str)
    test.loc[2, "Id"] = "99999999999999999999"
    with pytest.raises(DataError, match=r"test\.csv, column 'Id', line 4: id "
                                        r"99999999999999999999 does not fit a 64-bit integer"):
        load_with(tmp_path, train, test, id_type="integer")
    test.loc[2, "Id"] = str(2**63 - 1)  # the largest that fits: kept exactly
    _, typed_test, _ = load_with(tmp_path, train, test, id_type="integer")
    assert typed_test["Id"].iloc[2] == 2**63 - 1 and typed_test["Id"].dtype == "int64"
    test.loc[2, "Id"] = "99999999999999999999"
    _, typed_test, schema = load_with(tmp_path, train, test)  # auto: text, verbatim
    assert schema.id_type == "text" and typed_test["Id"].iloc[2] == "99999999999999999999"


def test_a_huge_target_without_a_log_scale_is_an_error(tmp_path, houses):
    train, test = houses
    train.loc[6, "SalePrice"] = 1e35  # float64, but past what the models' float32 holds
    with pytest.raises(DataError, match=r"train\.csv, column 'SalePrice', line 8: target "
                                        r"1e\+35 is too large for the models' float32 "
                                        r"arithmetic \(limit 1e\+30 on the model scale"):
        load_with(tmp_path, train, test, log_target=False)
    frame, _, _ = load_with(tmp_path, train, test)  # log(1e35) = 80.6: fine on a log scale
    assert frame.loc[6, "SalePrice"] == 1e35


def test_sample_submission_ids_are_compared_as_written(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    sample = pd.read_csv(directory / "sample_submission.csv", dtype={"Id": str})
    sample.loc[4, "Id"] = f"{test['Id'].iloc[4]}.0"
    sample.to_csv(directory / "sample_submission.csv", index=False)
    cfg = data_config(directory, id_type="integer")
    _, typed_test, _ = load_competition(cfg)
    read = read_csv(cfg.sample_submission, ReadOptions.of(cfg))
    with pytest.raises(DataError, match=rf"sample_submission\.csv, column 'Id', line 6: id "
                                        rf"'{test['Id'].iloc[4]}\.0' is not a test id \(ids "
                                        r"are compared as written\)"):
        validate_sample(read, typed_test["Id"], cfg, cfg.sample_submission)


def test_column_na_values_naming_a_column_the_file_lacks(tmp_path, houses):
    with pytest.raises(DataError, match=r"train\.csv, column 'Garage': data.column_na_values "
                                        r"names this column but the file has no such column"):
        load_with(tmp_path, *houses, column_na_values={"Garage": ("NA",)})


@pytest.mark.parametrize("label, kept", [
    ("1e300", "1e+300"), ("inf", "inf"), ("-Infinity", "-inf"),
    ("99999999999999999999", "99999999999999999999"),  # pandas keeps it as text
])
def test_a_number_too_big_for_an_integer_in_a_category_column_is_a_label(tmp_path, houses,
                                                                        label, kept):
    """Found by the property test: a test file whose category column holds only numbers,
    one of them huge or infinite, once stopped prepare with a traceback."""
    train, test = houses
    test["PoolQC"] = None
    test.loc[1, "PoolQC"] = label
    _, typed_test, schema = load_with(tmp_path, train, test)
    assert schema.columns["PoolQC"] == "categorical"
    assert typed_test["PoolQC"].iloc[1] == kept and \
        typed_test["PoolQC"].drop(index=1).isna().all()
