"""The study in its storage: a re-run resumes and only adds the missing trials."""

import logging
import re
import sqlite3
import time

import numpy as np
import optuna
import pytest

from pipeline.config import TuneConfig
from pipeline.services import ServiceError
from pipeline.tune.objective import make_objective
from pipeline.tune.study import Spend, make_storage, open_study, run_study
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


def test_a_damaged_study_storage_is_one_service_error(tmp_path):
    path = tmp_path / "optuna.db"
    path.write_bytes(b"these bytes are no SQLite database, " * 100)
    with pytest.raises(ServiceError) as raised:
        make_storage(f"sqlite:///{path}", TuneConfig())
    assert str(raised.value) == (
        f"cannot use the Optuna storage sqlite:///{path}: file is not a database: it is "
        "damaged, or not an Optuna storage; restore it from a backup, or move the file aside "
        "and a new study starts (set by tune.storage in params.yaml or OPTUNA_STORAGE)")


@pytest.mark.parametrize("revision, written_by, what", [
    ("v99.0.0.a", "99.0.0", "newer than the installed {}, which cannot read them: upgrade "
                            "Optuna"),
    ("v3.0.0.d", "3.0.0", "older than the installed {}: back it up and run `optuna storage "
                          "upgrade --storage {url}`"),
])
def test_a_study_storage_of_another_optuna_version_is_one_service_error(tmp_path, revision,
                                                                        written_by, what):
    """Its tables carry another schema revision than this Optuna's (Optuna raised a
    RuntimeError with a traceback); the message says which version wrote them."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    open_study(make_storage(url, TuneConfig()), "s", 0, 1, optuna.pruners.NopPruner())
    with sqlite3.connect(tmp_path / "optuna.db") as db:
        db.execute(f"UPDATE alembic_version SET version_num = '{revision}'")
        db.execute(f"UPDATE version_info SET library_version = '{written_by}'")
    with pytest.raises(ServiceError) as raised:
        make_storage(url, TuneConfig())
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"cannot use the Optuna storage {url}: its tables were written "
                              f"by Optuna {written_by}, "
                              + what.format(optuna.__version__, url=url))
    assert message.endswith("(set by tune.storage in params.yaml or OPTUNA_STORAGE)")


def test_a_study_spends_its_share_in_planned_seconds_not_trials(tmp_path):
    """With a share to spend, trials start until the finished ones' planned cost reaches it:
    cheap trials (a pruned one, a cheap network) leave room for more, dear ones for fewer;
    a resumed study counts what it holds."""
    study = open_study(f"sqlite:///{tmp_path / 'o.db'}", "s", 0, 2,
                       optuna.pruners.NopPruner())

    def objective(trial):
        width = trial.suggest_categorical("width", [1, 4])
        for epoch in range(1, 4):
            trial.report(width, epoch)
        return float(width)

    spend = Spend(share=20.0, cost=lambda params, steps: params["width"] * max(steps))
    ran = run_study(study, objective, None, None, 1, spend=spend)
    costs = [3 * r.params["width"] for r in ran]
    assert sum(costs) >= 20 > sum(costs[:-1])  # the last trial started below the share
    assert spend.spent(study.get_trials()) == sum(costs)
    assert run_study(study, objective, None, None, 1, spend=spend) == []  # spent already
    more = Spend(share=sum(costs) + 1, cost=spend.cost)
    assert len(run_study(study, objective, None, None, 1, spend=more)) == 1
