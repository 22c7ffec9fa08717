"""The MLP regressor: K independent MLPs stored as one batched module.

Each layer holds weights of shape [K, fan_in, fan_out], so all K fold models (or K seeds) run
in one `torch.baddbmm` per layer. K = 1 is an ordinary MLP. A layer with one output (the
output layer, the linear skip) is a multiply and a row sum instead: on the CPU a batched
matrix-vector product through `bmm` costs several times more than those two element-wise
passes. The models share nothing but the kernel launches: each has its own parameters,
initialised as `nn.Linear` would.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pipeline.nn.embeddings import PeriodicEmbedding

# relu runs in place: it is only applied to the fresh output of a layer's product
ACTIVATIONS = {"relu": torch.relu_, "silu": nn.functional.silu,
               "gelu": nn.functional.gelu, "tanh": torch.tanh}


class BatchedMLP(nn.Module):
    """`n_models` MLPs with `depth` hidden layers of `width` units and dropout, one output each."""

    def __init__(self, n_models: int, n_inputs: int, width: int, depth: int,
                 dropout: float = 0.0, activation: str = "relu",
                 linear_skip: bool = False, embed_cols: list[int] | None = None,
                 embedding: dict | None = None) -> None:
        """`embedding` ({d_embedding, n_frequencies, sigma}) turns the inputs `embed_cols`
        (the numeric ones) into periodic embeddings; the other inputs follow them as they are.
        The MLP's first layer then reads [embedded inputs, other inputs]."""
        super().__init__()
        self.input_width = n_inputs  # of x, before any embedding
        self.embed_cols = list(embed_cols or [])
        self.embedding_settings = dict(embedding or {})
        self.embedding = None
        if self.embedding_settings and self.embed_cols:
            self.embedding = PeriodicEmbedding(n_models, len(self.embed_cols),
                                               **self.embedding_settings)
            others = sorted(set(range(n_inputs)) - set(self.embed_cols))
            self.register_buffer("embed_index", torch.tensor(self.embed_cols))
            self.register_buffer("other_index", torch.tensor(others, dtype=torch.long))
            n_inputs = self.embedding.width + len(others)
        self.n_inputs = n_inputs  # of the first layer
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
        if self.embedding is not None:  # after the layers: their draws as without embedding
            self.embedding.reset_parameters()

    @property
    def linear_skip(self) -> bool:
        return self.skip is not None

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [n_models, rows, n_inputs] -> [n_models, rows]. x may also be inputs in a sparse
        layout with the method `affine(weight, bias)`, such as `pipeline.onehot.OneHotRows`."""
        if self.embedding is not None:
            if isinstance(x, torch.Tensor):
                x = torch.cat([self.embedding(x.index_select(-1, self.embed_index)),
                               x.index_select(-1, self.other_index)], dim=-1)
            else:  # the layout's dense values are the numeric inputs, its ones the others
                x = x.with_dense(self.embedding(x.dense_x))
        inputs = x
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = _affine(x, weight, bias)
            if i < last:
                x = self._act(x)
                if self.dropout > 0 and self.training:
                    x = x * dropout_mask(x.shape, self.dropout, x.device)
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


def dropout_mask(shape: torch.Size, p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Inverted-dropout multiplier: 0 with probability p, else 1/(1-p).

    Draws 64-bit words from torch's default generator and cuts each into four 15-bit uniform
    numbers (bit 63 of `random_()` is always 0, so each 16-bit piece's top bit is dropped).
    That is several times cheaper on the CPU than `bernoulli_`, which draws one number per
    element; p is resolved to 1/32768.
    """
    n = math.prod(shape)
    words = torch.empty(-(-n // 4), dtype=torch.int64, device=device).random_()
    uniform15 = words.view(torch.int16)[:n].bitwise_and_(0x7FFF)
    threshold = round(p * 32768)
    keep = uniform15 >= threshold
    return keep.view(shape).to(torch.float32).mul_(32768 / (32768 - threshold))


def predict_batched(model: BatchedMLP, mean: np.ndarray, std: np.ndarray, x: torch.Tensor,
                    target_range: tuple[np.ndarray, np.ndarray] | None = None,
                    chunk_rows: int = 65536) -> np.ndarray:
    """Run a BatchedMLP in eval mode in row chunks and undo the target standardization;
    clip to each model's target range when given. x [K, M, d] (or [M, d]) -> [K, M]."""
    x = x if x.dim() == 3 else x.unsqueeze(0)
    if x.shape[0] != model.n_models:
        x = x[torch.arange(model.n_models, device=x.device) % x.shape[0]]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        parts = [model(x[:, i:i + chunk_rows]) for i in range(0, x.shape[1], chunk_rows)]
    model.train(was_training)
    return to_model_scale(torch.cat(parts, dim=1), mean, std, target_range)


def to_model_scale(pred: torch.Tensor, mean: np.ndarray, std: np.ndarray,
                   target_range: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Standardized predictions [K, M] -> the target's model scale, clipped to a given range."""
    out = pred.double().cpu().numpy() * std[:, None] + mean[:, None]
    if target_range is not None:
        out = np.clip(out, target_range[0][:, None], target_range[1][:, None])
    return out
