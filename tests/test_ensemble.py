"""The blend weights: never worse than the best member on the rows they are fitted on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ensemble import blend_weights
from pipeline.metrics import rmse


def _members(scale: float, seed: int, n_rows: int = 400) -> tuple[dict, np.ndarray]:
    """A target around `scale` and three members of different quality on it: a good one, a
    biased one and a noisy one (as an MLP, a Lasso and a GBM might be)."""
    rng = np.random.default_rng(seed)
    actual = scale * (10 + rng.normal(0, 1, n_rows))
    members = {
        "mlp": actual + scale * rng.normal(0, 0.3, n_rows),
        "linear": actual + scale * (0.5 + rng.normal(0, 0.2, n_rows)),
        "gbm": actual + scale * rng.normal(0, 1.5, n_rows),
    }
    return members, actual


def _blend_rmse(members: dict, weights: dict, actual: np.ndarray) -> float:
    return rmse(actual, sum(weights[k] * members[k] for k in members))


@settings(max_examples=60, deadline=None)
@given(exponent=st.floats(-4, 8), seed=st.integers(0, 10_000))
def test_a_blend_is_never_worse_than_its_best_member(exponent, seed):
    members, actual = _members(10.0 ** exponent, seed)
    weights = blend_weights(members, actual)
    assert set(weights) == set(members)
    assert all(w >= 0 for w in weights.values())
    assert sum(weights.values()) == pytest.approx(1.0)
    best = min(rmse(actual, p) for p in members.values())
    assert _blend_rmse(members, weights, actual) <= best * (1 + 1e-9)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4, 1e8])
def test_weights_are_fitted_at_every_scale(scale):
    """The blend the probe found unfitted (weights 1/3 each at a target around 1e4): the
    noisy member gets little weight, the blend beats every member."""
    members, actual = _members(scale, seed=3)
    weights = blend_weights(members, actual)
    assert weights["gbm"] < 0.2
    assert _blend_rmse(members, weights, actual) < min(rmse(actual, p)
                                                       for p in members.values())


def test_identical_and_constant_members_still_give_valid_weights():
    rng = np.random.default_rng(0)
    actual = rng.normal(100, 5, 200)
    good = actual + rng.normal(0, 1, 200)
    members = {"a": good, "b": good.copy(), "flat": np.full(200, 100.0)}
    weights = blend_weights(members, actual)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert _blend_rmse(members, weights, actual) <= rmse(actual, good) * (1 + 1e-9)


def test_one_member_takes_all_the_weight():
    actual = np.arange(10.0)
    assert blend_weights({"mlp": actual + 1}, actual) == {"mlp": 1.0}
