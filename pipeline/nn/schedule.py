"""Per-step schedules of the training loop: learning rate, Adam's beta1, dropout, weight decay.

Each schedule is a multiplier per optimizer step, computed once before training (the loop
reads a number per step, nothing is recomputed). The schedules the recipe uses end at zero,
so the last epoch's weights are the settled ones and the last epoch is the honest checkpoint
(no epoch is picked on the validation fold):

- `coslog4` (RealMLP's learning rate): 1/2 (1 - cos(2 pi log2(1 + 15 t))), four warm
  restarts on a log time axis, from 0 back to 0;
- `flat_cos` (RealMLP's dropout and weight decay): 1 for the first half, then a half cosine
  down to 0;
- `cosine`: a half cosine from 1 to 0; `constant`: 1;
- `onecycle`: torch's OneCycleLR (a tenth of warm-up, then cosine down to 1/25 000 of the
  peak), which also cycles beta1 between 0.95 and 0.85.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

SHAPES = ("constant", "cosine", "flat_cos", "coslog4", "onecycle")
BETA1 = 0.9  # Adam's default, where the schedule does not cycle it


@dataclass(frozen=True)
class Schedules:
    """The value of each scheduled quantity at every optimizer step: [steps] arrays."""

    lr: np.ndarray  # the base learning rate (parameter groups scale it)
    beta1: np.ndarray
    dropout: np.ndarray  # the dropout probability
    weight_decay: np.ndarray  # the decoupled weight decay per unit learning rate


def multipliers(shape: str, total: int) -> np.ndarray:
    """The schedule `shape` as a multiplier in [0, 1] at steps 0 .. total - 1.

    >>> multipliers("flat_cos", 5).round(3).tolist()
    [1.0, 1.0, 1.0, 0.5, 0.0]
    >>> [float(multipliers(shape, 9)[-1].round(12)) for shape in ("cosine", "coslog4")]
    [0.0, 0.0]
    """
    if total < 1:
        raise ValueError(f"a schedule needs at least one step, got {total}")
    t = np.arange(total) / max(total - 1, 1)  # 0 at the first step, 1 at the last
    if shape == "constant":
        return np.ones(total)
    if shape == "cosine":
        return 0.5 * (1 + np.cos(math.pi * t))
    if shape == "flat_cos":
        return np.where(t < 0.5, 1.0, 0.5 * (1 + np.cos(math.pi * (2 * t - 1))))
    if shape == "coslog4":
        return 0.5 * (1 - np.cos(2 * math.pi * np.log2(1 + 15 * t)))
    if shape == "onecycle":
        return _onecycle(total)[0]
    raise ValueError(f"unknown schedule {shape!r} (one of {', '.join(SHAPES)})")


def schedules(total: int, lr: float, lr_shape: str, dropout: float, dropout_shape: str,
              weight_decay: float, weight_decay_shape: str) -> Schedules:
    """Every scheduled quantity for `total` steps: each peak value times its shape."""
    beta1 = _onecycle(total)[1] if lr_shape == "onecycle" else np.full(total, BETA1)
    return Schedules(lr=lr * multipliers(lr_shape, total), beta1=beta1,
                     dropout=dropout * multipliers(dropout_shape, total),
                     weight_decay=weight_decay * multipliers(weight_decay_shape, total))


def _onecycle(total: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's OneCycleLR learning-rate multipliers and beta1, read off the scheduler
    driving an optimizer that holds no parameters of ours."""
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1.0)
    # torch divides by the warm-up's length, pct_start * total - 1 steps, so a warm-up of
    # exactly one step raised ZeroDivisionError (pytorch/pytorch#180187); half a step more
    # avoids it
    pct_start = 0.1 if 0.1 * total != 1 else 1.5 / total
    if total < 2:
        return np.ones(total), np.full(total, BETA1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=total,
                                                    pct_start=pct_start)
    lrs, beta1s = np.empty(total), np.empty(total)
    group = optimizer.param_groups[0]
    with warnings.catch_warnings():  # "scheduler stepped before optimizer": none to step here
        warnings.simplefilter("ignore", UserWarning)
        for step in range(total):
            lrs[step], beta1s[step] = group["lr"], group["betas"][0]
            scheduler.step()
    return lrs, beta1s
