"""The budget plan: sizes that follow the data, time shares that add up to the budget."""

import math

import pytest

from pipeline.config import config_from_dict
from pipeline.plan import (
    MAX_EPOCHS,
    MIN_EPOCHS,
    Measured,
    Plan,
    batch_size,
    make_plan,
)

DATA = {"id_column": "id", "target": "y"}


def measured(rows: int, epoch_seconds: float, device: str = "cpu") -> Measured:
    return Measured(rows=rows, fit_rows=int(rows * 0.8), inputs=50, n_folds=5, device=device,
                    epoch_seconds=epoch_seconds, features_seconds=1.0)


def cfg(**sections):
    return config_from_dict({"data": DATA, **sections})


@pytest.mark.parametrize("rows, expected", [(1_460, 128), (8_077, 128), (20_000, 512),
                                            (261_618, 2048), (1_000_000, 2048)])
def test_the_batch_grows_with_the_rows_as_a_power_of_two(rows, expected):
    assert batch_size(cfg(), int(rows * 0.8), "cpu") == expected


def test_a_gpu_takes_larger_batches_and_an_explicit_batch_wins():
    assert batch_size(cfg(), 800_000, "cuda") == 8192
    assert batch_size(cfg(model={"batch_size": 64}), 800_000, "cpu") == 64


def test_the_shares_add_up_to_the_budget():
    plan = make_plan(cfg(base={"budget_minutes": 15}), measured(10_000, 0.5))
    total = (plan.overhead_seconds + plan.reference_seconds + plan.study_seconds
             + plan.final_seconds)
    assert total == pytest.approx(15 * 60)
    assert plan.study_seconds > plan.final_seconds > plan.reference_seconds > 0


def test_epochs_shrink_when_an_epoch_costs_more_and_stay_within_bounds():
    cheap = make_plan(cfg(), measured(1_460, 0.1))
    dear = make_plan(cfg(), measured(261_618, 4.0))
    hopeless = make_plan(cfg(), measured(10_000_000, 500.0))
    assert cheap.epochs == MAX_EPOCHS
    assert MIN_EPOCHS < dear.epochs < MAX_EPOCHS and dear.epochs % 10 == 0
    assert hopeless.epochs == MIN_EPOCHS
    # enough trials fit in the study's share at the chosen epochs
    assert dear.expected_trials >= 10


def test_checkpoints_warm_up_and_learning_rates_follow_the_sizes():
    plan = make_plan(cfg(), measured(1_460, 0.1))
    assert (plan.batch_size, plan.epochs, plan.eval_every, plan.n_warmup_steps) == \
        (128, 200, 10, 40)
    assert plan.lr_range == pytest.approx((1e-4, 1e-3))
    big = make_plan(cfg(), measured(261_618, 4.0))
    assert big.lr_range[0] == pytest.approx(1e-4 * math.sqrt(big.batch_size / 128))
    assert big.n_warmup_steps % big.eval_every == 0


def test_apply_fills_in_auto_and_leaves_explicit_values():
    base = cfg(model={"epochs": 33}, tune={"search_space": {"lr": "auto",
                                                            "width": {"choices": [8, 16]}}})
    plan = make_plan(base, measured(1_460, 0.1))
    applied = plan.apply(base)
    assert applied.model.epochs == 33 and applied.model.batch_size == 128
    assert applied.model.resolved
    lr = applied.tune.search_space["lr"]
    assert (lr.low, lr.high, lr.log) == (plan.lr_range[0], plan.lr_range[1], True)
    assert applied.tune.search_space["width"].choices == (8, 16)
    assert applied.tune.pruner.n_warmup_steps == plan.n_warmup_steps
    assert applied.tune.n_startup_trials == plan.n_startup_trials


def test_explicit_trials_and_seeds_win_over_the_budget():
    explicit = cfg(tune={"n_trials": 7}, ensemble={"n_seeds": 2})
    plan = make_plan(explicit, measured(1_460, 0.1))
    assert plan.expected_trials == 7
    assert plan.study_deadline_seconds(explicit) is None  # the trials bound the study
    assert plan.n_seeds(explicit, n_views=2) == 2
    timed = cfg(tune={"n_trials": 7, "timeout_minutes": 1})
    assert plan.study_deadline_seconds(timed) == 60


def test_auto_seeds_fill_the_final_share_and_never_drop_below_one():
    auto = cfg()
    plan = make_plan(auto, measured(1_460, 0.1))
    seeds = plan.n_seeds(auto, n_views=2)
    assert 1 <= seeds <= 5 and seeds * 2 * plan.trial_seconds <= plan.final_seconds
    slow = make_plan(auto, measured(1_000_000, 60.0))
    assert slow.n_seeds(auto, n_views=2) == 1
    assert plan.study_deadline_seconds(auto) == plan.study_seconds


def test_what_the_final_fit_cannot_use_goes_to_the_study():
    two_views = cfg(ensemble={"feature_views": ["standard", "quantile"]})
    small = make_plan(two_views, measured(1_460, 0.01))  # 5 seeds x 2 views need far less
    assert small.final_seconds == pytest.approx(5 * 2 * small.trial_seconds)
    assert small.n_seeds(two_views, n_views=2) == 5
    assert small.study_seconds > 0.6 * (15 * 60 - small.overhead_seconds
                                        - small.reference_seconds)
    fixed = make_plan(cfg(ensemble={"feature_views": ["standard", "quantile"], "n_seeds": 3}),
                      measured(1_460, 0.01))
    assert fixed.final_seconds > small.final_seconds  # explicit seeds: the shares stay


def test_the_plan_reads_back_from_its_json_and_says_what_it_decided():
    plan = make_plan(cfg(), measured(1_460, 0.1))
    assert Plan.from_dict(plan.to_dict()) == plan
    lines = "\n".join(plan.lines())
    assert lines.startswith("budget 15 min: study ~")
    assert "trials expected at ~" in lines and "batch 128, 200 epochs" in lines
