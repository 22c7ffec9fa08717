"""The MLP regressor: K independent MLPs stored as one batched module.

Each layer holds weights of shape [K, fan_in, fan_out], so all K fold models (or K seeds) run
in one `torch.baddbmm` per layer. K = 1 is an ordinary MLP. A layer with one output (the
output layer, the linear skip) is a multiply and a row sum instead: on the CPU a batched
matrix-vector product through `bmm` costs ~5x more than those two element-wise passes. The
models share nothing but the kernel launches: each has its own parameters, initialised as
`nn.Linear` would.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# relu runs in place: it is only applied to the fresh output of a layer's product
ACTIVATIONS = {"relu": torch.relu_, "silu": nn.functional.silu,
               "gelu": nn.functional.gelu, "tanh": torch.tanh}


class BatchedMLP(nn.Module):
    """`n_models` MLPs with `depth` hidden layers of `width` units and dropout, one output each."""

    def __init__(self, n_models: int, n_inputs: int, width: int, depth: int,
                 dropout: float = 0.0, activation: str = "relu",
                 linear_skip: bool = False) -> None:
        super().__init__()
        sizes = [n_inputs] + [width] * depth + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(torch.empty(n_models, fan_in, fan_out)
                                             .uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_models, 1, fan_out)
                                            .uniform_(-bound, bound)))
        # wide & deep: an optional linear term of the inputs, so the hidden layers only need to
        # learn what a (weight-decayed) linear model misses; starts at zero
        self.skip = (nn.Parameter(torch.zeros(n_models, n_inputs, 1)) if linear_skip
                     else None)
        self.dropout = dropout
        self.activation = activation
        self._act = ACTIVATIONS[activation]

    @property
    def linear_skip(self) -> bool:
        return self.skip is not None

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [n_models, rows, n_inputs] -> [n_models, rows]. x may also be inputs in a sparse
        layout with the method `affine(weight, bias)`, such as `pipeline.onehot.OneHotRows`."""
        inputs = x
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = _affine(x, weight, bias)
            if i < last:
                x = self._act(x)
                if self.dropout > 0 and self.training:
                    x = x * dropout_mask(x.shape, self.dropout)
        if self.skip is not None:
            x = _affine(inputs, self.skip, x)
        return x.squeeze(-1)


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """bias + x @ weight for x [K, rows, fan_in], weight [K, fan_in, fan_out]."""
    if not isinstance(x, torch.Tensor):  # inputs in another layout (pipeline.onehot.OneHotRows)
        return x.affine(weight, bias)
    if weight.shape[2] == 1:
        return bias + (x * weight.transpose(1, 2)).sum(-1, keepdim=True)
    return torch.baddbmm(bias, x, weight)


def dropout_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """Inverted-dropout multiplier: 0 with probability p, else 1/(1-p).

    Draws 64-bit words from torch's default generator and cuts each into four 15-bit uniform
    numbers (bit 63 of `random_()` is always 0, so each 16-bit piece's top bit is dropped).
    That is several times cheaper on the CPU than `bernoulli_`, which draws one number per
    element; p is resolved to 1/32768.
    """
    n = math.prod(shape)
    words = torch.empty(-(-n // 4), dtype=torch.int64).random_()
    uniform15 = words.view(torch.int16)[:n].bitwise_and_(0x7FFF)
    threshold = round(p * 32768)
    keep = uniform15 >= threshold
    return keep.view(shape).to(torch.float32).mul_(32768 / (32768 - threshold))
