import numpy as np
import pytest

from pipeline.metrics import TargetScale, rmse


def test_rmse_values():
    assert rmse(np.array([1.0, 2.0]), np.array([1.0, 4.0])) == pytest.approx(np.sqrt(2.0))
    assert rmse(np.array([3.0]), np.array([3.0])) == 0.0


def test_log_rmse_is_rmse_of_logs():
    prices = np.array([100_000.0, 200_000.0])
    predicted = np.array([110_000.0, 180_000.0])
    expected = np.sqrt(np.mean((np.log(prices) - np.log(predicted)) ** 2))
    log = TargetScale.LOG
    assert rmse(log.to_model(prices), log.to_model(predicted)) == pytest.approx(expected)


def test_scale_round_trip():
    values = np.array([1.5, 20.0])
    np.testing.assert_allclose(TargetScale.LOG.from_model(TargetScale.LOG.to_model(values)),
                               values)
    np.testing.assert_array_equal(TargetScale.NONE.to_model(values), values)


def test_rmse_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        rmse(np.zeros(3), np.zeros(2))


def test_log1p_scale_is_the_rmsle_scale_and_never_predicts_below_zero():
    counts = np.array([0.0, 3.0, 120.0])
    predicted = np.array([1.0, 2.0, 100.0])
    rmsle = np.sqrt(np.mean((np.log1p(counts) - np.log1p(predicted)) ** 2))
    scale = TargetScale.LOG1P
    assert rmse(scale.to_model(counts), scale.to_model(predicted)) == pytest.approx(rmsle)
    np.testing.assert_allclose(scale.from_model(scale.to_model(counts)), counts)
    assert scale.from_model(np.array([-0.3]))[0] == 0.0


@pytest.mark.parametrize("param, scale, bad, rule", [
    (False, TargetScale.NONE, [], ""),
    (True, TargetScale.LOG, [0.0, -1.0], "positive"),
    ("log1p", TargetScale.LOG1P, [-1.0], "non-negative"),
])
def test_each_scale_knows_its_param_its_metric_and_the_values_it_cannot_take(param, scale,
                                                                             bad, rule):
    assert TargetScale.from_param(param) is scale and scale.param == param
    values = np.array([0.0, -1.0, 2.5])
    invalid, said = scale.invalid(values)
    assert values[invalid].tolist() == bad and said == rule
    assert scale.metric in ("RMSE", "RMSE of log(target)", "RMSLE")
    with pytest.raises(ValueError, match="expected true/false or log1p"):
        TargetScale.from_param("log")
