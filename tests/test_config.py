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
    ({"tune": {"heartbeat_interval": 0}}, "tune.heartbeat_interval must be >= 1"),
    ({"tune": {"heartbeat_interval": 10, "grace_period": 5}}, "tune.grace_period must be longer"),
    ({"tune": {"max_retries": -1}}, "tune.max_retries must be >= 0"),
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


# --- the data contract ------------------------------------------------------------------------

def test_id_and_target_are_required():
    with pytest.raises(ConfigError, match="missing required key data$"):
        config_from_dict({"cv": {"n_folds": 3}})
    with pytest.raises(ConfigError, match="missing required key data.target"):
        config_from_dict({"data": {"id_column": "id"}})


def test_no_default_names_a_competition():
    cfg = config_from_dict({"data": DATA})
    assert cfg.data.sample_submission is None and cfg.data.log_target is False
    assert cfg.data.id_type == "auto"
    # the MLflow experiment and the Optuna study are named after the target by default
    assert cfg.tracking.experiment == "y" and cfg.tune.study_name == "y-mlp"
    named = config_from_dict({"data": DATA, "tracking": {"experiment": "bikes"}})
    assert named.tune.study_name == "bikes-mlp"
    assert config_from_dict(to_dict(named)) == named


def test_repository_params_keep_house_prices_names():
    cfg = load_config(REPO / "params.yaml")
    assert (cfg.data.id_column, cfg.data.target, cfg.data.id_type) == ("Id", "SalePrice",
                                                                       "integer")
    assert cfg.tracking.experiment == "house-prices" and cfg.tune.study_name == "mlp"


@pytest.mark.parametrize("data, message", [
    ({"drop_columns": ["y"]}, "data.drop_columns names 'y', the id or target column"),
    ({"column_types": {"id": "categorical"}}, "the id column can be used as a numeric or"),
    ({"ordinal_levels": {"id": ["a"]}}, "data.ordinal_levels names 'id'"),
    ({"drop_columns": ["a"], "column_types": {"a": "numeric"}}, "both name 'a'"),
    ({"drop_columns": ["a", "a"]}, "names 'a' twice"),
    ({"id_type": "uuid"}, "data.id_type: 'uuid' is not one of auto, integer, text"),
    ({"log_target": "log2"}, "data.log_target: expected true/false or log1p, got 'log2'"),
    ({"target": ""}, "data.target must name a column"),
    ({"column_types": {"g": "ordinal"}, "ordinal_levels": {"g": ["lo", "lo"]}}, "distinct"),
])
def test_bad_data_contracts_are_rejected(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {**DATA, **data}})


def test_log_target_takes_true_false_or_log1p():
    for value in (True, False, "log1p"):
        assert config_from_dict({"data": {**DATA, "log_target": value}}).data.log_target == value
