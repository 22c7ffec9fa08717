"""The data contract (`data:`) and the names that default from it."""

import pytest

from pipeline.config import ConfigError, config_from_dict, load_config, to_dict
from pipeline.metrics import TargetScale

from ..conftest import REPO

DATA = {"id_column": "id", "target": "y"}


def test_id_and_target_are_required():
    with pytest.raises(ConfigError, match="missing required key data$"):
        config_from_dict({"cv": {"n_folds": 3}})
    with pytest.raises(ConfigError, match="missing required key data.target"):
        config_from_dict({"data": {"id_column": "id"}})


def test_no_default_names_a_competition():
    cfg = config_from_dict({"data": DATA})
    assert cfg.data.sample_submission is None and cfg.data.log_target is TargetScale.NONE
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
    # NA is House Prices' word for "none" (and for unknown); None labels MasVnrType's "none"
    assert cfg.data.na_values == ("NA",)
    assert dict(cfg.data.column_na_values) == {"MasVnrType": ("None",)}


def test_missing_strings_are_text_and_numbers_are_read_as_written():
    cfg = config_from_dict({"data": {**DATA, "na_values": ["NA", -999, 0.5],
                                     "column_na_values": {"a": ["?"]}}})
    assert cfg.data.na_values == ("NA", "-999", "0.5")
    assert dict(cfg.data.column_na_values) == {"a": ("?",)}


@pytest.mark.parametrize("data, message", [
    ({"drop_columns": ["y"]}, "data.drop_columns names 'y', the id or target column"),
    ({"column_types": {"id": "categorical"}}, "the id column can be used as a numeric or"),
    ({"ordinal_levels": {"id": ["a"]}}, "data.ordinal_levels names 'id'"),
    ({"drop_columns": ["a"], "column_types": {"a": "numeric"}}, "both name 'a'"),
    ({"drop_columns": ["a", "a"]}, "names 'a' twice"),
    ({"id_type": "uuid"}, "data.id_type: 'uuid' is not one of auto, integer, text"),
    ({"log_target": "log2"}, "data.log_target: expected true/false or log1p, got 'log2'"),
    ({"target": ""}, "data.target: must not be empty"),
    ({"target": "id"}, "data.id_column and data.target name the same column"),
    ({"column_types": {"g": "ordinal"}, "ordinal_levels": {"g": ["lo", "lo"]}}, "distinct"),
    ({"column_types": {"A": "text"}}, "data.column_types.A: 'text' is not one of numeric"),
    ({"column_types": {"A": "ordinal"}}, "no order for it"),
    ({"ordinal_levels": {"g": ["lo"]}, "column_types": {"g": "numeric"}},
     "data.ordinal_levels.g is given but data.column_types says 'numeric'"),
    ({"train": None}, "data.train: expected a string, got None"),
    ({"column_na_values": {"id": ["NA"]}}, "data.column_na_values names 'id', the id column: "
                                           "an id is never missing text"),
    ({"na_values": ["NA", None]}, r"data.na_values.1: expected a string, got None"),
    ({"na_values": "NA"}, r"data.na_values: expected a list, got 'NA'"),
    ({"column_na_values": {"a": [""]}}, r"data.column_na_values.a.0: must not be empty"),
])
def test_bad_data_contracts_are_rejected(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {**DATA, **data}})


def test_log_target_takes_true_false_or_log1p():
    scales = {True: TargetScale.LOG, False: TargetScale.NONE, "log1p": TargetScale.LOG1P}
    for value, scale in scales.items():
        cfg = config_from_dict({"data": {**DATA, "log_target": value}})
        assert cfg.data.log_target is scale
        assert to_dict(cfg)["data"]["log_target"] == value  # written back as params spell it


def test_column_names_that_yaml_reads_as_numbers_stay_names():
    cfg = config_from_dict({"data": {**DATA, "drop_columns": [2010],
                                     "column_types": {"g": "ordinal"},
                                     "ordinal_levels": {"g": [1, 2, 3]}}})
    assert cfg.data.drop_columns == ("2010",)
    assert cfg.data.ordinal_levels["g"] == ("1", "2", "3")


def test_repository_params_register_the_model_with_a_champion_alias():
    cfg = load_config(REPO / "params.yaml")
    assert cfg.tracking.registered_model == "house-prices-mlp"
    assert cfg.tracking.champion_alias == "champion"
    # without the key nothing is registered: no default names a competition
    assert config_from_dict({"data": DATA}).tracking.registered_model is None
    off = config_from_dict({"data": DATA, "tracking": {"registered_model": None}})
    assert off.tracking.registered_model is None


@pytest.mark.parametrize("tracking, message", [
    ({"registered_model": ""}, "tracking.registered_model: '' must be 1 to 255 letters"),
    ({"registered_model": "a/b"}, "letters, digits, '_', '-' or '.'"),
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
