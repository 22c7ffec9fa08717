"""The Optuna study (`tune:`): search space, pruner, storage, crash safety."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from pipeline.config.errors import ConfigError
from pipeline.config.fields import AUTO, Finite, Name, Section, auto_or
from pipeline.config.model import ModelConfig

Choice = StrictBool | StrictInt | Finite | StrictStr
AUTO_SEARCH = ("lr",)  # search dimensions the plan can derive


class SearchDimension(Section):
    """One tuned hyperparameter: a float/int range (low < high) or a list of choices."""

    low: Finite | None = None
    high: Finite | None = None
    log: StrictBool = False
    integer: StrictBool = False
    choices: tuple[Choice, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _range_or_choices(self) -> Self:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("a search dimension has either choices or low/high")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError("choices list a value twice")
        elif self.low is None or self.high is None:
            raise ValueError("a search dimension needs low and high (or choices)")
        elif self.low >= self.high:
            raise ValueError(f"low must be below high, got {self.low} and {self.high}")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scale search dimension needs low > 0")
        elif self.integer and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an integer search dimension needs whole-number low and high")
        return self

    @property
    def values(self) -> tuple:
        """The values a trial can take at the edges of the range (or every choice)."""
        if self.choices is not None:
            return self.choices
        if self.integer:
            return int(self.low), int(self.high)
        return self.low, self.high


class PrunerConfig(Section):
    """Optuna pruner over the per-checkpoint mean validation score of the folds."""

    # median: prune below the median of earlier trials at the same epoch; percentile: below
    # the given percentile (25 prunes harder than median's 50)
    kind: Literal["none", "median", "percentile", "hyperband"] = "median"
    n_startup_trials: StrictInt = Field(5, ge=0)  # trials that always run to the end
    # epochs before a trial may be pruned; auto: a fifth of the epochs
    n_warmup_steps: auto_or(Annotated[StrictInt, Field(ge=0)]) = AUTO
    percentile: Finite = Field(50.0, gt=0, le=100)


class TuneConfig(Section):
    """The Optuna study."""

    # finished trials the study holds; auto: as many as the budget's study share allows
    n_trials: auto_or(Annotated[StrictInt, Field(ge=1, le=1_000_000)]) = AUTO
    timeout_minutes: Finite | None = Field(None, gt=0)  # a cap on top of n_trials
    n_jobs: StrictInt = Field(1, ge=1, le=256)  # trials in parallel in this process
    # random trials before TPE models; auto: a third of the expected trials, at most 8
    n_startup_trials: auto_or(Annotated[StrictInt, Field(ge=0)]) = AUTO
    objective_rows: Literal["all", "fit"] = "all"  # all rows, or those not fit_excluded
    # the folds a trial trains and is scored on (the first ones; the final fit trains every
    # fold); auto: the plan's, one fold on large data (docs/sizing.md)
    trial_folds: auto_or(Annotated[StrictInt, Field(ge=1, le=1000)]) = AUTO
    storage: Name | None = None  # Optuna storage URL; default: SQLite under the stage's dir
    # crash safety on database storages: a trial whose process stops beating for grace_period
    # seconds (a killed worker) is marked failed and queued again, at most max_retries times
    heartbeat_interval: StrictInt | None = Field(60, ge=1)  # seconds; null: no heartbeat
    grace_period: StrictInt | None = Field(None, ge=1)  # seconds; null: twice the interval
    max_retries: StrictInt = Field(3, ge=0)
    study_name: Name | None = None  # null: "<tracking.experiment>-mlp"; a hash is appended
    pruner: PrunerConfig = PrunerConfig()
    # lr: auto tunes the learning rate over the range the plan derives from the batch size
    search_space: dict[Name, SearchDimension | Literal["auto"]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.grace_period is not None and self.grace_period <= (self.heartbeat_interval or 0):
            raise ValueError("tune.grace_period must be longer than tune.heartbeat_interval, "
                             f"got {self.grace_period}")
        tunable = set(ModelConfig.model_fields)
        for name, dim in self.search_space.items():
            if name not in tunable:
                raise ValueError(f"tune.search_space.{name}: not a model parameter (one of "
                                 f"{', '.join(sorted(tunable))})")
            if dim == AUTO:
                if name not in AUTO_SEARCH:
                    raise ValueError(f"tune.search_space.{name}: only "
                                     f"{', '.join(AUTO_SEARCH)} can be 'auto'")
                continue
            for value in dim.values:  # every value a trial can draw must be a valid model
                try:
                    ModelConfig().replace({name: value})
                except ConfigError as exc:
                    raise ValueError(f"tune.search_space.{name}: {value!r} is not a valid "
                                     f"model.{name} ({str(exc).split(': ', 1)[-1]})") from None
        return self
