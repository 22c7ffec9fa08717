"""Typed, frozen configuration loaded once from params.yaml; the only YAML reader.

Every section of params.yaml maps to one frozen dataclass. Unknown keys and out-of-range
values are rejected with an error naming the key, so a typo never silently falls back to
a default.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """params.yaml is unreadable, has an unknown key, or a value of the wrong type or range."""


COLUMN_TYPES = ("numeric", "categorical", "ordinal", "datetime")


@dataclass(frozen=True)
class BaseConfig:
    """Settings every stage shares."""

    seed: int = 42
    threads: int = 0  # torch threads per process; 0 = all cores


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """The data contract: where the competition files are and what their columns mean.

    Nothing here defaults to one competition: the id and target columns are required.
    """

    train: str = "data/raw/train.csv"
    test: str = "data/raw/test.csv"
    sample_submission: str | None = None  # checked against when given; null: no sample file
    id_column: str  # one value per row, echoed verbatim in the submission
    target: str  # the column to predict; the submission's value column
    # integer: ids must be whole numbers; text: any unique strings (hashes, codes with leading
    # zeros), kept verbatim; auto: integer if every id in both files is one, else text
    id_type: Literal["auto", "integer", "text"] = "auto"
    # true: model log(target), the metric is RMSE of logs (House Prices); log1p: model
    # log(1 + target), the metric is RMSLE and the target may be 0; false: plain RMSE
    log_target: bool | Literal["log1p"] = False
    drop_columns: tuple[str, ...] = ()
    column_types: dict[str, str] = field(default_factory=dict)
    ordinal_levels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("id_column", "target"):
            if not getattr(self, name):
                raise ConfigError(f"data.{name} must name a column")
        for key, columns in (("drop_columns", self.drop_columns),
                             ("column_types", self.column_types),
                             ("ordinal_levels", self.ordinal_levels)):
            for column in (self.id_column, self.target):
                if column in columns and (key, column) != ("column_types", self.id_column):
                    raise ConfigError(f"data.{key} names {column!r}, the id or target column")
        # an id that carries information (a timestamp, as in Bike Sharing) can also be a feature
        if self.column_types.get(self.id_column, "numeric") not in ("numeric", "datetime"):
            raise ConfigError(f"data.column_types.{self.id_column}: the id column can be used as "
                              "a numeric or datetime feature only")
        for column in self.drop_columns:
            if column in self.column_types:
                raise ConfigError(f"data.drop_columns and data.column_types both name {column!r}")
            if self.drop_columns.count(column) > 1:
                raise ConfigError(f"data.drop_columns names {column!r} twice")
        for column, levels in self.ordinal_levels.items():
            if len(set(levels)) != len(levels) or not levels:
                raise ConfigError(f"data.ordinal_levels.{column} must list distinct levels")
        for column, kind in self.column_types.items():
            if kind not in COLUMN_TYPES:
                raise ConfigError(
                    f"data.column_types.{column}: {kind!r} is not one of {', '.join(COLUMN_TYPES)}"
                )
            if kind == "ordinal" and column not in self.ordinal_levels:
                raise ConfigError(
                    f"data.column_types.{column} is 'ordinal' but data.ordinal_levels has no "
                    f"order for it"
                )
        for column in self.ordinal_levels:
            if self.column_types.get(column, "ordinal") != "ordinal":
                raise ConfigError(
                    f"data.ordinal_levels.{column} is given but data.column_types says "
                    f"{self.column_types[column]!r}"
                )
        if self.id_column == self.target:
            raise ConfigError("data.id_column and data.target name the same column")


@dataclass(frozen=True)
class Bound:
    """An open interval test on one column, used by features.fit_exclude."""

    greater_than: float | None = None
    less_than: float | None = None

    def __post_init__(self) -> None:
        if self.greater_than is None and self.less_than is None:
            raise ConfigError("a fit_exclude bound needs greater_than and/or less_than")


@dataclass(frozen=True)
class FeaturesConfig:
    """Preprocessing choices, each fitted inside a fold on its training rows only."""

    fill_none: tuple[str, ...] = ()  # columns whose missing value means "none" (0 / "None")
    derived: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {col: coef}
    products: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> [col, col]
    indicators: dict[str, str] = field(default_factory=dict)  # name -> col (1 where col > 0)
    group_impute: dict[str, str] = field(default_factory=dict)  # column -> grouping column
    log1p_skew_threshold: float | None = None  # log1p of non-negative columns skewed past it
    numeric_impute: Literal["median", "mean"] = "median"
    clip_to_fit_range: bool = False  # clip numbers to the range seen in the fitting rows
    numeric_scaling: Literal["standard", "quantile"] = "standard"  # quantile: rank-Gauss
    min_category_count: int = 1  # rarer categories share one "infrequent" column
    add_missing_indicators: bool = False
    # training rows matching every bound of a rule are left out of fitting, never of scoring
    fit_exclude: tuple[dict[str, Bound], ...] = ()

    def __post_init__(self) -> None:
        if self.log1p_skew_threshold is not None and self.log1p_skew_threshold < 0:
            raise ConfigError("features.log1p_skew_threshold must be >= 0 or null")
        if self.min_category_count < 1:
            raise ConfigError("features.min_category_count must be >= 1")
        for rules in self.fit_exclude:
            if not rules:
                raise ConfigError("features.fit_exclude: an empty rule would exclude every row")


@dataclass(frozen=True)
class CVConfig:
    """K-fold split."""

    n_folds: int = 5

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ConfigError(f"cv.n_folds must be >= 2, got {self.n_folds}")


@dataclass(frozen=True)
class ModelConfig:
    """MLP shape and training schedule; any field can be tuned by naming it in tune.search_space."""

    depth: int = 2
    width: int = 256
    dropout: float = 0.1
    activation: Literal["relu", "silu", "gelu", "tanh"] = "relu"
    linear_skip: bool = False  # add a linear term of the inputs to the MLP's output
    clip_to_target_range: bool = False  # clip predictions to the fitted rows' target range
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    input_l1: float = 0.0  # decoupled L1 shrinkage of the input-layer weights (0 = off)
    lr_schedule: Literal["constant", "cosine", "onecycle"] = "onecycle"
    patience: int = 0  # epochs without validation improvement before a fold stops; 0 = never
    eval_every: int = 5  # epochs between validation checks (early stopping, pruning)

    def __post_init__(self) -> None:
        checks = {
            "depth": self.depth >= 1,
            "width": self.width >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "input_l1": self.input_l1 >= 0,
            "patience": self.patience >= 0,
            "eval_every": self.eval_every >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"model.{name} is out of range: {getattr(self, name)!r}")


@dataclass(frozen=True)
class EnsembleConfig:
    """How the final model is assembled from the tuned MLP."""

    n_seeds: int = 1  # the K fold models are trained this many times with different seeds
    # numeric scalings the tuned MLP is trained on, one fold-fitted preprocessing each; the
    # MLP's prediction averages them (different views of the data make errors less alike)
    feature_views: tuple[Literal["standard", "quantile"], ...] = ()
    # reference models blended with the MLP; weights >= 0 summing to 1, fitted on the OOF
    # predictions of the rows not excluded from fitting
    blend_with: tuple[Literal["linear", "gbm"], ...] = ()

    def __post_init__(self) -> None:
        if self.n_seeds < 1:
            raise ConfigError("ensemble.n_seeds must be >= 1")
        for key in ("feature_views", "blend_with"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ConfigError(f"ensemble.{key} lists a value twice")


@dataclass(frozen=True)
class ReferenceConfig:
    """The reference models scored beside the MLP on the same folds and features."""

    linear_alpha: float = 0.0005  # Lasso penalty
    gbm_max_iter: int = 3000
    gbm_learning_rate: float = 0.01
    gbm_max_leaf_nodes: int = 6
    gbm_min_samples_leaf: int = 10
    gbm_max_features: float = 0.2  # share of features each split considers
    gbm_l2_regularization: float = 0.0

    def __post_init__(self) -> None:
        if self.linear_alpha <= 0 or self.gbm_max_iter < 1 or self.gbm_learning_rate <= 0:
            raise ConfigError("reference: alpha, max_iter and learning_rate must be positive")
        if not 0 < self.gbm_max_features <= 1 or self.gbm_min_samples_leaf < 1 or \
                self.gbm_max_leaf_nodes < 2 or self.gbm_l2_regularization < 0:
            raise ConfigError("reference: gbm_max_features in (0, 1], gbm_min_samples_leaf >= 1, "
                              "gbm_max_leaf_nodes >= 2, gbm_l2_regularization >= 0")


@dataclass(frozen=True)
class SearchDimension:
    """One tuned hyperparameter: a float/int range or a list of choices."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ConfigError("a search dimension has either non-empty choices or low/high")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ConfigError("a search dimension needs low <= high (or choices)")
        elif self.log and self.low <= 0:
            raise ConfigError("a log-scale search dimension needs low > 0")


@dataclass(frozen=True)
class PrunerConfig:
    """Optuna pruner over the per-checkpoint mean validation score of the folds."""

    # median: prune below the median of earlier trials at the same epoch; percentile: below
    # the given percentile (25 prunes harder than median's 50)
    kind: Literal["none", "median", "percentile", "hyperband"] = "median"
    n_startup_trials: int = 5  # trials that always run to the end
    n_warmup_steps: int = 20  # epochs before a trial may be pruned
    percentile: float = 50.0

    def __post_init__(self) -> None:
        if not 0 < self.percentile <= 100:
            raise ConfigError("tune.pruner.percentile must be in (0, 100]")
        if self.n_startup_trials < 0 or self.n_warmup_steps < 0:
            raise ConfigError("tune.pruner: n_startup_trials and n_warmup_steps must be >= 0")


@dataclass(frozen=True)
class TuneConfig:
    """The Optuna study."""

    n_trials: int = 20  # finished trials the study should hold; a re-run only adds the missing
    timeout_minutes: float | None = None
    n_jobs: int = 1  # trials in parallel in this process
    n_startup_trials: int = 10  # random trials before the TPE sampler starts modelling
    objective_rows: Literal["all", "fit"] = "all"  # score all rows, or those not fit_excluded
    storage: str | None = None  # Optuna storage URL; default: SQLite file under the stage's dir
    # crash safety on database storages: a trial whose process stops beating for grace_period
    # seconds (a killed worker) is marked failed and queued again, at most max_retries times
    heartbeat_interval: int | None = 60  # seconds; null: no heartbeat
    grace_period: int | None = None  # seconds; null: twice heartbeat_interval
    max_retries: int = 3
    study_name: str | None = None  # null: "<tracking.experiment>-mlp"; a hash is appended
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    search_space: dict[str, SearchDimension] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ConfigError(f"tune.n_trials must be >= 1, got {self.n_trials}")
        if self.n_jobs < 1:
            raise ConfigError(f"tune.n_jobs must be >= 1, got {self.n_jobs}")
        if self.heartbeat_interval is not None and self.heartbeat_interval < 1:
            raise ConfigError("tune.heartbeat_interval must be >= 1 (seconds) or null, got "
                              f"{self.heartbeat_interval}")
        if self.grace_period is not None and (
                self.grace_period < 1 or self.grace_period <= (self.heartbeat_interval or 0)):
            raise ConfigError("tune.grace_period must be longer than tune.heartbeat_interval, "
                              f"got {self.grace_period}")
        if self.max_retries < 0:
            raise ConfigError(f"tune.max_retries must be >= 0, got {self.max_retries}")
        tunable = {f.name for f in dataclasses.fields(ModelConfig)}
        for name in self.search_space:
            if name not in tunable:
                raise ConfigError(
                    f"tune.search_space.{name}: not a model parameter "
                    f"(one of {', '.join(sorted(tunable))})"
                )


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow: where runs go, and the registry entry the final model is registered under."""

    uri: str | None = None  # default sqlite:///mlflow.db; MLFLOW_TRACKING_URI overrides
    experiment: str | None = None  # null: named after data.target
    # each final model becomes a new version of this registered model; null: not registered
    registered_model: str | None = None
    # moved to the new version only when its OOF score beats the current holder's
    champion_alias: str = "champion"

    def __post_init__(self) -> None:
        name = self.registered_model
        if name is not None and (not name.strip() or any(c in name for c in "/:@")):
            raise ConfigError(f"tracking.registered_model: {name!r} must be non-empty, without "
                              "'/', ':' or '@' (it appears in models:/<name>@<alias> URIs)")
        alias = self.champion_alias
        if not re.fullmatch(r"[\w-]{1,255}", alias) or alias.lower() == "latest" or \
                re.fullmatch(r"[vV]\d+", alias):
            raise ConfigError(f"tracking.champion_alias: {alias!r} must be letters, digits, '_' "
                              "or '-', and neither 'latest' nor a version such as 'v2'")


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole of params.yaml. Only `data` (its id and target columns) is required."""

    base: BaseConfig = field(default_factory=BaseConfig)
    data: DataConfig
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        # Names that default from other params: the MLflow experiment from the target, the
        # Optuna study from the experiment, so two competitions never share either by accident.
        tracking, tune = self.tracking, self.tune
        if tracking.experiment is None:
            tracking = dataclasses.replace(tracking, experiment=self.data.target)
            object.__setattr__(self, "tracking", tracking)
        if tune.study_name is None:
            object.__setattr__(self, "tune", dataclasses.replace(
                tune, study_name=f"{tracking.experiment}-mlp"))


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans (only true/false), as DVC reads params.

    PyYAML follows YAML 1.1, where yes/no/on/off are booleans. `dvc exp run -S key=value`
    rewrites params.yaml with ruamel (YAML 1.2) and drops the quotes that kept an ordinal
    level such as "No" a string; read that way, the rewritten file means what it did before.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def parse_yaml(text: str) -> Any:
    """YAML text as plain data, booleans read as YAML 1.2 (and DVC) read them."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read params.yaml into a Config; raise ConfigError naming the file and key on a problem."""
    path = Path(path)
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return config_from_dict(raw or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build a Config from a plain dict (as in params.yaml)."""
    return _build(Config, raw, "")


def with_overrides(model: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """A copy of `model` with some fields replaced (e.g. by tuned best params), validated."""
    merged = dataclasses.asdict(model) | overrides
    return _build(ModelConfig, merged, "model.")


def to_dict(obj: Any) -> Any:
    """A config as plain YAML/JSON-friendly data (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _describe(hint: Any) -> str:
    """A setting type as a user reads it, for error messages."""
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(str, typing.get_args(hint)))
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where.rstrip('.') or 'top level'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {where}{unknown[0]} (known keys here: {', '.join(sorted(names))})"
        )
    kwargs = {name: _convert(hints[name], value, f"{where}{name}") for name, value in raw.items()}
    required = [f.name for f in dataclasses.fields(cls) if f.name not in raw
                and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if required:
        raise ConfigError(f"missing required key {where}{required[0]}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where.rstrip('.') or 'top level'}: {exc}") from exc


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for option in inner[:-1]:  # the first type that takes the value
            try:
                return _convert(option, value, where)
            except ConfigError:
                pass
        try:
            return _convert(inner[-1], value, where)
        except ConfigError as exc:
            if len(inner) == 1:
                raise
            expected = " or ".join(_describe(option) for option in inner)
            raise ConfigError(f"{where}: expected {expected}, got {value!r}") from exc
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where + ".")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args and args[0] is not Ellipsis else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_hint, val_hint = args
        return {
            _convert(key_hint, k, where): _convert(val_hint, v, f"{where}.{k}")
            for k, v in value.items()
        }
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)  # YAML reads 1e-3 as a string
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from exc
    if hint is str:
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # pragma: no cover
