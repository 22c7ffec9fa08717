"""The unfitted preprocessing: domain features, then impute/scale/one-hot per column kind.

Everything here is a scikit-learn estimator, fitted inside each fold on that fold's training
rows only. Nothing names a competition's columns: those come from params (`features:` and
`data.column_types`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import skew
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.utils.validation import check_is_fitted

from pipeline.config import Bound, FeaturesConfig
from pipeline.data.errors import DataError
from pipeline.data.schema import Schema
from pipeline.data.validate import typed_column
from pipeline.level_codes import LevelCodes, mapped, suffixed

NONE_LABEL = "None"
# What a datetime column becomes: calendar parts (seasonality) and elapsed days (trend).
# Parts constant on a fold's fitting rows (the hour of a date-only column) are left out.
DATETIME_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour", "elapsed_days")
# The text of a datetime column's calendar levels (Schema.calendar_levels), read as categories.
CALENDAR_FORMATS = {"date": "%Y-%m-%d", "stamp": "%Y-%m-%d %H:%M:%S"}
EPOCH = pd.Timestamp("1970-01-01")


class DomainFeatures(TransformerMixin, BaseEstimator):
    """Turn typed raw columns into model-ready numeric and categorical columns.

    - columns in `fill_none`: a missing value means "none" (no pool, no garage): the label
      "None" for text columns, 0 for numbers; other missing values stay missing;
    - ordinal columns become their position in the given order;
    - datetime columns become year, month, day, day of week, day of year, hour and days
      since 1970 (a trend), minus the parts constant on the fitting rows, and their calendar
      levels in the schema (the date, the stamp) become categorical text;
    - `derived` columns are linear combinations of numeric columns (total area, age, ...);
    - `products` columns multiply numeric columns (quality x area), `indicators` are 1 where a
      numeric column is above 0 (has a pool, has a second floor);
    - `group_impute` fills a numeric column with its median within a group (fitted).
    """

    def __init__(self, schema: Schema, fill_none: tuple[str, ...] = (),
                 derived: dict[str, dict[str, float]] | None = None,
                 group_impute: dict[str, str] | None = None,
                 products: dict[str, tuple[str, ...]] | None = None,
                 indicators: dict[str, str] | None = None) -> None:
        self.schema = schema
        self.fill_none = fill_none
        self.derived = derived
        self.products = products
        self.indicators = indicators
        self.group_impute = group_impute

    def fit(self, frame: pd.DataFrame, y: object = None) -> DomainFeatures:
        base = self._stateless(frame)
        self.datetime_parts_ = {
            column: [part for part in DATETIME_PARTS
                     if base[f"{column}_{part}"].nunique(dropna=True) > 1]
            for column in self.schema.of_kind("datetime")
        }
        self.group_medians_ = {}
        for column, group in (self.group_impute or {}).items():
            self.group_medians_[column] = (
                base.groupby(group, dropna=False)[column].median().to_dict(),
                float(base[column].median()),
            )
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "group_medians_")
        out = self._stateless(frame)
        for column, parts in self.datetime_parts_.items():
            unused = [f"{column}_{part}" for part in DATETIME_PARTS if part not in parts]
            out = out.drop(columns=unused)
        for column, (medians, overall) in self.group_medians_.items():
            fill = out[self.group_impute[column]].map(medians).astype("float64")
            out[column] = out[column].fillna(fill).fillna(overall)
        for name, terms in (self.derived or {}).items():
            out[name] = sum(coef * out[col] for col, coef in terms.items())
        for name, factors in (self.products or {}).items():
            out[name] = np.prod([out[col].to_numpy(dtype=np.float64) for col in factors], axis=0)
        for name, column in (self.indicators or {}).items():
            values = out[column].to_numpy(dtype=np.float64)
            out[name] = np.where(np.isnan(values), np.nan, (values > 0).astype(np.float64))
        return out

    def _stateless(self, frame: pd.DataFrame) -> pd.DataFrame:
        schema = self.schema
        out = frame[list(schema.columns)].copy()
        if schema.id_column in schema.columns:  # the id doubles as a feature (a timestamp)
            out[schema.id_column] = typed_column(out[schema.id_column], schema,
                                                 schema.id_column)
        for column in self.fill_none:
            if schema.columns[column] == "numeric":
                out[column] = out[column].fillna(0.0)
            else:
                out[column] = out[column].fillna(NONE_LABEL)
        for column in schema.of_kind("ordinal"):
            levels = {level: float(i) for i, level in enumerate(schema.ordinal_levels[column])}
            out[column] = out[column].map(levels).astype("float64")
        for column in schema.of_kind("datetime"):
            stamps = pd.to_datetime(out.pop(column))
            for part in DATETIME_PARTS:
                if part == "elapsed_days":
                    values = (stamps - EPOCH) / pd.Timedelta(days=1)
                else:
                    values = getattr(stamps.dt, part)
                out[f"{column}_{part}"] = values.astype("float64")
            for level in schema.calendar_levels.get(column, ()):
                out[f"{column}_{level}"] = stamps.dt.strftime(CALENDAR_FORMATS[level])
        return out


class ClipToFitRange(TransformerMixin, BaseEstimator):
    """Clip each column to the range seen in the fitting rows, so the model never extrapolates
    from values beyond anything it was trained on (a 5600 sq ft house in a fold that has seen
    at most 4500 is scored as a 4500 sq ft house)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def fit(self, x: np.ndarray, y: object = None) -> ClipToFitRange:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            self.low_ = np.nanmin(x, axis=0) if len(x) else np.zeros(x.shape[1])
            self.high_ = np.nanmax(x, axis=0) if len(x) else np.zeros(x.shape[1])
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "low_")
        x = np.asarray(x, dtype=np.float64)
        return np.clip(x, self.low_, self.high_) if self.enabled else x

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


class SkewedLog1p(TransformerMixin, BaseEstimator):
    """log1p of the non-negative columns whose training skewness exceeds a threshold."""

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold

    def fit(self, x: np.ndarray, y: object = None) -> SkewedLog1p:
        x = np.asarray(x, dtype=np.float64)
        if self.threshold is None or len(x) < 3:
            self.columns_ = np.zeros(x.shape[1], dtype=bool)
        else:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                # a constant column (all missing, or one value) has no skewness: it stays as is
                warnings.simplefilter("ignore", RuntimeWarning)
                col_skew = np.nan_to_num(skew(x, axis=0, nan_policy="omit"))
            self.columns_ = (np.nanmin(x, axis=0) >= 0) & (np.abs(col_skew) > self.threshold)
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "columns_")
        x = np.array(x, dtype=np.float64)
        x[:, self.columns_] = np.log1p(np.clip(x[:, self.columns_], 0, None))
        return x

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def build_preprocessor(schema: Schema, cfg: FeaturesConfig, seed: int = 0,
                       wide: tuple[str, ...] | None = None) -> Pipeline:
    """The unfitted preprocessing for one fold: domain features -> per-kind column transforms.

    Numbers: imputed, optionally clipped to the fitting rows' range, log1p'd when skewed,
    standardized. Categories: missing becomes its own label, then one-hot 0/1 (never
    standardized) of at most `max_onehot_levels` levels; categories unseen in the fold's
    training rows, rarer than `min_category_count` or beyond the most frequent levels, map to
    all-zeros / the infrequent column. A column with more levels than that also gets its
    level's frequency and cross-fitted mean target (`wide_encodings`), standardized: fit the
    preprocessor with `fit_transform(rows, y)` to get the fitting rows' own encodings.
    With `wide_categories: embedding`, a wide column is not one-hot encoded but read as level
    codes (`pipeline.level_codes`), in leading columns: `code_levels(fitted)` says how many
    and of how many codes. `wide` names the wide columns (the same in every fold, see
    `wide_columns`); by default each fit decides from its own rows.
    """
    is_wide = WideCategories(cfg.max_onehot_levels, columns=wide)
    embedded = cfg.wide_categories == "embedding"
    numeric = make_pipeline(
        SimpleImputer(strategy=cfg.numeric_impute, add_indicator=cfg.add_missing_indicators,
                      keep_empty_features=True),
        ClipToFitRange(cfg.clip_to_fit_range),
        SkewedLog1p(cfg.log1p_skew_threshold),
        _scaler(cfg.numeric_scaling),
    )
    categorical = make_pipeline(
        _missing_as_level(),
        OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=cfg.min_category_count if cfg.min_category_count > 1 else None,
            max_categories=cfg.max_onehot_levels + 1,  # + the "infrequent" column
            sparse_output=False,
            dtype=np.float32,
        ),
    )
    parts = [
        ("numeric", numeric, make_column_selector(dtype_include="number")),
        ("categorical", categorical, (is_wide.narrow() if embedded
                                      else make_column_selector(dtype_exclude="number"))),
    ]
    if embedded:
        parts.insert(0, ("codes", make_pipeline(_missing_as_level(),
                                                LevelCodes(cfg.min_embedded_count)), is_wide))
    if cfg.wide_encodings:
        parts.append(("wide", _wide_encodings(cfg.wide_encodings, seed), is_wide))
    columns = ColumnTransformer(parts, sparse_threshold=0.0)
    return Pipeline([("domain", _domain(schema, cfg)), ("columns", columns)])


def wide_columns(train: pd.DataFrame, schema: Schema, cfg: FeaturesConfig) -> tuple[str, ...]:
    """The categorical columns (after the domain features) with more than max_onehot_levels
    distinct values in all training rows: what every fold reads as level codes."""
    frame = _domain(schema, cfg).fit(train).transform(train)
    return tuple(WideCategories(cfg.max_onehot_levels)(frame))


def code_levels(preprocessor: Pipeline) -> list[int]:
    """A fitted `build_preprocessor`'s leading level-code columns: each one's number of codes
    (empty without `wide_categories: embedding` or without wide columns)."""
    name, transformer, columns = preprocessor.named_steps["columns"].transformers_[0]
    if name != "codes" or not len(columns):
        return []
    return list(transformer.named_steps["levelcodes"].levels_)


def build_tree_preprocessor(schema: Schema, cfg: FeaturesConfig, seed: int = 0) -> Pipeline:
    """The unfitted preprocessing of a tree model for one fold: the same domain features,
    then every categorical column of at most `max_onehot_levels` levels as an integer code
    (first, in the order of the frame's columns; missing is its own level, levels rarer than
    `min_category_count` share one code, levels unseen in the fold's fitting rows are -1,
    which LightGBM reads as missing), then a wide column's `wide_encodings` as the MLP gets
    them (cross-fitted: fit with `fit_transform(rows, y)`; its thousands of levels as codes
    let the trees fit noise), then every numeric column as it is (missing stays NaN: trees
    split on it). No scaling, no one-hot: a tree model splits a category's levels natively.
    `n_categorical(fitted)` says how many leading columns are codes."""
    categorical = make_pipeline(
        _missing_as_level(),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                       min_frequency=cfg.min_category_count if cfg.min_category_count > 1
                       else None, dtype=np.float64),
    )
    numeric = FunctionTransformer(_as_float, feature_names_out="one-to-one")
    parts = [("categorical", categorical, WideCategories(cfg.max_onehot_levels, wide=False))]
    if cfg.wide_encodings:
        parts.append(("wide", _wide_encodings(cfg.wide_encodings, seed),
                      WideCategories(cfg.max_onehot_levels)))
    parts.append(("numeric", numeric, make_column_selector(dtype_include="number")))
    columns = ColumnTransformer(parts, sparse_threshold=0.0)
    return Pipeline([("domain", _domain(schema, cfg)), ("columns", columns)])


def _missing_as_level() -> SimpleImputer:
    """A category's missing values as a level of its own."""
    return SimpleImputer(strategy="constant", fill_value="missing", keep_empty_features=True)


def _domain(schema: Schema, cfg: FeaturesConfig) -> DomainFeatures:
    """The domain features both views start from."""
    return DomainFeatures(schema, cfg.fill_none, dict(cfg.derived), dict(cfg.group_impute),
                          dict(cfg.products), dict(cfg.indicators))


def _as_float(x: pd.DataFrame | np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def n_categorical(preprocessor: Pipeline) -> int:
    """The leading code columns of a fitted `build_tree_preprocessor`."""
    name, _, columns = preprocessor.named_steps["columns"].transformers_[0]
    return len(columns) if name == "categorical" else 0


class WideCategories:
    """Column selector: the categorical columns with more than `max_levels` distinct values
    in the rows the preprocessor is fitted on, or those of `columns` (decided once on all
    training rows, `wide_columns`, so every fold reads the same ones); `wide=False`: the
    other categorical columns."""

    def __init__(self, max_levels: int, wide: bool = True,
                 columns: tuple[str, ...] | None = None) -> None:
        self.max_levels, self.wide, self.columns = max_levels, wide, columns

    def narrow(self) -> WideCategories:
        """The selector of the other categorical columns."""
        return WideCategories(self.max_levels, not self.wide, self.columns)

    def __call__(self, frame: pd.DataFrame) -> list[str]:
        text = frame.select_dtypes(exclude="number")
        if self.columns is not None:
            return [c for c in text.columns if (c in self.columns) == self.wide]
        return [c for c in text.columns
                if (text[c].nunique(dropna=False) > self.max_levels) == self.wide]


class FrequencyEncoder(TransformerMixin, BaseEstimator):
    """Each level's share of the fitting rows, as log(share); unseen levels get the share of
    one row."""

    def fit(self, x: pd.DataFrame | np.ndarray, y: object = None) -> FrequencyEncoder:
        frame = pd.DataFrame(x)
        self.n_rows_ = len(frame)
        self.counts_ = [frame[c].value_counts(dropna=False).to_dict() for c in frame.columns]
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "counts_")
        return np.log(mapped(pd.DataFrame(x), self.counts_, 1) / max(self.n_rows_, 1))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return suffixed(input_features, self.n_features_in_, "frequency")


def _wide_encodings(kinds: tuple[str, ...], seed: int) -> Pipeline:
    encoders = []
    if "frequency" in kinds:
        encoders.append(("frequency", FrequencyEncoder()))
    if "target" in kinds:
        encoders.append(("target", TargetEncoder(
            target_type="continuous", cv=KFold(5, shuffle=True, random_state=seed))))
    return make_pipeline(
        _missing_as_level(),
        FeatureUnion(encoders), StandardScaler())


def _scaler(kind: str) -> TransformerMixin:
    """standard: zero mean, unit variance. quantile: each column's empirical distribution
    mapped onto a standard normal (rank-Gauss), which bounds extreme values by construction.
    robust: centred on the median, divided by the interquartile range, smoothly clipped
    (RealMLP's)."""
    if kind == "quantile":
        return RankGauss(n_quantiles=1000, output_distribution="normal", subsample=None)
    if kind == "robust":
        return RobustSmoothClip()
    return StandardScaler()


class RobustSmoothClip(TransformerMixin, BaseEstimator):
    """RealMLP's numeric scaling: (x - median) / IQR (half the range where the IQR is 0, and
    0 for a constant column), then the smooth clip x / sqrt(1 + x^2 / max_abs^2), which
    leaves the bulk of a column as it is and bends its tails towards +-max_abs."""

    def __init__(self, max_abs: float = 3.0) -> None:
        self.max_abs = max_abs

    def fit(self, x: np.ndarray, y: object = None) -> RobustSmoothClip:
        x = np.asarray(x, dtype=np.float64)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
            self.center_ = np.nan_to_num(np.nanmedian(x, axis=0))
            q25, q75 = np.nanpercentile(x, [25, 75], axis=0)
            spread = np.nan_to_num(q75 - q25)
            half_range = np.nan_to_num(0.5 * (np.nanmax(x, axis=0) - np.nanmin(x, axis=0)))
        spread = np.where(spread > 0, spread, half_range)
        self.factor_ = np.where(spread > 0, 1.0 / np.where(spread > 0, spread, 1.0), 0.0)
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "factor_")
        scaled = (np.asarray(x, dtype=np.float64) - self.center_) * self.factor_
        return scaled / np.sqrt(1 + (scaled / self.max_abs) ** 2)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


class RankGauss(QuantileTransformer):
    """QuantileTransformer onto a normal, quietly using one quantile per row when a fold has
    fewer rows than quantiles: scikit-learn does exactly that, and warns on every fold fit."""

    def fit(self, X: np.ndarray, y: object = None) -> RankGauss:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"n_quantiles \(\d+\) is greater than",
                                    category=UserWarning)
            return super().fit(X, y)


def stack_transforms(preprocessors: list[Pipeline], frame: pd.DataFrame,
                     width: int | None = None) -> np.ndarray:
    """Each fitted preprocessor's view of `frame`, zero-padded to `width` (default: the
    widest): [K, rows, width] float32, one matrix per fold."""
    matrices = [p.transform(frame) for p in preprocessors]
    width = width or max(m.shape[1] for m in matrices)
    out = np.zeros((len(matrices), len(frame), width), dtype=np.float32)
    for k, m in enumerate(matrices):
        out[k, :, : m.shape[1]] = m
    return out


def excluded_from_fit(frame: pd.DataFrame, rules: tuple[dict[str, Bound], ...]) -> np.ndarray:
    """Boolean mask of training rows that match every bound of at least one rule."""
    excluded = np.zeros(len(frame), dtype=bool)
    for rule in rules:
        match = np.ones(len(frame), dtype=bool)
        for column, bound in rule.items():
            values = frame[column].to_numpy(dtype=np.float64)
            if bound.greater_than is not None:
                match &= values > bound.greater_than
            if bound.less_than is not None:
                match &= values < bound.less_than
        excluded |= match
    return excluded


# The column kinds each rule reads (ordinal columns are numbers once DomainFeatures maps them).
NUMBERS = ("numeric", "ordinal")
FILLABLE = ("numeric", "ordinal", "categorical")


def datetime_part_names(schema: Schema) -> dict[str, list[tuple[str, str]]]:
    """Each name a datetime column's parts take -> the (datetime column, part) pairs making it
    (more than one pair: two datetime columns' parts share the name)."""
    names: dict[str, list[tuple[str, str]]] = {}
    for column in schema.of_kind("datetime"):
        for part in (*DATETIME_PARTS, *schema.calendar_levels.get(column, ())):
            names.setdefault(f"{column}_{part}", []).append((column, part))
    return names


def check_datetime_parts(schema: Schema, path: str | Path) -> None:
    """Raise DataError if a datetime column's parts would take the name of another column of
    the data (a raw `day_month` beside a datetime `day` would be overwritten by its month)."""
    fix = ("rename the column, drop it with data.drop_columns, or declare {} another kind "
           "in data.column_types")
    for name, makers in datetime_part_names(schema).items():
        (column, part), *others = makers
        if name in schema.columns:
            raise DataError(path, f"the datetime column {column!r} becomes features named "
                            f"{column}_<part>, and its {_spoken(part)} {name!r} would "
                            f"overwrite this column: {fix.format(repr(column))}", name)
        if others:
            other, other_part = others[0]
            raise DataError(path, f"its {_spoken(other_part)} and the {_spoken(part)} of the "
                            f"datetime column {column!r} would both be the feature {name!r}, "
                            f"one overwriting the other: {fix.format('one of them')}", other)


def validate_feature_config(schema: Schema, cfg: FeaturesConfig) -> None:
    """Raise ValueError naming the params key when a rule names a column the data does not
    have, the target where a feature is read, a column of the wrong kind, or makes a column
    whose name is taken (it would overwrite that column)."""
    for column in cfg.fill_none:
        _check_kind("features.fill_none", column, schema, FILLABLE)
    for column, group in cfg.group_impute.items():
        _check_kind("features.group_impute", column, schema, ("numeric",))
        _check_kind(f"features.group_impute.{column}", group, schema, FILLABLE)
        if group == column:
            raise ValueError(f"features.group_impute.{column}: groups {column!r} by itself")
    for name, terms in cfg.derived.items():
        for column in terms:
            _check_kind(f"features.derived.{name}", column, schema, NUMBERS)
    for name, factors in cfg.products.items():
        for column in factors:
            _check_kind(f"features.products.{name}", column, schema, NUMBERS)
    for name, column in cfg.indicators.items():
        _check_kind(f"features.indicators.{name}", column, schema, NUMBERS)
    for rule in cfg.fit_exclude:  # bounds compare numbers, on the raw scale; the target too
        for column in rule:
            _check_kind("features.fit_exclude", column, schema, ("numeric",), target=True)
    _check_new_names(schema, cfg)


def _check_kind(key: str, column: str, schema: Schema, kinds: tuple[str, ...],
                target: bool = False) -> None:
    if column == schema.target and not target:
        raise ValueError(f"{key}: column {column!r} is the target: features cannot be made "
                         "from what the model predicts")
    if column == schema.target:
        return
    if column not in schema.columns:
        dropped = " (data.drop_columns drops it)" if column in schema.dropped else ""
        raise ValueError(f"{key}: column {column!r} is not a feature column of the "
                         f"data{dropped}")
    kind = schema.columns[column]
    if kind not in kinds:
        allowed = ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
        raise ValueError(f"{key}: column {column!r} is {kind}, not {allowed}")


def _check_new_names(schema: Schema, cfg: FeaturesConfig) -> None:
    """Every name derived/products/indicators make is free: not a column of the data, not
    the id or the target, not a datetime part, not made twice."""
    parts = datetime_part_names(schema)
    made: dict[str, str] = {}
    for rule in ("derived", "products", "indicators"):
        for name in getattr(cfg, rule):
            key = f"features.{rule}.{name}"
            if name in schema.columns:
                taken = "a feature column of the data"
            elif name == schema.id_column:
                taken = "the id column"
            elif name == schema.target:
                taken = "the target"
            elif name in parts:
                column, part = parts[name][0]
                taken = f"the {_spoken(part)} of the datetime column {column!r}"
            elif name in made:
                taken = f"also made by {made[name]}"
            else:
                made[name] = key
                continue
            raise ValueError(f"{key}: {name!r} is {taken}: choose a name no column has")


def _spoken(part: str) -> str:
    return part.replace("_", " ")
