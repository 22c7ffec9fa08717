"""The epoch measurement times the dearest and the cheapest network the study can draw."""

from pipeline.calibrate import _network, searches_network
from pipeline.config import config_from_dict

DATA = {"id_column": "id", "target": "y"}


def test_the_dearest_and_cheapest_networks_of_the_search_space():
    cfg = config_from_dict({"data": DATA, "model": {"width": 64, "depth": 2}, "tune": {
        "search_space": {"width": {"choices": [128, 256]}, "depth": {"low": 1, "high": 3,
                                                                     "integer": True},
                         "numeric_embedding": {"choices": ["pbld", "none"]}}}})
    assert searches_network(cfg)
    dear, cheap = _network(cfg, max), _network(cfg, min)
    assert (dear.width, dear.depth, dear.numeric_embedding) == (256, 3, "pbld")
    assert (cheap.width, cheap.depth, cheap.numeric_embedding) == (128, 1, "none")


def test_a_search_space_without_network_params_times_the_model_as_it_is():
    cfg = config_from_dict({"data": DATA, "model": {"numeric_embedding": "pbld"}, "tune": {
        "search_space": {"dropout": {"low": 0.0, "high": 0.5}}}})
    assert not searches_network(cfg)
    assert _network(cfg, max) == cfg.model == _network(cfg, min)
