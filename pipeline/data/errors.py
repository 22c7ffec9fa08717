"""DataError: a data file is unusable, with the file, column and line that say where."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

MAX_SHOWN_CHARS = 60  # a longer cell is cut in messages: 'aaaa...' (5 000 000 characters)
MAX_FIELD_CHARS = 1 << 30  # the csv module stops at 128 KiB fields; pandas has no limit


class DataError(ValueError):
    """A raw data file is unusable; the message names the file, column and line."""

    def __init__(self, path: str | Path, message: str, column: str | None = None,
                 line: int | None = None, row: int | None = None) -> None:
        where = str(path)
        if column is not None:
            where += f", column {shown(column)}"
        if line is not None:
            where += f", line {line}"
        elif row is not None:  # a frame handed in from Python: its data row, from 1
            where += f", row {row}"
        super().__init__(f"{where}: {message}")
        self.path, self.column, self.line = str(path), column, line


def check_rows(bad: np.ndarray | pd.Series, path: str | Path, column: str | None,
               message: Callable[[int], str]) -> None:
    """Raise DataError at the first row where `bad` holds; `message(row)` says what is wrong."""
    rows = np.flatnonzero(np.asarray(bad, dtype=bool))
    if rows.size:
        row = int(rows[0])
        raise DataError(path, message(row), column, line_of(path, row), row + 1)


def where_row(path: str | Path, row: int) -> str:
    """'line 12' of a file, or 'row 11' of a frame handed in from Python."""
    line = line_of(path, row)
    return f"line {line}" if line is not None else f"row {row + 1}"


def shown(value: object, quoted: bool = True) -> str:
    """A value as a message shows it: repr (or plain text, `quoted=False`), cut when long:
    'aaaa...' (5 000 000 characters)."""
    value = value.item() if isinstance(value, np.generic) else value
    text = repr(value) if quoted else str(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    length = len(value) if isinstance(value, str) else len(text)
    close = text[0] if quoted and text[0] in "'\"" else ""
    return f"{text[:MAX_SHOWN_CHARS - 3]}...{close} ({length:,} characters)".replace(",", " ")


def csv_records(handle: TextIO) -> Iterator[list[str]]:
    """csv.reader over an open file, taking fields of any size (a 5 MB cell) as pandas does."""
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    return csv.reader(handle)


def line_of(path: str | Path, row: int) -> int | None:
    """The line of the file where data row `row` (0-based) starts, counting from 1 with the
    header. Quoted fields may hold newlines, so the file is read again as CSV (only when
    reporting an error). None when `path` is not a file (a frame handed in from Python)."""
    path = Path(path)
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv_records(handle)
        start, index = 1, -1  # the header is "row -1"
        for fields in reader:
            if fields:  # blank lines are no rows (pandas skips them too)
                if index == row:
                    return start
                index += 1
            start = reader.line_num + 1
    return row + 2
