"""Build, validate and write the Kaggle submission CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io import write_csv
from pipeline.metrics import TargetScale


class SubmissionError(ValueError):
    """The submission would be rejected: wrong ids, columns, or values."""


def build_submission(ids: pd.Series, predictions: np.ndarray, id_column: str,
                     target: str) -> pd.DataFrame:
    """The submission frame: the test ids in their order and one prediction each."""
    return pd.DataFrame({id_column: ids.to_numpy(), target: np.asarray(predictions, float)})


def validate_submission(submission: pd.DataFrame, test_ids: pd.Series,
                        sample: pd.DataFrame | None, scale: TargetScale,
                        sample_path: str | Path = "sample submission") -> None:
    """Raise SubmissionError unless ids, columns and values match what Kaggle expects."""
    if sample is not None and list(submission.columns) != list(sample.columns):
        raise SubmissionError(f"columns {list(submission.columns)} differ from {sample_path}'s "
                              f"{list(sample.columns)}")
    id_column, target = submission.columns
    if len(submission) != len(test_ids) or not np.array_equal(
            submission[id_column].to_numpy(), test_ids.to_numpy()):
        raise SubmissionError("ids are not exactly the test file's ids in order")
    if sample is not None and not np.array_equal(  # as written: 1461.0 is not the id 1461
            np.sort(submission[id_column].astype("str").to_numpy()),
            np.sort(sample[id_column].astype("str").to_numpy())):
        raise SubmissionError(f"ids differ from {sample_path}'s ids (compared as written)")
    values = submission[target].to_numpy(dtype=float)
    invalid, rule = scale.invalid(values)
    bad = ~np.isfinite(values) | invalid
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SubmissionError(f"{target} for id {submission[id_column].iloc[row]} is "
                              f"{values[row]}: every prediction must be finite"
                              + (f" and {rule}" if rule else ""))


def write_submission(path: str | Path, submission: pd.DataFrame) -> None:
    """Write atomically: readers see the old file or the complete new one, never a part."""
    write_csv(path, submission)
