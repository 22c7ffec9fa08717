import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.config import (
    Config,
    ConfigError,
    ModelConfig,
    config_from_dict,
    load_config,
    to_dict,
    with_overrides,
)

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


# --- tracking and the model registry ---------------------------------------------------------

def test_repository_params_register_the_model_with_a_champion_alias():
    cfg = load_config(REPO / "params.yaml")
    assert cfg.tracking.registered_model == "house-prices-mlp"
    assert cfg.tracking.champion_alias == "champion"
    # without the key nothing is registered: no default names a competition
    assert config_from_dict({"data": DATA}).tracking.registered_model is None
    off = config_from_dict({"data": DATA, "tracking": {"registered_model": None}})
    assert off.tracking.registered_model is None


@pytest.mark.parametrize("tracking, message", [
    ({"registered_model": ""}, "tracking.registered_model: '' must be non-empty"),
    ({"registered_model": "a/b"}, "without '/', ':' or '@'"),
    ({"registered_model": "prices@best"}, "without '/', ':' or '@'"),
    ({"champion_alias": "latest"}, "tracking.champion_alias: 'latest'"),
    ({"champion_alias": "v3"}, "neither 'latest' nor a version"),
    ({"champion_alias": "the best"}, "letters, digits"),
    ({"champion_alias": ""}, "tracking.champion_alias"),
    ({"champion_alias": None}, "tracking.champion_alias: expected a string"),
    ({"registry": "x"}, "unknown key tracking.registry"),
])
def test_bad_registry_settings_are_rejected(tracking, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": DATA, "tracking": tracking})


# --- params.yaml as DVC rewrites it ------------------------------------------------------------

def test_params_rewritten_by_dvc_exp_run_mean_the_same(tmp_path: Path):
    """`dvc exp run -S model.dropout=0.3` rewrites params.yaml with DVC's own YAML writer,
    which drops the quotes around ordinal levels such as "No" and "Y"; YAML 1.1 would then
    read No as false. The rewritten file must load as the original with one value changed."""
    from dvc.utils.serialize import modify_yaml

    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    with modify_yaml(path) as params:
        params["model"]["dropout"] = 0.3
    assert "[None, No, Mn, Av, Gd]" in path.read_text()  # the quotes are gone
    rewritten = load_config(path)
    original = load_config(REPO / "params.yaml")
    assert rewritten.data.ordinal_levels["BsmtExposure"] == ("None", "No", "Mn", "Av", "Gd")
    assert rewritten.data.ordinal_levels["CentralAir"] == ("N", "Y")
    assert rewritten.model.dropout == 0.3
    assert dataclasses.replace(rewritten, model=original.model) == original


def test_yes_no_on_off_are_text_and_true_false_booleans(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text("data: {id_column: id, target: y, log_target: yes,\n"
                    "       drop_columns: [no, off, On]}\n")
    with pytest.raises(ConfigError, match="data.log_target: expected true/false or log1p, got "
                                          "'yes'"):
        load_config(path)
    path.write_text("data: {id_column: id, target: y, log_target: True, drop_columns: [no]}\n"
                    "model: {linear_skip: false}\n")
    cfg = load_config(path)
    assert cfg.data.log_target is True and cfg.data.drop_columns == ("no",)
    assert cfg.model.linear_skip is False
