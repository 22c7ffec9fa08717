"""The checks every frame passes before a model sees it, and its coercion to typed columns.

`load_competition` reads, checks and types train.csv and test.csv for the prepare stage;
`validate_test` and `coerce` are also what `predict` and the served model run on a new test
frame. Every problem raises DataError naming the file, the column and the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import DataConfig
from pipeline.data.errors import DataError, check_rows, line_of, shown
from pipeline.data.read import read_csv
from pipeline.data.schema import Schema, infer_schema, resolve_id_type
from pipeline.data.values import as_text, date_format, date_text, parse_dates
from pipeline.metrics import TargetScale

# Magnitudes beyond this overflow float32 arithmetic in the model.
MAX_ABS_VALUE = 1e30


def load_competition(cfg: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """Read, validate and type the train and test files; the one entry point stages use."""
    text_ids = (cfg.id_column,) if cfg.id_type != "integer" else ()
    train_raw = read_csv(cfg.train, text_ids)
    test_raw = read_csv(cfg.test, text_ids)
    id_type = resolve_id_type(train_raw, test_raw, cfg)
    if id_type == "integer" and text_ids:  # auto found whole numbers: read them as numbers
        train_raw, test_raw = (_ids_as_numbers(f, cfg.id_column) for f in (train_raw, test_raw))
    integer_ids = id_type == "integer"
    validate_train(train_raw, cfg, cfg.train, integer_ids)
    validate_test(test_raw, train_raw.columns, cfg, cfg.test, integer_ids)
    schema = infer_schema(train_raw, cfg, id_type, test_raw)
    if not schema.columns:
        raise DataError(cfg.train, "no feature columns left after dropping id, target and "
                        "data.drop_columns")
    return coerce(train_raw, schema, cfg.train), coerce(test_raw, schema, cfg.test), schema


def validate_train(frame: pd.DataFrame, cfg: DataConfig, path: str | Path,
                   integer_ids: bool) -> None:
    """Check the training frame: id and target columns, unique ids, a usable target."""
    for column in (cfg.id_column, cfg.target):
        if column not in frame.columns:
            raise DataError(path, "required column is missing", column)
    for key, columns in (("data.drop_columns", cfg.drop_columns),
                         ("data.column_types", cfg.column_types),
                         ("data.ordinal_levels", cfg.ordinal_levels)):
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
               lambda row: f"target is missing (id {ids.iloc[row]})")
    check_rows(~np.isfinite(numeric), path, cfg.target,
               lambda row: f"target is not finite: {numeric.iloc[row]}")
    scale = cfg.log_target
    invalid, rule = scale.invalid(numeric.to_numpy())
    check_rows(invalid, path, cfg.target,
               lambda row: f"target must be {_RULES[scale]}, got {numeric.iloc[row]} "
                           f"(id {ids.iloc[row]})")


_RULES = {TargetScale.LOG: "positive for a log-scale model",
          TargetScale.LOG1P: ">= 0 for log_target: log1p (RMSLE)"}


def validate_test(frame: pd.DataFrame, train_columns: pd.Index, cfg: DataConfig,
                  path: str | Path, integer_ids: bool) -> None:
    """Check a test frame has the training columns (minus the target) and unique ids.

    Columns in data.drop_columns may be missing from it (train-only columns are often leaks).
    """
    if cfg.target in frame.columns:
        raise DataError(path, "the test file must not contain the target column", cfg.target)
    expected = [c for c in train_columns if c != cfg.target and c not in cfg.drop_columns]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in train_columns]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))} (list training-only "
                         "columns in data.drop_columns)")
        if extra:
            parts.append(f"not in the training file: {', '.join(map(repr, extra))}")
        raise DataError(path, "columns differ from the training file's: " + "; ".join(parts))
    validate_ids(frame, cfg.id_column, path, integer_ids)


def validate_sample(sample: pd.DataFrame, test_ids: pd.Series, cfg: DataConfig,
                    path: str | Path) -> None:
    """The sample submission has the id and target columns and exactly the test file's ids."""
    expected = [cfg.id_column, cfg.target]
    if list(sample.columns) != expected:
        raise DataError(path, f"columns are {list(sample.columns)}, expected {expected}")
    if sorted(sample[cfg.id_column]) != sorted(test_ids):
        raise DataError(path, "ids differ from the test file's ids", cfg.id_column)


def validate_ids(frame: pd.DataFrame, id_column: str, path: str | Path,
                 integer: bool) -> None:
    if id_column not in frame.columns:
        raise DataError(path, "id column is missing", id_column)
    ids = frame[id_column]
    check_rows(ids.isna(), path, id_column, lambda row: "id is missing")
    if integer:
        as_number = pd.to_numeric(ids, errors="coerce")
        check_rows(as_number.isna() | (as_number != np.floor(as_number)), path, id_column,
                   lambda row: f"id is not an integer: {shown(ids.iloc[row])} (set "
                               "data.id_type: text for ids that are not whole numbers)")
    check_rows(ids.duplicated(keep="first"), path, id_column,
               lambda row: f"duplicate id {ids.iloc[row]} (first seen on line "
                           f"{line_of(path, int(np.flatnonzero(ids == ids.iloc[row])[0]))})")


def coerce(frame: pd.DataFrame, schema: Schema, path: str | Path) -> pd.DataFrame:
    """Return the id, the feature columns typed per the schema, and the target if present.

    Numeric columns become float64 (so integer columns that can be missing stay valid);
    a value that is not a finite number of sane size is an error naming its line, and so is
    a date that does not parse or an ordinal level missing from its order. An id column that
    is also a feature keeps its verbatim ids here; `typed_column` gives its feature values.
    """
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


def _ids_as_numbers(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    if id_column not in frame.columns:
        return frame
    return frame.assign(**{id_column: pd.to_numeric(frame[id_column]).astype("int64")})


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
