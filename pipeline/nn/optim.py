"""AdamW over parameter groups with their own learning rates and weight decay, in fused steps.

The recipe trains each kind of parameter at its own rate (RealMLP's per-group factors): the
layers' weights at lr / sqrt(fan_in) (the NTK parametrization's effective rate, written for
weights stored at their usual scale), the biases at a tenth, the input scales six times
faster, the numeric embeddings at a tenth. Weight decay is decoupled and relative: a group
shrinks by base lr x weight decay x its decay factor per step, whatever its learning rate.

`torch.optim.AdamW(fused=True)` takes one learning rate per group too, but its `step`
wrapper (hooks, profiling, regrouping) is a fixed cost per step that is not small beside this
trainer's steps; torch's functional `adamw` runs the same fused kernel without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.optim.adamw import adamw

EPS = 1e-8


@dataclass
class ParamGroup:
    """Parameters trained at `lr_factor` x the base learning rate, decayed by
    `decay_factor` x base lr x weight decay per step."""

    params: list[torch.Tensor]
    lr_factor: float = 1.0
    decay_factor: float = 1.0
    exp_avgs: list[torch.Tensor] = field(default_factory=list)
    exp_avg_sqs: list[torch.Tensor] = field(default_factory=list)
    steps: list[torch.Tensor] = field(default_factory=list)


class GroupedAdamW:
    """Adam with decoupled weight decay over groups (see the module docstring)."""

    def __init__(self, groups: list[ParamGroup], beta2: float = 0.999) -> None:
        if not 0 <= beta2 < 1:
            raise ValueError(f"beta2 must be in [0, 1), got {beta2}")
        self.groups = [g for g in groups if g.params]
        self.beta2 = beta2
        for g in self.groups:
            if g.lr_factor <= 0:
                raise ValueError(f"a group's lr_factor must be > 0, got {g.lr_factor}")
            g.exp_avgs = [torch.zeros_like(p) for p in g.params]
            g.exp_avg_sqs = [torch.zeros_like(p) for p in g.params]
            g.steps = [torch.tensor(0.0, device=p.device) for p in g.params]

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for g in self.groups for p in g.params]

    def zero_grad(self) -> None:
        """What Optimizer.zero_grad(set_to_none=True) does, without its overhead."""
        for g in self.groups:
            for p in g.params:
                p.grad = None

    def step(self, lr: float, beta1: float, weight_decay: float) -> None:
        """One step at base learning rate `lr` and decoupled decay `weight_decay`."""
        with torch.no_grad():
            for g in self.groups:
                group_lr = lr * g.lr_factor
                adamw(g.params, [p.grad for p in g.params], g.exp_avgs, g.exp_avg_sqs, [],
                      g.steps, fused=True, amsgrad=False, beta1=beta1, beta2=self.beta2,
                      lr=group_lr, weight_decay=weight_decay * g.decay_factor / g.lr_factor,
                      eps=EPS, maximize=False)
