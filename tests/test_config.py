from pathlib import Path

import pytest
import yaml

from pipeline.config import (Config, ConfigError, ModelConfig, config_from_dict, load_config,
                             to_dict, with_overrides)

from .conftest import REPO


def test_repository_params_load():
    cfg = load_config(REPO / "params.yaml")
    assert isinstance(cfg, Config)
    assert cfg.data.target == "SalePrice"
    assert set(cfg.tune.search_space) >= {"weight_decay", "dropout", "lr", "width"}


def test_round_trip_through_plain_dict():
    cfg = load_config(REPO / "params.yaml")
    assert config_from_dict(to_dict(cfg)) == cfg


DATA = {"id_column": "id", "target": "y"}


@pytest.mark.parametrize("raw, message", [
    ({"modle": {}}, "unknown key modle"),
    ({"model": {"dropuot": 0.1}}, "unknown key model.dropuot"),
    ({"model": {"dropout": -0.1}}, "model.dropout is out of range"),
    ({"model": {"dropout": 1.0}}, "model.dropout is out of range"),
    ({"cv": {"n_folds": 0}}, "cv.n_folds must be >= 2"),
    ({"cv": {"n_folds": "five"}}, "cv.n_folds: expected an integer"),
    ({"model": {"lr": "fast"}}, "model.lr: expected a number"),
    ({"tune": {"n_trials": 0}}, "tune.n_trials must be >= 1"),
    ({"tune": {"search_space": {"colour": {"low": 0, "high": 1}}}}, "not a model parameter"),
    ({"tune": {"search_space": {"lr": {"low": 0, "high": 1, "log": True}}}}, "log-scale"),
    ({"tune": {"pruner": {"kind": "sometimes"}}}, "tune.pruner.kind"),
    ({"data": {**DATA, "column_types": {"A": "text"}}}, "data.column_types.A"),
    ({"data": {**DATA, "column_types": {"A": "ordinal"}}}, "no order for it"),
    ({"data": {**DATA, "log_target": "yes"}}, "data.log_target: expected true/false"),
])
def test_bad_values_are_rejected_with_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw)


def test_load_config_names_the_file(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"cv": {"n_folds": 1}}))
    with pytest.raises(ConfigError, match=f"{path}: cv.n_folds"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("cv: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_scientific_notation_strings_become_floats():
    cfg = config_from_dict({"data": DATA, "model": {"lr": "1e-3"}})
    assert cfg.model.lr == pytest.approx(0.001)


def test_with_overrides_validates():
    model = ModelConfig()
    assert with_overrides(model, {"width": 32}).width == 32
    with pytest.raises(ConfigError, match="model.dropout"):
        with_overrides(model, {"dropout": 2.0})
