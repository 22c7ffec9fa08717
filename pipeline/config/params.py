"""params.yaml as a whole: the root model, the YAML 1.2 reader and dotted overrides."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, StrictStr, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent

from pipeline.config.data import DataConfig, FeaturesConfig
from pipeline.config.errors import ConfigError, validate
from pipeline.config.fields import Name, Section
from pipeline.config.model import (
    BaseConfig,
    CVConfig,
    EnsembleConfig,
    ModelConfig,
    ReferenceConfig,
)
from pipeline.config.tune import TuneConfig


class TrackingConfig(Section):
    """MLflow: where runs go, and the registry entry the final model is registered under."""

    uri: Name | None = None  # default sqlite:///mlflow.db; MLFLOW_TRACKING_URI overrides
    experiment: Name | None = None  # null: named after data.target
    # each final model becomes a new version of this registered model; null: not registered
    registered_model: StrictStr | None = None
    # moved to the new version only when its OOF score beats the current holder's
    champion_alias: StrictStr = "champion"

    @field_validator("registered_model")
    @classmethod
    def _model_name(cls, name: str | None) -> str | None:
        # the name is read back from models:/<name>@<alias> URIs: MLflow registers `a?b` but
        # its URI parser cuts the name at the query string, drops a tab, and refuses '/' and
        # ':'; a safe set, rather than the characters found to break so far
        if name is not None and not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,254}", name,
                                                 flags=re.ASCII):
            raise ValueError(f"{name!r} must be 1 to 255 letters, digits, '_', '-' or '.', "
                             "starting with a letter or digit (the name is read back from "
                             "models:/<name>@<alias> URIs, which other characters break)")
        return name

    @field_validator("champion_alias")
    @classmethod
    def _alias(cls, alias: str) -> str:
        if not re.fullmatch(r"[\w-]{1,255}", alias) or alias.lower() == "latest" or \
                re.fullmatch(r"[vV]\d+", alias):
            raise ValueError(f"{alias!r} must be letters, digits, '_' or '-', and neither "
                             "'latest' nor a version such as 'v2'")
        return alias


class Config(Section):
    """The whole of params.yaml. Only `data` (its id and target columns) is required."""

    base: BaseConfig = BaseConfig()
    data: DataConfig
    features: FeaturesConfig = FeaturesConfig()
    cv: CVConfig = CVConfig()
    model: ModelConfig = ModelConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    reference: ReferenceConfig = ReferenceConfig()
    tune: TuneConfig = TuneConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="before")
    @classmethod
    def _derived_names(cls, raw: Any) -> Any:
        """Names that default from other params: the MLflow experiment from the target, the
        Optuna study from the experiment, so two competitions never share either by accident."""
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), Mapping | DataConfig):
            return raw
        data = raw["data"]
        target = data.target if isinstance(data, DataConfig) else data.get("target")
        tracking = _section(raw.get("tracking"))
        tune = _section(raw.get("tune"))
        if tracking is None or tune is None or not isinstance(target, str):
            return raw
        experiment = tracking.get("experiment") or target
        return {**raw, "tracking": {**tracking, "experiment": experiment},
                "tune": {**tune, "study_name": tune.get("study_name") or f"{experiment}-mlp"}}


def _section(value: Any) -> dict | None:
    """A section as a dict, for defaults derived before validation (None: leave it alone)."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump()
    return dict(value) if isinstance(value, Mapping) else None


def read_yaml(path: str | Path) -> Any:
    """A YAML file as plain data, read as YAML 1.2 (as DVC reads and writes params.yaml: only
    true/false are booleans, so an ordinal level `No` stays the text "No")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 text") from exc
    yaml = YAML(typ="safe", pure=True)
    try:
        _refuse_aliases(yaml, text, path)
        return yaml.load(text)
    except YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML: {reason}") from exc


def _refuse_aliases(yaml: YAML, text: str, path: Path) -> None:
    """Raise ConfigError at the first alias (`*name`), found in the parser's events before
    anything is built: a few hundred bytes of nested aliases expand to billions of values
    (a 'billion laughs' file), and params need none."""
    for event in yaml.parse(text):
        if isinstance(event, AliasEvent):
            raise ConfigError(f"{path}, line {event.start_mark.line + 1}: YAML aliases "
                              f"(*{event.anchor}) are not allowed in params files: write the "
                              "value out in full")


def load_config(path: str | Path = "params.yaml",
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Read params.yaml into a Config; `overrides` replace values by dotted key
    (`{"model.epochs": 30}`). A problem raises ConfigError naming the file and the key."""
    raw = read_yaml(path)
    try:
        return config_from_dict(with_dotted(raw or {}, overrides or {}))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """Build a Config from plain data (as in params.yaml)."""
    return validate(Config, raw, "")


def with_dotted(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`raw` with values replaced by dotted key ({"model.epochs": 30})."""
    out = _plain(raw)
    if not isinstance(out, dict):
        raise ConfigError(f"top level: expected a mapping, got {raw!r}")
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = out
        for i, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parents[:i + 1])}: expected a mapping to "
                                  f"override {key}, got {child!r}")
            node = child
        node[leaf] = value
    return out


def to_dict(cfg: BaseModel) -> dict[str, Any]:
    """A config as plain JSON-friendly data (the inverse of config_from_dict)."""
    return cfg.model_dump(mode="json")


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
