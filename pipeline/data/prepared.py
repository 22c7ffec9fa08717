"""The prepare stage's output on disk: typed frames, the schema, the data's hash, and how the
raw CSV files were read (so the final model reads a new test file the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.data.read import ReadOptions
from pipeline.data.schema import Schema
from pipeline.io import atomic_write_text, read_json, write_json, write_parquet


@dataclass
class Prepared:
    """Validated, typed train and test frames with their schema."""

    train: pd.DataFrame
    test: pd.DataFrame
    schema: Schema
    data_hash: str  # of the raw files: tags every MLflow run, names the Optuna study
    reading: ReadOptions  # the id read as text, the strings declared missing


def write_prepared(directory: Path, prepared: Prepared) -> None:
    """Into `directory` (a stage's temporary output directory)."""
    write_parquet(directory / "train.parquet", prepared.train)
    write_parquet(directory / "test.parquet", prepared.test)
    atomic_write_text(directory / "schema.json", prepared.schema.to_json() + "\n")
    atomic_write_text(directory / "reading.json", prepared.reading.to_json() + "\n")
    write_json(directory / "meta.json", {"data_hash": prepared.data_hash,
                                         "train_rows": len(prepared.train),
                                         "test_rows": len(prepared.test)})


def load_prepared(directory: str | Path) -> Prepared:
    directory = Path(directory)
    return Prepared(
        train=pd.read_parquet(directory / "train.parquet"),
        test=pd.read_parquet(directory / "test.parquet"),
        schema=Schema.from_json((directory / "schema.json").read_text(encoding="utf-8")),
        data_hash=read_json(directory / "meta.json")["data_hash"],
        reading=ReadOptions.from_json((directory / "reading.json").read_text(encoding="utf-8")),
    )
