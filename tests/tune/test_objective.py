"""The objective: trials report fold checkpoints, poor ones are pruned; the study's identity."""

import numpy as np
import optuna
import pandas as pd
import pytest

from pipeline.config import PrunerConfig, SearchDimension, config_from_dict
from pipeline.cv import cross_validate_mlp, setup_folds
from pipeline.data.validate import load_competition
from pipeline.metrics import rmse
from pipeline.plan import network_key
from pipeline.tune.objective import make_objective, make_pruner, study_name, suggest
from pipeline.tune.study import run_study

from ..conftest import small_params
from .conftest import open_


def test_trials_report_fold_checkpoints_and_poor_trials_are_pruned(setup, tmp_path):
    fold_setup, cfg = setup
    cfg = cfg.replace({"tune": cfg.tune.replace({
        "search_space": {"lr": SearchDimension(low=1e-6, high=0.05, log=True)},
        "n_startup_trials": 2})})
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    records = []
    study = open_(cfg, tmp_path)
    run_study(study, objective, n_trials=8, deadline=None, n_jobs=1,
              on_trial=records.append)
    assert len(records) == 8
    complete = [r for r in records if r.state == "COMPLETE"]
    assert all(sorted(r.checkpoints) == [3, 6, 9, 12] for r in complete)
    assert any(r.state == "PRUNED" for r in records), [r.value for r in records]


def test_seeded_sampler_is_reproducible(setup, tmp_path):
    fold_setup, cfg = setup
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg)
    values = []
    for name in ("a", "b"):
        study = open_(cfg, tmp_path, name)
        run_study(study, objective, n_trials=2, deadline=None, n_jobs=1)
        values.append([(t.params, t.value) for t in study.trials])
    assert values[0] == values[1]


def test_study_name_tracks_what_makes_trials_comparable(competition):
    base = config_from_dict(small_params(competition))
    more = config_from_dict(small_params(competition, tune={"n_trials": 50}))
    wider = config_from_dict(small_params(competition, tune={
        "search_space": {"lr": {"low": 0.0001, "high": 0.1, "log": True}}}))
    assert study_name(base, "h") == study_name(more, "h")
    assert study_name(base, "h") != study_name(wider, "h")
    assert study_name(base, "h") != study_name(base, "other data")


# One change per key that changes what a trial sees (section, key, new value): each must
# start a new study. Every data: and features: key is here (a test holds the lists whole).
DATA_PATHS = ("train", "test", "sample_submission")  # the files' bytes count, not their paths
IDENTITY_CHANGES = [
    ("data", "id_column", "YearBuilt"),
    ("data", "target", "GrLivArea"),
    ("data", "id_type", "text"),
    ("data", "log_target", False),
    ("data", "drop_columns", ["MSZoning"]),
    ("data", "column_types", {"ExterQual": "ordinal", "PoolQC": "ordinal",
                              "OverallQual": "categorical"}),
    ("data", "ordinal_levels", {"ExterQual": ["Fa", "Po", "TA", "Gd", "Ex"],
                                "PoolQC": ["None", "Fa", "TA", "Gd", "Ex"]}),
    ("data", "na_values", ["NA"]),
    ("data", "column_na_values", {"MSZoning": ["FV"]}),
    ("features", "fill_none", []),
    ("features", "derived", {}),
    ("features", "products", {"AreaQual": ["GrLivArea", "OverallQual"]}),
    ("features", "indicators", {"HasPool": "LotFrontage"}),
    ("features", "group_impute", {}),
    ("features", "log1p_skew_threshold", 2.0),
    ("features", "numeric_impute", "mean"),
    ("features", "clip_to_fit_range", True),
    ("features", "numeric_scaling", "quantile"),
    ("features", "min_category_count", 3),
    ("features", "max_onehot_levels", 2),
    ("features", "wide_encodings", ["frequency"]),
    ("features", "wide_categories", "onehot"),
    ("features", "min_embedded_count", 5),
    ("features", "add_missing_indicators", True),
    ("features", "fit_exclude", [{"GrLivArea": {"greater_than": 2900}}]),
    ("cv", "n_folds", 4),
    ("base", "seed", 8),
    # the plan's sizes, as plan.apply fills them in
    ("model", "epochs", 13),
    ("model", "batch_size", 64),
    ("model", "lr", 0.02),
    ("model", "eval_every", 4),
    ("model", "width", 32),
    ("tune", "objective_rows", "fit"),
    ("tune", "trial_folds", 1),
    ("tune", "pruner", {"kind": "median", "n_startup_trials": 1, "n_warmup_steps": 6}),
]


@pytest.mark.parametrize("section, key, value", IDENTITY_CHANGES,
                         ids=[f"{s}.{k}" for s, k, _ in IDENTITY_CHANGES])
def test_each_key_that_changes_what_a_trial_sees_starts_a_new_study(competition, section,
                                                                    key, value):
    base = config_from_dict(small_params(competition))
    changed = config_from_dict(small_params(competition, **{section: {key: value}}))
    assert getattr(getattr(changed, section), key) != getattr(getattr(base, section), key)
    assert study_name(changed, "h") != study_name(base, "h")


def test_every_data_and_features_key_is_in_the_identity_changes():
    from pipeline.config import DataConfig, FeaturesConfig

    covered = {(s, k) for s, k, _ in IDENTITY_CHANGES}
    assert {("data", k) for k in DataConfig.model_fields if k not in DATA_PATHS} <= covered
    assert {("features", k) for k in FeaturesConfig.model_fields} <= covered


def test_the_same_bytes_under_other_paths_resume_the_same_study(competition, tmp_path):
    base = config_from_dict(small_params(competition))
    elsewhere = config_from_dict(small_params(competition, data={
        "train": str(tmp_path / "copy" / "train.csv"), "test": str(tmp_path / "copy/test.csv"),
        "sample_submission": None}))
    assert study_name(elsewhere, "h") == study_name(base, "h")  # the data hash is the bytes'


def test_suggest_covers_every_dimension_kind():
    space = {"lr": SearchDimension(low=1e-4, high=1e-2, log=True),
             "depth": SearchDimension(low=1, high=3, integer=True),
             "width": SearchDimension(choices=(8, 16))}
    study = optuna.create_study()
    params = suggest(study.ask(), space)
    assert 1e-4 <= params["lr"] <= 1e-2
    assert params["depth"] in (1, 2, 3) and isinstance(params["depth"], int)
    assert params["width"] in (8, 16)


@pytest.mark.parametrize("kind, expected", [("median", optuna.pruners.MedianPruner),
                                            ("percentile", optuna.pruners.PercentilePruner),
                                            ("hyperband", optuna.pruners.HyperbandPruner),
                                            ("none", optuna.pruners.NopPruner)])
def test_pruner_kinds(kind, expected):
    pruner = PrunerConfig(kind=kind, percentile=25.0, n_warmup_steps=4)
    assert isinstance(make_pruner(pruner), expected)


def test_checkpoints_and_objective_score_the_same_rows(competition, tmp_path):
    """With `objective_rows: fit`, what the pruner sees per epoch is on the rows the objective
    scores (not every validation row): the outliers left out of fitting count in neither."""
    train = pd.read_csv(competition / "train.csv")
    big = train["GrLivArea"] > 2400
    train.loc[big, "SalePrice"] *= 4  # excluded from fitting, and far off what the model learns
    train.to_csv(competition / "train.csv", index=False)
    cfg = config_from_dict(small_params(
        competition, features={"fit_exclude": [{"GrLivArea": {"greater_than": 2400}}]},
        tune={"objective_rows": "fit", "search_space": {"dropout": {"choices": [0.1]}}}))
    frame, _, schema = load_competition(cfg.data)
    setup = setup_folds(frame, schema, cfg)
    assert setup.folds.excluded.sum() == big.sum() > 0
    study = open_(cfg, tmp_path)
    run_study(study, make_objective(setup.features, setup.y, setup.folds, cfg), n_trials=1,
              deadline=None, n_jobs=1)
    (trial,) = study.trials
    same = cross_validate_mlp(setup.features, setup.y, setup.folds,
                              cfg.model.replace(trial.params, "model."), cfg.base.seed)
    assert trial.value == pytest.approx(same.score_fit_rows)
    last = max(trial.intermediate_values)
    fit_rows = [~setup.folds.excluded[v] for v in setup.folds.val_rows]
    on_fit = [rmse(setup.y[v][m], same.oof[v][m])
              for v, m in zip(setup.folds.val_rows, fit_rows, strict=True)]
    on_all = [rmse(setup.y[v], same.oof[v]) for v in setup.folds.val_rows]
    assert trial.intermediate_values[last] == pytest.approx(np.mean(on_fit), rel=1e-4)
    assert np.mean(on_all) > 1.5 * np.mean(on_fit)


def test_a_trial_on_one_fold_trains_and_scores_that_fold_alone(competition, tmp_path):
    """tune.trial_folds: 1 fits the first fold's preprocessing only, trains one model, and the
    trial's value is the RMSE on that fold's validation rows (what the same model scores
    there when every fold is trained)."""
    cfg = config_from_dict(small_params(
        competition, tune={"trial_folds": 1, "search_space": {"dropout": {"choices": [0.1]}}}))
    frame, _, schema = load_competition(cfg.data)
    one = setup_folds(frame, schema, cfg, first=1)
    assert one.folds.n_folds == 1 and len(one.features.preprocessors) == 1
    assert one.features.x.shape[0] == 1
    study = open_(cfg, tmp_path)
    run_study(study, make_objective(one.features, one.y, one.folds, cfg), n_trials=1,
              deadline=None, n_jobs=1)
    (trial,) = study.trials
    every = setup_folds(frame, schema, cfg)
    val = every.folds.val_rows[0]
    np.testing.assert_array_equal(one.folds.val_rows[0], val)
    alone = cross_validate_mlp(one.features, one.y, one.folds,
                               cfg.model.replace(trial.params, "model."), cfg.base.seed)
    assert np.isnan(alone.oof).sum() == len(frame) - len(val)
    assert trial.value == pytest.approx(rmse(one.y[val], alone.oof[val]))
    assert trial.value == pytest.approx(alone.fold_scores[0])


def test_a_trial_of_a_network_too_dear_for_the_final_fit_is_pruned_unrun(setup, tmp_path):
    fold_setup, cfg = setup
    cfg = cfg.replace({"tune": cfg.tune.replace({
        "search_space": {"width": SearchDimension(choices=(8, 16))}})})
    dear = network_key(cfg.model.replace({"width": 16}))
    objective = make_objective(fold_setup.features, fold_setup.y, fold_setup.folds, cfg,
                               too_dear=[dear])
    study = open_(cfg, tmp_path)
    run_study(study, objective, n_trials=6, deadline=None, n_jobs=1)
    for trial in study.trials:
        if trial.params["width"] == 16:
            assert trial.state == optuna.trial.TrialState.PRUNED
            assert trial.user_attrs["pruned_by"] == "budget" and not trial.intermediate_values
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE
    assert {t.params["width"] for t in study.trials} == {8, 16}
