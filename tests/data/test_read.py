"""Reading a CSV: every way a file can be unusable is one DataError naming the file."""

import bz2
import gzip

import numpy as np
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


NA_LIKE = ["NA", "None", "null", "n/a", "NaN", "nan", "NULL", "#N/A", "<NA>", "-nan"]


def test_na_like_labels_are_labels_unless_declared(tmp_path, houses):
    """pandas reads NA, None, null, n/a, NaN (and more) as missing; here only the empty field
    is, and any other string only when params declare it."""
    train, test = houses
    train["Fence"] = [NA_LIKE[i % len(NA_LIKE)] for i in range(len(train))]
    train.loc[::7, "Fence"] = None  # written as an empty field
    test["Fence"] = "NA"
    frame, typed_test, schema = load_with(tmp_path, train, test)
    assert schema.columns["Fence"] == "categorical"
    assert frame["Fence"].isna().sum() == train["Fence"].isna().sum()
    assert frame["Fence"].dropna().tolist() == train["Fence"].dropna().tolist()  # verbatim
    assert (typed_test["Fence"] == "NA").all()
    declared, typed_test, _ = load_with(tmp_path, train, test, na_values=("NA",),
                                        column_na_values={"Fence": ("null",)})
    missing = train["Fence"].isna() | train["Fence"].isin(["NA", "null"])
    np.testing.assert_array_equal(declared["Fence"].isna(), missing)
    assert declared["Fence"].dropna().tolist() == train["Fence"][~missing].tolist()
    assert typed_test["Fence"].isna().all()


def test_declared_missing_strings_keep_a_numeric_column_numeric(tmp_path, houses):
    train, test = houses
    area = train["GrLivArea"].astype(object)
    area[::5] = "NA"  # 20 % written NA: text, unless NA is declared missing
    train["GrLivArea"] = area
    frame, _, schema = load_with(tmp_path, train, test, na_values=("NA",))
    assert schema.columns["GrLivArea"] == "numeric"
    assert frame["GrLivArea"].isna().sum() == len(range(0, len(train), 5))
    _, _, undeclared = load_with(tmp_path, train, test)
    assert undeclared.columns["GrLivArea"] == "categorical"  # schema.json says so


@pytest.mark.parametrize("header, column, message", [
    ("Id,LotArea,GrLivArea,LotArea", "LotArea", r"the header names this column twice "
                                                r"\(columns 2 and 4\)"),
    ("Id,Id,GrLivArea,SalePrice", "Id", r"the header names this column twice \(columns 1 and 2\)"),
])
def test_a_duplicated_header_name_is_an_error(tmp_path, header, column, message):
    path = tmp_path / "train.csv"
    path.write_text(header + "\n1,2,3,4\n2,3,4,5\n")
    with pytest.raises(DataError, match=rf"train\.csv, column '{column}', line 1: {message}"):
        read_csv(path)


@pytest.mark.parametrize("header, number", [("Id,,GrLivArea", 2), ("Id,GrLivArea, ", 3)])
def test_an_empty_header_name_is_an_error(tmp_path, header, number):
    path = tmp_path / "train.csv"
    path.write_text("\n" + header + "\n1,2,3\n")  # a blank first line, as pandas skips it
    with pytest.raises(DataError, match=rf"train\.csv, line 2: column {number} of the header "
                                        r"has no name \(every column needs one\)"):
        read_csv(path)


@pytest.mark.parametrize("compress, kind", [
    (gzip.compress, "gzip-compressed"),
    (bz2.compress, "bzip2-compressed"),
    (lambda data: data.decode().encode("utf-16"), "UTF-16 text"),
])
def test_a_compressed_or_utf16_file_named_csv_says_what_it_is(tmp_path, houses, compress, kind):
    train, test = houses
    directory = write_competition(tmp_path / "bad", train, test)
    path = directory / "train.csv"
    path.write_bytes(compress(path.read_bytes()))
    with pytest.raises(DataError, match=rf"train\.csv: file is {kind}, not CSV text"):
        load_competition(data_config(directory))


def test_line_numbers_count_the_newlines_inside_quoted_fields(tmp_path, houses):
    train, test = houses
    train["Note"] = "plain"
    train.loc[2, "Note"] = "two\nlines"
    train.loc[5, "Note"] = "three\nmore\nlines"
    train["GrLivArea"] = train["GrLivArea"].astype(str)
    train.loc[30, "GrLivArea"] = "big"
    directory = write_competition(tmp_path / "bad", train, test.assign(Note="x"))
    text = (directory / "train.csv").read_text()
    line = text[:text.index(",big,")].count("\n") + 1
    assert line == 30 + 2 + 3  # the row's line counting physical lines: 3 newlines in quotes
    with pytest.raises(DataError, match=rf"column 'GrLivArea', line {line}: not a number"):
        load_competition(data_config(directory))
    lines = text.splitlines(keepends=True)  # one field too many on the line of row 30
    lines[line - 1] = lines[line - 1].rstrip("\n") + ",1\n"
    (directory / "train.csv").write_text("".join(lines))
    with pytest.raises(DataError, match=rf"malformed CSV: line {line} has"):
        load_competition(data_config(directory))


def test_a_huge_cell_is_cut_in_messages_and_in_schema_json(tmp_path, houses):
    train, test = houses
    huge = "a" * 5_000_000
    train["GrLivArea"] = train["GrLivArea"].astype(str)
    train.loc[3, "GrLivArea"] = huge
    with pytest.raises(DataError) as raised:
        load_with(tmp_path, train, test)
    message = str(raised.value)
    assert message.endswith("line 5: not a number: '" + "a" * 56 + "...' (5 000 000 "
                            "characters)")
    assert len(message) < 300
    few = train.head(3).assign(GrLivArea=1.0, Blob=huge)  # the same on every row: a note
    _, _, schema = load_with(tmp_path, few, test.assign(Blob="b"))
    note = next(n for n in schema.warnings if n.startswith("Blob:"))
    assert "(5 000 000 characters)" in note and len(schema.to_json()) < 20_000


def test_na_like_ids_are_ids(tmp_path, houses):
    """An id 'NA' is the id 'NA': kept verbatim as text, never 'id is missing'."""
    train, test = houses
    train["Id"] = [f"h{i}" for i in range(len(train))]
    train.loc[:len(NA_LIKE) - 1, "Id"] = NA_LIKE
    frame, _, schema = load_with(tmp_path, train, test, na_values=("NA", "null"))
    assert schema.id_type == "text"
    assert frame["Id"].tolist() == train["Id"].tolist()
    with pytest.raises(DataError, match=r"column 'Id', line 2: id is not an integer: 'NA'"):
        load_with(tmp_path, train, test, id_type="integer")
