"""Reading a CSV: every way a file can be unusable is one DataError naming the file."""

import pytest

from pipeline.data.errors import DataError
from pipeline.data.read import read_csv
from pipeline.data.validate import load_competition

from ..conftest import write_competition
from .conftest import data_config, load_with


def test_empty_file(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    (directory / "test.csv").write_text("")
    with pytest.raises(DataError, match=r"test\.csv: file is empty"):
        load_competition(data_config(directory))


def test_header_only_file(tmp_path, houses):
    train, test = houses
    with pytest.raises(DataError, match=r"train\.csv: file has a header but no data rows"):
        load_with(tmp_path, train.iloc[:0], test)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv: file not found"):
        read_csv(tmp_path / "nowhere.csv")


def test_ragged_rows(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    lines = (directory / "train.csv").read_text().splitlines()
    lines[5] += ",1,2"
    (directory / "train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train\.csv: malformed CSV: line 6 has"):
        load_competition(data_config(directory))


def test_wrong_delimiter(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    train.to_csv(directory / "train.csv", index=False, sep=";")
    with pytest.raises(DataError, match=r"train\.csv: only one column found.*';'-delimited"):
        load_competition(data_config(directory))


def test_non_utf8_bytes(tmp_path, houses):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    raw = (directory / "train.csv").read_bytes().replace(b"North", "Nörth".encode("latin-1"), 1)
    (directory / "train.csv").write_bytes(raw)
    line = raw[:raw.index(b"N\xf6rth")].count(b"\n") + 1
    assert line > 1
    with pytest.raises(DataError, match=rf"train\.csv, line {line}: not valid UTF-8 \(byte 0xf6\)"):
        load_competition(data_config(directory))
