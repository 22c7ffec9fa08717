"""The study in its storage: a re-run resumes and only adds the missing trials."""

import logging
import re
import time

import numpy as np
import optuna
import pytest

from pipeline.config import TuneConfig
from pipeline.tune.objective import make_objective
from pipeline.tune.study import make_storage, open_study, run_study
from pipeline.tune.trials import best_trial, finished_trials

from .conftest import open_


def test_study_resumes_and_only_adds_missing_trials(setup, tmp_path):
    fold_setup, cfg = setup
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    study = open_(cfg, tmp_path)
    run_study(study, objective, n_trials=2, deadline=None, n_jobs=1)
    assert finished_trials(study) == 2
    again = open_(cfg, tmp_path)  # a new process would do this
    run_study(again, objective, n_trials=2, deadline=None, n_jobs=1)
    assert len(again.trials) == 2  # nothing to add
    run_study(again, objective, n_trials=3, deadline=None, n_jobs=1)
    assert len(again.trials) == 3
    best = best_trial(again)
    assert set(best.params) == {"lr", "dropout"}
    assert len(best.fold_scores) == cfg.cv.n_folds


def test_resumed_study_draws_new_points_instead_of_replaying_the_first(setup, tmp_path):
    fold_setup, cfg = setup
    cfg = cfg.replace({"tune": cfg.tune.replace({"n_startup_trials": 10})})
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    run_study(open_(cfg, tmp_path), objective, n_trials=2, deadline=None, n_jobs=1)
    resumed = open_(cfg, tmp_path)
    run_study(resumed, objective, n_trials=4, deadline=None, n_jobs=1)
    params = [t.params for t in resumed.trials]
    assert params[2] not in params[:2] and params[3] not in params[:2]


def test_a_study_waiting_for_a_running_trial_says_which_and_for_how_long(tmp_path, caplog):
    """A re-run after a worker was killed mid-trial needs no new trial until the dead one is
    retried: it says what it waits for (the trial, its worker, the grace period), then
    retries the trial once its heartbeat is stale."""
    cfg = TuneConfig(heartbeat_interval=1, grace_period=3, max_retries=1)
    storage = make_storage(f"sqlite:///{tmp_path / 'optuna.db'}", cfg)
    study = open_study(storage, "s", 0, 1, optuna.pruners.NopPruner())
    orphan = study.ask()  # a worker's trial: started, one heartbeat, then the worker died
    orphan.set_user_attr("worker", "elsewhere:4242")
    storage.record_heartbeat(orphan._trial_id)
    with caplog.at_level(logging.INFO, logger="pipeline"):
        ran = run_study(study, lambda trial: trial.suggest_float("x", 0, 1), n_trials=1,
                        deadline=time.monotonic() + 60, n_jobs=1, wait_for_others=True,
                        poll_seconds=0.2)
    waiting = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting")]
    assert len(waiting) == 1, waiting  # said once, not every poll
    assert re.fullmatch(r"waiting for running trial 0 \(worker elsewhere:4242, started "
                        r"\d\d:\d\d:\d\d\); a trial whose worker was stopped is marked failed "
                        r"and run again here once its heartbeat is 3 s old "
                        r"\(tune.grace_period\)", waiting[0]), waiting[0]
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "FAIL", 1: "COMPLETE"} and [r.number for r in ran] == [1]


def test_the_objective_is_named_cv_rmse_and_fold_scores_are_user_attributes(setup, tmp_path):
    """optuna-dashboard shows "cv_rmse" instead of "Objective 0", and a column per fold."""
    fold_setup, cfg = setup
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    study = open_(cfg, tmp_path)
    run_study(study, objective, n_trials=1, deadline=None, n_jobs=1)
    reopened = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert reopened.metric_names == ["cv_rmse"]
    (trial,) = reopened.trials
    folds = [trial.user_attrs[f"fold_{k}_rmse"] for k in range(cfg.cv.n_folds)]
    assert all(round(v, 6) == v for v in folds)
    assert trial.value == pytest.approx(np.sqrt(np.mean(np.square(folds))), abs=0.02)
