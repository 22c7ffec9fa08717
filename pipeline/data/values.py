"""How cell values read as numbers, dates and labels; shared by inference and coercion."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

# A text column is taken as numeric with a few bad cells (reported as errors) when at most
# this share of its non-missing values fail to parse as numbers.
NUMERIC_BAD_CELL_SHARE = 0.01
# Text that is entirely ISO dates / date-times is inferred as a datetime column.
ISO_DATETIME = (r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
                r"(?:Z|[+-]\d{2}:?\d{2})?")
# So is text written in one of these formats, which cannot be misread (the month by its
# name): "Jan-2018", "Mar 2016", "03-Feb-2017", "May 3, 2016".
NAMED_FORMATS = ("%b-%Y", "%b %Y", "%B %Y", "%B-%Y", "%b-%y", "%d-%b-%Y", "%d %b %Y",
                 "%d-%b-%y", "%b %d %Y", "%b %d, %Y", "%B %d, %Y", "%d %B %Y")


def is_number_dtype(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def looks_numeric(values: pd.Series) -> bool:
    if is_number_dtype(values):
        return True
    present = values.dropna()
    if present.empty:
        return False
    failed = pd.to_numeric(present, errors="coerce").isna().sum()
    return failed <= NUMERIC_BAD_CELL_SHARE * len(present)


def looks_datetime(values: pd.Series) -> bool:
    """Text that is all ISO dates, or all dates in one of NAMED_FORMATS."""
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(present):
        return False
    text = present.astype("str").str.strip()
    return bool(text.str.fullmatch(ISO_DATETIME).all()) or named_format(text) is not None


def named_format(text: pd.Series) -> str | None:
    """The one of NAMED_FORMATS that reads every value, if one does."""
    sample = pd.Series(text.unique()[:1000])
    for fmt in NAMED_FORMATS:
        if parse_dates(sample, fmt).notna().all() and parse_dates(text, fmt).notna().all():
            return fmt
    return None


def as_text(values: pd.Series) -> pd.Series:
    """Category labels as text; whole numbers lose their '.0' so 60 and 60.0 are one label
    (those an integer holds exactly: 1e300 and inf stay as floats write them)."""
    if is_number_dtype(values):
        numbers = values.astype("float64")
        present = numbers.dropna()
        if (present.eq(np.floor(present)) & (present.abs() < 2**53)).all():
            return numbers.astype("Int64").astype("str")
    return values.astype("str")


def date_text(values: pd.Series) -> pd.Series:
    """Date values as text; whole numbers such as 20160301 lose any '.0'."""
    if is_number_dtype(values):
        return as_text(values)
    return values.astype("str").where(values.notna())


def parse_dates(text: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(text, format=fmt, errors="coerce", utc=True)


def date_format(values: pd.Series) -> str | None:
    """The one format that reads every value of a date column: ISO 8601, else the format of
    its first value read month-first, else day-first; None if no single format fits."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return "ISO8601"
    text = date_text(values).dropna()
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
        if parse_dates(sample, fmt).notna().all() and parse_dates(text, fmt).notna().all():
            return fmt
    return named_format(text)
