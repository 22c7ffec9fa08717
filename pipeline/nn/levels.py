"""Learned embeddings of wide categories: each level of a code column as a vector of its own.

A categorical column with more levels than one-hot encoding keeps (`features.max_onehot_levels`)
reaches the network as one column of integer codes (`pipeline.level_codes.LevelCodes`: 1..L by
frequency, 0 for a level too rare or unseen when the preprocessing was fitted). Each model looks
each code up in its own table of `dim`-wide vectors, trained with the network, as RealMLP-TD
and the rtdl models embed categories (`../shared/docs/mlp-recipe.md`). The tables are ours,
not `rtdl`'s or `tabm`'s embedding modules: those hold one table for one model, and here K
models ([K, B, c] codes) look up K tables in one `embedding` call.

Shape: codes [K, B, c] (float codes, as the input matrix holds them) -> [K, B, c * dim].

>>> levels = LevelEmbedding(n_models=2, levels=[5, 3], dim=4)
>>> levels(torch.tensor([[[0., 2.]], [[4., 1.]]])).shape
torch.Size([2, 1, 8])
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class LevelEmbedding(nn.Module):
    """K models' tables of level vectors for c code columns of `levels[j]` codes each."""

    def __init__(self, n_models: int, levels: list[int], dim: int) -> None:
        super().__init__()
        self.levels = [int(n) for n in levels]
        self.dim = dim
        total = sum(self.levels)
        bound = 1.0 / math.sqrt(dim)  # rtdl's CategoricalEmbeddings initialisation
        self.table = nn.Parameter(torch.empty(n_models, total, dim).uniform_(-bound, bound))
        starts = torch.tensor([0] + self.levels[:-1]).cumsum(0)
        # derived from the architecture, so not part of the state
        self.register_buffer("starts", starts, persistent=False)
        self.register_buffer("last", torch.tensor(self.levels) - 1, persistent=False)
        self.register_buffer("model_starts", torch.arange(n_models).view(-1, 1, 1) * total,
                             persistent=False)

    @property
    def width(self) -> int:
        """The values each row gets: dim per code column."""
        return len(self.levels) * self.dim

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, B, c] -> the rows' level vectors side by side [K, B, c * dim]; a code out
        of a column's range (which its preprocessing never writes) reads the nearest level."""
        n_models, n_rows, _ = codes.shape
        index = torch.minimum(codes.long().clamp_(min=0), self.last)
        index = index + self.starts + self.model_starts
        flat = self.table.view(-1, self.dim)
        return F.embedding(index.view(n_models, -1), flat).view(n_models, n_rows, self.width)
