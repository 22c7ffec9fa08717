"""Read and validate the raw competition CSVs; infer column types. No feature transforms.

Every problem raises DataError naming the file, and the column and row where there is one,
so a user can open the file at the right line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import DataConfig

# A text column is taken as numeric with a few bad cells (reported as errors) when at most
# this share of its non-missing values fail to parse as numbers.
NUMERIC_BAD_CELL_SHARE = 0.01
# Magnitudes beyond this overflow float32 arithmetic in the model.
MAX_ABS_VALUE = 1e30


class DataError(ValueError):
    """A raw data file is unusable; the message names the file, column and row."""

    def __init__(self, path: str | Path, message: str, column: str | None = None,
                 line: int | None = None) -> None:
        where = str(path)
        if column is not None:
            where += f", column {column!r}"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {message}")
        self.path, self.column, self.line = str(path), column, line


@dataclass(frozen=True)
class Schema:
    """The feature columns of a competition and the kind of each, as inferred or overridden."""

    id_column: str
    target: str
    columns: dict[str, str]  # feature column -> numeric | categorical | ordinal | datetime
    ordinal_levels: dict[str, list[str]] = field(default_factory=dict)
    inferred: list[str] = field(default_factory=list)  # columns whose kind was not overridden

    def of_kind(self, kind: str) -> list[str]:
        return [c for c, k in self.columns.items() if k == kind]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls(**json.loads(text))


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read one CSV with clear errors for a missing, empty, undecodable or ragged file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(path, f"not valid UTF-8 (byte {exc.object[exc.start]:#04x})",
                        line=line) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(path, "file has no header row") from exc
    except pd.errors.ParserError as exc:
        raise DataError(path, f"malformed CSV: {_ragged_row(path) or exc}") from exc
    if frame.empty:
        raise DataError(path, "file has a header but no data rows")
    if frame.shape[1] == 1:
        sniffed = _sniff_delimiter(path)
        hint = f" (it looks {sniffed!r}-delimited)" if sniffed and sniffed != "," else ""
        raise DataError(path, f"only one column found; the file must be comma-separated{hint}")
    return frame


def validate_train(frame: pd.DataFrame, cfg: DataConfig, path: str | Path) -> None:
    """Check the training frame: id and target columns, unique ids, a usable target."""
    _require_columns(frame, [cfg.id_column, cfg.target, *cfg.drop_columns,
                             *cfg.column_types], path)
    _validate_ids(frame, cfg.id_column, path)
    target = frame[cfg.target]
    numeric = pd.to_numeric(target, errors="coerce")
    bad = numeric.isna() & target.notna()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(path, f"target is not a number: {target.iloc[row]!r}", cfg.target,
                        _line(row))
    if numeric.isna().any():
        row = int(np.flatnonzero(numeric.isna())[0])
        raise DataError(path, f"target is missing (id {frame[cfg.id_column].iloc[row]})",
                        cfg.target, _line(row))
    if not np.isfinite(numeric).all():
        row = int(np.flatnonzero(~np.isfinite(numeric))[0])
        raise DataError(path, f"target is not finite: {numeric.iloc[row]}", cfg.target,
                        _line(row))
    if cfg.log_target and (numeric <= 0).any():
        row = int(np.flatnonzero(numeric <= 0)[0])
        raise DataError(path, f"target must be positive for a log-scale model, got "
                        f"{numeric.iloc[row]} (id {frame[cfg.id_column].iloc[row]})",
                        cfg.target, _line(row))


def validate_test(frame: pd.DataFrame, train: pd.DataFrame, cfg: DataConfig,
                  path: str | Path) -> None:
    """Check the test frame has the training columns (minus the target) and unique ids."""
    if cfg.target in frame.columns:
        raise DataError(path, "the test file must not contain the target column", cfg.target)
    expected = [c for c in train.columns if c != cfg.target]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in train.columns]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"not in the training file: {', '.join(map(repr, extra))}")
        raise DataError(path, "columns differ from the training file's: " + "; ".join(parts))
    _validate_ids(frame, cfg.id_column, path)


def infer_schema(train: pd.DataFrame, cfg: DataConfig) -> Schema:
    """Decide the kind of every feature column: overrides first, then from the values."""
    columns: dict[str, str] = {}
    inferred = []
    for column in train.columns:
        if column in (cfg.id_column, cfg.target) or column in cfg.drop_columns:
            continue
        if column in cfg.column_types:
            columns[column] = cfg.column_types[column]
            continue
        inferred.append(column)
        columns[column] = "numeric" if _looks_numeric(train[column]) else "categorical"
    return Schema(
        id_column=cfg.id_column,
        target=cfg.target,
        columns=columns,
        ordinal_levels={c: list(v) for c, v in cfg.ordinal_levels.items() if c in columns},
        inferred=inferred,
    )


def coerce(frame: pd.DataFrame, schema: Schema, path: str | Path) -> pd.DataFrame:
    """Return the id, the feature columns typed per the schema, and the target if present.

    Numeric columns become float64 (so integer columns that can be missing stay valid);
    a value that is not a finite number of sane size is an error naming its line.
    """
    out = {schema.id_column: frame[schema.id_column].astype("int64")}
    for column, kind in schema.columns.items():
        if column not in frame.columns:
            raise DataError(path, "required column is missing", column)
        values = frame[column]
        if kind == "numeric":
            out[column] = _to_float(values, column, path)
        elif kind == "datetime":
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            bad = parsed.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(path, f"not a date/time: {values.iloc[row]!r}", column,
                                _line(row))
            out[column] = parsed
        else:
            out[column] = _to_text(values)
    if schema.target in frame.columns:
        out[schema.target] = frame[schema.target].astype("float64")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def load_competition(cfg: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """Read, validate and type the train and test files; the one entry point stages use."""
    train_raw = read_csv(cfg.train)
    validate_train(train_raw, cfg, cfg.train)
    test_raw = read_csv(cfg.test)
    validate_test(test_raw, train_raw, cfg, cfg.test)
    schema = infer_schema(train_raw, cfg)
    if not schema.columns:
        raise DataError(cfg.train, "no feature columns left after dropping id, target and "
                        "data.drop_columns")
    train = coerce(train_raw, schema, cfg.train)
    test = coerce(test_raw, schema, cfg.test)
    return train, test, schema


def describe_schema(schema: Schema) -> str:
    """A short human report of what was inferred, for the CLI."""
    counts = {k: len(schema.of_kind(k)) for k in ("numeric", "categorical", "ordinal",
                                                  "datetime")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    overridden = len(schema.columns) - len(schema.inferred)
    return f"{len(schema.columns)} feature columns: {summary} ({overridden} set in params)"


def _require_columns(frame: pd.DataFrame, columns: list[str], path: str | Path) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DataError(path, "required column is missing", column)


def _validate_ids(frame: pd.DataFrame, id_column: str, path: str | Path) -> None:
    if id_column not in frame.columns:
        raise DataError(path, "id column is missing", id_column)
    ids = frame[id_column]
    as_number = pd.to_numeric(ids, errors="coerce")
    not_int = as_number.isna() | (as_number != np.floor(as_number))
    if not_int.any():
        row = int(np.flatnonzero(not_int)[0])
        raise DataError(path, f"id is not an integer: {ids.iloc[row]!r}", id_column, _line(row))
    dup = ids.duplicated(keep="first")
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(ids == ids.iloc[row])[0])
        raise DataError(path, f"duplicate id {ids.iloc[row]} (first seen on line "
                        f"{_line(first)})", id_column, _line(row))


def _looks_numeric(values: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return True
    present = values.dropna()
    if present.empty:
        return False
    failed = pd.to_numeric(present, errors="coerce").isna().sum()
    return failed <= NUMERIC_BAD_CELL_SHARE * len(present)


def _to_float(values: pd.Series, column: str, path: str | Path) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = numbers.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(path, f"not a number: {values.iloc[row]!r}", column, _line(row))
    huge = numbers.notna() & ~(numbers.abs() <= MAX_ABS_VALUE)
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise DataError(path, f"value {numbers.iloc[row]} is infinite or too large "
                        f"(limit {MAX_ABS_VALUE:g})", column, _line(row))
    return numbers


def _to_text(values: pd.Series) -> pd.Series:
    """Category labels as text; whole numbers lose their '.0' so 60 and 60.0 are one label."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        whole = numbers.dropna().eq(np.floor(numbers.dropna())).all()
        if whole:
            return numbers.astype("Int64").astype("str")
    return values.astype("str")


def _line(row: int) -> int:
    """The 1-based line of a data row in its CSV (the header is line 1)."""
    return row + 2


def _ragged_row(path: Path) -> str | None:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        width = len(next(reader, []))
        for number, row in enumerate(reader, start=2):
            if len(row) != width:
                return f"line {number} has {len(row)} fields, the header has {width}"
    return None


def _sniff_delimiter(path: Path) -> str | None:
    sample = path.read_text(encoding="utf-8", errors="replace")[:4096]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return None
