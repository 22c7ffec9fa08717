import dataclasses

import optuna
import pytest

from pipeline import tune as tuning
from pipeline.config import SearchDimension, config_from_dict
from pipeline.data import load_competition
from pipeline.workflow import setup_folds

from .conftest import small_params


@pytest.fixture
def setup(config):
    train, _, schema = load_competition(config.data)
    return setup_folds(train, schema, config), config


def storage_url(tmp_path):
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def open_(cfg, tmp_path, name="s"):
    return tuning.open_study(storage_url(tmp_path), name, cfg.base.seed,
                             cfg.tune.n_startup_trials, cfg.tune.pruner)


def test_study_resumes_and_only_adds_missing_trials(setup, tmp_path):
    fold_setup, cfg = setup
    objective = tuning.make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    study = open_(cfg, tmp_path)
    tuning.run_study(study, objective, n_trials=2, timeout_minutes=None, n_jobs=1)
    assert tuning.finished_trials(study) == 2
    again = open_(cfg, tmp_path)  # a new process would do this
    tuning.run_study(again, objective, n_trials=2, timeout_minutes=None, n_jobs=1)
    assert len(again.trials) == 2  # nothing to add
    tuning.run_study(again, objective, n_trials=3, timeout_minutes=None, n_jobs=1)
    assert len(again.trials) == 3
    best = tuning.best_trial(again)
    assert set(best.params) == {"lr", "dropout"}
    assert len(best.fold_scores) == cfg.cv.n_folds


def test_trials_report_fold_checkpoints_and_poor_trials_are_pruned(setup, tmp_path):
    fold_setup, cfg = setup
    cfg = dataclasses.replace(cfg, tune=dataclasses.replace(
        cfg.tune, search_space={"lr": SearchDimension(low=1e-6, high=0.05, log=True)},
        n_startup_trials=2))
    objective = tuning.make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    records = []
    study = open_(cfg, tmp_path)
    tuning.run_study(study, objective, n_trials=8, timeout_minutes=None, n_jobs=1,
                     on_trial=records.append)
    assert len(records) == 8
    complete = [r for r in records if r.state == "COMPLETE"]
    assert all(sorted(r.checkpoints) == [3, 6, 9, 12] for r in complete)
    assert any(r.state == "PRUNED" for r in records), [r.value for r in records]


def test_seeded_sampler_is_reproducible(setup, tmp_path):
    fold_setup, cfg = setup
    objective = tuning.make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    values = []
    for name in ("a", "b"):
        study = open_(cfg, tmp_path, name)
        tuning.run_study(study, objective, n_trials=2, timeout_minutes=None, n_jobs=1)
        values.append([(t.params, t.value) for t in study.trials])
    assert values[0] == values[1]


def test_study_name_tracks_what_makes_trials_comparable(competition):
    base = config_from_dict(small_params(competition))
    more = config_from_dict(small_params(competition, tune={"n_trials": 50}))
    wider = config_from_dict(small_params(competition, tune={
        "search_space": {"lr": {"low": 0.0001, "high": 0.1, "log": True}}}))
    assert tuning.study_name(base, "h") == tuning.study_name(more, "h")
    assert tuning.study_name(base, "h") != tuning.study_name(wider, "h")
    assert tuning.study_name(base, "h") != tuning.study_name(base, "other data")


def test_suggest_covers_every_dimension_kind():
    space = {"lr": SearchDimension(low=1e-4, high=1e-2, log=True),
             "depth": SearchDimension(low=1, high=3, integer=True),
             "width": SearchDimension(choices=(8, 16))}
    study = optuna.create_study()
    params = tuning.suggest(study.ask(), space)
    assert 1e-4 <= params["lr"] <= 1e-2
    assert params["depth"] in (1, 2, 3) and isinstance(params["depth"], int)
    assert params["width"] in (8, 16)


@pytest.mark.parametrize("kind, expected", [("median", optuna.pruners.MedianPruner),
                                            ("percentile", optuna.pruners.PercentilePruner),
                                            ("hyperband", optuna.pruners.HyperbandPruner),
                                            ("none", optuna.pruners.NopPruner)])
def test_pruner_kinds(kind, expected):
    from pipeline.config import PrunerConfig

    assert isinstance(tuning.make_pruner(PrunerConfig(kind=kind, percentile=25.0)), expected)


def test_resumed_study_draws_new_points_instead_of_replaying_the_first(setup, tmp_path):
    fold_setup, cfg = setup
    cfg = dataclasses.replace(cfg, tune=dataclasses.replace(cfg.tune, n_startup_trials=10))
    objective = tuning.make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    tuning.run_study(open_(cfg, tmp_path), objective, n_trials=2, timeout_minutes=None, n_jobs=1)
    resumed = open_(cfg, tmp_path)
    tuning.run_study(resumed, objective, n_trials=4, timeout_minutes=None, n_jobs=1)
    params = [t.params for t in resumed.trials]
    assert params[2] not in params[:2] and params[3] not in params[:2]


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
    importances, why_not = tuning.param_importances(study, seed=0)
    assert why_not is None
    assert set(importances) == {"lr"}  # width never changed: no share to give it
    assert importances["lr"] == pytest.approx(1.0)


@pytest.mark.parametrize("values, params, reason", [
    ([0.3], [{"lr": 0.01, "width": 16}], "need at least 2"),
    ([0.3, 0.3], [{"lr": 0.01, "width": 16}, {"lr": 0.1, "width": 32}], "same objective"),
    ([0.3, 0.2], [{"lr": 0.01, "width": 16}, {"lr": 0.01, "width": 16}], "no parameter varied"),
])
def test_no_param_importances_without_information(values, params, reason):
    importances, why_not = tuning.param_importances(_study_of(values, params), seed=0)
    assert importances == {} and reason in why_not
