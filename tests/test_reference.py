"""The reference models: a Lasso and an early-stopped LightGBM, on the MLP's folds."""

import time

import numpy as np
import pytest

from pipeline.config import ReferenceConfig
from pipeline.reference import EarlyStoppedGBM, linear_reference


def noisy_step(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = np.where(x[:, 0] > 0, 1.0, -1.0) + 0.3 * x[:, 1] + rng.normal(scale=0.5, size=n)
    return x, y


def test_the_gbm_stops_early_and_refits_every_row_for_the_rounds_found_scaled():
    x, y = noisy_step(2_000)
    searched = EarlyStoppedGBM(early_stopping_rounds=30, refit=False, seed=1).fit(x, y)
    refitted = EarlyStoppedGBM(early_stopping_rounds=30, refit=True, seed=1).fit(x, y)
    assert 1 <= searched.n_rounds_ < 10_000 - 30  # stopped by the held-out rows
    held = np.random.default_rng(1).random(len(y)) < 0.1  # the same rows the fit held out
    assert refitted.n_rounds_ == round(searched.n_rounds_ / (1 - held.mean()))
    assert not searched.capped_ and not refitted.capped_
    x_new, y_new = noisy_step(2_000, seed=5)
    for model in (searched, refitted):
        assert np.sqrt(np.mean((model.predict(x_new) - y_new) ** 2)) < 0.75  # noise is 0.5


def test_a_time_limit_not_reached_changes_nothing():
    """The clock decides nothing unless the cap is hit: the same model with or without it."""
    x, y = noisy_step(2_000)
    free = EarlyStoppedGBM(early_stopping_rounds=30, seed=1).fit(x, y)
    capped = EarlyStoppedGBM(early_stopping_rounds=30, seed=1, time_limit=600.0).fit(x, y)
    assert not capped.capped_ and capped.n_rounds_ == free.n_rounds_
    assert capped.booster_.model_to_string() == free.booster_.model_to_string()


def test_the_gbm_keeps_to_its_time_limit_and_says_it_was_cut():
    x, y = noisy_step(100_000)
    started = time.monotonic()
    model = EarlyStoppedGBM(learning_rate=0.001, early_stopping_rounds=10_000,
                            time_limit=1.0, refit=True).fit(x, y)
    # 1 s of boosting plus building the data sets (without the limit: up to 10 000 rounds)
    assert time.monotonic() - started < 8.0
    # stopped by time: no refit, the searched model is kept, and the model says it was cut
    assert model.booster_.best_iteration == model.n_rounds_  # the searched booster's own
    assert model.capped_


def test_the_lasso_recovers_a_sparse_linear_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5_000, 20))
    y = 2.0 * x[:, 0] - 1.0 * x[:, 3] + rng.normal(scale=0.1, size=5_000)
    model = linear_reference(ReferenceConfig(linear_alpha=0.01)).fit(x, y)
    assert model.coef_[[0, 3]] == pytest.approx([2.0, -1.0], abs=0.03)
    assert np.abs(np.delete(model.coef_, [0, 3])).max() < 0.01
