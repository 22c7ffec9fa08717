"""The study's trials as plain data: parameter importances only where they mean something."""

import optuna
import pytest

from pipeline.tune.trials import (
    MIN_TRIALS_FOR_IMPORTANCES,
    fold_attrs,
    fold_scores,
    importance_caution,
    param_importances,
    to_record,
)


def _study_of(values: list[float], params: list[dict]) -> optuna.Study:
    """An in-memory study holding complete trials with the given values and params."""
    study = optuna.create_study()
    dists = {"lr": optuna.distributions.FloatDistribution(0.001, 1.0, log=True),
             "width": optuna.distributions.CategoricalDistribution([16, 32])}
    for value, p in zip(values, params, strict=True):
        study.add_trial(optuna.trial.create_trial(params=p, distributions=dists, value=value))
    return study


def test_param_importances_of_the_parameters_that_varied():
    study = _study_of([0.3, 0.2, 0.25, 0.1],
                      [{"lr": 0.01, "width": 16}, {"lr": 0.1, "width": 16},
                       {"lr": 0.05, "width": 16}, {"lr": 0.5, "width": 16}])
    importances, why_not = param_importances(study, seed=0)
    assert why_not is None
    assert set(importances) == {"lr"}  # width never changed: no share to give it
    assert importances["lr"] == pytest.approx(1.0)


@pytest.mark.parametrize("values, params, reason", [
    ([0.3], [{"lr": 0.01, "width": 16}], "need at least 2"),
    ([0.3, 0.3], [{"lr": 0.01, "width": 16}, {"lr": 0.1, "width": 32}], "same objective"),
    ([0.3, 0.2], [{"lr": 0.01, "width": 16}, {"lr": 0.01, "width": 16}], "no parameter varied"),
])
def test_no_param_importances_without_information(values, params, reason):
    importances, why_not = param_importances(_study_of(values, params), seed=0)
    assert importances == {} and reason in why_not


def test_importances_from_few_complete_trials_come_with_a_caution():
    few = _study_of([0.3, 0.2, 0.25], [{"lr": 0.01, "width": 16}, {"lr": 0.1, "width": 16},
                                       {"lr": 0.05, "width": 32}])
    caution = importance_caution(few)
    assert caution is not None and "rest on 3 complete trials" in caution
    values = [0.1 + i / 100 for i in range(MIN_TRIALS_FOR_IMPORTANCES)]
    enough = _study_of(values, [{"lr": 0.01 * (i + 1), "width": 16} for i in range(len(values))])
    assert importance_caution(enough) is None


def test_fold_scores_are_one_rounded_user_attribute_per_fold():
    attrs = fold_attrs([0.123456789, 0.2])
    assert attrs == {"fold_0_rmse": 0.123457, "fold_1_rmse": 0.2}
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=0.16, user_attrs=attrs))
    # a trial stored by an earlier version kept them as one list
    study.add_trial(optuna.trial.create_trial(value=0.2, user_attrs={"fold_scores": [0.1]}))
    assert [fold_scores(t) for t in study.trials] == [[0.123457, 0.2], [0.1]]


def test_a_trial_record_carries_both_row_scores_under_their_metric_names():
    """What the MLflow trial run logs beside `cv_rmse`: the score on all rows and on the
    rows fitted, whichever the objective is."""
    trial = optuna.trial.create_trial(
        value=0.11, params={}, distributions={},
        user_attrs={"score_all_rows": 0.12, "score_fit_rows": 0.11, "fold_0_rmse": 0.1})
    assert to_record(trial).scores == {"cv_rmse_all_rows": 0.12, "cv_rmse_fit_rows": 0.11}
    bare = optuna.trial.create_trial(value=0.11, params={}, distributions={})
    assert to_record(bare).scores == {}  # a trial from before these were recorded
