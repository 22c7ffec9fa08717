"""The reference models the MLP is compared with, cross-validated on the same folds and
features; their fitted fold models can be blended into the final model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Lasso
from sklearn.utils.validation import check_is_fitted

from pipeline.config import ReferenceConfig
from pipeline.config.fields import AUTO
from pipeline.cv import FoldFeatures, FoldSetup, cross_validate_estimator, oof_id_column
from pipeline.ensemble import EstimatorMember
from pipeline.metrics import rmse

AVERAGE = "reference_average"  # the references' equal-weight average, scored beside them


@dataclass
class References:
    """The reference models cross-validated on the MLP's folds: scores, OOF predictions, and
    the fitted fold models with the preprocessing they read (to blend them into the final
    model without training them twice)."""

    scores: dict[str, dict]
    oof: dict[str, np.ndarray]
    members: dict[str, EstimatorMember]
    views: dict[str, tuple[list, int]]  # view name -> (fold preprocessors, matrix width)
    member_views: dict[str, str]  # member -> the view it reads

    def view_of(self, member: str) -> tuple[str, tuple[list, int]]:
        """The view a member reads, by its name in a final model and as it is kept."""
        name = self.member_views[member]
        return f"reference_{name}", self.views[name]


def linear_reference(cfg: ReferenceConfig) -> RegressorMixin:
    """A regularised linear model (Lasso) on the preprocessed features, by coordinate descent
    on the Gram matrix: its cost per pass follows the columns, not the rows, so many rows stay
    cheap; the one-hot cap keeps the columns few enough for it."""
    return ScaledLasso(alpha=cfg.linear_alpha, max_iter=50_000, tol=1e-4, precompute=True)


class ScaledLasso(Lasso):
    """scikit-learn's Lasso, fitted on the target divided by a power of two near its spread
    (and `alpha` likewise), then scaled back: the same model to the bit, but float32
    features no longer make it square a huge target in float32 (a target of 1e20 overflowed
    its tolerance and every coefficient stayed 0)."""

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
            check_input: bool = True) -> ScaledLasso:
        y = np.asarray(y, dtype=np.float64)
        spread = float(np.std(y))
        scale = 2.0 ** round(np.log2(spread)) if spread > 0 else 1.0
        inner = Lasso(**{**self.get_params(), "alpha": self.alpha / scale})
        inner.fit(X, y / scale, sample_weight=sample_weight, check_input=check_input)
        self.coef_ = inner.coef_ * scale
        self.intercept_ = inner.intercept_ * scale
        self.n_iter_, self.dual_gap_ = inner.n_iter_, float(inner.dual_gap_) * scale ** 2
        self.n_features_in_ = inner.n_features_in_
        return self


class EarlyStoppedGBM(RegressorMixin, BaseEstimator):
    """LightGBM boosted until a held-out share of the fitting rows stops improving for
    `early_stopping_rounds` rounds, or `max_rounds`; with `refit`, boosted again on every
    fitting row for the rounds found / (1 - share) (the held-out rows are data too; on small
    data they are a tenth of what it learns from). Deterministic: the clock decides nothing
    unless `time_limit` (a safety net, in seconds for the whole fit) is hit, which cuts the
    boosting short and keeps the searched model without a refit (`capped_` says so)."""

    def __init__(self, learning_rate: float = 0.03, num_leaves: int = 15,
                 min_child_samples: int = 10, feature_fraction: float = 0.5,
                 lambda_l2: float = 1.0, max_rounds: int = 10_000,
                 early_stopping_rounds: int = 200, validation_share: float = 0.1,
                 time_limit: float | None = None, threads: int = 0, seed: int = 0,
                 refit: bool = True, n_categorical: int = 0) -> None:
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.lambda_l2 = lambda_l2
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_share = validation_share
        self.time_limit = time_limit
        self.threads = threads
        self.seed = seed
        self.refit = refit
        self.n_categorical = n_categorical

    def booster_params(self) -> dict:
        """LightGBM's parameters for this model (the plan times a round with them)."""
        return {"objective": "regression", "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "feature_fraction": self.feature_fraction, "lambda_l2": self.lambda_l2,
                "num_threads": self.threads, "seed": self.seed, "deterministic": True,
                "force_row_wise": True, "verbosity": -1}

    def dataset(self, x: np.ndarray, y: np.ndarray, **kwargs) -> lgb.Dataset:
        """LightGBM's data set of these rows, the first `n_categorical` columns categorical
        (integer codes; negative is missing)."""
        categorical = list(range(self.n_categorical)) if self.n_categorical else "auto"
        return lgb.Dataset(x, y, categorical_feature=categorical, **kwargs)

    def fit(self, x: np.ndarray, y: np.ndarray) -> EarlyStoppedGBM:
        params = self.booster_params()
        self.n_features_in_ = x.shape[1]
        self.capped_ = False
        if len(y) < 2:  # a fold of one fitting row: nothing to hold out, no tree can split,
            self.booster_ = lgb.train(params, self.dataset(x, y), 1)  # the model is its value
            self.n_rounds_ = 1
            return self
        rng = np.random.default_rng(self.seed)
        held = rng.random(len(y)) < self.validation_share
        if held.all() or not held.any():
            held = np.zeros(len(y), dtype=bool)
            held[rng.choice(len(y), size=max(1, len(y) // 10), replace=False)] = True
        deadline = None if self.time_limit is None else time.monotonic() + self.time_limit
        fit_set = self.dataset(x[~held], y[~held], free_raw_data=True)
        held_set = self.dataset(x[held], y[held], reference=fit_set)
        search = _Stopper(self.early_stopping_rounds, deadline)
        self.booster_ = lgb.train(params, fit_set, self.max_rounds, valid_sets=[held_set],
                                  callbacks=[search])
        self.n_rounds_ = self.booster_.best_iteration or self.booster_.current_iteration()
        self.capped_ = search.out_of_time
        if self.refit and not self.capped_:
            rounds = max(1, round(self.n_rounds_ / (1 - held.mean())))
            refit = _Stopper(None, deadline)
            booster = lgb.train(params, self.dataset(x, y), rounds, callbacks=[refit])
            if refit.out_of_time:  # a refit cut short would be weaker than the search's model
                self.capped_ = True
            else:
                self.booster_, self.n_rounds_ = booster, rounds
        self.n_features_in_ = x.shape[1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "booster_")
        return self.booster_.predict(x, num_iteration=self.n_rounds_)


class _Stopper:
    """A LightGBM callback ending the boosting at the best round so far once the held-out
    score has not improved for `patience` rounds (None: never), or once the clock passes
    `deadline` (time.monotonic(); `out_of_time` is then set)."""

    order = 30  # where LightGBM's own early stopping runs

    def __init__(self, patience: int | None, deadline: float | None) -> None:
        self.patience, self.deadline = patience, deadline
        self.best = {"round": 0, "score": float("inf"), "result": []}
        self.out_of_time = False

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        best = self.best
        if env.evaluation_result_list:
            score = env.evaluation_result_list[0][2]
            if score < best["score"]:
                best.update(round=env.iteration, score=score,
                            result=env.evaluation_result_list)
        else:  # nothing held out: every round is the best so far
            best.update(round=env.iteration)
        self.out_of_time = self.deadline is not None and time.monotonic() > self.deadline
        patience_out = self.patience is not None and env.iteration - best["round"] >= \
            self.patience
        if self.out_of_time or patience_out:
            raise lgb.callback.EarlyStopException(best["round"], best["result"])


def gbm_reference(cfg: ReferenceConfig, seed: int, time_limit: float | None = None,
                  threads: int = 0, n_categorical: int = 0) -> RegressorMixin:
    """Gradient-boosted trees on the preprocessed features (the first `n_categorical`
    columns category codes); `time_limit` seconds per fit. Its "auto" leaves and rate are
    the plan's (`Plan.apply`, or `plan.resolve_reference` without one)."""
    if AUTO in (cfg.gbm_learning_rate, cfg.gbm_num_leaves):
        raise ValueError("reference.gbm_learning_rate / gbm_num_leaves is still 'auto': "
                         "resolve it first (Plan.apply, or plan.resolve_reference)")
    return EarlyStoppedGBM(cfg.gbm_learning_rate, cfg.gbm_num_leaves, cfg.gbm_min_child_samples,
                           cfg.gbm_feature_fraction, cfg.gbm_lambda_l2, cfg.gbm_max_rounds,
                           cfg.gbm_early_stopping_rounds, cfg.gbm_validation_share, time_limit,
                           threads, seed, cfg.gbm_refit, n_categorical)


def reference_models(cfg: ReferenceConfig, seed: int, time_limit: float | None = None,
                     threads: int = 0, n_categorical: int = 0) -> dict[str, RegressorMixin]:
    """The reference models by the name their scores are reported under; the GBM gets
    `time_limit` seconds per fold."""
    return {"linear": linear_reference(cfg),
            "gbm": gbm_reference(cfg, seed, time_limit, threads, n_categorical)}


def score_references(setup: FoldSetup, cfg: ReferenceConfig, seed: int,
                     seconds: float | None = None, threads: int = 0,
                     on_fold: Callable[[str, int], None] | None = None,
                     trees: FoldFeatures | None = None) -> References:
    """Cross-validate the reference models on the MLP's folds and base features (the GBM on
    `trees`, the tree models' view, when given), the GBM cut short (a safety net) past
    `seconds` / folds on a fold; `on_fold(model, fold)` after each fit. `seconds` is kept in
    the fitted models: a planned figure, not a clock reading."""
    y, kept = setup.y, ~setup.folds.excluded
    scores, oof, members = {}, {}, {}
    per_fold = None if seconds is None else seconds / setup.folds.n_folds
    views = {"features": setup.features} | ({"trees": trees} if trees is not None else {})
    member_views = {"linear": "features", "gbm": "trees" if trees is not None else "features"}
    codes = 0 if trees is None else trees.n_categorical
    for name, estimator in reference_models(cfg, seed, per_fold, threads, codes).items():
        report = None if on_fold is None else (lambda k, name=name: on_fold(name, k))
        features = views[member_views[name]]
        result = cross_validate_estimator(features, y, setup.folds, estimator, report)
        scores[name] = {"oof_rmse": result.score, "oof_rmse_fit_rows": result.score_fit_rows,
                        "fold_rmse": result.fold_scores}
        oof[name] = result.oof
        members[name] = EstimatorMember(result.trained)
    average = np.mean(list(oof.values()), axis=0)
    scores[AVERAGE] = {"oof_rmse": rmse(y, average),
                       "oof_rmse_fit_rows": rmse(y[kept], average[kept])}
    return References(scores, oof, members, {k: v.view for k, v in views.items()},
                      member_views)


def references_frame(refs: References, ids: pd.Series, y: np.ndarray) -> pd.DataFrame:
    """The references' OOF predictions, one column each, beside the id (its column named by
    `cv.oof_id_column`) and the actual value."""
    return pd.DataFrame({oof_id_column(ids.name): ids.to_numpy(), "actual": y,
                         **{f"predicted_{k}": v for k, v in refs.oof.items()}})

