"""Helpers for the data tests: the synthetic competition's data contract, written and loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import DataConfig
from pipeline.data.validate import load_competition

from ..conftest import write_competition

HOUSES = {"id_column": "Id", "target": "SalePrice", "log_target": True}


def data_config(directory: Path, **kw) -> DataConfig:
    return DataConfig(train=str(directory / "train.csv"), test=str(directory / "test.csv"),
                      sample_submission=str(directory / "sample_submission.csv"),
                      **{**HOUSES, **kw})


def load_with(tmp_path: Path, train: pd.DataFrame, test: pd.DataFrame, **kw):
    directory = write_competition(tmp_path / "bad", train, test)
    return load_competition(data_config(directory, **kw))


def with_dates(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 900, len(frame)),
                                                          unit="D")
    return frame.assign(Sold=stamps.strftime("%Y-%m-%d"), Listed=stamps.strftime("%d.%m.%Y"),
                        Stamp=stamps.strftime("%Y%m%d").astype(int))
