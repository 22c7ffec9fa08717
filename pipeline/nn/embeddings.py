"""Embeddings of numeric inputs for K batched models: PBLD (RealMLP's periodic embedding) and
the piecewise-linear encoding (PLE) over per-fold quantile bins.

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


class PLEncoding(nn.Module):
    """x [K, B, n] -> [K, B, width]: the piecewise-linear encoding of each feature over its
    model's own quantile bins, then x.

    A feature whose bins have edges e_0 < ... < e_m becomes m numbers, the t-th
    clamp((x - e_t) / (e_{t+1} - e_t), 0, 1), the first open below and the last open above
    (Gorishniy et al., "On embeddings for numerical features", 2022; with the first layer
    after it, this is their MLP-PLE). The bins are quantiles of each model's training rows
    (`quantile_bins`), so every fold's model has its own, like the fold's other
    preprocessing; they are buffers, saved with the weights. A feature with fewer distinct
    quantiles than `n_bins` (a count, a code) has fewer bins: its leading bins take the first
    slots, its last bin the last slot, and the slots between stay zero. `slots` keeps only the
    slots some model uses (`used_slots`), so such features cost the first layer no more
    inputs than they have bins: width = len(slots) + n.

    `rtdl_num_embeddings.PiecewiseLinearEncoding` (whose arithmetic this mirrors: one
    product, one clamp, the last bin aligned to the last slot) holds one model's bins; here
    K models are trained as one set of [K, ...] tensors and each needs its own fold's bins.

    >>> enc = PLEncoding(n_models=2, n_features=3, n_bins=4)
    >>> _ = enc.fit(torch.randn(2, 100, 3))
    >>> enc(torch.zeros(2, 5, 3)).shape, enc.width
    (torch.Size([2, 5, 15]), 15)
    """

    BUFFERS = ("weight", "bias", "low", "high")

    def __init__(self, n_models: int, n_features: int, n_bins: int = 16,
                 slots: list[int] | None = None) -> None:
        super().__init__()
        self.slots = list(range(n_features * n_bins)) if slots is None else list(slots)
        for name in self.BUFFERS:  # [K, slots]: each kept slot's product and clamp
            self.register_buffer(name, torch.zeros(n_models, len(self.slots)))
        # the feature each kept slot encodes (derived from the architecture)
        self.register_buffer("slot_feature", torch.tensor(self.slots, dtype=torch.long)
                             // n_bins, persistent=False)
        self.n_features, self.n_bins = n_features, n_bins

    @property
    def width(self) -> int:
        return len(self.slots) + self.n_features

    @staticmethod
    @torch.no_grad()
    def quantile_bins(x: torch.Tensor, n_bins: int) -> dict[str, torch.Tensor]:
        """Each model's bins from its rows x [K, S, n]: the distinct values among the
        n_bins + 1 evenly spaced quantiles of each feature, as the encoding's buffers over
        every slot ([K, n * n_bins], feature by feature)."""
        n_models, _, n_features = x.shape
        out = {name: torch.zeros(n_models, n_features, n_bins) for name in PLEncoding.BUFFERS}
        out["high"].fill_(1.0)
        levels = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
        for k in range(n_models):
            quantiles = torch.quantile(x[k].double().cpu(), levels, dim=0)  # [n_bins + 1, n]
            for j in range(n_features):
                _set_bins(out, k, j, quantiles[:, j].unique(), n_bins)
        return {name: value.flatten(1) for name, value in out.items()}

    @staticmethod
    def used_slots(bins: dict[str, torch.Tensor]) -> list[int]:
        """The slots (feature * n_bins + slot) some model's bins use."""
        return bins["weight"].ne(0).any(dim=0).nonzero().squeeze(1).tolist()

    @torch.no_grad()
    def load_bins(self, bins: dict[str, torch.Tensor]) -> PLEncoding:
        """Take `quantile_bins`' buffers for this encoding's slots."""
        for name in self.BUFFERS:
            getattr(self, name).copy_(bins[name][:, self.slots])
        return self

    def fit(self, x: torch.Tensor) -> PLEncoding:
        """Set the bins from each model's rows x [K, S, n] (keeping this encoding's slots)."""
        return self.load_bins(self.quantile_bins(x, self.n_bins))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one product and one clamp per kept slot, reading the feature it encodes
        z = torch.addcmul(self.bias.unsqueeze(1), self.weight.unsqueeze(1),
                          x.index_select(-1, self.slot_feature))
        z = torch.clamp(z, min=self.low.unsqueeze(1), max=self.high.unsqueeze(1))
        return torch.cat([z, x], dim=-1)


def _set_bins(out: dict[str, torch.Tensor], k: int, j: int, edges: torch.Tensor,
              n_bins: int) -> None:
    """Model k's encoding of feature j over bins with these edges; a constant feature has
    none (all zeros)."""
    m = len(edges) - 1
    if m < 1:
        return
    slots = list(range(m - 1)) + [n_bins - 1]  # the last bin in the last slot
    for slot, left, size in zip(slots, edges[:-1].tolist(), edges.diff().tolist(),
                                strict=True):
        out["weight"][k, j, slot] = 1.0 / size
        out["bias"][k, j, slot] = -left / size
    out["low"][k, j, slots[0]] = -math.inf  # the first bin is open below (a lone bin too)
    out["high"][k, j, -1] = math.inf  # the last open above
