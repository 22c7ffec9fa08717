"""TabularMLPRegressor: the pipeline's MLP as a scikit-learn regressor on raw DataFrames.

It runs the stages' own code on the rows it is given: the column kinds inferred as `prepare`
infers them (pipeline.data.schema), the values typed as the stages type them
(pipeline.data.validate), the preprocessing built by pipeline.features and fitted on those
rows only, the batched trainer (pipeline.nn.train), and the final model's predict path
(pipeline.final, pipeline.ensemble). As a scikit-learn estimator it is refitted on each
fold's training rows inside `cross_val_score`, `GridSearchCV` or `StackingRegressor`, so no
statistic of a validation row reaches the model that predicts it.

Its parameters are the `model:` and `features:` keys of params.yaml that apply to one model
(their defaults are those of the declared config, not House Prices' tuned values), plus the
target scale and column kinds of `data:`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import Tags, check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y, validate_data

from pipeline.config import DataConfig, FeaturesConfig, ModelConfig
from pipeline.config.errors import validate
from pipeline.cv import model_target
from pipeline.data.schema import Schema, infer_schema
from pipeline.data.validate import coerce
from pipeline.ensemble import FinalModel
from pipeline.features import build_preprocessor, code_levels, stack_transforms
from pipeline.final import mlp_member
from pipeline.nn.train import fit_mlps
from pipeline.plan import resolve_model

# The schema needs an id and a target column; the estimator adds both to the frame it is
# given, under names no competition uses, and never makes features of them
ROW_ID = "__row_id__"
TARGET = "__target__"
SOURCE = "X"  # how errors about a value name the frame it came from
_MODEL = ModelConfig()
_FEATURES = FeaturesConfig()
MODEL_PARAMS = ("depth", "width", "dropout", "activation", "linear_skip",
                "clip_to_target_range", "epochs", "batch_size", "lr", "weight_decay",
                "input_l1", "lr_schedule")
FEATURE_PARAMS = ("numeric_scaling", "numeric_impute", "log1p_skew_threshold",
                  "clip_to_fit_range", "min_category_count", "add_missing_indicators")


class TabularMLPRegressor(RegressorMixin, BaseEstimator):
    """The pipeline's MLP on a raw frame: numbers, text categories and missing values as they
    come; `log_target=True` models log(y) (RMSE of logs, House Prices' metric), `"log1p"`
    log(1 + y). `n_seeds` models are trained at once and averaged. Text columns are
    categories; `column_types` and `ordinal_levels` set kinds as `data:` does in params.yaml.
    `epochs`, `batch_size` and `lr` default to "auto": sized from the rows by the plan's rule
    (docs/sizing.md) without a time budget.

    Fitted attributes: `schema_` (the column kinds it inferred), `model_` (the fitted
    preprocessing and MLPs, as a final model of the stages), `history_` (train RMSE per
    epoch checkpoint, on the model scale), `n_features_in_`, `feature_names_in_`.
    """

    def __init__(self, *, depth: int = _MODEL.depth, width: int = _MODEL.width,
                 dropout: float = _MODEL.dropout, activation: str = _MODEL.activation,
                 linear_skip: bool = _MODEL.linear_skip,
                 clip_to_target_range: bool = _MODEL.clip_to_target_range,
                 epochs: int | str = _MODEL.epochs, batch_size: int | str = _MODEL.batch_size,
                 lr: float | str = _MODEL.lr, weight_decay: float = _MODEL.weight_decay,
                 input_l1: float = _MODEL.input_l1, lr_schedule: str = _MODEL.lr_schedule,
                 n_seeds: int = 1, log_target: bool | str = False,
                 column_types: dict[str, str] | None = None,
                 ordinal_levels: dict[str, list[str]] | None = None,
                 numeric_scaling: str = _FEATURES.numeric_scaling,
                 numeric_impute: str = _FEATURES.numeric_impute,
                 log1p_skew_threshold: float | None = _FEATURES.log1p_skew_threshold,
                 clip_to_fit_range: bool = _FEATURES.clip_to_fit_range,
                 min_category_count: int = _FEATURES.min_category_count,
                 add_missing_indicators: bool = _FEATURES.add_missing_indicators,
                 random_state: int | None = 0) -> None:
        self.depth = depth
        self.width = width
        self.dropout = dropout
        self.activation = activation
        self.linear_skip = linear_skip
        self.clip_to_target_range = clip_to_target_range
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.input_l1 = input_l1
        self.lr_schedule = lr_schedule
        self.n_seeds = n_seeds
        self.log_target = log_target
        self.column_types = column_types
        self.ordinal_levels = ordinal_levels
        self.numeric_scaling = numeric_scaling
        self.numeric_impute = numeric_impute
        self.log1p_skew_threshold = log1p_skew_threshold
        self.clip_to_fit_range = clip_to_fit_range
        self.min_category_count = min_category_count
        self.add_missing_indicators = add_missing_indicators
        self.random_state = random_state

    def fit(self, X: pd.DataFrame | np.ndarray, y: pd.Series | np.ndarray) -> TabularMLPRegressor:
        """Infer the column kinds, fit the preprocessing and train the MLPs on these rows."""
        frame = self._frame(X, reset=True)
        _, y = check_X_y(X, y, dtype=None, ensure_all_finite=False, y_numeric=True,
                         estimator=self)
        y = np.asarray(y, dtype=np.float64)
        data_cfg = self._data_config()
        bad, rule = data_cfg.log_target.invalid(y)
        if bad.any():
            raise ValueError(f"y must be {rule} for log_target={self.log_target!r}, got "
                             f"{y[bad][0]} (row {int(np.flatnonzero(bad)[0])})")
        unknown = sorted(set(data_cfg.column_types) - set(frame.columns))
        if unknown:
            raise ValueError(f"column_types names columns X does not have: {unknown}")
        frame = frame.assign(**{ROW_ID: np.arange(len(frame)), TARGET: y})
        self.schema_: Schema = infer_schema(frame, data_cfg, "integer")
        typed = coerce(frame, self.schema_, SOURCE)
        target = model_target(typed, self.schema_)
        preprocessor = build_preprocessor(self.schema_, self._features_config(),
                                          0 if self.random_state is None else self.random_state)
        fitted = preprocessor.fit_transform(typed, target)  # cross-fitted target encodings
        x = stack_transforms([preprocessor], typed)
        x[0, :, : fitted.shape[1]] = fitted
        seed = check_random_state(self.random_state).randint(2**31 - 1) \
            if self.random_state is None else self.random_state
        trained = fit_mlps(torch.from_numpy(x), torch.as_tensor(target, dtype=torch.float64),
                           [np.arange(len(typed))] * self.n_seeds, None,
                           resolve_model(self._model_config(), len(typed)), seed,
                           code_levels=code_levels(preprocessor))
        self.model_ = FinalModel(self.schema_, self.schema_.scale,
                                 {"mlp": ([preprocessor], x.shape[2])},
                                 {"mlp": ("mlp", mlp_member([trained]))}, {"mlp": 1.0})
        self.history_ = pd.DataFrame({"epoch": trained.history["epoch"],
                                      "train_rmse": trained.history["train_rmse"].mean(axis=1)})
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predictions on y's scale (exp of the modelled log for `log_target=True`)."""
        check_is_fitted(self, "model_")
        frame = self._frame(X, reset=False)
        return self.model_.predict_frame(frame.assign(**{ROW_ID: np.arange(len(frame))}),
                                         source=SOURCE)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # imputed, as in the stages
        tags.input_tags.string = True  # text columns are categories
        return tags

    def _frame(self, X: pd.DataFrame | np.ndarray, reset: bool) -> pd.DataFrame:
        """X as a frame with string column names (x0, x1, ... for an array), checked against
        what fit saw: the same number of columns, and the same names for a frame."""
        if sp.issparse(X):
            raise TypeError("sparse input is not supported: pass a DataFrame or a dense array")
        values = check_array(X, dtype=None, ensure_all_finite=False)  # 2-D, rows, no complex
        validate_data(self, X, reset=reset, skip_check_array=True)  # the columns fit saw
        if isinstance(X, pd.DataFrame):
            frame = X.reset_index(drop=True)
            frame.columns = [str(c) for c in frame.columns]
            return frame
        return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])

    def _data_config(self) -> DataConfig:
        return validate(DataConfig, {"id_column": ROW_ID, "target": TARGET,
                                     "id_type": "integer", "log_target": self.log_target,
                                     "column_types": self.column_types or {},
                                     "ordinal_levels": self.ordinal_levels or {}}, "")

    def _model_config(self) -> ModelConfig:
        return _MODEL.replace({name: getattr(self, name) for name in MODEL_PARAMS})

    def _features_config(self) -> FeaturesConfig:
        return _FEATURES.replace({name: getattr(self, name) for name in FEATURE_PARAMS})

