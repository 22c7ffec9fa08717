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


# --- calendar levels: a datetime column's date and stamp read as categories ---------------------

def hourly(n_rows: int, first: str, days: int, seed: int) -> pd.DataFrame:
    """Rows at whole hours (06:00-21:00) on `days` days from `first`."""
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp(first) + pd.to_timedelta(rng.integers(0, days, n_rows), unit="D") \
        + pd.to_timedelta(rng.integers(6, 22, n_rows), unit="h")
    return pd.DataFrame({"id": np.arange(n_rows), "When": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "x": rng.normal(size=n_rows), "y": rng.normal(size=n_rows)})


CALENDAR = DataConfig(id_column="id", target="y")


def test_dates_and_stamps_test_rows_share_are_read_as_categories():
    train, test = hourly(4000, "2013-01-01", 60, 0), hourly(1000, "2013-01-01", 60, 1)
    schema = infer_schema(train, CALENDAR, test=test)
    assert schema.columns["When"] == "datetime"
    assert schema.calendar_levels == {"When": ["date", "stamp"]}  # 60 days, 960 hours
    assert "also read as categories (test rows share their values): When (date and stamp)" \
        in describe_schema(schema)
    assert Schema.from_json(schema.to_json()) == schema


def test_calendar_levels_need_a_test_file_sharing_them_and_values_to_learn_from():
    train = hourly(4000, "2013-01-01", 60, 0)
    later = hourly(1000, "2013-03-02", 60, 1)  # a split by time: every test date is new
    assert infer_schema(train, CALENDAR, test=later).calendar_levels == {}
    assert infer_schema(train, CALENDAR).calendar_levels == {}  # nothing to compare with
    few_days = hourly(4000, "2013-01-01", 20, 0)  # 20 dates: the day parts tell them apart
    assert infer_schema(few_days, CALENDAR, test=hourly(500, "2013-01-01", 20, 1)
                        ).calendar_levels == {"When": ["stamp"]}
    sparse = hourly(300, "2013-01-01", 60, 0)  # 5 rows a date, 1-2 an hour
    assert infer_schema(sparse, CALENDAR, test=hourly(100, "2013-01-01", 60, 1)
                        ).calendar_levels == {"When": ["date"]}
    dates_only = train.assign(When=train["When"].str[:10])  # no time of day: no stamp level
    assert infer_schema(dates_only, CALENDAR, test=dates_only_test(1000)).calendar_levels == \
        {"When": ["date"]}


def dates_only_test(n_rows: int) -> pd.DataFrame:
    frame = hourly(n_rows, "2013-01-01", 60, 1)
    return frame.assign(When=frame["When"].str[:10])
