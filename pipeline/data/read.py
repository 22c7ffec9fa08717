"""One CSV file -> a DataFrame, with one clear DataError for each way a file can be unusable.

Cells are read as written: only an empty field is missing, and other text only when declared
(`data.na_values`, `data.column_na_values`), never pandas' list of NA-like words (`NA`,
`None`, `null`, `n/a`, ...), which are labels in some competitions. The id column is read as
text, exactly as written, and checked later. A header with a duplicated or empty name is an
error (pandas would rename it `x.1` or `Unnamed: 3` and use it as a feature).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import DataConfig
from pipeline.data.errors import DataError, csv_records

# Files that are not CSV text, told by their first bytes (a gzip file named .csv).
_NOT_TEXT = {b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive (as an .xlsx is)",
             b"BZh": "bzip2-compressed", b"\xfd7zXZ\x00": "xz-compressed",
             b"\x28\xb5\x2f\xfd": "zstd-compressed", b"\xff\xfe": "UTF-16 text",
             b"\xfe\xff": "UTF-16 text"}


@dataclass(frozen=True)
class ReadOptions:
    """How a competition's CSV files are read: the id column as text, and the strings that
    mean "missing" besides the empty field (none unless declared; never in the id)."""

    id_column: str | None = None
    na_values: tuple[str, ...] = ()  # in every column but the id
    column_na_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: DataConfig) -> ReadOptions:
        return cls(cfg.id_column, tuple(cfg.na_values), dict(cfg.column_na_values))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReadOptions:
        raw = json.loads(text)
        return cls(raw["id_column"], tuple(raw["na_values"]),
                   {k: tuple(v) for k, v in raw["column_na_values"].items()})

    def missing_in(self, column: str) -> tuple[str, ...]:
        """The strings read as missing in `column`, besides the empty field."""
        if column == self.id_column:
            return ()
        return self.na_values + tuple(self.column_na_values.get(column, ()))

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A frame handed in from Python (the served model) read as a CSV would be: declared
        strings missing, the id as text. A frame from `read_csv` comes out unchanged."""
        columns = {}
        for column in frame.columns:
            values = frame[column]
            if column == self.id_column:
                columns[column] = _id_text(values)
                continue
            strings = [s for s in self.missing_in(column) if s]
            if strings and not pd.api.types.is_numeric_dtype(values) and \
                    not pd.api.types.is_datetime64_any_dtype(values):
                values = values.where(~values.isin(strings), np.nan)
            columns[column] = values
        return pd.DataFrame(columns, index=frame.index)


def read_csv(path: str | Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Read one CSV with clear errors for a missing, empty, compressed, undecodable or ragged
    file (a row with more or fewer fields than the header), or a header naming a column
    twice or not at all."""
    options = options or ReadOptions()
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    with path.open("rb") as handle:
        start = handle.read(8)
    for magic, kind in _NOT_TEXT.items():
        if start.startswith(magic):
            raise DataError(path, f"file is {kind}, not CSV text: decompress or convert it "
                            "to a UTF-8 CSV file first")
    try:
        header = _header(path)
        na = {c: ["", *options.missing_in(c)] for c in header}
        dtype = {options.id_column: "str"} if options.id_column in header else None
        frame = pd.read_csv(path, encoding="utf-8", dtype=dtype, keep_default_na=False,
                            na_values=na)
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
        raise DataError(path, f"malformed CSV: {_one_line(exc)}") from exc
    if frame.empty:
        raise DataError(path, "file has a header but no data rows")
    if frame.shape[1] == 1:
        sniffed = _sniff_delimiter(path)
        hint = f" (it looks {sniffed!r}-delimited)" if sniffed and sniffed != "," else ""
        raise DataError(path, f"only one column found; the file must be comma-separated{hint}")
    return frame


def check_columns(columns: pd.Index | list, path: str | Path, line: int | None = None) -> None:
    """Every column has a name, and a name of its own."""
    first: dict[str, int] = {}
    for number, name in enumerate(columns, start=1):
        if not isinstance(name, str) or not name.strip():
            raise DataError(path, f"column {number} of the header has no name (every column "
                            "needs one)", line=line)
        if name in first:
            raise DataError(path, f"the header names this column twice (columns "
                            f"{first[name]} and {number})", name, line)
        first[name] = number


def _header(path: Path) -> list[str]:
    """The header's names as pandas will read them (the first non-blank line), checked, after
    checking that every record has as many fields as the header: pandas would pad a short
    row with missing values, shifting its cells into the wrong columns, without a word."""
    header, start = None, 1
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv_records(handle)
        try:
            for row in reader:
                if row and header is None:
                    check_columns(row, path, reader.line_num)
                    header = row
                elif row and len(row) != len(header):
                    raise DataError(path, f"malformed CSV: line {start} has {len(row)} "
                                    f"field{'s' * (len(row) != 1)}, the header has "
                                    f"{len(header)}")
                start = reader.line_num + 1  # a quoted field may span lines
        except csv.Error as exc:
            raise DataError(path, f"malformed CSV: line {start}: {exc}") from exc
    return header or []


def _id_text(values: pd.Series) -> pd.Series:
    """Ids handed in as numbers, as text: 1461 as '1461'; a float such as 1461.0 (pandas
    reads a column with a gap as floats) as '1461.0', which an integer id is not."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("str").where(values.notna())
    return values


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _sniff_delimiter(path: Path) -> str | None:
    sample = path.read_text(encoding="utf-8", errors="replace")[:4096]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return None

