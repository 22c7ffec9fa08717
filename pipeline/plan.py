"""The budget plan: sizes that follow the data, and the time each stage gets.

Every "auto" value of params.yaml is filled in here, from the rows, the columns, the budget
(`base.budget_minutes`) and the measured cost of one training epoch; an explicit value wins.
The rule is written down in docs/sizing.md. Pure: measurements come in as numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pipeline.config import Config, ModelConfig
from pipeline.config.fields import AUTO

# Batch: about this many steps per epoch, as a power of two between these bounds.
STEPS_PER_EPOCH = 40
MIN_BATCH, MAX_BATCH = 128, {"cpu": 2048, "cuda": 8192}
# The learning-rate range at the smallest batch; it grows with the square root of the batch.
LR_RANGE = (1e-4, 1e-3)
# Epochs: the study's share should hold at least this many trials, a pruned trial costing
# about this share of a full one (the measured shares: docs/speed.md).
MIN_TRIALS, PRUNED_WORK = 10, 0.5
MIN_EPOCHS, MAX_EPOCHS = 10, 200
CHECKPOINTS = 20  # validation checkpoints per trial
# Time: the fixed cost of the stages' start-ups and of DVC; the references' share of the
# budget; the study's share of what is left after both (the final fit gets the rest).
FIXED_SECONDS = 60.0
REFERENCE_SHARE, STUDY_SHARE = 0.10, 0.60
MAX_AUTO_SEEDS = 5


@dataclass(frozen=True)
class Measured:
    """The plan's inputs from this machine and data: shape, device and timings."""

    rows: int  # training rows
    fit_rows: int  # rows one fold fits on
    inputs: int  # columns of the preprocessed matrix
    n_folds: int
    device: str  # cpu | cuda
    epoch_seconds: float  # one epoch of every fold at once, at the planned batch size
    features_seconds: float  # fitting and applying one view's fold preprocessing


@dataclass(frozen=True)
class Plan:
    """Sizes and time shares for one run of the pipeline."""

    budget_seconds: float
    measured: Measured
    batch_size: int
    epochs: int
    eval_every: int
    n_warmup_steps: int
    lr_range: tuple[float, float]
    overhead_seconds: float
    reference_seconds: float
    study_seconds: float
    final_seconds: float
    trial_seconds: float  # a full (unpruned) trial at these sizes
    expected_trials: int
    n_startup_trials: int

    def apply(self, cfg: Config) -> Config:
        """`cfg` with every "auto" size filled in from this plan (explicit values stay)."""
        model = cfg.model
        sizes = {"epochs": self.epochs, "batch_size": self.batch_size,
                 "eval_every": self.eval_every,
                 "lr": math.sqrt(self.lr_range[0] * self.lr_range[1])}
        model = model.replace({k: v for k, v in sizes.items() if getattr(model, k) == AUTO},
                              "model.")
        tune = cfg.tune
        pruner = tune.pruner
        if pruner.n_warmup_steps == AUTO:
            pruner = pruner.replace({"n_warmup_steps": self.n_warmup_steps})
        space = {name: ({"low": self.lr_range[0], "high": self.lr_range[1], "log": True}
                        if dim == AUTO else dim) for name, dim in tune.search_space.items()}
        changes = {"pruner": pruner, "search_space": space}
        if tune.n_startup_trials == AUTO:
            changes["n_startup_trials"] = self.n_startup_trials
        views = max(1, len(cfg.ensemble.feature_views))
        ensemble = cfg.ensemble.replace({"n_seeds": self.n_seeds(cfg, views)})
        base = cfg.base.replace({"device": self.measured.device})
        return cfg.replace({"base": base, "model": model, "tune": tune.replace(changes, "tune."),
                            "ensemble": ensemble})

    def study_deadline_seconds(self, cfg: Config) -> float | None:
        """How long the study may run: its share when tune.n_trials is auto (capped by
        tune.timeout_minutes); with explicit trials, only the timeout bounds it."""
        timeout = None if cfg.tune.timeout_minutes is None else cfg.tune.timeout_minutes * 60
        if cfg.tune.n_trials != AUTO:
            return timeout
        return self.study_seconds if timeout is None else min(timeout, self.study_seconds)

    def n_seeds(self, cfg: Config, n_views: int) -> int:
        """Seeds of the final fit: ensemble.n_seeds, or as many as its share holds for every
        feature view, at a full trial's planned cost per view and seed."""
        if cfg.ensemble.n_seeds != AUTO:
            return cfg.ensemble.n_seeds
        unit = self.trial_seconds * n_views
        return int(min(MAX_AUTO_SEEDS, max(1, self.final_seconds // max(unit, 1e-9))))

    def lines(self) -> list[str]:
        """The plan as the plan stage prints it."""
        m = self.measured
        minutes = self.budget_seconds / 60
        return [
            f"budget {minutes:g} min: study ~{self.study_seconds / 60:.1f} min, references "
            f"~{self.reference_seconds / 60:.1f} min, final fit ~{self.final_seconds / 60:.1f} "
            f"min, start-ups and data ~{self.overhead_seconds / 60:.1f} min",
            f"{self.expected_trials} trials expected at ~{self.trial_seconds * PRUNED_WORK:.0f} s "
            f"each ({self.trial_seconds:.0f} s unpruned); {m.rows} rows ({m.fit_rows} per fold "
            f"fit), {m.inputs} input columns, {m.n_folds} folds on {m.device}",
            f"sizes: batch {self.batch_size}, {self.epochs} epochs ({m.epoch_seconds:.2f} s "
            f"each), validation every {self.eval_every}, pruning after epoch "
            f"{self.n_warmup_steps}, learning rate {self.lr_range[0]:.2g} to "
            f"{self.lr_range[1]:.2g}",
        ]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(**{**data, "measured": Measured(**data["measured"]),
                      "lr_range": tuple(data["lr_range"])})


def batch_size(cfg: Config, fit_rows: int, device: str) -> int:
    """model.batch_size, or about STEPS_PER_EPOCH steps an epoch as a power of two."""
    return _batch(cfg.model, fit_rows, device)


def _batch(model: ModelConfig, fit_rows: int, device: str) -> int:
    if model.batch_size != AUTO:
        return model.batch_size
    target = 2 ** round(math.log2(max(fit_rows / STEPS_PER_EPOCH, 1)))
    return int(min(MAX_BATCH[device], max(MIN_BATCH, target)))


def resolve_model(model: ModelConfig, fit_rows: int, device: str = "cpu") -> ModelConfig:
    """A model config's "auto" sizes from the rows alone, without a budget (for use from
    Python, and the estimator): the plan's batch, learning rate and checkpoints, and the most
    epochs."""
    batch = _batch(model, fit_rows, device)
    epochs = MAX_EPOCHS if model.epochs == AUTO else model.epochs
    scale = math.sqrt(batch / MIN_BATCH)
    sizes = {"batch_size": batch, "epochs": epochs,
             "eval_every": max(1, epochs // CHECKPOINTS),
             "lr": math.sqrt(LR_RANGE[0] * LR_RANGE[1]) * scale}
    return model.replace({k: v for k, v in sizes.items() if getattr(model, k) == AUTO},
                         "model.")


def reference_seconds(cfg: Config) -> float:
    """The reference stage's time: a share of the budget, from params alone."""
    return REFERENCE_SHARE * cfg.base.budget_minutes * 60


def make_plan(cfg: Config, measured: Measured) -> Plan:
    """The plan for this config and measurement (see docs/sizing.md for the rule)."""
    budget = cfg.base.budget_minutes * 60
    batch = batch_size(cfg, measured.fit_rows, measured.device)
    views = max(1, len(cfg.ensemble.feature_views))
    # the stages that fit fold preprocessing: tune, reference, train (once per view)
    overhead = FIXED_SECONDS + (2 + views) * measured.features_seconds
    reference = reference_seconds(cfg)
    left = max(budget - overhead - reference, 0.0)
    study = STUDY_SHARE * left
    final = left - study
    if cfg.model.epochs != AUTO:
        epochs = cfg.model.epochs
    else:
        fits = study / (MIN_TRIALS * PRUNED_WORK * max(measured.epoch_seconds, 1e-9))
        epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, 10 * math.floor(fits / 10))))
    eval_every = (cfg.model.eval_every if cfg.model.eval_every != AUTO
                  else max(1, epochs // CHECKPOINTS))
    warmup = eval_every * max(1, round(epochs / 5 / eval_every))
    trial = epochs * measured.epoch_seconds
    if cfg.ensemble.n_seeds == AUTO:
        # what the final fit cannot use (it holds at most MAX_AUTO_SEEDS seeds) runs trials
        needed = MAX_AUTO_SEEDS * views * trial
        if final > needed:
            study, final = study + final - needed, needed
    if cfg.tune.n_trials != AUTO:
        expected = cfg.tune.n_trials
    else:
        expected = max(1, int(study // max(trial * PRUNED_WORK, 1e-9)))
    scale = math.sqrt(batch / MIN_BATCH)
    return Plan(
        budget_seconds=budget, measured=measured, batch_size=batch, epochs=epochs,
        eval_every=eval_every, n_warmup_steps=min(warmup, epochs),
        lr_range=(LR_RANGE[0] * scale, LR_RANGE[1] * scale), overhead_seconds=overhead,
        reference_seconds=reference, study_seconds=study, final_seconds=final,
        trial_seconds=trial, expected_trials=expected,
        n_startup_trials=int(min(8, max(2, expected // 3))))


def sized(cfg: Config, rows: int, device: str = "cpu") -> Config:
    """`cfg` with its "auto" sizes filled in from the rows alone, for use from Python without
    a budget or a measurement: the plan's batch, learning rate and checkpoints, the most
    epochs, one seed."""
    fit_rows = int(rows * (cfg.cv.n_folds - 1) / cfg.cv.n_folds)
    measured = Measured(rows=rows, fit_rows=fit_rows, inputs=0, n_folds=cfg.cv.n_folds,
                        device=device, epoch_seconds=0.0, features_seconds=0.0)
    if cfg.ensemble.n_seeds == AUTO:
        cfg = cfg.replace({"ensemble": cfg.ensemble.replace({"n_seeds": 1})})
    return make_plan(cfg, measured).apply(cfg)
