"""The prepare stage against generated malformed CSVs (Hypothesis): random quoting, delimiters,
encodings, header and row damage, hostile cells. Whatever the file, `prepare` exits 0 with
the file's values read exactly as written, or exits 2 with one line naming the file: never a
traceback, never a partial output directory."""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.data.schema import Schema

from ..conftest import (
    file_size_limit,
    leftovers,
    make_houses,
    run_cli,
    small_params,
    unwritable,
    write_competition,
)

TRAIN = make_houses(12, seed=3)
TEST = make_houses(5, seed=4, first_id=101).drop(columns="SalePrice")
OUTPUTS = {"train.parquet", "test.parquet", "schema.json", "meta.json", "reading.json"}
# cells that have broken CSV readers: NA-like words, numbers pandas and Python read apart,
# huge and tiny magnitudes, quotes, delimiters and newlines inside a field, non-ASCII text
HOSTILE = ["", "NA", "None", "null", "n/a", "NaN", "nan", "-nan", "#N/A", "<NA>", "inf",
           "-Infinity", "1e300", "1e-300", "1e30", "-0", "0x10", "1_000", "1,5", " 7 ",
           "1461.0", "0012", "99999999999999999999", '"', '""', "a,b", "a\nb", "a\r\nb", "\t",
           ";", "ö", "日本", "\u00a0", "\ufeff", "=cmd()", "Id", "SalePrice"]

cells = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6),
                  st.integers(-10**20, 10**20).map(str),
                  st.floats(allow_nan=False, allow_infinity=False).map(repr))


@st.composite
def damaged_table(draw, frame: pd.DataFrame) -> list[list[str]]:
    """The frame as CSV records (header first), with cells, rows and header names damaged."""
    rows = list(csv.reader(io.StringIO(frame.to_csv(index=False))))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cell", "cell", "header", "drop_field", "add_field",
                                     "copy_row", "drop_row", "blank_row", "swap_columns"]))
        r = draw(st.integers(1, len(rows) - 1)) if len(rows) > 1 else 0
        c = draw(st.integers(0, len(rows[0]) - 1))
        if kind == "cell" and c < len(rows[r]):
            rows[r][c] = draw(cells)
        elif kind == "header":
            rows[0][c] = draw(st.one_of(st.sampled_from(rows[0]), st.sampled_from(HOSTILE)))
        elif kind == "drop_field" and rows[r]:
            del rows[r][min(c, len(rows[r]) - 1)]
        elif kind == "add_field":
            rows[r].append(draw(cells))
        elif kind == "copy_row":
            rows.insert(r, list(rows[r]))
        elif kind == "drop_row":
            del rows[r]
        elif kind == "blank_row":
            rows.insert(r, [])
        elif kind == "swap_columns":
            d = draw(st.integers(0, len(rows[0]) - 1))
            for row in rows:
                if max(c, d) < len(row):
                    row[c], row[d] = row[d], row[c]
    return rows


@st.composite
def damaged_file(draw, frame: pd.DataFrame) -> tuple[bytes, list[list[str]] | None]:
    """A damaged CSV file's bytes, with its records when no raw damage makes them unknowable
    (they are what a correct reader must find)."""
    rows = draw(damaged_table(frame))
    out = io.StringIO()
    csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(rows)
    text = out.getvalue()
    raw = draw(st.sampled_from(["none", "none", "none", "lone_quote", "delimiter",
                                "all_delimiters", "truncate"]))
    if raw == "lone_quote":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + '"' + text[at:]
    elif raw == "delimiter":
        line = draw(st.integers(0, max(text.count("\n") - 1, 0)))
        lines = text.split("\n")
        lines[line] = lines[line].replace(",", draw(st.sampled_from([";", "\t", "|"])))
        text = "\n".join(lines)
    elif raw == "all_delimiters":
        text = text.replace(",", draw(st.sampled_from([";", "\t"])))
    elif raw == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1",
                                     "utf-16", "gzip", "bzip2"]))
    if encoding == "gzip":
        data = gzip.compress(text.encode())
    elif encoding == "bzip2":
        data = bz2.compress(text.encode())
    else:
        data = text.encode(encoding, errors="replace")
    exact = raw == "none" and encoding in ("utf-8", "utf-8-sig")
    return data, rows if exact else None


def run_prepare(root: Path) -> tuple[int, str]:
    """`prepare` through the CLI in this process; its error output (the log goes elsewhere)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["--params", str(root / "params.yaml"), "-q", "prepare", "--out",
                     str(root / "prepared")])
    return code, err.getvalue()


def write_project(root: Path, train: pd.DataFrame = TRAIN, **features: object) -> Path:
    """A competition in `root` with `features` as its params' features section."""
    train.to_csv(root / "train.csv", index=False)
    TEST.assign(**{c: train[c].iloc[0] for c in train.columns if c not in TEST}).drop(
        columns="SalePrice").to_csv(root / "test.csv", index=False)
    (root / "params.yaml").write_text(yaml.safe_dump({"data": {
        "train": str(root / "train.csv"), "test": str(root / "test.csv"),
        "id_column": "Id", "target": "SalePrice"}, "features": features}))
    return root


@pytest.mark.parametrize(("features", "message"), [
    ({"indicators": {"GrLivArea": "YearBuilt"}},
     "features.indicators.GrLivArea: 'GrLivArea' is a feature column of the data"),
    ({"products": {"YrSold": ["GrLivArea", "GrLivArea"]}},
     "features.products.YrSold: 'YrSold' is a feature column of the data"),
    ({"derived": {"Age": {"YrSold": 1, "SalePrice": -1}}},
     "features.derived.Age: column 'SalePrice' is the target"),
    ({"fill_none": ["SalePrice"]}, "features.fill_none: column 'SalePrice' is the target"),
    ({"group_impute": {"LotFrontage": "SalePrice"}},
     "features.group_impute.LotFrontage: column 'SalePrice' is the target"),
    ({"fit_exclude": [{"Neighborhood": {"greater_than": 1}}]},
     "features.fit_exclude: column 'Neighborhood' is categorical, not numeric"),
    ({"products": {"x": ["GrLivArea", "MSZoning"]}},
     "features.products.x: column 'MSZoning' is categorical, not numeric"),
])
def test_a_feature_rule_taking_a_name_or_the_wrong_column_stops_prepare_with_one_line(
        tmp_path, features, message):
    code, err = run_prepare(write_project(tmp_path, **features))
    assert code == 2 and err.startswith(f"error: params.yaml: {message}")
    assert len(err.splitlines()) == 1 and not (tmp_path / "prepared").exists()


def test_a_column_named_as_a_datetime_part_stops_prepare_with_one_line(tmp_path):
    dated = TRAIN.assign(Sold=pd.date_range("2010-01-31", periods=len(TRAIN), freq="ME"),
                         Sold_month=TRAIN["YrSold"] % 12)
    code, err = run_prepare(write_project(tmp_path, dated))
    assert code == 2 and len(err.splitlines()) == 1 and not (tmp_path / "prepared").exists()
    assert err.startswith(f"error: {tmp_path / 'train.csv'}, column 'Sold_month': the "
                          "datetime column 'Sold' becomes features named Sold_<part>")
    # the fix it names works: dropping the column (or renaming it)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["data"]["drop_columns"] = ["Sold_month"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_prepare(tmp_path) == (0, "")


def check_read_as_written(frame: pd.DataFrame, rows: list[list[str]], schema: Schema) -> None:
    """Every value of the prepared frame is the file's cell as written: ids verbatim, numbers
    as Python reads them, labels as text (numbers where the file wrote the column as numbers),
    and only the empty field missing."""
    header, *records = [r for r in rows if r]
    assert len(frame) == len(records)
    for column in frame.columns:
        written = [record[header.index(column)] for record in records]
        values = frame[column].tolist()
        if column == schema.id_column:
            expected = [int(w) for w in written] if schema.id_type == "integer" else written
            assert values == expected, column
        elif column == schema.target or schema.columns.get(column) == "numeric":
            expected = [float(w) if w else math.nan for w in written]
            np.testing.assert_allclose(values, expected, rtol=1e-15, err_msg=column)
        elif schema.columns.get(column) in ("categorical", "ordinal"):
            for value, cell in zip(values, written, strict=True):
                assert same_label(value, cell), (column, value, cell)


def same_label(value: object, cell: str) -> bool:
    """A label is its cell as written; missing only when the cell is empty. In a column that
    a file writes wholly as numbers, labels are those numbers (60 and 60.0 are one label)."""
    if cell == "" or pd.isna(value):
        return cell == "" and pd.isna(value)
    if value == cell:
        return True
    try:
        return float(value) == float(cell)
    except ValueError:
        return False


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(damaged=st.sampled_from(["train", "test"]).flatmap(
    lambda which: st.tuples(st.just(which),
                            damaged_file(TRAIN if which == "train" else TEST))))
def test_prepare_reads_a_malformed_csv_exactly_or_stops_with_one_line(damaged):
    which, (data, rows) = damaged
    root = Path(tempfile.mkdtemp(prefix="prepare-"))
    try:
        TRAIN.to_csv(root / "train.csv", index=False)
        TEST.to_csv(root / "test.csv", index=False)
        (root / f"{which}.csv").write_bytes(data)
        (root / "params.yaml").write_text(yaml.safe_dump({"data": {
            "train": str(root / "train.csv"), "test": str(root / "test.csv"),
            "id_column": "Id", "target": "SalePrice", "log_target": True}}))
        code, err = run_prepare(root)
        assert code in (0, 2), err
        leftovers = [p.name for p in root.iterdir() if p.name.startswith(".prepared")]
        assert not leftovers, leftovers
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("error: "), err
            assert "Traceback" not in err and not (root / "prepared").exists()
            assert f"{which}.csv" in err or "train.csv" in err or "test.csv" in err, err
            return
        assert err == ""
        prepared = root / "prepared"
        assert {p.name for p in prepared.iterdir()} == OUTPUTS
        if rows is not None:
            schema = Schema.from_json((prepared / "schema.json").read_text())
            check_read_as_written(pd.read_parquet(prepared / f"{which}.parquet"), rows, schema)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_property_test_sees_both_outcomes():
    """The generator is not so gentle that everything passes, nor so rough that nothing does:
    an undamaged file is read exactly, and a damaged one stops with one line."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        TRAIN.to_csv(root / "train.csv", index=False)
        TEST.to_csv(root / "test.csv", index=False)
        (root / "params.yaml").write_text(yaml.safe_dump({"data": {
            "train": str(root / "train.csv"), "test": str(root / "test.csv"),
            "id_column": "Id", "target": "SalePrice", "log_target": True}}))
        assert run_prepare(root) == (0, "")
        rows = list(csv.reader((root / "train.csv").open()))
        schema = Schema.from_json((root / "prepared" / "schema.json").read_text())
        check_read_as_written(pd.read_parquet(root / "prepared" / "train.parquet"), rows, schema)
        (root / "test.csv").write_bytes(gzip.compress((root / "test.csv").read_bytes()))
        code, err = run_prepare(root)
        assert code == 2 and err.startswith(f"error: {root / 'test.csv'}: file is gzip")


pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.ParserWarning")


@pytest.mark.parametrize("failure", ["file-size limit", "unwritable folder"])
def test_prepared_data_that_cannot_be_written_is_one_line_and_the_old_set_stays(tmp_path,
                                                                               failure):
    """A full disk (`ulimit -f`: EFBIG, as ENOSPC) or a folder that cannot be written: one line
    naming the file and why, exit 2, the previous data/prepared as it was, no temp left."""
    write_competition(tmp_path / "raw", TRAIN, TEST)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small_params(tmp_path / "raw")))
    folder = tmp_path / "data"
    out = folder / "prepared"
    args = ["--params", tmp_path / "params.yaml", "-q", "prepare", "--out", out]
    assert run_cli(*args).returncode == 0
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    if failure == "file-size limit":
        limit = len(old["train.parquet"]) // 2  # the frames are the largest files
        done = run_cli(*args, preexec_fn=file_size_limit(limit))
        line = (f"error: cannot write {out / 'train.parquet'}: File too large (the disk or a "
                "file-size limit is full)")
    else:
        with unwritable(folder) as why:
            done = run_cli(*args)
        line = f"error: cannot write {out}: {why} ("
    assert done.returncode == 2, done.stderr
    *notes, last = done.stderr.splitlines()  # the notes: prepare's checks of the data
    assert last.startswith(line) and "error" not in " ".join(notes), done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert leftovers(folder) == []
