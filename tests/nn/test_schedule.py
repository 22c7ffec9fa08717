"""The per-step schedules: shapes, ends at zero, and their doctests."""

import doctest

import numpy as np
import pytest

from pipeline.nn import embeddings, model, schedule, train
from pipeline.nn.schedule import SHAPES, multipliers, schedules


@pytest.mark.parametrize("module", [schedule, embeddings, model, train])
def test_the_shape_examples_in_the_docstrings_hold(module):
    failures, _ = doctest.testmod(module)
    assert failures == 0


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_a_multiplier_of_the_peak(shape):
    m = multipliers(shape, 257)
    assert m.shape == (257,) and (m >= 0).all() and (m <= 1 + 1e-12).all()
    assert m.max() > 0.99


@pytest.mark.parametrize("shape", ["cosine", "flat_cos", "coslog4"])
def test_the_recipes_schedules_end_at_zero(shape):
    assert multipliers(shape, 1000)[-1] == pytest.approx(0.0, abs=1e-12)


def test_coslog4_restarts_four_times_on_a_log_axis():
    m = multipliers("coslog4", 10_001)
    peaks = np.flatnonzero((m[1:-1] > m[:-2]) & (m[1:-1] >= m[2:])) + 1
    assert len(peaks) == 4
    assert (np.diff(peaks) > 0).all() and peaks[1] - peaks[0] < peaks[3] - peaks[2]


def test_flat_cos_keeps_dropout_and_decay_until_half_way():
    s = schedules(100, lr=0.1, lr_shape="coslog4", dropout=0.2, dropout_shape="flat_cos",
                  weight_decay=0.02, weight_decay_shape="flat_cos")
    assert (s.dropout[:50] == 0.2).all() and s.dropout[-1] == 0
    assert (s.weight_decay[:50] == 0.02).all() and s.weight_decay[-1] == 0
    assert s.lr.max() <= 0.1 and (s.beta1 == 0.9).all()


def test_onecycle_cycles_beta1():
    s = schedules(100, 1.0, "onecycle", 0.0, "constant", 0.0, "constant")
    assert s.beta1.min() == pytest.approx(0.85) and s.beta1[0] == pytest.approx(0.95)


def test_a_schedule_needs_steps_and_a_known_shape():
    with pytest.raises(ValueError):
        multipliers("cosine", 0)
    with pytest.raises(ValueError, match="unknown schedule"):
        multipliers("sawtooth", 10)
