"""The MLP regressor: K independent MLPs stored as one batched module.

Each layer holds weights of shape [K, fan_in, fan_out], so all K fold models (or seeds) run in
one `torch.baddbmm` per layer. K = 1 is an ordinary MLP. The models share nothing but the
kernel launches. On top of the plain MLP, each a choice of `model:` in params.yaml:

- a numeric embedding (`pipeline.nn.embeddings`) of the numeric inputs;
- learned vectors for the levels of wide categories (`pipeline.nn.levels`), read from
  leading columns of level codes;
- a learned scale per numeric input (and per embedding output) before the first layer,
  starting at 1 (RealMLP's "front scale");
- `members` > 1: TabM-style members, k sub-models of each model sharing its weights; member m
  multiplies the first layer's output by its own learned vector (random signs at the start)
  and has its own output head, so the k members see the same rows but compute different
  functions; the members' losses are averaged in training and their predictions in use;
- a linear skip term (wide & deep); dropout whose rate the trainer may change per step;
- data-dependent initialisation (`init_from_data`): each layer's weights rescaled so its
  outputs have unit spread on the training rows, and each bias set so the unit's kink falls
  among those rows (RealMLP's "std" and "he+5" initialisation).

Shape: x [K, B, d] (or `pipeline.nn.onehot.OneHotRows`) -> `forward` [K, B], the members'
mean; `forward_members` [K, k, B].

>>> mlp = BatchedMLP(n_models=3, n_inputs=5, width=8, depth=2, members=4)
>>> mlp.forward_members(torch.zeros(3, 7, 5)).shape, mlp(torch.zeros(3, 7, 5)).shape
(torch.Size([3, 4, 7]), torch.Size([3, 7]))
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pipeline.nn.embeddings import PBLDEmbedding, PLEncoding
from pipeline.nn.levels import LevelEmbedding

# relu runs in place: it is only applied to the fresh output of a layer's product
ACTIVATIONS = {"relu": torch.relu_, "silu": nn.functional.silu, "gelu": nn.functional.gelu,
               "tanh": torch.tanh, "mish": nn.functional.mish, "selu": torch.selu}
EMBEDDINGS = {"pbld": PBLDEmbedding, "ple": PLEncoding}
HE_PLUS_POINTS = 5  # rows whose pre-activations a bias is set among ("he+5")


class BatchedMLP(nn.Module):
    """`n_models` MLPs with `depth` hidden layers of `width` units, one output each."""

    def __init__(self, n_models: int, n_inputs: int, width: int, depth: int,
                 dropout: float = 0.0, activation: str = "relu",
                 linear_skip: bool = False, numeric_cols: list[int] | None = None,
                 embedding: dict | None = None, front_scale: bool = False,
                 members: int = 1, code_levels: list[int] | None = None,
                 code_dim: int = 8) -> None:
        """`numeric_cols`: the numeric inputs; `embedding` ({"kind": "pbld", n_frequencies,
        dim, sigma} or {"kind": "ple", n_bins, slots}) embeds them (a PLE's bins are loaded
        after construction: `embedding.load_bins`), `front_scale` scales them (after the
        embedding). `code_levels`: the first len(code_levels) inputs are level codes of wide
        categories, column j with code_levels[j] codes, each looked up as `code_dim` learned
        values (`pipeline.nn.levels`). The first layer reads [numeric part, level vectors,
        other inputs]: the numeric inputs (or their embeddings), then the codes' vectors, then
        the 0/1 columns in their order."""
        super().__init__()
        self.input_width = n_inputs  # of x, before any embedding
        self.numeric_cols = list(numeric_cols or [])
        self.code_levels = [int(n) for n in code_levels or []]
        self.code_dim = code_dim
        codes = list(range(len(self.code_levels)))
        self.embedding_settings = dict(embedding or {})
        self.embedding = None
        others = sorted(set(range(n_inputs)) - set(self.numeric_cols) - set(codes))
        # where the numeric inputs and the codes sit among the dense (not 0/1) columns, which
        # a one-hot layout holds in column order
        dense = sorted(self.numeric_cols + codes)
        # derived from the architecture, so not part of the state
        for name, index in (("numeric_index", self.numeric_cols), ("other_index", others),
                            ("code_index", codes),
                            ("dense_numeric", [dense.index(c) for c in self.numeric_cols]),
                            ("dense_codes", [dense.index(c) for c in codes])):
            self.register_buffer(name, torch.tensor(index, dtype=torch.long), persistent=False)
        numeric_width = len(self.numeric_cols)
        if self.embedding_settings and self.numeric_cols:
            settings = dict(self.embedding_settings)
            kind = EMBEDDINGS[settings.pop("kind", "pbld")]
            self.embedding = kind(n_models, len(self.numeric_cols), **settings)
            numeric_width = self.embedding.width
        self.scale = (nn.Parameter(torch.ones(n_models, 1, numeric_width))
                      if front_scale and numeric_width else None)
        self.levels = (LevelEmbedding(n_models, self.code_levels, code_dim) if codes
                       else None)
        if self.levels is not None:
            numeric_width += self.levels.width
        self.numeric_width = numeric_width  # first-layer inputs before the 0/1 columns
        self.n_inputs = numeric_width + len(others)  # of the first layer
        # hidden layers, then the output layer (replaced by one head per member)
        sizes = [self.n_inputs] + [width] * depth + ([1] if members == 1 else [])
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(torch.empty(n_models, fan_in, fan_out)
                                             .uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_models, 1, fan_out)
                                            .uniform_(-bound, bound)))
        self.members = members
        self.member_scale = self.head = self.head_bias = None
        if members > 1:
            bound = 1.0 / math.sqrt(width)
            self.head = nn.Parameter(torch.empty(n_models, members, 1, width)
                                     .uniform_(-bound, bound))
            self.head_bias = nn.Parameter(torch.empty(n_models, members, 1)
                                          .uniform_(-bound, bound))
            signs = torch.randint(0, 2, (n_models, members, 1, width)).float() * 2 - 1
            self.member_scale = nn.Parameter(signs)
        # wide & deep: an optional linear term of the inputs, so the hidden layers only need to
        # learn what a (weight-decayed) linear model misses; starts at zero
        self.skip = (nn.Parameter(torch.zeros(n_models, self.n_inputs, 1)) if linear_skip
                     else None)
        self.dropout = dropout
        self.activation = activation
        self._act = ACTIVATIONS[activation]
        if isinstance(self.embedding, PBLDEmbedding):  # after the layers: their draws as
            self.embedding.reset_parameters()  # without an embedding

    @property
    def linear_skip(self) -> bool:
        return self.skip is not None

    @property
    def n_models(self) -> int:
        return self.weights[0].shape[0]

    @property
    def width(self) -> int:
        return self.weights[0].shape[2]

    @property
    def depth(self) -> int:
        return len(self.biases) - (0 if self.members > 1 else 1)

    def architecture(self) -> dict:
        """The constructor's arguments: the module rebuilds from them and its state."""
        return {"n_models": self.n_models, "n_inputs": self.input_width, "width": self.width,
                "depth": self.depth, "dropout": self.dropout, "activation": self.activation,
                "linear_skip": self.linear_skip, "numeric_cols": self.numeric_cols,
                "embedding": self.embedding_settings or None,
                "front_scale": self.scale is not None, "members": self.members,
                "code_levels": self.code_levels, "code_dim": self.code_dim}

    def first_layer_inputs(self, x):
        """The first layer's inputs: the numeric inputs embedded and scaled, the codes' level
        vectors, then the others (a [K, B, n_inputs] tensor, or OneHotRows whose dense part
        is the numeric inputs and the codes)."""
        if self.embedding is None and self.scale is None and self.levels is None:
            return x
        dense = x if isinstance(x, torch.Tensor) else x.dense_x
        if self.levels is None:
            numeric = (x.index_select(-1, self.numeric_index) if isinstance(x, torch.Tensor)
                       else dense)  # a layout's dense values are the numeric inputs
        else:
            index = self.numeric_index if isinstance(x, torch.Tensor) else self.dense_numeric
            numeric = dense.index_select(-1, index)
        if self.embedding is not None:
            numeric = self.embedding(numeric)
        if self.scale is not None:
            numeric = numeric * self.scale
        if self.levels is not None:
            index = self.code_index if isinstance(x, torch.Tensor) else self.dense_codes
            numeric = torch.cat([numeric, self.levels(dense.index_select(-1, index))], dim=-1)
        if isinstance(x, torch.Tensor):
            return torch.cat([numeric, x.index_select(-1, self.other_index)], dim=-1)
        return x.with_dense(numeric)

    def forward_members(self, x) -> torch.Tensor:
        """x [K, B, d] (or OneHotRows) -> each member's prediction [K, k, B]."""
        inputs = self.first_layer_inputs(x)
        n_models = self.n_models
        hidden = inputs
        last = len(self.weights) - (0 if self.members > 1 else 1)
        for i in range(last):
            hidden = _affine(hidden, self.weights[i], self.biases[i])
            if i == 0 and self.members > 1:  # [K, B, w] -> [K, k * B, w]
                hidden = (hidden.unsqueeze(1) * self.member_scale).flatten(1, 2)
            hidden = self._act(hidden)
            if self.dropout > 0 and self.training:
                hidden = hidden * dropout_mask(hidden.shape, self.dropout, hidden.device)
        if self.members > 1:
            rows = hidden.view(n_models, self.members, -1, hidden.shape[-1])
            out = (rows * self.head).sum(-1) + self.head_bias  # [K, k, B]
        else:
            out = _affine(hidden, self.weights[-1], self.biases[-1]).view(n_models, 1, -1)
        if self.skip is not None:
            zero = torch.zeros(n_models, 1, 1, device=self.skip.device)
            out = out + _affine(inputs, self.skip, zero).view(n_models, 1, -1)
        return out

    def forward(self, x) -> torch.Tensor:
        """x [K, B, d] (or OneHotRows) -> the members' mean prediction [K, B]."""
        return self.forward_members(x).mean(dim=1)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The parameters by kind, for per-kind learning rates (`pipeline.nn.optim`):
        "weights" (one list per layer, in order), "biases", "scale", "embedding", "members"
        (the member vectors and heads), "skip"."""
        groups = {"weights": list(self.weights), "biases": list(self.biases),
                  "scale": [self.scale] if self.scale is not None else [],
                  "embedding": ((list(self.embedding.parameters()) if self.embedding else [])
                                + ([self.levels.table] if self.levels is not None else [])),
                  "members": ([self.member_scale, self.head, self.head_bias]
                              if self.members > 1 else []),
                  "skip": [self.skip] if self.skip is not None else []}
        return groups

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """Data-dependent initialisation on a sample of training rows x [K, S, d] (dense):
        layer by layer, the weights rescaled so each unit's pre-activation has unit spread
        over the rows, and its bias minus a random convex combination of HE_PLUS_POINTS
        rows' pre-activations, so the unit's kink falls among the data."""
        hidden = self.first_layer_inputs(x)
        hidden_layers = len(self.weights) - (0 if self.members > 1 else 1)
        for i in range(hidden_layers):
            weight, bias = self.weights[i], self.biases[i]
            pre = torch.bmm(hidden, weight)
            spread = pre.std(dim=1, correction=0, keepdim=True)  # [K, 1, out]
            weight.div_(torch.where(spread > 0, spread, torch.ones_like(spread)))
            pre = torch.bmm(hidden, weight)
            bias.copy_(-_convex_rows(pre, generator))
            hidden = self._act(pre + bias)
            if i == 0 and self.members > 1:
                hidden = self._act((pre + bias).unsqueeze(1) * self.member_scale).flatten(1, 2)


def _convex_rows(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per model and column of values [K, S, C]: a convex combination of HE_PLUS_POINTS
    random rows (exponential weights, normalised): [K, 1, C]."""
    n_models, n_rows, n_cols = values.shape
    rows = torch.randint(0, n_rows, (n_models, HE_PLUS_POINTS, n_cols), generator=generator,
                         device=values.device)
    weights = -torch.log(torch.rand(n_models, HE_PLUS_POINTS, n_cols, generator=generator,
                                    device=values.device).clamp_min(1e-12))
    weights = weights / weights.sum(dim=1, keepdim=True)
    return (values.gather(1, rows) * weights).sum(dim=1, keepdim=True)


def _affine(x, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
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
