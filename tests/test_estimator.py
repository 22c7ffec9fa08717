"""TabularMLPRegressor: the scikit-learn contract, the stages' own code, and use inside
scikit-learn's model selection and ensembles, on the synthetic competition's raw frame."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline import TabularMLPRegressor
from pipeline.config import ConfigError, DataConfig, FeaturesConfig, ModelConfig
from pipeline.data.schema import infer_schema
from pipeline.data.validate import coerce
from pipeline.ensemble import FinalModel
from pipeline.estimator import FEATURE_PARAMS, MODEL_PARAMS
from pipeline.features import build_preprocessor, stack_transforms
from pipeline.final import mlp_member
from pipeline.nn.train import fit_mlps
from pipeline.plan import resolve_model

from .conftest import REPO

QUICK = {"epochs": 20, "width": 16, "lr": 0.01, "batch_size": 32}


@pytest.fixture
def xy(houses) -> tuple[pd.DataFrame, pd.Series]:
    train, _ = houses
    return train.drop(columns=["Id", "SalePrice"]), train["SalePrice"]


def quick(**params) -> TabularMLPRegressor:
    return TabularMLPRegressor(**{**QUICK, **params})


# Every check applies: numpy arrays get column names x0, x1, ... and go the same way as a
# frame. (Few epochs and a small net, so the whole set runs in seconds.)
@parametrize_with_checks([TabularMLPRegressor(epochs=30, width=32, lr=0.01)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_defaults_are_the_declared_configs_defaults():
    params = TabularMLPRegressor().get_params()
    for name in MODEL_PARAMS:
        assert params[name] == getattr(ModelConfig(), name), name
    for name in FEATURE_PARAMS:
        assert params[name] == getattr(FeaturesConfig(), name), name


def test_fit_on_a_raw_frame_infers_kinds_and_predicts_prices(xy, houses):
    X, y = xy
    model = quick(log_target=True, column_types={"ExterQual": "ordinal"},
                  ordinal_levels={"ExterQual": ["Po", "Fa", "TA", "Gd", "Ex"]})
    assert model.fit(X, y) is model
    assert model.schema_.columns["Neighborhood"] == "categorical"
    assert model.schema_.columns["ExterQual"] == "ordinal"
    assert model.schema_.columns["LotFrontage"] == "numeric"  # with gaps
    assert model.feature_names_in_.tolist() == X.columns.tolist()
    test = houses[1].drop(columns="Id")
    prices = model.predict(test)
    assert prices.shape == (len(test),) and (prices > 0).all()
    assert 0.5 < model.score(X, y) <= 1.0  # R^2 on the prices, as RegressorMixin defines it
    assert model.history_["epoch"].iloc[-1] == QUICK["epochs"]


def test_it_runs_the_stages_code_on_the_rows_it_is_given(xy):
    """Same schema inference, preprocessing, trainer and final-model predict path as the
    stages: assembled by hand from them, the same seed gives the same predictions."""
    X, y = xy
    model = quick(log_target=True, random_state=3).fit(X, y)
    frame = X.assign(__row_id__=np.arange(len(X)), __target__=y.to_numpy(dtype=float))
    data_cfg = DataConfig(id_column="__row_id__", target="__target__", id_type="integer",
                          log_target=True)
    schema = infer_schema(frame, data_cfg, "integer")
    typed = coerce(frame, schema, "X")
    target = np.log(y.to_numpy())
    pre = build_preprocessor(schema, FeaturesConfig(), 3)
    fitted = pre.fit_transform(typed, target)
    x = stack_transforms([pre], typed)
    x[0, :, : fitted.shape[1]] = fitted
    trained = fit_mlps(torch.from_numpy(x), torch.as_tensor(target, dtype=torch.float64),
                       [np.arange(len(X))], None,
                       resolve_model(ModelConfig().replace(QUICK), len(X)), 3)
    by_hand = FinalModel(schema, schema.scale, {"mlp": ([pre], x.shape[2])},
                         {"mlp": ("mlp", mlp_member([trained]))}, {"mlp": 1.0})
    rows = X.head(20).assign(__row_id__=np.arange(20))
    np.testing.assert_array_equal(model.predict(X.head(20)), by_hand.predict_frame(rows))


def test_preprocessing_is_fitted_on_the_rows_given_only(xy):
    X, y = xy
    first = X.iloc[:60]
    model = quick().fit(first, y.iloc[:60])
    (pre,), _ = model.model_.views["mlp"]
    numeric = pre.named_steps["columns"].named_transformers_["numeric"]
    imputer = numeric.steps[0][1]
    columns = next(columns for name, _, columns in pre.named_steps["columns"].transformers_
                   if name == "numeric")
    area = columns.index("GrLivArea")
    assert imputer.statistics_[area] == pytest.approx(first["GrLivArea"].median())
    assert imputer.statistics_[area] != pytest.approx(X["GrLivArea"].median())


def test_clone_get_params_set_params_and_pickle(xy):
    X, y = xy
    model = quick(n_seeds=2)
    copy = clone(model).set_params(width=8)
    assert copy.get_params()["width"] == 8 and model.get_params()["width"] == 16
    assert copy.get_params()["n_seeds"] == 2
    fitted = copy.fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    with pytest.raises(NotFittedError):
        quick().predict(X)


def test_it_works_in_pipeline_cross_val_score_grid_search_and_stacking(xy):
    X, y = xy
    folds = KFold(3, shuffle=True, random_state=0)
    numeric = ["GrLivArea", "OverallQual", "YearBuilt"]
    pipe = Pipeline([("pick", ColumnTransformer([("keep", "passthrough", numeric)])),
                     ("mlp", quick(log_target=True))])  # an array with unnamed columns
    scores = cross_val_score(pipe, X, y, cv=folds)
    assert len(scores) == 3 and np.isfinite(scores).all() and scores.mean() > 0.3
    search = GridSearchCV(quick(log_target=True), {"lr": [0.003, 0.01]}, cv=folds)
    search.fit(X, y)
    assert search.best_params_["lr"] in (0.003, 0.01)
    assert set(search.cv_results_["param_lr"]) == {0.003, 0.01}
    stack = StackingRegressor([("mlp", quick(log_target=True)),
                               ("ridge", Pipeline([("pick", ColumnTransformer(
                                   [("keep", "passthrough", numeric)])), ("ridge", Ridge())]))],
                              final_estimator=Ridge(), cv=folds)
    stack.fit(X, y)
    assert stack.score(X, y) > 0.5


def test_bad_settings_and_targets_are_value_errors_naming_them(xy):
    X, y = xy
    with pytest.raises(ConfigError, match="dropout"):
        quick(dropout=1.5).fit(X, y)
    with pytest.raises(ConfigError, match="log_target"):
        quick(log_target="log2").fit(X, y)
    with pytest.raises(ValueError, match=r"y must be positive for log_target=True, got -1"):
        quick(log_target=True).fit(X, y.where(y.index != 4, -1.0))
    with pytest.raises(ValueError, match=r"column_types names columns X does not have"):
        quick(column_types={"Nope": "categorical"}).fit(X, y)
    fitted = quick().fit(X, y)
    with pytest.raises(ValueError, match="feature names"):
        fitted.predict(X.rename(columns={"GrLivArea": "Area"}))


def test_importing_the_package_does_not_import_the_estimator():
    code = ("import sys, pipeline, pipeline.cv, pipeline.stages.train; "
            "assert 'pipeline.estimator' not in sys.modules; "
            "from pipeline import TabularMLPRegressor; "
            "assert 'pipeline.estimator' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
