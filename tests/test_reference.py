"""The reference models: a Lasso and an early-stopped LightGBM, on the MLP's folds."""

import time

import numpy as np
import pytest
from sklearn.linear_model import Lasso

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


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_the_gbm_fits_the_fewest_rows_a_fold_can_have(rows):
    # 3 training rows in 2 folds leave a fold one row to fit on: no held-out split is
    # possible, and LightGBM stopped with "num_data > 0"
    x, y = noisy_step(rows)
    x_new = noisy_step(4, seed=2)[0]
    # too few rows for a split: every tree is a leaf, the refitted model is the rows' mean
    refitted = EarlyStoppedGBM(refit=True, seed=1).fit(x, y)
    np.testing.assert_allclose(refitted.predict(x_new), y.mean())
    searched = EarlyStoppedGBM(refit=False, seed=1).fit(x, y).predict(x_new)
    slack = 1e-6  # LightGBM keeps leaf values in float32
    assert np.all((y.min() - slack <= searched) & (searched <= y.max() + slack))


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


def test_the_gbm_splits_category_codes_natively():
    """With `n_categorical`, LightGBM splits the leading code columns by sets of levels (a
    level's effect needs no order among the codes); without, it reads them as numbers."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 40, size=3_000)
    effect = rng.normal(size=40)
    x = np.column_stack([codes, rng.normal(size=3_000)]).astype(np.float32)
    y = effect[codes] + 0.3 * x[:, 1] + rng.normal(scale=0.3, size=3_000)

    def splits(model: EarlyStoppedGBM) -> set[str]:
        found, trees = set(), [t["tree_structure"] for t in model.booster_.dump_model()
                               ["tree_info"]]
        while trees:
            node = trees.pop()
            if "split_feature" in node:
                if node["split_feature"] == 0:
                    found.add(node["decision_type"])
                trees += [node["left_child"], node["right_child"]]
        return found

    native = EarlyStoppedGBM(n_categorical=1, early_stopping_rounds=30, seed=1).fit(x, y)
    numeric = EarlyStoppedGBM(early_stopping_rounds=30, seed=1).fit(x, y)
    assert splits(native) == {"=="} and splits(numeric) == {"<="}
    unseen = np.array([[-1, 0.0]], dtype=np.float32)  # a level no fold saw: missing
    assert np.isfinite(native.predict(unseen)).all()


def test_the_lasso_recovers_a_sparse_linear_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5_000, 20))
    y = 2.0 * x[:, 0] - 1.0 * x[:, 3] + rng.normal(scale=0.1, size=5_000)
    model = linear_reference(ReferenceConfig(linear_alpha=0.01)).fit(x, y)
    assert model.coef_[[0, 3]] == pytest.approx([2.0, -1.0], abs=0.03)
    assert np.abs(np.delete(model.coef_, [0, 3])).max() < 0.01


def test_the_lasso_fits_a_target_of_1e20_on_float32_features():
    # the features are float32, and so was the target inside the Lasso: its tolerance,
    # scaled by the target's sum of squares, overflowed, and every coefficient stayed 0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    y = (2.0 * x[:, 0] - 1.0 * x[:, 3] + rng.normal(scale=0.1, size=500)) * 1e20
    model = linear_reference(ReferenceConfig(linear_alpha=0.01)).fit(x, y)
    assert model.coef_[[0, 3]] == pytest.approx([2e20, -1e20], rel=0.03)
    assert np.sqrt(np.mean((model.predict(x) - y) ** 2)) < 0.2 * np.std(y)


def test_the_lasso_on_an_ordinary_target_is_sklearns_to_the_bit():
    # the target is scaled by a power of two, so nothing rounds differently
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = 12 + 0.4 * x[:, 0] - 0.2 * x[:, 5] + rng.normal(scale=0.1, size=300)
    ours = linear_reference(ReferenceConfig()).fit(x, y)
    plain = Lasso(alpha=ReferenceConfig().linear_alpha, max_iter=50_000, tol=1e-4,
                  precompute=True).fit(x, y)
    np.testing.assert_array_equal(ours.coef_, plain.coef_)
    np.testing.assert_array_equal(ours.predict(x), plain.predict(x))
