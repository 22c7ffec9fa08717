"""Schema inference and its report: kinds inferred or set, columns worth a second look."""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataConfig
from pipeline.data.schema import Schema, describe_schema, infer_schema
from pipeline.data.validate import coerce

from .conftest import HOUSES, load_with, with_dates


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


def test_overrides_beat_inference(houses):
    train, _ = houses
    schema = infer_schema(train, DataConfig(**HOUSES,
                                            column_types={"OverallQual": "categorical"},
                                            drop_columns=("YrSold",)))
    assert schema.columns["OverallQual"] == "categorical"
    assert "YrSold" not in schema.columns and "Id" not in schema.columns
    assert "OverallQual" not in schema.inferred


def test_auto_ids_that_are_whole_numbers_stay_integers(tmp_path, houses):
    frame, typed_test, schema = load_with(tmp_path, *houses)
    assert schema.id_type == "integer"
    assert frame["Id"].dtype == "int64" and typed_test["Id"].dtype == "int64"


def test_iso_dates_are_inferred_as_datetime(tmp_path, houses):
    train, test = (with_dates(f, i) for i, f in enumerate(houses))
    frame, typed_test, schema = load_with(tmp_path, train, test)
    assert schema.columns["Sold"] == "datetime" and "Sold" in schema.inferred
    assert frame["Sold"].dtype.kind == "M" and typed_test["Sold"].dtype.kind == "M"
    assert frame["Sold"].iloc[0] == pd.Timestamp(train["Sold"].iloc[0])
    # other date formats stay text, with a note saying how to use them as dates
    assert schema.columns["Listed"] == "categorical"
    assert any(w.startswith("Listed: text that reads as dates") for w in schema.warnings)


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


@pytest.mark.parametrize("values, fmt", [
    (["Jan-2018", "Mar-2018", "Feb-2018"], "%b-%Y"),  # loans' issue_month
    (["2013-01-01T10:00:00Z", "2013-06-30T23:00:00Z", "2013-12-04T23:00:00Z"], "ISO8601"),
    (["03-Feb-2017", "28-Feb-2017", "01-Mar-2017"], "%d-%b-%Y"),
])
def test_month_names_and_zoned_iso_timestamps_are_datetimes(houses, values, fmt):
    train, _ = houses
    train["When"] = [values[i % len(values)] for i in range(len(train))]
    schema = infer_schema(train, DataConfig(**HOUSES))
    assert schema.columns["When"] == "datetime" and "When" in schema.inferred
    assert schema.datetime_formats["When"] == fmt
    typed = coerce(train, schema, "train.csv")["When"]
    assert typed.notna().all() and typed.dt.tz is None


def test_codes_that_only_look_like_dates_stay_categories(houses):
    train, _ = houses
    train["Code"] = [["3/4", "12/7", "1/15"][i % 3] for i in range(len(train))]
    assert infer_schema(train, DataConfig(**HOUSES)).columns["Code"] == "categorical"
