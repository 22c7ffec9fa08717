"""The one training loop: K MLPs trained at once on their own rows, MSE on the model scale.

The target is already on the model scale (log prices for a log-RMSE metric), so the MSE loss
here is the squared log-RMSE. Each model standardizes the target with its own training rows'
mean and spread. Data stays in tensors: no DataLoader, no per-step host synchronisation;
validation (early stopping, pruning callbacks) runs every `eval_every` epochs.

Returns values; never logs or writes files.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.optim.adamw import adamw

from pipeline.config import ModelConfig
from pipeline.nn.model import BatchedMLP, predict_batched, to_model_scale
from pipeline.nn.onehot import OneHotLayout, OneHotRows, binary_columns, onehot_layout

# Called at every validation checkpoint with (epoch, validation RMSE of each model); it may
# raise to stop training (an Optuna pruning callback raises TrialPruned).
CheckpointCallback = Callable[[int, np.ndarray], None]
# Called after every epoch's training steps with the epoch number (progress, timing).
EpochCallback = Callable[[int], None]
STEPS_PER_GATHER = 16  # minibatches cut from one gathered block of rows
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


def fit_mlps(x: torch.Tensor, y: torch.Tensor, train_rows: Sequence[np.ndarray],
             val_rows: Sequence[np.ndarray] | None, cfg: ModelConfig, seed: int,
             on_checkpoint: CheckpointCallback | None = None,
             onehot_lookup: bool = True,
             on_epoch: EpochCallback | None = None, device: str = "cpu",
             score_rows: Sequence[np.ndarray] | None = None) -> TrainedMLPs:
    """Train K MLPs; model k sees rows `train_rows[k]` of `x[k]` and is validated on `val_rows[k]`.

    x: [M, N, d] float32, M preprocessed copies of the rows (one per fold); model k reads
       matrix k % M, so K = M * n_seeds trains several seeds per fold in one batch. [N, d] is
       one matrix shared by all models.
    y: [N] target on the model scale.
    onehot_lookup: train on x's 0/1 columns as lookups (`pipeline.onehot`) where that pays:
       the same models up to float rounding, with fewer multiplies.
    cfg must be resolved: no "auto" size left (pipeline.plan fills them in).
    device: where the data, the models and every step live ("cpu" or "cuda"); the returned
    models and arrays are on the CPU.
    score_rows: per model, a boolean mask over its `val_rows`: the rows its validation RMSE
       (checkpoints, history, early stopping) is computed on, e.g. those a tuning objective
       scores; default all (a model with none to score is scored on all). Every validation
       row is still predicted.
    """
    if not cfg.resolved:
        raise ValueError("the model config has 'auto' sizes: apply a pipeline.plan.Plan first")
    n_models = len(train_rows)
    x = x if x.dim() == 3 else x.unsqueeze(0)
    if n_models % x.shape[0]:
        raise ValueError(f"{n_models} models cannot share {x.shape[0]} matrices evenly")
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        trained = _fit(x.to(dev), y.to(dev, torch.float32), train_rows, val_rows, cfg, seed,
                       on_checkpoint, onehot_lookup, on_epoch, score_rows)
    trained.model.cpu()
    return trained


def predict_mlps(trained: TrainedMLPs, x: torch.Tensor, chunk_rows: int = 65536) -> np.ndarray:
    """Predictions of each model on the model scale: x [K, M, d] (or [M, d]) -> [K, M]."""
    return predict_batched(trained.model, trained.target_mean, trained.target_std, x,
                           trained.target_range, chunk_rows)


def _fit(x: torch.Tensor, y: torch.Tensor, train_rows: Sequence[np.ndarray],
         val_rows: Sequence[np.ndarray] | None, cfg: ModelConfig, seed: int,
         on_checkpoint: CheckpointCallback | None, onehot_lookup: bool,
         on_epoch: EpochCallback | None,
         score_rows: Sequence[np.ndarray] | None = None) -> TrainedMLPs:
    n_models, n_inputs = len(train_rows), x.shape[2]
    dev = x.device
    models = (torch.arange(n_models, device=dev) % x.shape[0]).unsqueeze(1)  # matrix of each
    x_flat = x.reshape(-1, n_inputs)  # rows are read with _gather_rows
    embed_cols, embedding = _embedding(x_flat, cfg)
    dense_width = None if embedding is None else len(embed_cols) * embedding["d_embedding"]
    layout = onehot_layout(x_flat, dense_width) if onehot_lookup else None
    row_base = models * x.shape[1]
    train_idx, train_mask = _pad(train_rows, dev)
    counts = train_mask.sum(dim=1)
    y_train = y[train_idx] * train_mask
    mean = y_train.sum(1) / counts
    std = torch.sqrt(((y[train_idx] - mean[:, None]) ** 2 * train_mask).sum(1) / counts)
    std = torch.where(std > 0, std, torch.ones_like(std))
    y_scaled = (y.unsqueeze(0) - mean[:, None]) / std[:, None]  # [K, N]

    model = BatchedMLP(n_models, n_inputs, cfg.width, cfg.depth, cfg.dropout, cfg.activation,
                       cfg.linear_skip, embed_cols, embedding).to(dev)
    params = list(model.parameters())
    input_weights = [model.weights[0]] + ([model.skip] if model.skip is not None else [])
    optimizer = _FusedAdamW(params, cfg.weight_decay)
    steps_per_epoch = -(-train_idx.shape[1] // cfg.batch_size)
    lrs, beta1s = _schedule(cfg, steps_per_epoch)
    step_no = 0
    generator = torch.Generator(device=dev).manual_seed(seed)

    has_val = val_rows is not None and all(len(v) for v in val_rows)
    if has_val:
        val_idx, val_mask = _pad(val_rows, dev)
        y_val = y[val_idx]
        score_mask = val_mask if score_rows is None else _score_mask(score_rows, val_mask)
    # Early stopping keeps each model's best validation checkpoint. That choice is made on the
    # validation fold, so it flatters the OOF score a little; patience 0 keeps the last epoch.
    early_stopping = has_val and cfg.patience > 0
    if early_stopping:
        best = [p.detach().clone() for p in params]
    best_rmse = torch.full((n_models,), float("inf"), dtype=torch.float64, device=dev)
    best_epoch = torch.zeros(n_models, dtype=torch.long, device=dev)
    history: dict[str, list] = {"epoch": [], "train_rmse": [], "val_rmse": []}
    loss_sum = torch.zeros(n_models, device=dev)
    loss_count = torch.zeros(n_models, device=dev)

    # Rows are shuffled per model and epoch; invalid (padding) slots sort to the end, so a batch
    # needs masking only past the shortest model's row count, known here without a host sync.
    always_full = int(counts.min())
    gather_rows = cfg.batch_size * STEPS_PER_GATHER
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        keys = torch.rand(train_idx.shape, generator=generator, device=dev)
        keys.masked_fill_(~train_mask, 2.0)
        order = keys.argsort(dim=1)
        epoch_idx = train_idx.gather(1, order)
        epoch_mask = train_mask.gather(1, order)
        for chunk in range(0, epoch_idx.shape[1], gather_rows):
            # one gather for many steps: bounded memory, few copies
            idx = epoch_idx[:, chunk:chunk + gather_rows]
            batch_inputs = _gathered_inputs(x_flat, layout, row_base, idx)
            y_chunk = y_scaled.gather(1, idx)
            for start in range(0, idx.shape[1], cfg.batch_size):
                stop = start + cfg.batch_size
                pred = model(batch_inputs(start, stop))
                sq_err = (pred - y_chunk[:, start:stop]) ** 2
                if chunk + stop <= always_full:
                    count = torch.full((n_models,), float(sq_err.shape[1]), device=dev)
                else:
                    mask = epoch_mask[:, chunk + start:chunk + stop].float()
                    sq_err = sq_err * mask
                    count = mask.sum(1)
                err_sum = sq_err.sum(1)
                per_model = err_sum / count.clamp_min(1.0)
                for p in params:  # what zero_grad(set_to_none=True) does, without its overhead
                    p.grad = None
                per_model.sum().backward()  # each model's gradient is its own mean loss
                optimizer.step(lrs[step_no], beta1s[step_no])
                if cfg.input_l1 > 0:
                    _shrink(input_weights, lrs[step_no] * cfg.input_l1)
                step_no += 1
                with torch.no_grad():
                    loss_sum += err_sum
                    loss_count += count

        if on_epoch is not None:
            on_epoch(epoch)
        if epoch % cfg.eval_every and epoch != cfg.epochs:
            continue
        train_rmse = (torch.sqrt(loss_sum / loss_count.clamp_min(1.0)) * std).double().cpu()
        train_rmse = train_rmse.numpy()
        loss_sum.zero_()
        loss_count.zero_()
        history["epoch"].append(epoch)
        history["train_rmse"].append(train_rmse)
        if not has_val:
            history["val_rmse"].append(np.full(n_models, np.nan))
            continue
        val_pred = _predict_rows(model, x_flat, row_base, val_idx) * std[:, None] + mean[:, None]
        val_rmse = torch.sqrt(((val_pred - y_val) ** 2 * score_mask).double().sum(1)
                              / score_mask.sum(1))
        val_rmse_np = val_rmse.cpu().numpy()  # the checkpoint's one host copy
        history["val_rmse"].append(val_rmse_np)
        improved = val_rmse < best_rmse
        best_rmse = torch.where(improved, val_rmse, best_rmse)
        best_epoch = torch.where(improved, epoch, best_epoch)
        if early_stopping:
            with torch.no_grad():
                for p, b in zip(params, best, strict=True):
                    b.copy_(torch.where(improved.view(-1, *[1] * (p.dim() - 1)), p, b))
        if on_checkpoint is not None:
            on_checkpoint(epoch, val_rmse_np)
        if early_stopping and bool(((epoch - best_epoch) >= cfg.patience).all()):
            break

    if early_stopping:
        with torch.no_grad():
            for p, b in zip(params, best, strict=True):
                p.copy_(b)
    else:
        best_epoch.fill_(epoch)
    mean_np, std_np = mean.double().cpu().numpy(), std.double().cpu().numpy()
    target_range = None
    if cfg.clip_to_target_range:  # never predict beyond the targets the model was fitted on
        fitted = torch.where(train_mask, y[train_idx], float("nan")).double().cpu().numpy()
        target_range = (np.nanmin(fitted, axis=1), np.nanmax(fitted, axis=1))
    val_predictions = []
    if has_val:
        val_pred = to_model_scale(_predict_rows(model, x_flat, row_base, val_idx), mean_np,
                                   std_np, target_range)
        val_predictions = [val_pred[k, : len(v)] for k, v in enumerate(val_rows)]
    model.eval()
    return TrainedMLPs(
        model=model,
        target_mean=mean_np,
        target_std=std_np,
        target_range=target_range,
        val_predictions=val_predictions,
        best_epoch=best_epoch.cpu().numpy(),
        epochs_run=epoch,
        history={k: np.asarray(v) for k, v in history.items()},
    )


def _embedding(x_flat: torch.Tensor, cfg: ModelConfig) -> tuple[list[int], dict | None]:
    """The numeric (not 0/1) input columns and the embedding settings, when cfg asks for a
    numeric embedding and there are such columns."""
    if cfg.numeric_embedding == "none":
        return [], None
    embed_cols = (~binary_columns(x_flat)).nonzero().squeeze(1).tolist()
    if not embed_cols:
        return [], None
    return embed_cols, {"d_embedding": cfg.embedding_dim,
                        "n_frequencies": cfg.embedding_frequencies,
                        "sigma": cfg.embedding_scale}


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


def _pad(rows: Sequence[np.ndarray],
         device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-index lists of unequal length -> [K, max_len] index tensor and validity mask."""
    width = max(len(r) for r in rows)
    idx = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for k, r in enumerate(rows):
        idx[k, : len(r)] = torch.as_tensor(np.asarray(r), dtype=torch.long)
        mask[k, : len(r)] = True
    return idx.to(device), mask.to(device)


def _score_mask(score_rows: Sequence[np.ndarray], val_mask: torch.Tensor) -> torch.Tensor:
    """The validation rows each model is scored on, padded as `val_mask`: its `score_rows`
    mask, or all its rows when that mask holds none."""
    mask = torch.zeros_like(val_mask)
    for k, rows in enumerate(score_rows):
        rows = torch.as_tensor(np.asarray(rows, dtype=bool), device=mask.device)
        if len(rows) != int(val_mask[k].sum()):
            raise ValueError(f"score_rows[{k}] has {len(rows)} entries for "
                             f"{int(val_mask[k].sum())} validation rows")
        mask[k, :len(rows)] = rows if bool(rows.any()) else val_mask[k, :len(rows)]
    return mask


class _FusedAdamW:
    """torch.optim.AdamW(fused=True)'s arithmetic through torch's functional `adamw`: the same
    fused kernel without the Optimizer.step wrapper (hooks, profiling, regrouping), a fixed cost
    per step that is not small beside this trainer's steps. Default betas and eps."""

    def __init__(self, params: list[torch.Tensor], weight_decay: float) -> None:
        self.params = params
        self.weight_decay = weight_decay
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.steps = [torch.tensor(0.0, device=p.device) for p in params]

    def step(self, lr: float, beta1: float) -> None:
        with torch.no_grad():
            adamw(self.params, [p.grad for p in self.params], self.exp_avgs, self.exp_avg_sqs,
                  [], self.steps, fused=True, amsgrad=False, beta1=beta1, beta2=0.999, lr=lr,
                  weight_decay=self.weight_decay, eps=1e-8, maximize=False)


def _schedule(cfg: ModelConfig, steps_per_epoch: int) -> tuple[list[float], list[float]]:
    """Learning rate and Adam beta1 of every step, read off torch's own schedulers (one-cycle
    also cycles beta1) driving an optimizer that holds no parameters of ours."""
    total = cfg.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    if cfg.lr_schedule == "onecycle":
        # torch divides by the warm-up's length, pct_start * total - 1 steps, so a warm-up of
        # exactly one step (10 steps in all, e.g. one epoch of ~1 200 rows) raised
        # ZeroDivisionError (pytorch/pytorch#180187); half a step more avoids it
        pct_start = 0.1 if 0.1 * total != 1 else 1.5 / total
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                        total_steps=total, pct_start=pct_start)
    elif cfg.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    lrs, beta1s = [], []
    group = optimizer.param_groups[0]
    with warnings.catch_warnings():  # "scheduler stepped before optimizer": none to step here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(total):
            lrs.append(float(group["lr"]))
            beta1s.append(float(group["betas"][0]))
            scheduler.step()
    return lrs, beta1s
