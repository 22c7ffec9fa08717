"""The study in its storage: a re-run resumes and only adds the missing trials."""

import numpy as np
import optuna
import pytest

from pipeline.tune.objective import make_objective
from pipeline.tune.study import run_study
from pipeline.tune.trials import best_trial, finished_trials

from .conftest import open_


def test_study_resumes_and_only_adds_missing_trials(setup, tmp_path):
    fold_setup, cfg = setup
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    study = open_(cfg, tmp_path)
    run_study(study, objective, n_trials=2, timeout_minutes=None, n_jobs=1)
    assert finished_trials(study) == 2
    again = open_(cfg, tmp_path)  # a new process would do this
    run_study(again, objective, n_trials=2, timeout_minutes=None, n_jobs=1)
    assert len(again.trials) == 2  # nothing to add
    run_study(again, objective, n_trials=3, timeout_minutes=None, n_jobs=1)
    assert len(again.trials) == 3
    best = best_trial(again)
    assert set(best.params) == {"lr", "dropout"}
    assert len(best.fold_scores) == cfg.cv.n_folds


def test_resumed_study_draws_new_points_instead_of_replaying_the_first(setup, tmp_path):
    fold_setup, cfg = setup
    cfg = cfg.replace({"tune": cfg.tune.replace({"n_startup_trials": 10})})
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    run_study(open_(cfg, tmp_path), objective, n_trials=2, timeout_minutes=None, n_jobs=1)
    resumed = open_(cfg, tmp_path)
    run_study(resumed, objective, n_trials=4, timeout_minutes=None, n_jobs=1)
    params = [t.params for t in resumed.trials]
    assert params[2] not in params[:2] and params[3] not in params[:2]


def test_the_objective_is_named_cv_rmse_and_fold_scores_are_user_attributes(setup, tmp_path):
    """optuna-dashboard shows "cv_rmse" instead of "Objective 0", and a column per fold."""
    fold_setup, cfg = setup
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    study = open_(cfg, tmp_path)
    run_study(study, objective, n_trials=1, timeout_minutes=None, n_jobs=1)
    reopened = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert reopened.metric_names == ["cv_rmse"]
    (trial,) = reopened.trials
    folds = [trial.user_attrs[f"fold_{k}_rmse"] for k in range(cfg.cv.n_folds)]
    assert all(round(v, 6) == v for v in folds)
    assert trial.value == pytest.approx(np.sqrt(np.mean(np.square(folds))), abs=0.02)
