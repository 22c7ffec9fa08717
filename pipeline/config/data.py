"""The data contract (`data:`) and the preprocessing choices (`features:`)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from pipeline.config.fields import ColumnKind, Finite, Name, Scale, Scaling, Section
from pipeline.metrics import TargetScale


class DataConfig(Section):
    """The data contract: where the competition files are and what their columns mean.

    Nothing here defaults to one competition: the id and target columns are required.
    """

    train: Name = "data/raw/train.csv"
    test: Name = "data/raw/test.csv"
    sample_submission: Name | None = None  # checked against when given; null: none
    id_column: Name  # one value per row, echoed verbatim in the submission
    target: Name  # the column to predict; the submission's value column
    # integer: ids must be whole numbers; text: any unique strings (hashes, codes with leading
    # zeros), kept verbatim; auto: integer if every id in both files is one, else text
    id_type: Literal["auto", "integer", "text"] = "auto"
    # true: model log(target), RMSE of logs; log1p: RMSLE, the target may be 0; false: RMSE
    log_target: Scale = TargetScale.NONE
    drop_columns: tuple[Name, ...] = ()
    column_types: dict[Name, ColumnKind] = {}
    ordinal_levels: dict[Name, tuple[Name, ...]] = {}
    # an empty field is missing; any other text only when declared: na_values in every
    # column but the id (House Prices writes NA), column_na_values in one column on top
    na_values: tuple[Name, ...] = ()
    column_na_values: dict[Name, tuple[Name, ...]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.id_column == self.target:
            raise ValueError("data.id_column and data.target name the same column")
        for key, columns in (("drop_columns", self.drop_columns),
                             ("column_types", self.column_types),
                             ("ordinal_levels", self.ordinal_levels)):
            for column in (self.id_column, self.target):
                if column in columns and (key, column) != ("column_types", self.id_column):
                    raise ValueError(f"data.{key} names {column!r}, the id or target column")
        # an id that carries information (a timestamp, as in Bike Sharing) can also be a feature
        if self.column_types.get(self.id_column, "numeric") not in ("numeric", "datetime"):
            raise ValueError(f"data.column_types.{self.id_column}: the id column can be used "
                             "as a numeric or datetime feature only")
        for column in self.drop_columns:
            if column in self.column_types:
                raise ValueError(f"data.drop_columns and data.column_types both name {column!r}")
            if self.drop_columns.count(column) > 1:
                raise ValueError(f"data.drop_columns names {column!r} twice")
        for column, levels in self.ordinal_levels.items():
            if not levels or len(set(levels)) != len(levels):
                raise ValueError(f"data.ordinal_levels.{column} must list distinct levels")
            if self.column_types.get(column, "ordinal") != "ordinal":
                raise ValueError(f"data.ordinal_levels.{column} is given but "
                                 f"data.column_types says {self.column_types[column]!r}")
        if self.id_column in self.column_na_values:
            raise ValueError(f"data.column_na_values names {self.id_column!r}, the id column: "
                             "an id is never missing text (an id 'NA' is the id 'NA')")
        for column, kind in self.column_types.items():
            if kind == "ordinal" and column not in self.ordinal_levels:
                raise ValueError(f"data.column_types.{column} is 'ordinal' but "
                                 "data.ordinal_levels has no order for it")
        return self


class Bound(Section):
    """An open interval test on one column, used by features.fit_exclude."""

    greater_than: Finite | None = None
    less_than: Finite | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Self:
        if self.greater_than is None and self.less_than is None:
            raise ValueError("a fit_exclude bound needs greater_than and/or less_than")
        if None not in (self.greater_than, self.less_than) and \
                self.greater_than >= self.less_than:
            raise ValueError(f"greater_than {self.greater_than} and less_than "
                             f"{self.less_than} match no value")
        return self


class FeaturesConfig(Section):
    """Preprocessing choices, each fitted inside a fold on its training rows only."""

    fill_none: tuple[Name, ...] = ()  # columns whose missing value means "none" (0 / "None")
    derived: dict[Name, dict[Name, Finite]] = {}  # name -> {column: coefficient}
    products: dict[Name, tuple[Name, ...]] = {}  # name -> [column, column]
    indicators: dict[Name, Name] = {}  # name -> column (1 where column > 0)
    group_impute: dict[Name, Name] = {}  # column -> grouping column
    log1p_skew_threshold: Finite | None = Field(None, ge=0)  # log1p of columns skewed past it
    numeric_impute: Literal["median", "mean"] = "median"
    clip_to_fit_range: StrictBool = False  # clip numbers to the range seen in the fitting rows
    numeric_scaling: Scaling = "standard"  # quantile: rank-Gauss; robust: IQR, smooth clip
    min_category_count: StrictInt = Field(1, ge=1, le=10**9)  # rarer: one "infrequent" column
    # at most this many one-hot columns per categorical column (its most frequent levels, plus
    # one for the rest); a column with more levels also gets per-fold encodings
    max_onehot_levels: StrictInt = Field(32, ge=1, le=100_000)
    # per-fold encodings of such wide columns: the level's frequency, and its mean target
    # (cross-fitted within the fold's fitting rows, so a row never sees its own target)
    wide_encodings: tuple[Literal["frequency", "target"], ...] = ("frequency", "target")
    # how the MLP reads a wide column's levels: embedding, every level seen min_embedded_count
    # times in the fold's fitting rows as a learned vector (model.category_embedding_dim
    # values; rarer levels share one); onehot, its max_onehot_levels most frequent levels
    # one-hot (docs/model.md)
    wide_categories: Literal["onehot", "embedding"] = "embedding"
    min_embedded_count: StrictInt = Field(30, ge=1, le=10**9)
    add_missing_indicators: StrictBool = False
    # training rows matching every bound of a rule are left out of fitting, never of scoring
    fit_exclude: tuple[dict[Name, Bound], ...] = ()

    @field_validator("fit_exclude")
    @classmethod
    def _rules_not_empty(cls, rules: tuple[dict[str, Bound], ...]) -> tuple:
        if any(not rule for rule in rules):
            raise ValueError("an empty rule would exclude every row")
        return rules
