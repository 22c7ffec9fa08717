import numpy as np
import pytest

from pipeline.metrics import from_model_scale, rmse, to_model_scale


def test_rmse_values():
    assert rmse(np.array([1.0, 2.0]), np.array([1.0, 4.0])) == pytest.approx(np.sqrt(2.0))
    assert rmse(np.array([3.0]), np.array([3.0])) == 0.0


def test_log_rmse_is_rmse_of_logs():
    prices = np.array([100_000.0, 200_000.0])
    predicted = np.array([110_000.0, 180_000.0])
    expected = np.sqrt(np.mean((np.log(prices) - np.log(predicted)) ** 2))
    assert rmse(to_model_scale(prices, True), to_model_scale(predicted, True)) == \
        pytest.approx(expected)


def test_scale_round_trip():
    values = np.array([1.5, 20.0])
    np.testing.assert_allclose(from_model_scale(to_model_scale(values, True), True), values)
    np.testing.assert_array_equal(to_model_scale(values, False), values)


def test_rmse_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        rmse(np.zeros(3), np.zeros(2))


def test_log1p_scale_is_the_rmsle_scale_and_never_predicts_below_zero():
    counts = np.array([0.0, 3.0, 120.0])
    predicted = np.array([1.0, 2.0, 100.0])
    rmsle = np.sqrt(np.mean((np.log1p(counts) - np.log1p(predicted)) ** 2))
    assert rmse(to_model_scale(counts, "log1p"), to_model_scale(predicted, "log1p")) == \
        pytest.approx(rmsle)
    np.testing.assert_allclose(from_model_scale(to_model_scale(counts, "log1p"), "log1p"),
                               counts)
    assert from_model_scale(np.array([-0.3]), "log1p")[0] == 0.0
