"""The schema: each feature column's kind, inferred from the values or set in params, and the
report of what was decided and what deserves a second look."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pipeline.config import DataConfig
from pipeline.data.errors import shown
from pipeline.data.values import date_format, date_text, looks_datetime, looks_numeric, parse_dates
from pipeline.metrics import TargetScale

KINDS = ("numeric", "categorical", "ordinal", "datetime")
# Report thresholds: an inferred text column this varied is flagged (one-hot width); an
# inferred numeric column of whole numbers this few is listed (it may be a code).
HIGH_CARDINALITY = 100
FEW_DISTINCT = 10
# A datetime column's calendar date, and its full stamp when it has a time of day, can also
# be read as a category (`Schema.calendar_levels`): what happened on that day or in that hour
# (weather, an event) is shared by every row there, and a network cannot carve hundreds of
# single days out of a number. A level is kept when it has more values than the month and
# day parts already tell apart, enough rows per value to learn from, and when most test rows
# fall on values the training rows have (not so under a split by time, where every test
# value would be new and the category a feature that is constant on the test file).
CALENDAR_LEVELS = ("date", "stamp")
MIN_CALENDAR_VALUES = 32
MIN_ROWS_PER_CALENDAR_VALUE = 4
MIN_TEST_SHARE = 0.5


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
    target_scale: str = TargetScale.NONE.value  # none | log | log1p
    overridden: list[str] = field(default_factory=list)  # kinds set in data.column_types
    dropped: list[str] = field(default_factory=list)  # data.drop_columns
    warnings: list[str] = field(default_factory=list)  # columns worth a second look
    # datetime column -> the one strptime format (or ISO8601) that reads it in both files;
    # "mixed" when no single format fits and each value is parsed on its own
    datetime_formats: dict[str, str] = field(default_factory=dict)
    # datetime column -> its levels also read as categories: "date" (the calendar day),
    # "stamp" (the whole date and time); see CALENDAR_LEVELS
    calendar_levels: dict[str, list[str]] = field(default_factory=dict)

    @property
    def scale(self) -> TargetScale:
        return TargetScale(self.target_scale)

    def of_kind(self, kind: str) -> list[str]:
        return [c for c, k in self.columns.items() if k == kind]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls(**json.loads(text))


def infer_schema(train: pd.DataFrame, cfg: DataConfig, id_type: str | None = None,
                 test: pd.DataFrame | None = None) -> Schema:
    """Decide the kind of every feature column: overrides first, then from the values.

    Numbers -> numeric; text that is all ISO dates (2016-03-01, 2016-03-01 14:00, with a zone
    or not) or all in a format that cannot be misread (Jan-2018, 12/2019) -> datetime; other
    text -> categorical. Each datetime column gets one format that reads all its values
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
        if looks_numeric(values):
            columns[column] = "numeric"
        elif looks_datetime(values):
            columns[column] = "datetime"
        else:
            columns[column] = "categorical"
    notes = _warnings(train, cfg, columns, inferred)
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
        id_type=id_type or resolve_id_type(train, test, cfg),
        target_scale=cfg.log_target.value,
        overridden=overridden,
        dropped=list(cfg.drop_columns),
        warnings=notes,
        datetime_formats=formats,
        calendar_levels={column: levels for column in formats
                         if (levels := _calendar_levels(train, test, column, formats[column]))},
    )


def _calendar_levels(train: pd.DataFrame, test: pd.DataFrame | None, column: str,
                     fmt: str) -> list[str]:
    """The calendar levels (CALENDAR_LEVELS) of a datetime column worth reading as
    categories: none without a test file to compare with."""
    if test is None or column not in test:
        return []
    stamps = [parse_dates(date_text(f[column]), fmt).dropna() for f in (train, test)]
    train_stamps, test_stamps = stamps
    if train_stamps.empty or test_stamps.empty:
        return []
    levels = []
    for level in CALENDAR_LEVELS:
        if level == "stamp" and (train_stamps == train_stamps.dt.normalize()).all():
            continue  # no time of day: the stamp is the date
        values, test_values = ((s.dt.normalize() if level == "date" else s)
                               for s in (train_stamps, test_stamps))
        distinct = values.nunique()
        if distinct > MIN_CALENDAR_VALUES and \
                len(values) >= MIN_ROWS_PER_CALENDAR_VALUE * distinct and \
                test_values.isin(set(values)).mean() >= MIN_TEST_SHARE:
            levels.append(level)
    return levels


def resolve_id_type(train: pd.DataFrame, test: pd.DataFrame | None, cfg: DataConfig) -> str:
    """`data.id_type`, with auto decided from the ids: integer if all are whole numbers."""
    if cfg.id_type != "auto":
        return cfg.id_type
    ids = [f[cfg.id_column] for f in (train, test) if f is not None and cfg.id_column in f]
    if not ids:
        return "integer"  # the missing column is reported by validation
    text = pd.concat(ids).astype("str")
    return "integer" if text.str.fullmatch(r"0|-?[1-9]\d{0,17}").all() else "text"


def describe_schema(schema: Schema) -> str:
    """A human report of the data contract: what was inferred as what, what params set."""
    counts = {k: len(schema.of_kind(k)) for k in KINDS}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    lines = [
        f"{len(schema.columns)} feature columns: {summary} ({len(schema.overridden)} set in "
        "params)",
        f"id {schema.id_column!r} ({schema.id_type} ids); target {schema.target!r}, "
        f"{schema.scale.describe()}",
    ]
    for kind in ("numeric", "categorical", "datetime"):
        names = [c for c in schema.inferred if schema.columns[c] == kind]
        if names:
            lines.append(f"inferred {kind} ({len(names)}): {_names(names)}")
    if schema.calendar_levels:
        lines.append("also read as categories (test rows share their values): " + _names(
            [f"{c} ({' and '.join(levels)})" for c, levels in schema.calendar_levels.items()]))
    if schema.overridden:
        lines.append("set in data.column_types: " + _names(
            [f"{c}={schema.columns[c]}" for c in schema.overridden]))
    if schema.dropped:
        lines.append(f"dropped (data.drop_columns): {_names(schema.dropped)}")
    return "\n".join(lines)


def _names(names: list[str], limit: int = 30) -> str:
    text = ", ".join(names[:limit])
    return text + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _warnings(train: pd.DataFrame, cfg: DataConfig, columns: dict[str, str],
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
                    f"{column}: text that reads as dates (e.g. {shown(values.iloc[0])}); set "
                    f"data.column_types.{column}: datetime to use it as one")
            elif distinct >= HIGH_CARDINALITY or (distinct > 20 and distinct > n_rows / 2):
                notes.append(
                    f"{column}: text with {distinct} distinct values in {n_rows} rows, read as "
                    "a learned vector per level seen often enough and per-fold frequency and "
                    "target encodings (features.wide_categories); if it is an identifier or "
                    "free text, list it in data.drop_columns")
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
            notes.append(f"{column}: the same value ({shown(values.iloc[0])}) on every "
                         "training row, so it carries no information (the model sees a "
                         "constant); list it in data.drop_columns")
    if few:
        notes.append(
            f"whole-number columns with few distinct values, inferred numeric: {_names(few)}; "
            "any that is a code rather than a quantity belongs in data.column_types as "
            "categorical")
    target = pd.to_numeric(train[cfg.target], errors="coerce").dropna()
    if cfg.log_target is TargetScale.NONE and len(target) > 2 and (target >= 0).all() and \
            float(target.skew()) > 2.0:
        notes.append(f"{cfg.target}: the target is non-negative and strongly skewed "
                     f"(skewness {float(target.skew()):.1f}); if the metric is on the log "
                     "scale, set data.log_target: log1p for RMSLE (or true for RMSE of logs)")
    return notes
