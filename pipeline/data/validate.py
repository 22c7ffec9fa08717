"""The checks every frame passes before a model sees it, and its coercion to typed columns.

`load_competition` reads, checks and types train.csv and test.csv for the prepare stage;
`typed_test` is what it runs on test.csv, and what `predict` and the served model run on a
new test frame. Every problem raises DataError naming the file, the column and the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import DataConfig
from pipeline.data.errors import DataError, check_rows, shown, where_row
from pipeline.data.read import ReadOptions, check_columns, read_csv
from pipeline.data.schema import Schema, infer_schema, resolve_id_type
from pipeline.data.values import as_text, date_format, date_text, parse_dates
from pipeline.metrics import TargetScale

# Magnitudes beyond this overflow float32 arithmetic in the model.
MAX_ABS_VALUE = 1e30


def load_competition(cfg: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """Read, validate and type the train and test files; the one entry point stages use."""
    options = ReadOptions.of(cfg)
    train_raw = read_csv(cfg.train, options)
    test_raw = read_csv(cfg.test, options)
    id_type = resolve_id_type(train_raw, test_raw, cfg)
    validate_train(train_raw, cfg, cfg.train, id_type == "integer")
    schema = infer_schema(train_raw, cfg, id_type, test_raw)
    if not schema.columns:
        raise DataError(cfg.train, "no feature columns left after dropping id, target and "
                        "data.drop_columns")
    test = typed_test(test_raw, schema, options, cfg.test)
    return coerce(train_raw, schema, cfg.train), test, schema


def validate_train(frame: pd.DataFrame, cfg: DataConfig, path: str | Path,
                   integer_ids: bool) -> None:
    """Check the training frame: id and target columns, unique ids, a usable target."""
    check_columns(list(frame.columns), path)
    for column in (cfg.id_column, cfg.target):
        if column not in frame.columns:
            raise DataError(path, "required column is missing", column)
    for key, columns in (("data.drop_columns", cfg.drop_columns),
                         ("data.column_types", cfg.column_types),
                         ("data.ordinal_levels", cfg.ordinal_levels),
                         ("data.column_na_values", cfg.column_na_values)):
        for column in columns:
            if column not in frame.columns:
                raise DataError(path, f"{key} names this column but the file has no such column",
                                column)
    validate_ids(frame, cfg.id_column, path, integer_ids)
    target = frame[cfg.target]
    numeric = pd.to_numeric(target, errors="coerce")
    ids = frame[cfg.id_column]
    check_rows(numeric.isna() & target.notna(), path, cfg.target,
               lambda row: f"target is not a number: {shown(target.iloc[row])}")
    check_rows(numeric.isna(), path, cfg.target,
               lambda row: f"target is missing (id {shown(ids.iloc[row], quoted=False)})")
    check_rows(~np.isfinite(numeric), path, cfg.target,
               lambda row: f"target is not finite: {numeric.iloc[row]}")
    scale = cfg.log_target
    invalid, rule = scale.invalid(numeric.to_numpy())
    check_rows(invalid, path, cfg.target,
               lambda row: f"target must be {_RULES[scale]}, got {numeric.iloc[row]} "
                           f"(id {shown(ids.iloc[row], quoted=False)})")
    check_rows(~(np.abs(scale.to_model(numeric.to_numpy())) <= MAX_ABS_VALUE), path,
               cfg.target, lambda row: f"target {numeric.iloc[row]:g} is too large for the "
                                       f"models' float32 arithmetic (limit {MAX_ABS_VALUE:g} "
                                       "on the model scale; see data.log_target)")


_RULES = {TargetScale.LOG: "positive for a log-scale model",
          TargetScale.LOG1P: ">= 0 for log_target: log1p (RMSLE)"}


def typed_test(frame: pd.DataFrame, schema: Schema, options: ReadOptions,
               path: str | Path) -> pd.DataFrame:
    """A test frame checked as prepare checks test.csv, then typed per the schema: the one
    path for prepare, predict and the served model (a frame from Python is first read as
    the CSV would be: declared missing strings, ids as text)."""
    check_columns(list(frame.columns), path)
    frame = options.apply(frame.reset_index(drop=True))  # rows by position, as in a file
    validate_test(frame, schema, path)
    return coerce(frame, schema, path)


def validate_test(frame: pd.DataFrame, schema: Schema, path: str | Path) -> None:
    """Check a test frame has the training columns (minus the target) and unique ids.

    Columns in data.drop_columns may be missing from it (train-only columns are often leaks).
    """
    if schema.target in frame.columns:
        raise DataError(path, "the test file must not contain the target column", schema.target)
    if schema.id_column not in frame.columns:
        raise DataError(path, "required column is missing", schema.id_column)
    expected = [schema.id_column, *(c for c in schema.columns if c != schema.id_column)]
    known = {*expected, *schema.dropped, schema.target}
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in known]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(shown, missing))} (list training-only "
                         "columns in data.drop_columns)")
        if extra:
            parts.append(f"not in the training file: {', '.join(map(shown, extra))}")
        raise DataError(path, "columns differ from the training file's: " + "; ".join(parts))
    validate_ids(frame, schema.id_column, path, schema.id_type == "integer")


def validate_sample(sample: pd.DataFrame, test_ids: pd.Series, cfg: DataConfig,
                    path: str | Path) -> None:
    """The sample submission has the id and target columns and exactly the test file's ids,
    compared as written (an id 1461.0 is not the id 1461)."""
    expected = [cfg.id_column, cfg.target]
    if list(sample.columns) != expected:
        raise DataError(path, f"columns are {list(sample.columns)}, expected {expected}")
    ids = sample[cfg.id_column]
    check_rows(ids.isna(), path, cfg.id_column, lambda row: "id is missing")
    ids, known = ids.astype("str"), test_ids.astype("str")
    check_rows(~ids.isin(known), path, cfg.id_column,
               lambda row: f"id {shown(ids.iloc[row])} is not a test id (ids are compared as "
                           "written)")
    if sorted(ids) != sorted(known):
        raise DataError(path, "ids differ from the test file's ids: some test ids are missing "
                        "or repeated", cfg.id_column)


def validate_ids(frame: pd.DataFrame, id_column: str, path: str | Path,
                 integer: bool) -> None:
    """Ids (read as text) are present and unique; integer ids are written as whole numbers
    that fit 64 bits, so they are written back exactly as they were read."""
    if id_column not in frame.columns:
        raise DataError(path, "required column is missing", id_column)
    ids = frame[id_column]
    check_rows(ids.isna(), path, id_column, lambda row: "id is missing")
    if integer:
        text = ids.astype("str")
        check_rows(~text.str.fullmatch(_INTEGER), path, id_column,
                   lambda row: f"id is not an integer: {shown(ids.iloc[row])} (set "
                               "data.id_type: text for ids that are not whole numbers as "
                               "written, e.g. 1461.0 or 0012: text ids are kept verbatim)")
        long = text.str.len() > 18
        fits = ~long | text.where(long, "0").map(lambda t: -2**63 <= int(t) < 2**63)
        check_rows(~fits.astype(bool), path, id_column,
                   lambda row: f"id {shown(ids.iloc[row], quoted=False)} does not fit a 64-bit "
                               "integer (set data.id_type: text to keep long ids verbatim)")
    check_rows(ids.duplicated(keep="first"), path, id_column,
               lambda row: f"duplicate id {shown(ids.iloc[row], quoted=False)} (first seen on "
                           f"{where_row(path, int(np.flatnonzero(ids == ids.iloc[row])[0]))})")


_INTEGER = r"0|-?[1-9][0-9]*"  # as int64 writes it back: no '+', '-0', zero padding, '.0'


def coerce(frame: pd.DataFrame, schema: Schema, path: str | Path) -> pd.DataFrame:
    """Return the id, the feature columns typed per the schema, and the target if present.

    Numeric columns become float64 (so integer columns that can be missing stay valid);
    a value that is not a finite number of sane size is an error naming its line, and so is
    a date that does not parse or an ordinal level missing from its order. An id column that
    is also a feature keeps its verbatim ids here; `typed_column` gives its feature values.
    """
    frame = frame.reset_index(drop=True)  # rows by position: a slice keeps its labels
    ids = frame[schema.id_column]
    out = {schema.id_column: ids.astype("int64") if schema.id_type == "integer"
           else ids.astype("str")}
    for column in schema.columns:
        if column not in frame.columns:
            raise DataError(path, "required column is missing", column)
        typed = typed_column(frame[column], schema, column, path)
        if column != schema.id_column:
            out[column] = typed
    if schema.target in frame.columns:
        out[schema.target] = frame[schema.target].astype("float64")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def typed_column(values: pd.Series, schema: Schema, column: str,
                 path: str | Path = "input frame") -> pd.Series:
    """One feature column typed per its kind in the schema; bad values name their line."""
    kind = schema.columns[column]
    if kind == "numeric":
        return _to_float(values, column, path)
    if kind == "datetime":
        fmt = schema.datetime_formats.get(column) or date_format(values) or "mixed"
        return _to_datetime(values, column, path, fmt)
    text = as_text(values)
    if kind == "ordinal":
        levels = schema.ordinal_levels[column]
        check_rows(text.notna() & ~text.isin(levels), path, column,
                   lambda row: f"{shown(text.iloc[row])} is not one of data.ordinal_levels."
                               f"{column}: {levels}")
    return text


def _to_datetime(values: pd.Series, column: str, path: str | Path, fmt: str) -> pd.Series:
    """Dates and date-times in one format as naive UTC timestamps. A value that does not
    parse is an error naming its line."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = parse_dates(date_text(values), fmt)
        expected = "" if fmt == "mixed" else f" (expected format {fmt}, as in the rest of " \
            "the column)"
        check_rows(parsed.isna() & values.notna(), path, column,
                   lambda row: f"not a date/time: {shown(values.iloc[row])}{expected}")
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed


def _to_float(values: pd.Series, column: str, path: str | Path) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    check_rows(numbers.isna() & values.notna(), path, column,
               lambda row: f"not a number: {shown(values.iloc[row])}")
    check_rows(numbers.notna() & ~(numbers.abs() <= MAX_ABS_VALUE), path, column,
               lambda row: f"value {numbers.iloc[row]} is infinite or too large "
                           f"(limit {MAX_ABS_VALUE:g})")
    return numbers
