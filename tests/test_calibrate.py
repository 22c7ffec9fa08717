"""The epoch measurement times each network the study can draw (or its dearest and cheapest)."""

from pipeline.calibrate import MAX_NETWORKS, network, networks
from pipeline.config import config_from_dict

DATA = {"id_column": "id", "target": "y"}


def test_the_dearest_and_cheapest_networks_of_the_search_space():
    cfg = config_from_dict({"data": DATA, "model": {"width": 64, "depth": 2}, "tune": {
        "search_space": {"width": {"choices": [128, 256]}, "depth": {"low": 1, "high": 3,
                                                                     "integer": True},
                         "numeric_embedding": {"choices": ["pbld", "none"]}}}})
    assert len(networks(cfg)) == 2 * 3 * 2
    dear, cheap = network(cfg, max), network(cfg, min)
    assert (dear.width, dear.depth, dear.numeric_embedding) == (256, 3, "pbld")
    assert (cheap.width, cheap.depth, cheap.numeric_embedding) == (128, 1, "none")


def test_a_search_space_without_network_params_times_the_model_as_it_is():
    cfg = config_from_dict({"data": DATA, "model": {"numeric_embedding": "pbld"}, "tune": {
        "search_space": {"dropout": {"low": 0.0, "high": 0.5}}}})
    assert networks(cfg) == [cfg.model]
    assert network(cfg, max) == cfg.model == network(cfg, min)


def test_each_network_the_study_draws_is_timed_once():
    cfg = config_from_dict({"data": DATA, "model": {"width": 64, "depth": 1}, "tune": {
        "search_space": {"width": {"choices": [128, 256, 512]},
                         "numeric_embedding": {"choices": ["pbld", "none"]},
                         "dropout": {"low": 0.0, "high": 0.5}}}})
    drawn = networks(cfg)
    assert sorted((m.width, m.numeric_embedding) for m in drawn) == sorted(
        (w, e) for w in (128, 256, 512) for e in ("none", "pbld"))
    assert {m.depth for m in drawn} == {1} and network(cfg, max) in drawn
    for space in ({"width": {"choices": widths}} for widths in ([64], [64, 128, 256, 512])):
        deep = config_from_dict({"data": DATA, "tune": {"search_space": {
            **space, "depth": {"low": 1, "high": 3, "integer": True}}}})
        assert network(deep, max) in networks(deep)  # the plan times the final fit's network


def test_a_large_space_is_timed_at_its_dearest_and_cheapest_and_none_as_the_model_is():
    widths = [16 * (i + 1) for i in range(MAX_NETWORKS + 1)]
    cfg = config_from_dict({"data": DATA, "tune": {
        "search_space": {"width": {"choices": widths}}}})
    assert [m.width for m in networks(cfg)] == [16, widths[-1]]
    plain = config_from_dict({"data": DATA, "tune": {"search_space": {"lr": {"low": 1e-4,
                                                                              "high": 1e-3}}}})
    assert networks(plain) == [plain.model]
