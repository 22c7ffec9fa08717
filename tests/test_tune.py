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
