import numpy as np
import pandas as pd
import pytest

from pipeline.metrics import TargetScale
from pipeline.submission import (
    SubmissionError,
    build_submission,
    validate_submission,
    write_submission,
)

IDS = pd.Series([11, 12, 13])
SAMPLE = pd.DataFrame({"Id": [11, 12, 13], "SalePrice": [1.0, 1.0, 1.0]})


def test_good_submission_passes_and_is_written(tmp_path):
    sub = build_submission(IDS, np.array([1e5, 2e5, 3e5]), "Id", "SalePrice")
    validate_submission(sub, IDS, SAMPLE, TargetScale.LOG)
    write_submission(tmp_path / "s.csv", sub)
    back = pd.read_csv(tmp_path / "s.csv")
    assert back.columns.tolist() == ["Id", "SalePrice"]
    np.testing.assert_array_equal(back["Id"], IDS)
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


@pytest.mark.parametrize("values, message", [
    ([1e5, np.nan, 3e5], "id 12 is nan"),
    ([1e5, np.inf, 3e5], "id 12 is inf"),
    ([1e5, 2e5, -1.0], "id 13 is -1.0: every prediction must be finite and positive"),
    ([0.0, 2e5, 3e5], "id 11 is 0.0"),
])
def test_bad_values(values, message):
    sub = build_submission(IDS, np.array(values), "Id", "SalePrice")
    with pytest.raises(SubmissionError, match=message):
        validate_submission(sub, IDS, SAMPLE, TargetScale.LOG)


def test_negative_allowed_when_target_is_not_positive_only():
    sub = build_submission(IDS, np.array([-1.0, 0.0, 2.0]), "Id", "SalePrice")
    validate_submission(sub, IDS, SAMPLE, TargetScale.NONE)


def test_ids_out_of_order_or_columns_wrong():
    sub = build_submission(pd.Series([12, 11, 13]), np.ones(3), "Id", "SalePrice")
    with pytest.raises(SubmissionError, match="ids are not exactly the test file's ids"):
        validate_submission(sub, IDS, SAMPLE, TargetScale.LOG)
    renamed = build_submission(IDS, np.ones(3), "Id", "Price")
    with pytest.raises(SubmissionError, match="columns"):
        validate_submission(renamed, IDS, SAMPLE, TargetScale.LOG)
    other = SAMPLE.assign(Id=[11, 12, 99])
    with pytest.raises(SubmissionError, match="ids differ from"):
        validate_submission(build_submission(IDS, np.ones(3), "Id", "SalePrice"), IDS, other,
                            TargetScale.LOG)


def test_non_negative_predictions_for_rmsle():
    sub = build_submission(IDS, np.array([0.0, 2.0, 3.0]), "Id", "SalePrice")
    validate_submission(sub, IDS, SAMPLE, TargetScale.LOG1P)
    sub = build_submission(IDS, np.array([0.0, -2.0, 3.0]), "Id", "SalePrice")
    with pytest.raises(SubmissionError, match="id 12 is -2.0: .* finite and non-negative"):
        validate_submission(sub, IDS, SAMPLE, TargetScale.LOG1P)


def test_text_ids_are_compared_verbatim():
    ids = pd.Series(["007", "a1", "b2"])
    sub = build_submission(ids, np.ones(3), "key", "y")
    validate_submission(sub, ids, pd.DataFrame({"key": ["b2", "007", "a1"], "y": 0.0}),
                        TargetScale.LOG)
    with pytest.raises(SubmissionError, match="ids differ"):
        validate_submission(sub, ids, pd.DataFrame({"key": ["b2", "7", "a1"], "y": 0.0}),
                            TargetScale.LOG)
