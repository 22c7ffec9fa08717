"""params.yaml as a whole: read as YAML 1.2, every bad value an error naming its key."""

import re
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
)

from ..conftest import REPO

DATA = {"id_column": "id", "target": "y"}


def test_repository_params_load():
    cfg = load_config(REPO / "params.yaml")
    assert isinstance(cfg, Config)
    assert cfg.data.target == "SalePrice"
    assert set(cfg.tune.search_space) >= {"weight_decay", "dropout", "lr", "width"}


def test_round_trip_through_plain_dict():
    cfg = load_config(REPO / "params.yaml")
    assert config_from_dict(to_dict(cfg)) == cfg


def test_the_config_is_frozen():
    cfg = config_from_dict({"data": DATA})
    with pytest.raises(ValueError, match="frozen"):
        cfg.model.width = 3


# Every bad params value of docs/bad-input.md, and values that used to pass the old checks and
# crash later with a traceback: each is rejected when the file is read, naming its key.
@pytest.mark.parametrize("raw, message", [
    ({"modle": {}}, "unknown key modle"),
    ({"model": {"dropuot": 0.1}}, r"unknown key model.dropuot \(known keys here: activation"),
    ({"model": {"dropout": -0.1}}, r"model.dropout: must be >= 0.0, got -0.1"),
    ({"model": {"dropout": 1.0}}, r"model.dropout: must be < 1.0, got 1.0"),
    ({"cv": {"n_folds": 0}}, r"cv.n_folds: must be >= 2, got 0"),
    ({"cv": {"n_folds": 100000}}, r"cv.n_folds: must be <= 100, got 100000"),
    ({"cv": {"n_folds": "five"}}, "cv.n_folds: expected an integer, got 'five'"),
    ({"cv": {"n_folds": 5.5}}, "cv.n_folds: expected an integer, got 5.5"),
    ({"base": {"seed": -1}}, r"base.seed: must be >= 0, got -1"),
    ({"base": {"threads": True}}, "base.threads: expected an integer, got True"),
    ({"model": {"lr": "fast"}}, "model.lr: expected a number or 'auto', got 'fast'"),
    ({"model": {"lr": float("inf")}}, "model.lr: expected a finite number or 'auto', got inf"),
    ({"model": {"epochs": 0}}, "model.epochs: must be >= 1, got 0"),
    ({"model": {"batch_size": "big"}}, "model.batch_size: expected an integer or 'auto'"),
    ({"tune": {"n_trials": 2.5}}, "tune.n_trials: expected an integer or 'auto', got 2.5"),
    ({"tune": {"search_space": {"width": "auto"}}}, "tune.search_space.width: only lr can be"),
    ({"tune": {"search_space": {"lr": "fast"}}}, "tune.search_space.lr: expected a mapping"),
    ({"ensemble": {"n_seeds": "many"}}, "ensemble.n_seeds: expected an integer or 'auto'"),
    ({"base": {"budget_minutes": 0}}, r"base.budget_minutes: must be > 0"),
    ({"base": {"device": "tpu"}}, r"base.device: 'tpu' is not one of auto, cpu, cuda"),
    ({"model": {"weight_decay": float("nan")}}, "model.weight_decay: expected a finite"),
    ({"model": {"activation": "swish"}}, "model.activation: 'swish' is not one of relu, silu"),
    ({"model": 5}, "model: expected a mapping, got 5"),
    ({"tune": {"n_trials": 0}}, r"tune.n_trials: must be >= 1, got 0"),
    ({"tune": {"timeout_minutes": -5}}, r"tune.timeout_minutes: must be > 0.0, got -5"),
    ({"tune": {"search_space": {"colour": {"low": 0, "high": 1}}}}, "not a model parameter"),
    ({"tune": {"search_space": {"lr": {"low": 0, "high": 1, "log": True}}}}, "log-scale"),
    ({"tune": {"search_space": {"lr": {"low": float("nan"), "high": 1}}}},
     "tune.search_space.lr.low: expected a finite number, got nan"),
    ({"tune": {"search_space": {"lr": {"low": 0.1, "high": 0.01}}}},
     "tune.search_space.lr: low must be below high, got 0.1 and 0.01"),
    ({"tune": {"search_space": {"lr": {"low": 0.1, "high": 0.1}}}}, "low must be below high"),
    ({"tune": {"search_space": {"width": {"choices": [64, -5]}}}},
     r"tune.search_space.width: -5 is not a valid model.width \(must be >= 1"),
    ({"tune": {"search_space": {"dropout": {"low": 0.1, "high": 1.5}}}},
     r"tune.search_space.dropout: 1.5 is not a valid model.dropout \(must be < 1.0"),
    ({"tune": {"search_space": {"width": {"choices": []}}}}, "choices: must not be empty"),
    ({"tune": {"search_space": {"width": {"low": 8.5, "high": 64, "integer": True}}}},
     "whole-number low and high"),
    ({"tune": {"search_space": {"lr": {"low": 0.001, "hihg": 1}}}},
     r"unknown key tune.search_space.lr.hihg \(known keys here: choices, high"),
    ({"tune": {"pruner": {"kind": "sometimes"}}}, "tune.pruner.kind: 'sometimes' is not one of"),
    ({"tune": {"pruner": {"percentile": 150}}}, "tune.pruner.percentile: must be <= 100"),
    ({"tune": {"heartbeat_interval": 0}}, r"tune.heartbeat_interval: must be >= 1"),
    ({"tune": {"heartbeat_interval": 10, "grace_period": 5}}, "tune.grace_period must be longer"),
    ({"tune": {"max_retries": -1}}, r"tune.max_retries: must be >= 0"),
    ({"ensemble": {"n_seeds": 0}}, r"ensemble.n_seeds: must be >= 1"),
    ({"ensemble": {"blend_with": ["gbm", "gbm"]}}, "ensemble.blend_with: lists a value twice"),
    ({"ensemble": {"feature_views": ["minmax"]}}, r"ensemble.feature_views.0: 'minmax' is not"),
    ({"reference": {"gbm_feature_fraction": 0}}, r"reference.gbm_feature_fraction: must be > 0"),
    ({"features": {"fit_exclude": [{}]}}, "features.fit_exclude: an empty rule would exclude"),
    ({"features": {"fit_exclude": [{"a": {"greater": 1}}]}},
     r"unknown key features.fit_exclude.0.a.greater \(known keys here: greater_than, less_than"),
    ({"features": {"fit_exclude": [{"a": {"greater_than": 5, "less_than": 1}}]}},
     "match no value"),
    ({"features": {"min_category_count": 0}}, r"features.min_category_count: must be >= 1"),
])
def test_bad_values_are_rejected_with_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": DATA, **raw})


def test_load_config_names_the_file(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": DATA, "cv": {"n_folds": 1}}))
    with pytest.raises(ConfigError, match=f"{path}: cv.n_folds"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("cv: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_bytes(b"data: {id_column: \xff}")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(path)


def alias_bomb(levels: int, width: int = 10) -> str:
    """A 'billion laughs' params file: each level lists the previous one `width` times, so
    the last names width**levels values in a few hundred bytes."""
    lines = ["data: {id_column: id, target: y}", "bomb:", "  l0: &l0 [lol]"]
    for level in range(1, levels + 1):
        lines.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_before_anything_expands_them(tmp_path: Path):
    path = tmp_path / "params.yaml"
    # small enough that a reader expanding it still ends (10**5 values), still caught here
    path.write_text(alias_bomb(levels=5))
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}, line 4: YAML aliases "
                                          r"\(\*l0\) are not allowed"):
        load_config(path)
    path.write_text("data: {id_column: id, target: &t y}\nmodel: {lr: 0.01}\n"
                    "tracking: {experiment: *t}\n")  # one harmless-looking alias: refused too
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}, line 3: YAML aliases "
                                          r"\(\*t\)"):
        load_config(path)
    path.write_text("data: {id_column: id, target: &t y}\n")  # an anchor alone copies nothing
    assert load_config(path).data.target == "y"


@pytest.mark.parametrize("name", ["a?b", "a#b", "a%b", "a b", "a\tb", "a&b", "prices@best",
                                  "a/b", "a:b", "é", "-a", ".", "..", "", "a" * 256])
def test_a_registered_model_name_that_does_not_round_trip_through_a_uri_is_rejected(name):
    # `a?b` registered, but models:/a?b@champion could not be loaded (the query string);
    # tests/test_tracking.py registers and loads a name at the edge of the allowed set
    with pytest.raises(ConfigError, match=re.escape(
            f"tracking.registered_model: {name!r} must be 1 to 255 letters, digits, '_', '-' "
            "or '.', starting with a letter or digit")):
        config_from_dict({"data": DATA, "tracking": {"registered_model": name}})


def test_yaml_12_numbers_and_special_floats(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text("data: {id_column: id, target: y}\nmodel: {lr: 1e-3}\n")
    assert load_config(path).model.lr == pytest.approx(0.001)
    path.write_text("data: {id_column: id, target: y}\nmodel: {lr: .inf}\n")
    with pytest.raises(ConfigError, match="model.lr: expected a finite number or 'auto', got inf"):
        load_config(path)
    path.write_text("data: {id_column: id, target: y}\ntune:\n  search_space:\n"
                    "    lr: {low: .nan, high: 1}\n")
    with pytest.raises(ConfigError, match="tune.search_space.lr.low: expected a finite"):
        load_config(path)


def test_overrides_by_dotted_key_are_validated():
    cfg = load_config(REPO / "params.yaml", {"model.epochs": 30, "tune.pruner.kind": "none"})
    assert cfg.model.epochs == 30 and cfg.tune.pruner.kind == "none"
    with pytest.raises(ConfigError, match="params.yaml: model.epochs: must be >= 1"):
        load_config(REPO / "params.yaml", {"model.epochs": 0})
    with pytest.raises(ConfigError, match="unknown key model.epoch "):
        load_config(REPO / "params.yaml", {"model.epoch": 3})


def test_a_section_replace_validates():
    model = ModelConfig()
    assert model.replace({"width": 32}).width == 32
    with pytest.raises(ConfigError, match="model.dropout: must be < 1.0, got 2.0"):
        model.replace({"dropout": 2.0}, "model.")


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
    assert rewritten.replace({"model": original.model}) == original


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
    assert cfg.data.log_target.param is True and cfg.data.drop_columns == ("no",)
    assert cfg.model.linear_skip is False
