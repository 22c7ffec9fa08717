"""Embeddings of numeric inputs for K batched models: periodic (PLR, "lite").

Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning" (NeurIPS
2022): each numeric input x becomes ReLU(W [cos(2 pi c x), sin(2 pi c x)] + b), with
frequencies c ~ N(0, sigma) learned per feature and, in the "lite" form, one linear layer W
shared by the features. `rtdl_num_embeddings.PeriodicEmbeddings` is the reference; it holds
one model's parameters, while this trainer trains every fold's (and seed's) model as one
set of [K, ...] parameters in one pass, so the same arithmetic is written here batched.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PeriodicEmbedding(nn.Module):
    """x [K, B, n] -> [K, B, n * d]: a d-dimensional periodic embedding of each feature."""

    def __init__(self, n_models: int, n_features: int, d_embedding: int = 16,
                 n_frequencies: int = 48, sigma: float = 0.01) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.empty(n_models, 1, n_features, n_frequencies))
        self.weight = nn.Parameter(torch.empty(n_models, 2 * n_frequencies, d_embedding))
        self.bias = nn.Parameter(torch.empty(n_models, 1, d_embedding))
        self.n_features, self.d_embedding, self.sigma = n_features, d_embedding, sigma
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.frequencies.normal_(0.0, self.sigma)
            bound = 1.0 / math.sqrt(self.weight.shape[1])  # nn.Linear's initialisation
            self.weight.uniform_(-bound, bound)
            self.bias.uniform_(-bound, bound)

    @property
    def width(self) -> int:
        return self.n_features * self.d_embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_models, n_rows, n_features = x.shape
        angles = (2 * math.pi) * x.unsqueeze(-1) * self.frequencies  # [K, B, n, F]
        periodic = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        flat = periodic.view(n_models, n_rows * n_features, -1)
        out = torch.relu_(torch.baddbmm(self.bias, flat, self.weight))  # [K, B * n, d]
        return out.view(n_models, n_rows, n_features * self.d_embedding)
