import re

import numpy as np
import pytest
import torch

from pipeline.config import Bound, ConfigError, FeaturesConfig, ModelConfig, config_from_dict
from pipeline.cv import (
    cross_validate_estimator,
    cross_validate_mlp,
    fit_fold_features,
    make_folds,
    model_target,
    setup_folds,
)
from pipeline.data.validate import load_competition
from pipeline.features import code_levels
from pipeline.final import mlp_member
from pipeline.metrics import rmse
from pipeline.nn.model import BatchedMLP, predict_batched
from pipeline.reference import linear_reference

from .conftest import make_houses, small_params, wide_frame, write_competition

MODEL = ModelConfig(depth=1, width=16, epochs=15, batch_size=32, lr=0.01, eval_every=5)


@pytest.fixture
def loaded(config):
    train, test, schema = load_competition(config.data)
    return train, test, schema, config


def test_folds_partition_the_rows_and_exclusions_never_fit(loaded):
    train, _, _, _ = loaded
    rules = ({"GrLivArea": Bound(greater_than=2800)},)
    folds = make_folds(train, 4, seed=0, fit_exclude=rules)
    all_val = np.concatenate(folds.val_rows)
    assert sorted(all_val) == list(range(len(train)))
    excluded = np.flatnonzero(train["GrLivArea"] > 2800)
    assert len(excluded) > 0 and folds.excluded[excluded].all()
    for fit_rows, val_rows in zip(folds.fit_rows, folds.val_rows, strict=True):
        assert not set(fit_rows) & set(val_rows)
        assert not set(fit_rows) & set(excluded)


def test_folds_depend_on_the_seed(loaded):
    train = loaded[0]
    a, b = make_folds(train, 3, seed=0), make_folds(train, 3, seed=1)
    assert not np.array_equal(a.val_rows[0], b.val_rows[0])


def test_each_fold_preprocessor_is_fitted_on_its_fit_rows_only(loaded):
    train, _, schema, cfg = loaded
    folds = make_folds(train, 3, seed=0)
    done = []
    features = fit_fold_features(train, folds, schema, cfg.features, on_fold=done.append)
    assert done == [0, 1, 2]  # a progress hook after each fold's fit
    for k, rows in enumerate(folds.fit_rows):
        scaler = features.preprocessors[k].named_steps["columns"].named_transformers_[
            "numeric"].named_steps["standardscaler"]
        domain = features.preprocessors[k].named_steps["domain"]
        fit_numeric = domain.transform(train.iloc[rows]).select_dtypes("number")
        assert scaler.n_samples_seen_ == len(rows)
        assert scaler.n_features_in_ == fit_numeric.shape[1]
    assert features.x.shape == (3, len(train), features.width)


def test_oof_predictions_cover_every_row_and_score_matches(loaded):
    train, _, schema, cfg = loaded
    folds = make_folds(train, 3, seed=0)
    features = fit_fold_features(train, folds, schema, cfg.features)
    y = model_target(train, schema)
    result = cross_validate_mlp(features, y, folds, MODEL, seed=0)
    assert np.isfinite(result.oof).all()
    assert result.score == pytest.approx(rmse(y, result.oof))
    assert len(result.fold_scores) == 3
    assert result.score < np.std(y)  # learned something


def test_same_params_same_oof(loaded):
    train, _, schema, cfg = loaded
    folds = make_folds(train, 3, seed=0)
    y = model_target(train, schema)
    runs = [cross_validate_mlp(fit_fold_features(train, folds, schema, cfg.features), y, folds,
                               MODEL, seed=5, n_seeds=2) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].oof, runs[1].oof)


def test_seeds_in_batches_train_every_seed_of_every_fold_and_average_them(loaded):
    train, _, schema, cfg = loaded
    folds = make_folds(train, 3, seed=0)
    y = model_target(train, schema)
    features = fit_fold_features(train, folds, schema, cfg.features)
    together = cross_validate_mlp(features, y, folds, MODEL, seed=5, n_seeds=3)
    assert [t.model.n_models for t in together.trained] == [9]
    # a batch as large as the seeds is one batch: the same models
    np.testing.assert_array_equal(
        cross_validate_mlp(features, y, folds, MODEL, seed=5, n_seeds=3, seed_batch=4).oof,
        together.oof)
    batched = cross_validate_mlp(features, y, folds, MODEL, seed=5, n_seeds=3, seed_batch=2)
    assert [t.model.n_models for t in batched.trained] == [6, 3]
    # the first batch draws from the seed as one batch of two seeds would; the second from
    # seed + 1: each fold's OOF predictions are the mean over the three seeds' models
    two = cross_validate_mlp(features, y, folds, MODEL, seed=5, n_seeds=2)
    one = cross_validate_mlp(features, y, folds, MODEL, seed=6, n_seeds=1)
    np.testing.assert_allclose(batched.oof, (2 * two.oof + one.oof) / 3, rtol=1e-12)
    assert not np.allclose(batched.oof, together.oof)
    # stored as a final-model member, the batches predict as one model of nine would
    member = mlp_member(batched.trained)
    rows = folds.val_rows[0]
    x = features.x[:, rows].numpy()
    each = [predict_batched(t.model, t.target_mean, t.target_std, features.x[:, rows])
            for t in batched.trained]
    np.testing.assert_allclose(member.predict(x), np.concatenate(each).mean(axis=0),
                               rtol=1e-5)


def test_sklearn_estimator_cross_validation(loaded):
    train, _, schema, cfg = loaded
    folds = make_folds(train, 3, seed=0)
    features = fit_fold_features(train, folds, schema, cfg.features)
    y = model_target(train, schema)
    result = cross_validate_estimator(features, y, folds, linear_reference(cfg.reference))
    assert len(result.trained) == 3
    assert result.score < 0.5 * np.std(y)


def test_log_target_false_models_the_raw_target(competition):
    cfg = config_from_dict(small_params(competition, data={"log_target": False}))
    train, _, schema = load_competition(cfg.data)
    y = model_target(train, schema)
    np.testing.assert_array_equal(y, train["SalePrice"].to_numpy())


def test_more_folds_than_rows_is_an_error_naming_the_key(loaded):
    train, _, _, _ = loaded
    with pytest.raises(ConfigError, match=re.escape(
            "cv.n_folds: 100 folds need at least 100 training rows left for fitting (each "
            "fold fits on at least 2), the data has 60")):
        make_folds(train.iloc[:60], 100, seed=0)
    rules = ({"GrLivArea": Bound(greater_than=0)},)  # every row excluded from fitting
    with pytest.raises(ConfigError, match="cv.n_folds"):
        make_folds(train, 3, seed=0, fit_exclude=rules)


def test_every_fold_fits_on_at_least_two_rows(loaded):
    # one row shows no spread: its columns are scaled by 1, the model sees raw units
    train, _, _, _ = loaded
    with pytest.raises(ConfigError, match=re.escape(
            "cv.n_folds: 2 folds need at least 4 training rows left for fitting (each fold "
            "fits on at least 2), the data has 3")):
        make_folds(train.iloc[:3], 2, seed=0)
    assert [len(rows) for rows in make_folds(train.iloc[:4], 2, seed=0).fit_rows] == [2, 2]
    assert min(len(rows) for rows in make_folds(train.iloc[:3], 3, seed=0).fit_rows) == 2
    # rows excluded from fitting can leave a fold one row though enough rows are kept: keep
    # the first fold's validation rows and one more
    eight = train.iloc[:8].copy()
    first, second = make_folds(eight, 2, seed=0).val_rows
    eight["GrLivArea"] = 100.0
    eight.loc[[*first, second[0]], "GrLivArea"] = 1.0
    rules = ({"GrLivArea": Bound(greater_than=50)},)
    with pytest.raises(ConfigError, match="features.fit_exclude leaves a fold fewer than 2 "
                                          "rows to fit on"):
        make_folds(eight, 2, seed=0, fit_exclude=rules)


def test_every_fold_codes_the_same_wide_columns_and_the_stored_models_predict_as_in_cv():
    frame, schema = wide_frame(n_rows=600, levels=150)
    cfg = FeaturesConfig(max_onehot_levels=16, min_embedded_count=2)
    folds = make_folds(frame, 3, seed=0)
    features = fit_fold_features(frame, folds, schema, cfg)
    per_fold = [code_levels(p) for p in features.preprocessors]
    assert len(features.code_levels) == 1
    assert features.code_levels == (max(levels[0] for levels in per_fold),)
    y = model_target(frame, schema)
    result = cross_validate_mlp(features, y, folds, MODEL, seed=0)
    assert result.trained[0].model.levels is not None
    # the model as a final model stores it predicts each fold's validation rows as CV did
    member = mlp_member(result.trained)
    model = BatchedMLP(**member.architecture)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in member.state.items()})
    for k, rows in enumerate(folds.val_rows):
        predicted = predict_batched(model, member.target_mean, member.target_std,
                                    features.x[:, rows])[k]
        np.testing.assert_allclose(predicted, result.trained[0].val_predictions[k], atol=1e-5)


def test_the_linear_references_view_keeps_wide_columns_one_hot(tmp_path):
    train = make_houses(120, seed=1)
    raw = write_competition(tmp_path, train, make_houses(20, seed=2, first_id=9001)
                            .drop(columns="SalePrice"))
    cfg = config_from_dict(small_params(raw, features={"max_onehot_levels": 3}))
    frame, _, schema = load_competition(cfg.data)
    assert setup_folds(frame, schema, cfg).features.code_levels
    assert setup_folds(frame, schema, cfg, level_codes=False).features.code_levels == ()
