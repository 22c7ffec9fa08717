"""The one training loop: K MLPs trained at once on their own rows, MSE on the model scale.

The target is already on the model scale (log prices for a log-RMSE metric), so the MSE loss
here is the squared log-RMSE. Each model standardizes the target with its own training rows'
mean and spread. Data stays in tensors: no DataLoader, no per-step host synchronisation;
validation (early stopping, pruning callbacks) runs every `eval_every` epochs. The steps:
target scaling, the model (its input layout, its data-dependent start), the optimizer's
parameter groups and the per-step schedules, then epochs of minibatch steps, each followed
by a checkpoint when one is due, and the kept weights.

Returns values; never logs or writes files.

Shape: x [M, N, d] float32 (one preprocessed copy of the N rows per fold; [N, d] for one
shared matrix), y [N]; K = len(train_rows) models, model k training on rows train_rows[k] of
matrix k % M; `predict_mlps` [K, rows]; `history` arrays [checkpoints, K].

>>> x, y = torch.randn(2, 64, 3), torch.randn(64, dtype=torch.float64)
>>> cfg = ModelConfig(width=8, epochs=2, batch_size=16, lr=1e-3, eval_every=1)
>>> rows = [np.arange(0, 32), np.arange(32, 64)]
>>> trained = fit_mlps(x, y, rows, rows[::-1], cfg, seed=0)
>>> predict_mlps(trained, x).shape, trained.history["val_rmse"].shape
((2, 64), (2, 2))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.config import ModelConfig
from pipeline.nn.embeddings import PLEncoding
from pipeline.nn.model import BatchedMLP, predict_batched, to_model_scale
from pipeline.nn.onehot import OneHotLayout, OneHotRows, binary_columns, onehot_layout
from pipeline.nn.optim import GroupedAdamW, ParamGroup
from pipeline.nn.schedule import Schedules, schedules

# Called at every validation checkpoint with (epoch, validation RMSE of each model); it may
# raise to stop training (an Optuna pruning callback raises TrialPruned).
CheckpointCallback = Callable[[int, np.ndarray], None]
# Called after every epoch's training steps with the epoch number (progress, timing).
EpochCallback = Callable[[int], None]
STEPS_PER_GATHER = 16  # minibatches cut from one gathered block of rows
INIT_ROWS = 1024  # training rows per model the data-dependent initialisation looks at
BIN_ROWS = 65536  # training rows per model a piecewise-linear encoding's quantiles come from
# RealMLP's learning-rate and weight-decay factors per kind of parameter (the NTK
# parametrization: a layer's weights learn at lr / sqrt(fan_in), see pipeline.nn.optim)
LR_FACTORS = {"biases": 0.1, "scale": 6.0, "embedding": 0.1, "members": 1.0, "skip": 1.0}
DECAY_FACTORS = {"biases": 0.0, "scale": 6.0, "embedding": 0.1, "members": 0.0, "skip": 1.0}
BatchInputs = Callable[[int, int], "torch.Tensor | OneHotRows"]


@dataclass
class TrainedMLPs:
    """K trained models (best validation checkpoint each) and how they got there."""

    model: BatchedMLP
    target_mean: np.ndarray  # [K] the target standardization of each model
    target_std: np.ndarray  # [K]
    target_range: tuple[np.ndarray, np.ndarray] | None  # [K] bounds predictions are clipped to
    val_predictions: list[np.ndarray]  # per model, on the model scale, in val_rows order
    best_epoch: np.ndarray  # [K] epoch of the kept weights (the last epoch unless early stopping)
    epochs_run: int
    history: dict[str, np.ndarray]  # "epoch" [E], "train_rmse" [E, K], "val_rmse" [E, K]


@dataclass
class _Rows:
    """Row indices per model, padded to one width: idx [K, n] and validity mask [K, n]."""

    idx: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def of(cls, rows: Sequence[np.ndarray], device: torch.device) -> _Rows:
        width = max(len(r) for r in rows)
        idx = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for k, r in enumerate(rows):
            idx[k, : len(r)] = torch.as_tensor(np.asarray(r), dtype=torch.long)
            mask[k, : len(r)] = True
        return cls(idx.to(device), mask.to(device))

    @property
    def counts(self) -> torch.Tensor:
        return self.mask.sum(dim=1)


def fit_mlps(x: torch.Tensor, y: torch.Tensor, train_rows: Sequence[np.ndarray],
             val_rows: Sequence[np.ndarray] | None, cfg: ModelConfig, seed: int,
             on_checkpoint: CheckpointCallback | None = None,
             onehot_lookup: bool = True,
             on_epoch: EpochCallback | None = None, device: str = "cpu",
             score_rows: Sequence[np.ndarray] | None = None,
             code_levels: Sequence[int] = ()) -> TrainedMLPs:
    """Train K MLPs; model k sees rows `train_rows[k]` of `x[k]` and is validated on `val_rows[k]`.

    x: [M, N, d] float32, M preprocessed copies of the rows (one per fold); model k reads
       matrix k % M, so K = M * n_seeds trains several seeds per fold in one batch. [N, d] is
       one matrix shared by all models.
    y: [N] target on the model scale, best float64: its mean and spread and the validation
       errors are computed in float64 (a target of 1e20 squares past float32's range, and
       float32 spaces numbers near 1e9 by 64); the training steps run in float32.
    onehot_lookup: train on x's 0/1 columns as lookups (`pipeline.onehot`) where that pays:
       the same models up to float rounding, with fewer multiplies.
    score_rows: per model, a boolean mask over its `val_rows`: the rows its validation RMSE
       (checkpoints, history, early stopping) is computed on, e.g. those a tuning objective
       scores; default all (a model with none to score is scored on all). Every validation
       row is still predicted.
    code_levels: x's first len(code_levels) columns are level codes of wide categories
       (`pipeline.level_codes.LevelCodes`), column j with code_levels[j] codes, each learned as
       a vector (`model.category_embedding_dim` values).
    cfg must be resolved: no "auto" size left (pipeline.plan fills them in).
    device: where the data, the models and every step live ("cpu" or "cuda"); the returned
    models and arrays are on the CPU.
    """
    if not cfg.resolved:
        raise ValueError("the model config has 'auto' sizes: apply a pipeline.plan.Plan first")
    x = x if x.dim() == 3 else x.unsqueeze(0)
    if len(train_rows) % x.shape[0]:
        raise ValueError(f"{len(train_rows)} models cannot share {x.shape[0]} matrices evenly")
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        trained = _Training(x.to(dev), y.to(dev, torch.float64), train_rows, val_rows,
                            score_rows, cfg, seed, onehot_lookup,
                            code_levels).run(on_checkpoint, on_epoch)
    trained.model.cpu()
    return trained


def predict_mlps(trained: TrainedMLPs, x: torch.Tensor, chunk_rows: int = 65536) -> np.ndarray:
    """Predictions of each model on the model scale: x [K, M, d] (or [M, d]) -> [K, M]."""
    return predict_batched(trained.model, trained.target_mean, trained.target_std, x,
                           trained.target_range, chunk_rows)


class _Training:
    """One call of fit_mlps: the data, the model, the optimizer and the schedules."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, train_rows: Sequence[np.ndarray],
                 val_rows: Sequence[np.ndarray] | None,
                 score_rows: Sequence[np.ndarray] | None, cfg: ModelConfig, seed: int,
                 onehot_lookup: bool, code_levels: Sequence[int] = ()) -> None:
        self.cfg = cfg
        self.code_levels = [int(n) for n in code_levels]
        dev = x.device
        self.n_models = len(train_rows)
        self.x_flat = x.reshape(-1, x.shape[2])  # rows are read with _gather_rows
        models = (torch.arange(self.n_models, device=dev) % x.shape[0]).unsqueeze(1)
        self.row_base = models * x.shape[1]  # where model k's matrix starts in x_flat
        self.train = _Rows.of(train_rows, dev)
        self.y = y  # float64: the scaling and the validation errors stay exact for any size
        self.mean, self.std = _target_scaling(y, self.train)
        self.y_scaled = ((y.unsqueeze(0) - self.mean[:, None]) / self.std[:, None]).float()
        self.generator = torch.Generator(device=dev).manual_seed(seed)
        self.has_val = val_rows is not None and all(len(v) for v in val_rows)
        if self.has_val:
            self.val = _Rows.of(val_rows, dev)
            self.score_mask = self.val.mask  # the validation rows a checkpoint scores
            if score_rows is not None:
                self.score_mask = _score_mask(score_rows, self.val.mask)
        self.model = self._build_model().to(dev)
        dense_width = (self.model.numeric_width
                       if self.model.embedding is not None or self.model.scale is not None
                       or self.model.levels is not None else None)
        self.layout = (onehot_layout(self.x_flat, dense_width, len(self.code_levels))
                       if onehot_lookup else None)
        if cfg.init == "data":
            self.model.init_from_data(self._sample_rows(INIT_ROWS), self.generator)
        groups = _param_groups(self.model, cfg)
        self.optimizer = GroupedAdamW(groups, beta2=cfg.adam_beta2)
        first = self.model.weights[0]
        self.input_lr_factor = next(g.lr_factor for g in groups
                                    if any(p is first for p in g.params))
        self.steps_per_epoch = -(-self.train.idx.shape[1] // cfg.batch_size)
        self.schedules: Schedules = schedules(
            cfg.epochs * self.steps_per_epoch, cfg.lr, cfg.lr_schedule, cfg.dropout,
            cfg.dropout_schedule, cfg.weight_decay, cfg.weight_decay_schedule)
        self.step_no = 0

    def run(self, on_checkpoint: CheckpointCallback | None,
            on_epoch: EpochCallback | None) -> TrainedMLPs:
        """Epochs of minibatch steps, each followed by a checkpoint when one is due; then
        the kept weights."""
        cfg = self.cfg
        # Early stopping keeps each model's best validation checkpoint. That choice is made on
        # the validation fold, so it flatters the OOF score a little; patience 0 keeps the last
        # epoch.
        early_stopping = self.has_val and cfg.patience > 0
        best = _Best.start(self.optimizer.params, self.n_models, early_stopping,
                           self.x_flat.device)
        history: dict[str, list] = {"epoch": [], "train_rmse": [], "val_rmse": []}
        loss_sum = torch.zeros(self.n_models, device=self.x_flat.device)
        loss_count = torch.zeros_like(loss_sum)
        epoch = 0
        for epoch in range(1, cfg.epochs + 1):
            self._train_epoch(loss_sum, loss_count)
            if on_epoch is not None:
                on_epoch(epoch)
            if epoch % cfg.eval_every and epoch != cfg.epochs:
                continue
            self._checkpoint(epoch, loss_sum, loss_count, best, history, on_checkpoint)
            if early_stopping and best.waited(epoch, cfg.patience):
                break
        best.restore(self.optimizer.params, epoch)
        return self._result(best.epoch, epoch, history)

    def _checkpoint(self, epoch: int, loss_sum: torch.Tensor, loss_count: torch.Tensor,
                    best: _Best, history: dict[str, list],
                    on_checkpoint: CheckpointCallback | None) -> None:
        """The training RMSE since the last checkpoint and each model's validation RMSE into
        `history`; the best checkpoint so far into `best`; then `on_checkpoint` (which may
        raise to stop training)."""
        train_rmse = (torch.sqrt(loss_sum.double() / loss_count.clamp_min(1.0))
                      * self.std).cpu().numpy()
        loss_sum.zero_()
        loss_count.zero_()
        history["epoch"].append(epoch)
        history["train_rmse"].append(train_rmse)
        if not self.has_val:
            history["val_rmse"].append(np.full(self.n_models, np.nan))
            return
        val_rmse = self._validation_rmse()
        val_rmse_np = val_rmse.cpu().numpy()  # the checkpoint's one host copy
        history["val_rmse"].append(val_rmse_np)
        best.update(self.optimizer.params, val_rmse, epoch)
        if on_checkpoint is not None:
            on_checkpoint(epoch, val_rmse_np)

    def _train_epoch(self, loss_sum: torch.Tensor, loss_count: torch.Tensor) -> None:
        """One pass over every model's training rows in a fresh order, minibatch by
        minibatch; the squared errors are added to loss_sum (and their count)."""
        cfg, model, s = self.cfg, self.model, self.schedules
        model.train()
        # Rows are shuffled per model; invalid (padding) slots sort to the end, so a batch
        # needs masking only past the shortest model's row count, known without a host sync.
        keys = torch.rand(self.train.idx.shape, generator=self.generator,
                          device=self.train.idx.device)
        keys.masked_fill_(~self.train.mask, 2.0)
        order = keys.argsort(dim=1)
        epoch_idx = self.train.idx.gather(1, order)
        epoch_mask = self.train.mask.gather(1, order)
        always_full = int(self.train.counts.min())
        gather_rows = cfg.batch_size * STEPS_PER_GATHER
        input_weights = [model.weights[0]] + ([model.skip] if model.skip is not None else [])
        for chunk in range(0, epoch_idx.shape[1], gather_rows):
            # one gather for many steps: bounded memory, few copies
            idx = epoch_idx[:, chunk:chunk + gather_rows]
            batch_inputs = _gathered_inputs(self.x_flat, self.layout, self.row_base, idx)
            y_chunk = self.y_scaled.gather(1, idx)
            for start in range(0, idx.shape[1], cfg.batch_size):
                stop = start + cfg.batch_size
                step = self.step_no
                model.dropout = float(s.dropout[step])
                pred = model.forward_members(batch_inputs(start, stop))  # [K, k, B]
                # each member's own loss, averaged: the mean of the members' losses
                sq_err = ((pred - y_chunk[:, None, start:stop]) ** 2).mean(dim=1)
                if chunk + stop <= always_full:
                    count = torch.full((self.n_models,), float(sq_err.shape[1]),
                                       device=sq_err.device)
                else:
                    mask = epoch_mask[:, chunk + start:chunk + stop].float()
                    sq_err = sq_err * mask
                    count = mask.sum(1)
                err_sum = sq_err.sum(1)
                self.optimizer.zero_grad()
                (err_sum / count.clamp_min(1.0)).sum().backward()  # each model: its own mean
                self.optimizer.step(float(s.lr[step]), float(s.beta1[step]),
                                    float(s.weight_decay[step]))
                if cfg.input_l1 > 0:  # at the input layer's own rate, as its decay
                    _shrink(input_weights, float(s.lr[step]) * self.input_lr_factor
                            * cfg.input_l1)
                self.step_no += 1
                with torch.no_grad():
                    loss_sum += err_sum
                    loss_count += count

    def _validation_rmse(self) -> torch.Tensor:
        """Each model's RMSE (model scale, float64) on its scored validation rows: [K]."""
        pred = _predict_rows(self.model, self.x_flat, self.row_base, self.val.idx)
        err = (pred.double() * self.std[:, None] + self.mean[:, None]
               - self.y[self.val.idx]) ** 2
        mask = self.score_mask
        return torch.sqrt((err * mask).sum(1) / mask.sum(1).clamp_min(1))

    def _build_model(self) -> BatchedMLP:
        """The model cfg describes, for inputs whose numeric (not 0/1) columns are those of
        x; a piecewise-linear encoding gets each model's bins from its own training rows
        first (which slots they use sets the first layer's width)."""
        cfg, x_flat, n_codes = self.cfg, self.x_flat, len(self.code_levels)
        numeric = [c for c in (~binary_columns(x_flat)).nonzero().squeeze(1).tolist()
                   if c >= n_codes]
        embedding, bins = None, None
        if cfg.numeric_embedding == "pbld":
            embedding = {"kind": "pbld", "n_frequencies": cfg.embedding_frequencies,
                         "dim": cfg.embedding_dim, "sigma": cfg.embedding_scale}
        elif cfg.numeric_embedding == "ple" and numeric:
            sample = self._sample_rows(BIN_ROWS)[..., numeric]
            bins = PLEncoding.quantile_bins(sample, cfg.ple_bins)
            embedding = {"kind": "ple", "n_bins": cfg.ple_bins,
                         "slots": PLEncoding.used_slots(bins)}
        model = BatchedMLP(self.n_models, x_flat.shape[1], cfg.width, cfg.depth, cfg.dropout,
                           cfg.activation, cfg.linear_skip, numeric, embedding,
                           cfg.front_scale, cfg.members, self.code_levels,
                           cfg.category_embedding_dim)
        if bins is not None:
            model.embedding.load_bins(bins)
        return model

    def _sample_rows(self, most: int) -> torch.Tensor:
        """Up to `most` random training rows of each model, as a dense [K, S, d] tensor."""
        n = min(most, int(self.train.counts.min()))
        keys = torch.rand(self.train.idx.shape, generator=self.generator,
                          device=self.train.idx.device)
        keys.masked_fill_(~self.train.mask, 2.0)
        idx = self.train.idx.gather(1, keys.argsort(dim=1)[:, :n])
        return _gather_rows(self.x_flat, self.row_base, idx)

    def _result(self, best_epoch: torch.Tensor, epochs_run: int,
                history: dict[str, list]) -> TrainedMLPs:
        mean_np, std_np = self.mean.cpu().numpy(), self.std.cpu().numpy()
        target_range = None
        if self.cfg.clip_to_target_range:  # never predict beyond the targets fitted on
            fitted = torch.where(self.train.mask, self.y[self.train.idx], math.nan)
            fitted = fitted.cpu().numpy()
            target_range = (np.nanmin(fitted, axis=1), np.nanmax(fitted, axis=1))
        val_predictions = []
        if self.has_val:
            pred = to_model_scale(_predict_rows(self.model, self.x_flat, self.row_base,
                                                self.val.idx), mean_np, std_np, target_range)
            counts = self.val.counts.cpu().numpy()
            val_predictions = [pred[k, : counts[k]] for k in range(self.n_models)]
        self.model.eval()
        self.model.dropout = self.cfg.dropout  # the architecture's rate, not the last step's
        return TrainedMLPs(model=self.model, target_mean=mean_np, target_std=std_np,
                           target_range=target_range, val_predictions=val_predictions,
                           best_epoch=best_epoch.cpu().numpy(), epochs_run=epochs_run,
                           history={k: np.asarray(v) for k, v in history.items()})


def _score_mask(score_rows: Sequence[np.ndarray], val_mask: torch.Tensor) -> torch.Tensor:
    """The validation rows each model is scored on, padded as `val_mask`: its `score_rows`
    mask, or all its rows when that mask holds none."""
    mask = torch.zeros_like(val_mask)
    for k, rows in enumerate(score_rows):
        rows = torch.as_tensor(np.asarray(rows, dtype=bool))
        if len(rows) != int(val_mask[k].sum()):
            raise ValueError(f"score_rows[{k}] has {len(rows)} entries for "
                             f"{int(val_mask[k].sum())} validation rows")
        mask[k, : len(rows)] = rows.to(mask.device) if rows.any() else True
    return mask


def _target_scaling(y: torch.Tensor, rows: _Rows) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's target mean and spread over its training rows (float64, [K] each); a
    constant target gets spread 1."""
    values = y[rows.idx]
    counts = rows.counts.double()
    mean = (values * rows.mask).sum(1) / counts
    std = torch.sqrt((((values - mean[:, None]) ** 2) * rows.mask).sum(1) / counts)
    return mean, torch.where(std > 0, std, torch.ones_like(std))




def _param_groups(model: BatchedMLP, cfg: ModelConfig) -> list[ParamGroup]:
    """The optimizer's groups: with `parametrization: ntk`, RealMLP's factors (each layer's
    weights at lr / sqrt(fan_in), LR_FACTORS and DECAY_FACTORS for the rest); with
    `standard`, one rate and one decay for every parameter, as plain AdamW."""
    kinds = model.parameter_groups()
    if cfg.parametrization == "standard":
        return [ParamGroup([p for params in kinds.values() for p in params])]
    groups = [ParamGroup([w], lr_factor=1 / math.sqrt(w.shape[1])) for w in kinds["weights"]]
    for kind in ("biases", "scale", "embedding", "members", "skip"):
        groups.append(ParamGroup(kinds[kind], lr_factor=LR_FACTORS[kind],
                                 decay_factor=DECAY_FACTORS[kind]))
    return groups


@dataclass
class _Best:
    """Each model's best validation checkpoint so far: its RMSE and epoch [K], and with
    early stopping a copy of its weights (else the last epoch's weights are kept)."""

    rmse: torch.Tensor  # [K] float64
    epoch: torch.Tensor  # [K] long
    weights: list[torch.Tensor] | None

    @classmethod
    def start(cls, params: list[torch.Tensor], n_models: int, keep_weights: bool,
              device: torch.device) -> _Best:
        return cls(torch.full((n_models,), math.inf, dtype=torch.float64, device=device),
                   torch.zeros(n_models, dtype=torch.long, device=device),
                   [p.detach().clone() for p in params] if keep_weights else None)

    def update(self, params: list[torch.Tensor], val_rmse: torch.Tensor, epoch: int) -> None:
        """Models whose validation RMSE improved: their score, epoch and weights."""
        improved = val_rmse < self.rmse
        self.rmse = torch.where(improved, val_rmse, self.rmse)
        self.epoch = torch.where(improved, epoch, self.epoch)
        if self.weights is not None:
            with torch.no_grad():
                for p, b in zip(params, self.weights, strict=True):
                    b.copy_(torch.where(improved.view(-1, *[1] * (p.dim() - 1)), p, b))

    def waited(self, epoch: int, patience: int) -> bool:
        """Whether every model has gone `patience` epochs without improving."""
        return bool(((epoch - self.epoch) >= patience).all())

    def restore(self, params: list[torch.Tensor], last_epoch: int) -> None:
        """The kept weights back into the models (or, keeping the last epoch's, say so)."""
        if self.weights is None:
            self.epoch.fill_(last_epoch)
            return
        with torch.no_grad():
            for p, b in zip(params, self.weights, strict=True):
                p.copy_(b)


def _shrink(weights: list[torch.Tensor], amount: float) -> None:
    """Decoupled L1 (soft-thresholding) on the input-layer weights, as AdamW decouples L2:
    weights of inputs that do not help are driven to exactly zero, like a lasso. softshrink is
    sign(w) * max(|w| - amount, 0) in one pass, bitwise (but for the sign of zeros)."""
    with torch.no_grad():
        for w in weights:
            w.copy_(torch.nn.functional.softshrink(w, amount))


def _gather_rows(x_flat: torch.Tensor, row_base: torch.Tensor,
                 idx: torch.Tensor) -> torch.Tensor:
    """Rows idx[k] of model k's matrix, [K, n, d], from the flat [M * N, d] matrix (model k's
    matrix starts at row row_base[k]): one index_select of contiguous rows, several times faster
    than advanced indexing x[models, idx]."""
    return x_flat.index_select(0, (row_base + idx).view(-1)).view(*idx.shape,
                                                                   x_flat.shape[1])


def _gathered_inputs(x_flat: torch.Tensor, layout: OneHotLayout | None,
                     row_base: torch.Tensor, idx: torch.Tensor) -> BatchInputs:
    """Rows idx[k] of model k's matrix, gathered once for several minibatches, as a function
    (start, stop) -> the model's input for rows start:stop: a [K, B, d] tensor, or OneHotRows
    when the inputs have a one-hot layout."""
    if layout is None:
        x_chunk = _gather_rows(x_flat, row_base, idx)
        return lambda start, stop: x_chunk[:, start:stop]
    dense = _gather_rows(layout.dense_x, row_base, idx)
    ones = _gather_rows(layout.ones, row_base, idx)
    return lambda start, stop: OneHotRows(dense[:, start:stop], ones[:, start:stop], layout)


def _predict_rows(model: BatchedMLP, x_flat: torch.Tensor, row_base: torch.Tensor,
                  idx: torch.Tensor, chunk_rows: int = 8192) -> torch.Tensor:
    """Eval-mode predictions (standardized scale) of model k on rows idx[k] of its matrix:
    [K, n]. Rows are gathered chunk by chunk, so memory stays bounded however many rows."""
    model.eval()
    with torch.no_grad():
        parts = [model(_gather_rows(x_flat, row_base, idx[:, i:i + chunk_rows]))
                 for i in range(0, idx.shape[1], chunk_rows)]
    model.train()
    return torch.cat(parts, dim=1)
