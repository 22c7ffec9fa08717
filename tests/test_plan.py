"""The budget plan: sizes that follow the data, time shares that add up to the budget."""

import math

import pytest

from pipeline.config import config_from_dict
from pipeline.config.fields import AUTO
from pipeline.plan import (
    CAP_MARGIN,
    CHECKPOINT_SECONDS,
    GBM_SHARE,
    GBM_WANTED_ROUNDS,
    GRID,
    MAX_EPOCHS,
    MAX_REFERENCE_SHARE,
    MAX_STEPS,
    MIN_EPOCHS,
    MIN_GBM_ROUNDS,
    ONE_FOLD_ROWS,
    REFERENCE_SHARE,
    TRIAL_OVERHEAD_SECONDS,
    Measured,
    Plan,
    basis,
    batch_size,
    gbm_leaves,
    gbm_rate,
    make_plan,
    most_epochs,
    network_key,
    previous_plan,
    resolve_reference,
    settle,
    snap,
    trial_costs,
)
from pipeline.reference import gbm_reference

DATA = {"id_column": "id", "target": "y"}


def measured(rows: int, epoch_seconds: float, device: str = "cpu", features: float = 1.0,
             gbm_round: float = 0.0) -> Measured:
    return Measured(rows=rows, fit_rows=int(rows * 0.8), inputs=50, n_folds=5, device=device,
                    epoch_seconds=epoch_seconds, features_seconds=features,
                    gbm_round_seconds=gbm_round, gbm_setup_seconds=0.1)


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
    cheap = make_plan(cfg(), measured(1_460, 0.001))
    middling = make_plan(cfg(), measured(1_460, 0.1))
    dear = make_plan(cfg(), measured(261_618, 2.0))
    hopeless = make_plan(cfg(), measured(10_000_000, 500.0))
    assert cheap.epochs == most_epochs(1_168, 128) == MAX_STEPS // 10  # 10 steps an epoch
    assert MAX_EPOCHS < middling.epochs < cheap.epochs and middling.epochs % 10 == 0
    assert MIN_EPOCHS < dear.epochs < MAX_EPOCHS and dear.epochs % 10 == 0
    assert hopeless.epochs == MIN_EPOCHS
    # enough trials fit in the study's share at the chosen epochs
    assert dear.n_trials >= 10


def test_epochs_follow_the_network_a_trial_draws_on_average_not_the_dearest():
    """One dear network in the search space does not cut every network's training to what
    it affords: the final share holds one seed of every view of the average network; the
    dearer ones get fewer views or are pruned before training."""
    two_views = cfg(base={"budget_minutes": 60},
                    ensemble={"feature_views": ["standard", "quantile"]},
                    tune={"search_space": {"width": {"choices": [128, 512]}}})
    cheap, dear = (network_key(two_views.model.replace({"width": w})) for w in (128, 512))
    m = Measured(rows=261_618, fit_rows=209_294, inputs=48, n_folds=5, device="cpu",
                 epoch_seconds=26.0, features_seconds=20.0, trial_epoch_seconds=8.0,
                 gbm_round_seconds=0.012, gbm_setup_seconds=1.0,
                 network_epoch_seconds={cheap: 1.0, dear: 26.0})
    plan = make_plan(two_views, m)
    alike = make_plan(two_views, Measured(**{**m.__dict__, "trial_epoch_seconds": 26.0}))
    assert alike.epochs < plan.epochs < MAX_EPOCHS
    assert 2 * plan.epochs * snap(8.0) <= plan.final_seconds \
        < 2 * (plan.epochs + 10) * snap(8.0)
    assert plan.n_trials >= 10
    assert plan.too_dear == [dear] and plan.network_seeds[cheap] == 5
    assert alike.too_dear == []


def test_checkpoints_warm_up_and_learning_rates_follow_the_sizes():
    plan = make_plan(cfg(model={"epochs": 200}), measured(1_460, 0.1))
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
    assert plan.n_trials == plan.trials(explicit) == 7
    assert plan.study_cap_seconds(explicit) is None  # the trials bound the study
    assert plan.apply(explicit).ensemble.n_seeds == 2
    timed = cfg(tune={"n_trials": 7, "timeout_minutes": 1})
    assert plan.study_cap_seconds(timed) == 60


def test_auto_seeds_fill_the_final_share_and_never_drop_below_one():
    auto = cfg(ensemble={"feature_views": ["standard", "quantile"]})
    plan = make_plan(auto, measured(1_460, 0.1))
    fit = trial_costs(auto.tune.pruner, measured(1_460, 0.1), plan.epochs, plan.eval_every,
                      plan.n_warmup_steps).fit_seconds
    assert 1 <= plan.n_seeds <= 5 and plan.n_seeds * 2 * fit <= plan.final_seconds + 0.1
    assert plan.apply(auto).ensemble.n_seeds == plan.n_seeds
    slow = make_plan(auto, measured(1_000_000, 60.0))
    assert slow.n_seeds == 1


def test_what_the_final_fit_cannot_use_goes_to_the_study():
    two_views = cfg(ensemble={"feature_views": ["standard", "quantile"]})
    small = make_plan(two_views, measured(1_460, 0.01))  # 5 seeds x 2 views need far less
    fit = small.epochs * snap(0.01)
    assert 5 * 2 * fit <= small.final_seconds < 5 * 2 * fit + 10  # rounded up to 10 s
    assert small.final_seconds % 10 == 0 and small.n_seeds == 5
    assert small.study_seconds > 0.6 * (15 * 60 - small.overhead_seconds
                                        - small.reference_seconds)
    fixed = cfg(ensemble={"feature_views": ["standard", "quantile"], "n_seeds": 3})
    # the plan does not read an explicit count (dvc.yaml's plan stage does not list it)
    assert make_plan(fixed, measured(1_460, 0.01)) == small
    assert small.apply(fixed).ensemble.n_seeds == 3


def test_the_plan_reads_back_from_its_json_and_says_what_it_decided():
    plan = make_plan(cfg(), measured(1_460, 0.1))
    assert Plan.from_dict(plan.to_dict()) == plan
    lines = "\n".join(plan.lines(cfg(), measured(1_460, 0.1)))
    assert lines.startswith("budget 15 min: study ~")
    assert f"{plan.n_trials} trials at ~" in lines
    assert f"batch 128, {plan.epochs} epochs" in lines
    assert ("an epoch of all 5 folds: 0.1 s for the networks a trial draws on average as "
            "measured, 0.1 s for the dearest; a trial's epoch planned at 0.125 s") in lines


def test_the_plan_says_the_steps_a_model_trains_and_what_the_epochs_the_budget_cut_need():
    small = make_plan(cfg(), measured(1_460, 0.001))
    assert small.epochs == 1_600
    steps = small._steps_said(cfg(), measured(1_460, 0.001))
    assert steps == f"each model trains {10 * 1_600} optimizer steps (10 an epoch)"  # 1168 / 128
    large = make_plan(cfg(), measured(261_618, 3.0))
    assert large.epochs < 200 and large.batch_size == 2048
    said = large._steps_said(cfg(), measured(261_618, 3.0))
    per_epoch = -(-large.fit_rows // 2048)
    assert said.startswith(f"each model trains {per_epoch * large.epochs} optimizer steps "
                           f"({per_epoch} an epoch); the budget holds {large.epochs} of the "
                           f"200 epochs the rule allows: 200 ({per_epoch * 200} steps) would "
                           "need base.budget_minutes of about ")
    needed = int(said.rsplit(" ", 1)[1])
    assert needed > 15 * 200 / large.epochs * 0.5  # the shares that grow dominate
    bigger = make_plan(cfg(base={"budget_minutes": needed}), measured(261_618, 3.0))
    assert bigger.epochs == 200  # the budget said does buy them, and a minute less does not
    less = make_plan(cfg(base={"budget_minutes": needed - 1}), measured(261_618, 3.0))
    assert less.epochs < 200
    fixed = large._steps_said(cfg(model={"epochs": 10}), measured(261_618, 3.0))
    assert fixed.endswith("an epoch)")  # set, not cut


def test_measurements_snap_up_to_a_half_octave_grid():
    assert snap(0.0) == 0.0
    assert snap(1.0) == pytest.approx(1.0) and snap(2.0) == pytest.approx(2.0)
    assert snap(1.01) == pytest.approx(GRID) and snap(1.2) == snap(1.4) == pytest.approx(GRID)
    for seconds in (1e-4, 0.037, 0.5, 3.3, 250.0):
        assert seconds <= snap(seconds) < GRID * seconds  # up, by less than one step
        assert snap(snap(seconds)) == snap(seconds)


def test_readings_a_little_apart_make_the_same_plan_and_plan_json_holds_no_reading():
    """Two runs on one machine (or two alike) measure a little apart: the same plan, to the
    byte; a machine a grid step slower gets another one."""
    auto = cfg(ensemble={"feature_views": ["standard", "quantile"]})
    one = make_plan(auto, measured(50_000, 0.101, features=2.1, gbm_round=0.0115))
    other = make_plan(auto, measured(50_000, 0.112, features=2.6, gbm_round=0.0150))
    assert one.to_dict() == other.to_dict()
    slower = make_plan(auto, measured(50_000, 0.101 * GRID, features=2.1, gbm_round=0.0115))
    assert (slower.epochs, slower.n_trials) < (one.epochs, one.n_trials)
    readings = {0.101, 0.112, 2.1, 2.6, 0.0115, 0.015}
    assert not readings & {v for v in one.to_dict().values() if isinstance(v, float)}
    assert not readings & set(one.timings.values())  # only the snapped timings
    assert one.overhead_seconds % 10 == 0


@pytest.mark.parametrize("pruner", [{"kind": "percentile", "percentile": 25},
                                    {"kind": "median", "n_startup_trials": 5},
                                    {"kind": "none"}])
def test_the_planned_trials_fill_the_studys_share_at_what_a_trial_is_expected_to_cost(pruner):
    """The pruner's start-up trials run in full, then a trial costs its warm-up, or all its
    epochs for the share the pruner keeps: the planned trials fit in the share, one more
    would not."""
    auto = cfg(tune={"pruner": pruner})
    m = measured(8_000, 0.1)
    plan = make_plan(auto, m)
    costs = trial_costs(auto.tune.pruner, m, plan.epochs, plan.eval_every, plan.n_warmup_steps)
    full = min(costs.n_full, plan.n_trials)
    spent = full * costs.full_seconds + (plan.n_trials - full) * costs.mean_seconds
    assert spent <= plan.study_seconds < spent + costs.mean_seconds + 0.1
    assert costs.mean_seconds <= costs.full_seconds
    if pruner["kind"] == "none":
        assert costs.mean_seconds == costs.full_seconds


def test_a_percentile_pruner_keeping_fewer_trials_plans_more_of_them():
    quarter = make_plan(cfg(tune={"pruner": {"kind": "percentile", "percentile": 25}}),
                        measured(8_000, 0.1))
    half = make_plan(cfg(tune={"pruner": {"kind": "percentile", "percentile": 50}}),
                     measured(8_000, 0.1))
    assert quarter.epochs == half.epochs and quarter.n_trials > half.n_trials


def test_trials_cost_a_mean_networks_epochs_and_the_final_fit_the_widest():
    m = Measured(rows=1_460, fit_rows=1_168, inputs=50, n_folds=5, device="cpu",
                 epoch_seconds=0.1, features_seconds=1.0, trial_epoch_seconds=0.05)
    costs = trial_costs(cfg().tune.pruner, m, 200, 10, 40)
    assert costs.epoch_seconds == snap(0.05) and costs.fit_seconds == 200 * snap(0.1)
    assert costs.full_seconds < costs.fit_seconds  # 200 mean epochs and the checkpoints
    at_200 = cfg(model={"epochs": 200})
    assert make_plan(at_200, m).n_trials > make_plan(at_200, measured(1_460, 0.1)).n_trials


def test_the_final_fits_seeds_follow_the_network_the_study_picks():
    """The final share is sized at the dearest network; a cheaper one the study picks gets
    the seeds that share holds of it (at most five), one the plan did not time the
    dearest's count, and an explicit count wins."""
    two_views = cfg(ensemble={"feature_views": ["standard", "quantile"]},
                    tune={"search_space": {"width": {"choices": [128, 512]}}})
    model = two_views.model
    cheap, dear = model.replace({"width": 128}), model.replace({"width": 512})
    m = Measured(rows=8_077, fit_rows=6_461, inputs=130, n_folds=5, device="cpu",
                 epoch_seconds=1.6, features_seconds=1.0, trial_epoch_seconds=1.0,
                 network_epoch_seconds={network_key(cheap): 0.4, network_key(dear): 1.6})
    plan = make_plan(two_views, m)
    assert plan.n_seeds == plan.network_seeds[network_key(dear)] < 5
    fit = plan.epochs * 2  # two views
    assert plan.network_seeds[network_key(cheap)] == min(5, int(plan.final_seconds
                                                                // (fit * snap(0.4))))
    assert plan.network_seeds[network_key(cheap)] > plan.n_seeds
    assert plan.apply(two_views, {"width": 128}).ensemble.n_seeds == \
        plan.network_seeds[network_key(cheap)]
    assert plan.apply(two_views, {"width": 512}).ensemble.n_seeds == plan.n_seeds
    assert plan.apply(two_views, {"width": 256}).ensemble.n_seeds == plan.n_seeds  # not timed
    assert plan.apply(two_views).ensemble.n_seeds == plan.n_seeds
    fixed = cfg(ensemble={"n_seeds": 2})
    assert plan.apply(fixed, {"width": 128}).ensemble.n_seeds == 2
    assert "seeds (by the network the study picks" in "\n".join(plan.lines(two_views, m))
    assert Plan.from_dict(plan.to_dict()) == plan
    # each network's timing is held steady by the hysteresis, as the others are
    drifted = Measured(**{**m.__dict__, "network_epoch_seconds": {
        network_key(cheap): 0.4 * GRID ** 1.5, network_key(dear): 1.6}})
    settled, kept = settle(drifted, plan, plan.basis)
    assert kept == [f"network_epoch_seconds[{network_key(cheap)}]"]
    assert make_plan(two_views, settled) == plan


def test_networks_whose_final_fit_the_share_cannot_hold_are_named_never_the_cheapest():
    two_views = cfg(ensemble={"feature_views": ["standard", "quantile"]},
                    tune={"search_space": {"width": {"choices": [128, 512]}}})
    cheap, dear = two_views.model.replace({"width": 128}), two_views.model.replace({"width": 512})
    m = Measured(rows=261_618, fit_rows=209_294, inputs=106, n_folds=5, device="cpu",
                 epoch_seconds=44.0, features_seconds=20.0, trial_epoch_seconds=20.0,
                 network_epoch_seconds={network_key(cheap): 3.0, network_key(dear): 44.0})
    plan = make_plan(two_views, m)
    assert 2 * plan.epochs * snap(44.0) > plan.final_seconds
    assert plan.too_dear == [network_key(dear)]
    assert "too dear for the final fit's share" in "\n".join(plan.lines(two_views, m))
    everything_dear = Measured(**{**m.__dict__, "network_epoch_seconds": {
        network_key(cheap): 40.0, network_key(dear): 44.0}})
    assert make_plan(two_views, everything_dear).too_dear == [network_key(dear)]
    assert make_plan(two_views, Measured(**{**m.__dict__, "network_epoch_seconds": {
        network_key(cheap): 0.01, network_key(dear): 0.02}})).too_dear == []


def test_a_network_whose_final_fit_holds_one_view_trains_on_the_first_view_only():
    """With ensemble.n_seeds auto, a network whose one seed fits the final share on one view
    but not on both is not pruned: the final fit trains it on the first view (a network the
    study found better is worth more than a second view)."""
    two_views = cfg(ensemble={"feature_views": ["standard", "quantile"]},
                    tune={"search_space": {"width": {"choices": [128, 256, 512]}}})
    cheap, middle, dear = (two_views.model.replace({"width": w}) for w in (128, 256, 512))
    m = Measured(rows=261_618, fit_rows=209_294, inputs=106, n_folds=5, device="cpu",
                 epoch_seconds=44.0, features_seconds=20.0, trial_epoch_seconds=20.0,
                 network_epoch_seconds={network_key(cheap): 3.0, network_key(dear): 44.0})
    first = make_plan(two_views, m)
    one_view = first.final_seconds / (1.5 * first.epochs)  # snapped: 2/3 to 0.94 of the share
    m = Measured(**{**m.__dict__, "network_epoch_seconds": {
        **m.network_epoch_seconds, network_key(middle): one_view}})
    plan = make_plan(two_views, m)
    assert (plan.epochs, plan.final_seconds) == (first.epochs, first.final_seconds)
    fit = plan.epochs * snap(one_view)
    assert fit <= plan.final_seconds < 2 * fit
    assert plan.too_dear == [network_key(dear)]
    assert plan.network_views[network_key(middle)] == 1
    assert network_key(cheap) not in plan.network_views  # both views fit
    picked = plan.apply(two_views, {"width": 256}).ensemble
    assert picked.feature_views == ("standard",) and picked.n_seeds == 1
    assert plan.apply(two_views, {"width": 128}).ensemble.feature_views == \
        ("standard", "quantile")
    assert plan.apply(two_views).ensemble.feature_views == ("standard", "quantile")
    explicit = cfg(ensemble={"feature_views": ["standard", "quantile"], "n_seeds": 2})
    assert plan.apply(explicit, {"width": 256}).ensemble.feature_views == \
        ("standard", "quantile")  # explicit seeds: the views as set
    said = "\n".join(plan.lines(two_views, m))
    assert "networks the final share holds on fewer views (one seed each: trained on the " \
        f"first ones if the study picks them): {network_key(middle)}: 1 of 2" in said
    assert Plan.from_dict(plan.to_dict()) == plan


def test_a_trial_costs_its_networks_planned_epochs_on_its_folds():
    model = cfg().model
    cheap, dear = model.replace({"width": 128}), model.replace({"width": 512})
    m = Measured(rows=5 * ONE_FOLD_ROWS, fit_rows=4 * ONE_FOLD_ROWS, inputs=50, n_folds=5,
                 device="cpu", epoch_seconds=4.0, features_seconds=1.0,
                 trial_epoch_seconds=2.0, network_epoch_seconds={network_key(cheap): 1.0,
                                                                 network_key(dear): 4.0})
    plan = make_plan(cfg(), m)
    assert plan.trial_folds == 1
    overhead = 3 * CHECKPOINT_SECONDS + TRIAL_OVERHEAD_SECONDS
    assert plan.trial_seconds(cheap, 10, 3) == pytest.approx(10 * snap(1.0) / 5 + overhead)
    assert plan.trial_seconds(dear, 10, 3) == pytest.approx(10 * snap(4.0) / 5 + overhead)
    untimed = model.replace({"width": 256})  # the dearest's epoch
    assert plan.trial_seconds(untimed, 2, 3) == pytest.approx(2 * snap(4.0) / 5 + overhead)


def test_trials_train_one_fold_on_large_data_and_the_study_holds_more_of_them():
    """Where a fold validates on ONE_FOLD_ROWS rows or more, a trial trains the first fold
    only (a fifth of the cost), so the study holds more trials; small data trains every
    fold; an explicit tune.trial_folds wins (at most cv.n_folds); the final fit's share
    always holds one seed of every view at the planned epochs."""
    views = len(cfg().ensemble.feature_views)
    small = make_plan(cfg(), measured(8_077, 0.5))
    assert small.trial_folds == 5 and small.apply(cfg()).tune.trial_folds == 5
    large = make_plan(cfg(), measured(5 * ONE_FOLD_ROWS, 4.0))
    every = make_plan(cfg(tune={"trial_folds": 5}), measured(5 * ONE_FOLD_ROWS, 4.0))
    assert large.trial_folds == 1 and every.trial_folds == 5
    assert large.n_trials > every.n_trials or large.epochs > every.epochs
    assert large.apply(cfg()).tune.trial_folds == 1
    assert make_plan(cfg(tune={"trial_folds": 9}), measured(1_460, 0.1)).trial_folds == 5
    costs = trial_costs(cfg().tune.pruner, measured(5 * ONE_FOLD_ROWS, 4.0), 20, 1, 4, 1)
    assert costs.epoch_seconds == pytest.approx(snap(4.0) / 5)
    for plan in (small, large, every):
        assert plan.epochs == MIN_EPOCHS or \
            views * plan.epochs * snap(4.0 if plan is not small else 0.5) <= plan.final_seconds
    assert "trials on 1 of 5 folds" in "\n".join(large.lines(cfg(), measured(5 * ONE_FOLD_ROWS,
                                                                               4.0)))


def test_the_caps_are_the_planned_time_plus_a_tenth_of_the_budget():
    auto = cfg(base={"budget_minutes": 20})
    plan = make_plan(auto, measured(1_460, 0.1))
    assert plan.study_cap_seconds(auto) == pytest.approx(plan.study_seconds + CAP_MARGIN * 1200)
    assert plan.reference_cap_seconds() == pytest.approx(plan.reference_seconds + 120)
    timed = cfg(base={"budget_minutes": 20}, tune={"timeout_minutes": 1})
    assert plan.study_cap_seconds(timed) == 60


def test_the_gbm_gets_the_rounds_its_share_holds_within_its_bounds():
    auto = cfg()
    cheap = make_plan(auto, measured(1_460, 0.1, gbm_round=1e-5))
    assert cheap.gbm_rounds == auto.reference.gbm_max_rounds == 10_000
    dear = make_plan(auto, measured(1_000_000, 1.0, gbm_round=0.02))
    per_fold = GBM_SHARE * dear.reference_seconds / 5 - 2 * snap(0.1)
    assert MIN_GBM_ROUNDS < dear.gbm_rounds < 10_000
    assert dear.gbm_rounds * snap(0.02) * (0.9 + 1 / 0.9) <= per_fold
    assert plan_rounds(cfg(reference={"gbm_max_rounds": 50}), 0.02) == 50
    assert plan_rounds(auto, 5.0) == MIN_GBM_ROUNDS  # hopeless: the cap will say so
    applied = dear.apply(auto)
    assert applied.reference.gbm_max_rounds == dear.gbm_rounds


def plan_rounds(config, gbm_round: float) -> int:
    return make_plan(config, measured(1_000_000, 1.0, gbm_round=gbm_round)).gbm_rounds


def test_a_plan_json_of_another_version_is_one_line_naming_the_file(tmp_path):
    from pipeline.data.errors import DataError
    from pipeline.io import write_json
    from pipeline.plan import read_plan

    plan = make_plan(cfg(), measured(1_460, 0.1))
    write_json(tmp_path / "plan.json", plan.to_dict())
    assert read_plan(tmp_path) == plan
    older = {**plan.to_dict(), "measured": {"rows": 1_460}, "expected_trials": 9}
    del older["n_trials"]
    write_json(tmp_path / "plan.json", older)
    with pytest.raises(DataError, match=r"plan\.json: written by another version of the "
                                        r"pipeline .*run the plan stage again"):
        read_plan(tmp_path)


def test_with_every_size_set_the_counts_do_not_depend_on_the_machine():
    fixed = cfg(model={"epochs": 8, "batch_size": 64, "lr": 0.01, "eval_every": 2},
                tune={"n_trials": 4, "search_space": {"lr": {"low": 0.001, "high": 0.1}}},
                ensemble={"n_seeds": 2}, reference={"gbm_max_rounds": 30})
    plans = {(p.epochs, p.batch_size, p.eval_every, p.trials(fixed), p.gbm_rounds,
              p.apply(fixed).ensemble.n_seeds)
             for p in (make_plan(fixed, measured(300, e, gbm_round=e / 10))
                       for e in (1e-4, 3e-3, 0.1, 2.0))}
    assert plans == {(8, 64, 2, 4, 30, 2)}


def test_a_reading_within_an_octave_of_the_previous_plan_keeps_that_plan():
    """Hysteresis: a reading that straddles a grid point (0.0210 s and 0.0222 s snap to two
    points), or drifts two steps, makes the same plan as the run before it; three steps away,
    or on other data or params, the plan follows the new reading."""
    auto = cfg()
    first = measured(1_460, 0.0210, gbm_round=0.00048)
    before = make_plan(auto, first)
    on = basis(auto, first)
    assert before.basis == on
    drifted = measured(1_460, 0.0222, gbm_round=0.00069)
    assert make_plan(auto, drifted).to_dict() != before.to_dict()  # without hysteresis
    settled, kept = settle(drifted, before, on)
    assert kept == ["epoch_seconds", "gbm_round_seconds", "trial_epoch_seconds"]
    assert make_plan(auto, settled).to_dict() == before.to_dict()
    busy = measured(1_460, 0.0210 * GRID ** 1.9, gbm_round=0.00048 / GRID ** 1.9)
    assert settle(busy, before, on)[1] == ["epoch_seconds", "gbm_round_seconds",
                                           "trial_epoch_seconds"]
    far = measured(1_460, 0.0210 * GRID ** 3.5, gbm_round=0.00048)
    assert settle(far, before, on)[1] == []
    other = cfg(model={"width": 64})
    assert basis(other, drifted) != on and settle(drifted, before, basis(other, drifted))[1] == []
    assert settle(drifted, None, on) == (drifted, [])


def test_a_missing_or_foreign_previous_plan_is_no_plan(tmp_path):
    assert previous_plan(tmp_path) is None
    (tmp_path / "plan.json").write_text('{"old": 1}')
    assert previous_plan(tmp_path) is None
    (tmp_path / "plan.json").write_text("{not json")
    assert previous_plan(tmp_path) is None


def test_the_gbm_grows_its_leaves_with_the_rows_and_its_rate_with_what_the_budget_lacks():
    """Leaves: about sqrt(fit rows) / 4 as 2^k - 1, 15 to 63; rate: 0.03 when the plan holds
    the rounds LightGBM needs at it, up to 0.1 when it holds few."""
    assert [gbm_leaves(n) for n in (10, 1_166, 6_460, 8_192, 32_767, 40_000, 209_000,
                                    5_000_000)] == [15, 15, 15, 31, 31, 63, 63, 63]
    assert [gbm_rate(r) for r in (10_000, 6_667, 4_000, 2_000, 100)] == [0.03, 0.03, 0.05,
                                                                          0.1, 0.1]
    auto = cfg()
    assert AUTO in (auto.reference.gbm_num_leaves, auto.reference.gbm_learning_rate)
    cheap, dear = (make_plan(auto, measured(200_000, 1.0, gbm_round=r)) for r in (1e-5, 0.05))
    assert (cheap.gbm_num_leaves, cheap.gbm_learning_rate) == (63, 0.03)
    assert dear.gbm_rounds < 2_000 and dear.gbm_learning_rate > 0.03
    applied = dear.apply(auto).reference
    assert (applied.gbm_num_leaves, applied.gbm_learning_rate) == (63, dear.gbm_learning_rate)
    fixed = cfg(reference={"gbm_num_leaves": 7, "gbm_learning_rate": 0.2})
    plan = make_plan(fixed, measured(200_000, 1.0, gbm_round=0.05))
    assert (plan.apply(fixed).reference.gbm_num_leaves,
            plan.apply(fixed).reference.gbm_learning_rate) == (7, 0.2)
    assert resolve_reference(auto.reference, 1_166).gbm_num_leaves == 15
    # the references' share grows (to MAX_REFERENCE_SHARE at most) for the rounds it wants
    budget = auto.base.budget_minutes * 60
    assert cheap.reference_seconds == REFERENCE_SHARE * budget
    assert MAX_REFERENCE_SHARE * budget - 10 < dear.reference_seconds \
        <= MAX_REFERENCE_SHARE * budget
    middling = make_plan(auto, measured(200_000, 1.0, gbm_round=0.008))
    assert REFERENCE_SHARE * budget < middling.reference_seconds < MAX_REFERENCE_SHARE * budget
    assert middling.gbm_rounds >= GBM_WANTED_ROUNDS * 0.95
    with pytest.raises(ValueError, match="still 'auto'"):
        gbm_reference(auto.reference, 0)


def test_the_final_fit_trains_its_seeds_one_at_a_time_where_one_batch_of_them_costs_more():
    two_views = cfg(ensemble={"feature_views": ["standard", "quantile"]})
    base = measured(261_618, 12.0)
    # five seeds in one batch measured at 3x one seed's epoch: batching pays
    cheap = make_plan(two_views, Measured(**{**base.__dict__, "seeds_epoch_seconds": 36.0}))
    assert cheap.seed_batch == 5 and cheap.apply(two_views).ensemble.seed_batch == 5
    assert "one at a time" not in "\n".join(cheap.lines(two_views, base))
    # ... at 9x (a batch of 25 models outgrows the caches): one at a time, and the plan's
    # final fit (linear in the seeds) is what it costs
    dear = Measured(**{**base.__dict__, "seeds_epoch_seconds": 108.0})
    plan = make_plan(two_views, dear)
    assert plan.seed_batch == 1 and plan.apply(two_views).ensemble.seed_batch == 1
    assert "one at a time (5 seeds in one batch measured 9.0x" in "\n".join(
        plan.lines(two_views, dear))
    assert plan.final_seconds == cheap.final_seconds and plan.n_seeds == cheap.n_seeds
    # an explicit batch wins; the plan's timing is snapped and kept like the others
    assert plan.apply(cfg(ensemble={"seed_batch": 3})).ensemble.seed_batch == 3
    assert plan.timings["seeds_epoch_seconds"] == snap(108.0)
    drifted = Measured(**{**dear.__dict__, "seeds_epoch_seconds": 60.0})
    kept, names = settle(drifted, plan, plan.basis)
    assert names == ["seeds_epoch_seconds"] and make_plan(two_views, kept).seed_batch == 1
