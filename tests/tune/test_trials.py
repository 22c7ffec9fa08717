"""The study's trials as plain data: parameter importances only where they mean something."""

import optuna
import pytest

from pipeline.tune.trials import param_importances


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
