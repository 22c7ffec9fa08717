"""Embeddings of numeric inputs for K batched models: PBLD (RealMLP's periodic embedding).

Each numeric input x becomes `dim` learned linear combinations of cos(2 pi w_f x + b_f) over
`n_frequencies` learned frequencies w_f ~ N(0, sigma) and phases b_f ~ U(-pi, pi), followed
by x itself: `dim + 1` numbers per feature, every feature with its own frequencies and linear
map ("periodic, bias, linear, densenet": Holzmueller et al., "Better by default", 2024;
pytabkit's `PLREmbeddingsLayerCosBias`). It lets the first layer cut a feature into several
bumps and steps without a hidden unit per bump; RealMLP trains it at a tenth of the
learning rate (`pipeline.nn.optim`).

`rtdl_num_embeddings.PeriodicEmbeddings` and pytabkit's layer hold one model's parameters;
this trainer trains every fold's (and seed's) model as one set of [K, ...] parameters in one
pass, so the same arithmetic is written batched here.

Shape: x [K, B, n] -> [K, B, n * (dim + 1)]; parameters [K, 1, n, F] (frequencies,
phases), [K, n, F, dim] and [K, 1, n, dim] (the per-feature linear map).

>>> emb = PBLDEmbedding(n_models=2, n_features=3, n_frequencies=4, dim=3)
>>> emb(torch.zeros(2, 5, 3)).shape, emb.width
(torch.Size([2, 5, 12]), 12)
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PBLDEmbedding(nn.Module):
    """x [K, B, n] -> [K, B, n * (dim + 1)]: a periodic embedding of each feature, then x."""

    def __init__(self, n_models: int, n_features: int, n_frequencies: int = 16, dim: int = 3,
                 sigma: float = 0.1) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.empty(n_models, 1, n_features, n_frequencies))
        self.phases = nn.Parameter(torch.empty(n_models, 1, n_features, n_frequencies))
        self.weight = nn.Parameter(torch.empty(n_models, n_features, n_frequencies, dim))
        self.bias = nn.Parameter(torch.empty(n_models, 1, n_features, dim))
        self.n_features, self.dim, self.sigma = n_features, dim, sigma
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.frequencies.normal_(0.0, self.sigma)
            self.phases.uniform_(-math.pi, math.pi)
            bound = 1.0 / math.sqrt(self.weight.shape[2])  # nn.Linear's initialisation
            self.weight.uniform_(-bound, bound)
            self.bias.uniform_(-bound, bound)

    @property
    def width(self) -> int:
        return self.n_features * (self.dim + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_models, n_rows, n_features = x.shape
        waves = torch.cos(torch.addcmul(self.phases, x.unsqueeze(-1), self.frequencies,
                                        value=2 * math.pi))  # [K, B, n, F]
        # the per-feature linear map as one batched product over (model, feature) pairs
        per_feature = waves.permute(0, 2, 1, 3).reshape(n_models * n_features, n_rows, -1)
        mapped = torch.bmm(per_feature, self.weight.reshape(n_models * n_features, -1,
                                                            self.dim))
        mapped = mapped.view(n_models, n_features, n_rows, self.dim).permute(0, 2, 1, 3)
        out = torch.cat([mapped + self.bias, x.unsqueeze(-1)], dim=-1)  # [K, B, n, dim + 1]
        return out.reshape(n_models, n_rows, n_features * (self.dim + 1))
