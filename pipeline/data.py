"""Read and validate the raw competition CSVs; infer column types. No feature transforms.

Every problem raises DataError naming the file, and the column and row where there is one,
so a user can open the file at the right line.
"""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from pipeline.config import DataConfig

# A text column is taken as numeric with a few bad cells (reported as errors) when at most
# this share of its non-missing values fail to parse as numbers.
NUMERIC_BAD_CELL_SHARE = 0.01
# Magnitudes beyond this overflow float32 arithmetic in the model.
MAX_ABS_VALUE = 1e30
# Text that is entirely ISO dates / date-times is inferred as a datetime column.
ISO_DATETIME = (r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
                r"(?:Z|[+-]\d{2}:?\d{2})?")
# Schema report thresholds: an inferred text column this varied is flagged (one-hot width);
# an inferred numeric column of whole numbers this few is listed (it may be a code).
HIGH_CARDINALITY = 100
FEW_DISTINCT = 10


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
    """The feature columns of a competition and the kind of each, as inferred or overridden.

    Written to schema.json by the prepare stage, so a user can see what was decided and why.
    """

    id_column: str
    target: str
    columns: dict[str, str]  # feature column -> numeric | categorical | ordinal | datetime
    ordinal_levels: dict[str, list[str]] = field(default_factory=dict)
    inferred: list[str] = field(default_factory=list)  # columns whose kind was not overridden
    id_type: str = "integer"  # integer | text (kept verbatim)
    log_target: bool | str = False  # true, false or "log1p"
    overridden: list[str] = field(default_factory=list)  # kinds set in data.column_types
    dropped: list[str] = field(default_factory=list)  # data.drop_columns
    warnings: list[str] = field(default_factory=list)  # columns worth a second look
    # datetime column -> the one strptime format (or ISO8601) that reads it in both files;
    # "mixed" when no single format fits and each value is parsed on its own
    datetime_formats: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[str]:
        return [c for c, k in self.columns.items() if k == kind]

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Columns to read from a CSV as text, never as numbers (text ids like '0012')."""
        return (self.id_column,) if self.id_type == "text" else ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls(**json.loads(text))


def read_csv(path: str | Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one CSV with clear errors for a missing, empty, undecodable or ragged file.

    `text_columns` are read as text exactly as written (an id '0012' stays '0012').
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    try:
        frame = pd.read_csv(path, encoding="utf-8", dtype={c: "str" for c in text_columns})
    except UnicodeDecodeError as exc:
        data = path.read_bytes()  # pandas' offset is into its read buffer: find the byte here
        try:
            data.decode("utf-8")
            start = exc.start
        except UnicodeDecodeError as whole:
            start = whole.start
        line = data[:start].count(b"\n") + 1
        raise DataError(path, f"not valid UTF-8 (byte {data[start]:#04x})", line=line) from exc
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
    _require_columns(frame, [cfg.id_column, cfg.target], path)
    for key, columns in (("data.drop_columns", cfg.drop_columns),
                         ("data.column_types", cfg.column_types),
                         ("data.ordinal_levels", cfg.ordinal_levels)):
        for column in columns:
            if column not in frame.columns:
                raise DataError(path, f"{key} names this column but the file has no such column",
                                column)
    _validate_ids(frame, cfg.id_column, path, cfg.id_type != "text")
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
    if cfg.log_target == "log1p" and (numeric < 0).any():
        row = int(np.flatnonzero(numeric < 0)[0])
        raise DataError(path, f"target must be >= 0 for log_target: log1p (RMSLE), got "
                        f"{numeric.iloc[row]} (id {frame[cfg.id_column].iloc[row]})",
                        cfg.target, _line(row))
    if cfg.log_target is True and (numeric <= 0).any():
        row = int(np.flatnonzero(numeric <= 0)[0])
        raise DataError(path, f"target must be positive for a log-scale model, got "
                        f"{numeric.iloc[row]} (id {frame[cfg.id_column].iloc[row]})",
                        cfg.target, _line(row))


def validate_test(frame: pd.DataFrame, train: pd.DataFrame, cfg: DataConfig,
                  path: str | Path) -> None:
    """Check the test frame has the training columns (minus the target) and unique ids.

    Columns in data.drop_columns may be missing from it (train-only columns are often leaks).
    """
    if cfg.target in frame.columns:
        raise DataError(path, "the test file must not contain the target column", cfg.target)
    expected = [c for c in train.columns if c != cfg.target and c not in cfg.drop_columns]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in train.columns]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))} (list training-only "
                         "columns in data.drop_columns)")
        if extra:
            parts.append(f"not in the training file: {', '.join(map(repr, extra))}")
        raise DataError(path, "columns differ from the training file's: " + "; ".join(parts))
    _validate_ids(frame, cfg.id_column, path, cfg.id_type != "text")


def infer_schema(train: pd.DataFrame, cfg: DataConfig,
                 test: pd.DataFrame | None = None) -> Schema:
    """Decide the kind of every feature column: overrides first, then from the values.

    Numbers -> numeric; text that is all ISO dates (2016-03-01, 2016-03-01 14:00) -> datetime;
    other text -> categorical. Each datetime column gets one format that reads all its values
    in train (and test, when given), so 02.04.2017 means the same day in both files. Columns
    worth a second look are noted in `warnings`.
    """
    columns: dict[str, str] = {}
    inferred, overridden = [], []
    for column in train.columns:
        if column == cfg.target or column in cfg.drop_columns or \
                (column == cfg.id_column and column not in cfg.column_types):
            continue
        if column in cfg.column_types:
            columns[column] = cfg.column_types[column]
            overridden.append(column)
            continue
        inferred.append(column)
        values = train[column]
        if _looks_numeric(values):
            columns[column] = "numeric"
        elif _looks_iso_datetime(values):
            columns[column] = "datetime"
        else:
            columns[column] = "categorical"
    notes = _schema_warnings(train, cfg, columns, inferred)
    formats = {}
    for column in [c for c, kind in columns.items() if kind == "datetime"]:
        values = pd.concat([f[column] for f in (train, test) if f is not None and column in f])
        formats[column] = date_format(values) or "mixed"
        if formats[column] == "mixed":
            notes.append(f"{column}: no single date format reads every value, so each is "
                         "parsed on its own; an ambiguous date such as 02/04/2017 may be read "
                         "differently from row to row")
    return Schema(
        id_column=cfg.id_column,
        target=cfg.target,
        columns=columns,
        ordinal_levels={c: list(v) for c, v in cfg.ordinal_levels.items() if c in columns},
        inferred=inferred,
        id_type=resolve_id_type(train, None, cfg),
        log_target=cfg.log_target,
        overridden=overridden,
        dropped=list(cfg.drop_columns),
        warnings=notes,
        datetime_formats=formats,
    )


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
    text = _to_text(values)
    if kind == "ordinal":
        _check_levels(text, schema.ordinal_levels[column], column, path)
    return text


def load_competition(cfg: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """Read, validate and type the train and test files; the one entry point stages use."""
    text_ids = (cfg.id_column,) if cfg.id_type != "integer" else ()
    train_raw = read_csv(cfg.train, text_ids)
    test_raw = read_csv(cfg.test, text_ids)
    cfg = replace(cfg, id_type=resolve_id_type(train_raw, test_raw, cfg))
    if cfg.id_type == "integer" and text_ids:  # auto found whole numbers: read them as numbers
        train_raw, test_raw = (_ids_as_numbers(f, cfg.id_column) for f in (train_raw, test_raw))
    validate_train(train_raw, cfg, cfg.train)
    validate_test(test_raw, train_raw, cfg, cfg.test)
    schema = infer_schema(train_raw, cfg, test_raw)
    if not schema.columns:
        raise DataError(cfg.train, "no feature columns left after dropping id, target and "
                        "data.drop_columns")
    train = coerce(train_raw, schema, cfg.train)
    test = coerce(test_raw, schema, cfg.test)
    return train, test, schema


def resolve_id_type(train: pd.DataFrame, test: pd.DataFrame | None, cfg: DataConfig) -> str:
    """`data.id_type`, with auto decided from the ids: integer if all are whole numbers."""
    if cfg.id_type != "auto":
        return cfg.id_type
    ids = [f[cfg.id_column] for f in (train, test) if f is not None and cfg.id_column in f]
    if not ids:
        return "integer"  # the missing column is reported by validation
    text = pd.concat(ids).astype("str")
    return "integer" if text.str.fullmatch(r"-?(0|[1-9]\d{0,17})").all() else "text"


def describe_schema(schema: Schema) -> str:
    """A human report of the data contract: what was inferred as what, what params set."""
    counts = {k: len(schema.of_kind(k)) for k in ("numeric", "categorical", "ordinal",
                                                  "datetime")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    scale = {True: "modelled as log(target): the metric is RMSE of log(target)",
             "log1p": "modelled as log(1 + target): the metric is RMSLE",
             False: "modelled as is: the metric is RMSE"}[schema.log_target]
    lines = [
        f"{len(schema.columns)} feature columns: {summary} ({len(schema.overridden)} set in "
        "params)",
        f"id {schema.id_column!r} ({schema.id_type} ids); target {schema.target!r}, {scale}",
    ]
    for kind in ("numeric", "categorical", "datetime"):
        names = [c for c in schema.inferred if schema.columns[c] == kind]
        if names:
            lines.append(f"inferred {kind} ({len(names)}): {_names(names)}")
    if schema.overridden:
        lines.append("set in data.column_types: " + _names(
            [f"{c}={schema.columns[c]}" for c in schema.overridden]))
    if schema.dropped:
        lines.append(f"dropped (data.drop_columns): {_names(schema.dropped)}")
    return "\n".join(lines)


def _names(names: list[str], limit: int = 30) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _schema_warnings(train: pd.DataFrame, cfg: DataConfig, columns: dict[str, str],
                     inferred: list[str]) -> list[str]:
    """Inferred columns that may need a type override or a place in data.drop_columns."""
    notes, few = [], []
    n_rows = len(train)
    for column in inferred:
        values = train[column].dropna()
        distinct = values.nunique()
        if columns[column] == "categorical":
            if distinct and date_format(values) is not None:
                notes.append(
                    f"{column}: text that reads as dates (e.g. {values.iloc[0]!r}); set "
                    f"data.column_types.{column}: datetime to use it as one")
            elif distinct >= HIGH_CARDINALITY or (distinct > 20 and distinct > n_rows / 2):
                notes.append(
                    f"{column}: text with {distinct} distinct values in {n_rows} rows, one "
                    "one-hot column each; if it is an identifier or free text, list it in "
                    "data.drop_columns")
        elif columns[column] == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").dropna()
            whole = bool((numbers == np.floor(numbers)).all())
            if whole and distinct == n_rows and n_rows >= 50:
                notes.append(f"{column}: a distinct whole number on every row, like an "
                             "identifier; if it is one, list it in data.drop_columns")
            elif whole and 2 < distinct <= FEW_DISTINCT:
                few.append(f"{column} ({distinct})")
    for column in columns:  # inferred or set: either way the model can learn nothing here
        values = train[column]
        if values.isna().all():
            notes.append(f"{column}: every value is missing in the training file, so it "
                         "carries no information (the model sees a constant); list it in "
                         "data.drop_columns")
        elif values.nunique(dropna=False) == 1:
            value = values.iloc[0]
            value = value.item() if isinstance(value, np.generic) else value
            notes.append(f"{column}: the same value ({value!r}) on every training "
                         "row, so it carries no information (the model sees a constant); "
                         "list it in data.drop_columns")
    if few:
        notes.append(
            f"whole-number columns with few distinct values, inferred numeric: {_names(few)}; "
            "any that is a code rather than a quantity belongs in data.column_types as "
            "categorical")
    target = pd.to_numeric(train[cfg.target], errors="coerce").dropna()
    if not cfg.log_target and len(target) > 2 and (target >= 0).all() and \
            float(target.skew()) > 2.0:
        notes.append(f"{cfg.target}: the target is non-negative and strongly skewed "
                     f"(skewness {float(target.skew()):.1f}); if the metric is on the log "
                     "scale, set data.log_target: log1p for RMSLE (or true for RMSE of logs)")
    return notes


def _require_columns(frame: pd.DataFrame, columns: list[str], path: str | Path) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DataError(path, "required column is missing", column)


def _validate_ids(frame: pd.DataFrame, id_column: str, path: str | Path,
                  integer: bool = True) -> None:
    if id_column not in frame.columns:
        raise DataError(path, "id column is missing", id_column)
    ids = frame[id_column]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna())[0])
        raise DataError(path, "id is missing", id_column, _line(row))
    if integer:
        as_number = pd.to_numeric(ids, errors="coerce")
        not_int = as_number.isna() | (as_number != np.floor(as_number))
        if not_int.any():
            row = int(np.flatnonzero(not_int)[0])
            raise DataError(path, f"id is not an integer: {ids.iloc[row]!r} (set "
                            "data.id_type: text for ids that are not whole numbers)",
                            id_column, _line(row))
    dup = ids.duplicated(keep="first")
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(ids == ids.iloc[row])[0])
        raise DataError(path, f"duplicate id {ids.iloc[row]} (first seen on line "
                        f"{_line(first)})", id_column, _line(row))


def _ids_as_numbers(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    if id_column not in frame.columns:
        return frame
    return frame.assign(**{id_column: pd.to_numeric(frame[id_column]).astype("int64")})


def _looks_iso_datetime(values: pd.Series) -> bool:
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(present):
        return False
    return bool(present.astype("str").str.strip().str.fullmatch(ISO_DATETIME).all())


def date_format(values: pd.Series) -> str | None:
    """The one format that reads every value of a date column: ISO 8601, else the format of
    its first value read month-first, else day-first; None if no single format fits."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return "ISO8601"
    text = _date_text(values).dropna()
    if text.empty:
        return "ISO8601"
    sample = pd.Series(text.unique()[:1000])
    if not sample.str.contains(r"\d").all() or sample.str.len().min() < 6:
        return None  # not dates: codes, words
    first = str(sample.iloc[0])
    candidates = ["ISO8601"]
    for dayfirst in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            candidates.append(guess_datetime_format(first, dayfirst=dayfirst))
    for fmt in dict.fromkeys(c for c in candidates if c):
        if _parse_dates(sample, fmt).notna().all() and _parse_dates(text, fmt).notna().all():
            return fmt
    return None


def _date_text(values: pd.Series) -> pd.Series:
    """Date values as text; whole numbers such as 20160301 lose any '.0'."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _to_text(values)
    return values.astype("str").where(values.notna())


def _parse_dates(text: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(text, format=fmt, errors="coerce", utc=True)


def _to_datetime(values: pd.Series, column: str, path: str | Path, fmt: str) -> pd.Series:
    """Dates and date-times in one format as naive UTC timestamps. A value that does not
    parse is an error naming its line."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = _parse_dates(_date_text(values), fmt)
        bad = parsed.isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            expected = "" if fmt == "mixed" else f" (expected format {fmt}, as in the rest " \
                "of the column)"
            raise DataError(path, f"not a date/time: {values.iloc[row]!r}{expected}", column,
                            _line(row))
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed


def _check_levels(values: pd.Series, levels: list[str], column: str,
                  path: str | Path) -> None:
    unknown = values.notna() & ~values.isin(levels)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(path, f"{values.iloc[row]!r} is not one of data.ordinal_levels."
                        f"{column}: {levels}", column, _line(row))


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
