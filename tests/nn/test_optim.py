"""AdamW over parameter groups: each group's rate, and decay relative to the base rate."""

import pytest
import torch

from pipeline.nn.optim import GroupedAdamW, ParamGroup


def test_a_group_moves_at_its_own_rate():
    fast, slow = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = GroupedAdamW([ParamGroup([fast], lr_factor=2.0), ParamGroup([slow], lr_factor=0.5)])
    (fast.sum() + slow.sum()).backward()
    opt.step(lr=0.1, beta1=0.9, weight_decay=0.0)
    # Adam's first step moves every weight by lr (the gradient's sign)
    torch.testing.assert_close(fast.detach(), torch.full((3,), -0.2))
    torch.testing.assert_close(slow.detach(), torch.full((3,), -0.05))


def test_decay_is_relative_to_the_base_rate_whatever_the_groups_rate():
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    none = torch.ones(2, requires_grad=True)
    opt = GroupedAdamW([ParamGroup([a], lr_factor=10.0), ParamGroup([b], lr_factor=0.1),
                        ParamGroup([none], decay_factor=0.0)])
    for p in (a, b, none):
        p.grad = torch.zeros(2)
    opt.step(lr=0.5, beta1=0.9, weight_decay=0.1)
    torch.testing.assert_close(a.detach(), torch.full((2,), 0.95))
    torch.testing.assert_close(b.detach(), torch.full((2,), 0.95))
    torch.testing.assert_close(none.detach(), torch.ones(2))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        GroupedAdamW([ParamGroup([torch.zeros(1, requires_grad=True)])], beta2=1.0)
    with pytest.raises(ValueError):
        GroupedAdamW([ParamGroup([torch.zeros(1, requires_grad=True)], lr_factor=0.0)])
