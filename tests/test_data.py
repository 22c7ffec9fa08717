from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataConfig
from pipeline.data import (
    DataError,
    Schema,
    coerce,
    describe_schema,
    infer_schema,
    load_competition,
    read_csv,
    validate_test,
    validate_train,
)

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


def test_huge_value(tmp_path, houses):
    train, test = houses
    test.loc[4, "GrLivArea"] = 1e300  # finite, but overflows the model's float32
    with pytest.raises(DataError, match=r"test\.csv, column 'GrLivArea', line 6: value 1e\+300 "
                                        r"is infinite or too large \(limit 1e\+30\)"):
        load_with(tmp_path, train, test)


def test_all_missing_and_constant_columns_are_flagged_not_fatal(tmp_path, houses):
    train, test = houses
    train = train.assign(Empty=np.nan, Const=5, Same="x")
    test = test.assign(Empty=1.0, Const=6, Same="y")
    frame, _, schema = load_with(tmp_path, train, test)
    notes = "\n".join(schema.warnings)
    assert "Empty: every value is missing in the training file" in notes
    assert "Const: the same value (5) on every training row" in notes
    assert "Same: the same value ('x') on every training row" in notes
    assert frame["Empty"].isna().all()  # kept: features turn it into a constant, never NaN


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
    line = raw[:raw.index(b"N\xf6rth")].count(b"\n") + 1
    assert line > 1
    with pytest.raises(DataError, match=rf"train\.csv, line {line}: not valid UTF-8 \(byte 0xf6\)"):
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


# --- ids of any kind ------------------------------------------------------------------------

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


def test_auto_ids_that_are_whole_numbers_stay_integers(tmp_path, houses):
    frame, typed_test, schema = load_with(tmp_path, *houses)
    assert schema.id_type == "integer"
    assert frame["Id"].dtype == "int64" and typed_test["Id"].dtype == "int64"


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


# --- the data contract in params is checked against the file --------------------------------

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


# --- datetime columns -------------------------------------------------------------------------

def with_dates(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 900, len(frame)),
                                                          unit="D")
    return frame.assign(Sold=stamps.strftime("%Y-%m-%d"), Listed=stamps.strftime("%d.%m.%Y"),
                        Stamp=stamps.strftime("%Y%m%d").astype(int))


def test_iso_dates_are_inferred_as_datetime(tmp_path, houses):
    train, test = (with_dates(f, i) for i, f in enumerate(houses))
    frame, typed_test, schema = load_with(tmp_path, train, test)
    assert schema.columns["Sold"] == "datetime" and "Sold" in schema.inferred
    assert frame["Sold"].dtype.kind == "M" and typed_test["Sold"].dtype.kind == "M"
    assert frame["Sold"].iloc[0] == pd.Timestamp(train["Sold"].iloc[0])
    # other date formats stay text, with a note saying how to use them as dates
    assert schema.columns["Listed"] == "categorical"
    assert any(w.startswith("Listed: text that reads as dates") for w in schema.warnings)


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


# --- the report of what was inferred ------------------------------------------------------

def test_schema_reports_inferred_overridden_and_columns_to_check(houses):
    train, _ = houses
    train = train.assign(Code=np.arange(len(train)) * 7 + 3,
                         Note=[f"free text {i}" for i in range(len(train))])
    cfg = DataConfig(**HOUSES, column_types={"MSZoning": "categorical"}, drop_columns=("YrSold",))
    schema = infer_schema(train, cfg)
    assert schema.overridden == ["MSZoning"] and "MSZoning" not in schema.inferred
    assert schema.dropped == ["YrSold"]
    notes = "\n".join(schema.warnings)
    assert "Code: a distinct whole number on every row" in notes
    assert "Note: text with 150 distinct values in 150 rows" in notes
    assert "OverallQual (10)" in notes  # few distinct whole numbers: maybe a code
    report = describe_schema(schema)
    assert "inferred categorical (4): Neighborhood, ExterQual, PoolQC, Note" in report
    assert "set in data.column_types: MSZoning=categorical" in report
    assert "dropped (data.drop_columns): YrSold" in report
    assert "target 'SalePrice', modelled as log(target)" in report
    assert Schema.from_json(schema.to_json()) == schema


def test_skewed_target_without_log_gets_a_note(houses):
    train, _ = houses
    train = train.assign(SalePrice=np.exp(np.random.default_rng(0).normal(11, 1.5, len(train))))
    skewed = infer_schema(train, DataConfig(**{**HOUSES, "log_target": False}))
    assert any("set data.log_target: log1p for RMSLE" in w for w in skewed.warnings)
    assert not any("log_target" in w for w in infer_schema(train, DataConfig(**HOUSES)).warnings)


def test_one_date_format_per_column_read_the_same_in_both_files(tmp_path, houses):
    train, test = houses
    train["Listed"] = "02.04.2017"  # ambiguous alone ...
    train.loc[5, "Listed"] = "27.07.2016"  # ... but only day-first reads this one
    test["Listed"] = "03.04.2017"
    frame, typed_test, schema = load_with(tmp_path, train, test,
                                          column_types={"Listed": "datetime"})
    assert schema.datetime_formats["Listed"] == "%d.%m.%Y"
    assert frame["Listed"].iloc[0] == pd.Timestamp("2017-04-02")
    assert typed_test["Listed"].iloc[0] == pd.Timestamp("2017-04-03")


def test_a_date_column_no_single_format_reads_is_flagged(houses):
    train, _ = houses
    train["Listed"] = ["2017-04-02" if i % 2 else "May 3 2016" for i in range(len(train))]
    schema = infer_schema(train, DataConfig(**HOUSES, column_types={"Listed": "datetime"}))
    assert schema.datetime_formats["Listed"] == "mixed"
    assert any(w.startswith("Listed: no single date format") for w in schema.warnings)
    typed = coerce(train, schema, "train.csv")
    assert typed["Listed"].iloc[0] == pd.Timestamp("2016-05-03")


def test_log1p_target_may_be_zero_but_not_negative(tmp_path, houses):
    train, test = houses
    train.loc[9, "SalePrice"] = 0.0
    frame, _, schema = load_with(tmp_path, train, test, log_target="log1p")
    assert frame.loc[9, "SalePrice"] == 0.0
    assert "modelled as log(1 + target): the metric is RMSLE" in describe_schema(schema)
    train.loc[9, "SalePrice"] = -2.0
    with pytest.raises(DataError, match=r"line 11: target must be >= 0 for log_target: log1p"):
        load_with(tmp_path, train, test, log_target="log1p")
