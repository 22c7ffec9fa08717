"""One CSV file -> a DataFrame, with one clear DataError for each way a file can be unusable."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pipeline.data.errors import DataError


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
