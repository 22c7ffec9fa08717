"""The run's plan: every "auto" value of params.yaml, decided once from the rows, the columns,
the budget (`base.budget_minutes`) and the measured cost of one training epoch and of one
boosting round; an explicit value wins. The counts (trials, seeds, epochs, boosting rounds)
are decided here, and nothing after the plan reads the clock except the time caps, so a run
with the same plan rebuilds the same outputs. The measurements are snapped up to a coarse grid
first, so similar machines (and one machine from one run to the next) make the same plan;
a reading that lands within an octave (KEEP_STEPS grid steps) of the previous plan's keeps that
plan's value (`settle`), so a reading straddling a grid point does not flip the plan from one
run to the next.
The rule is written down in docs/sizing.md. Pure: measurements come in as numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from pipeline.config import Config, ModelConfig, PrunerConfig, ReferenceConfig
from pipeline.config.fields import AUTO
from pipeline.config.model import MAX_BUDGET_MINUTES
from pipeline.data.errors import DataError
from pipeline.io import read_json

# Batch: about this many steps per epoch, as a power of two between these bounds.
STEPS_PER_EPOCH = 40
MIN_BATCH, MAX_BATCH = 128, {"cpu": 2048, "cuda": 8192}
# The learning-rate range at the smallest batch; it grows with the square root of the batch.
LR_RANGE = (1e-4, 1e-3)
# Epochs: the study's share should hold at least this many trials at the trials' expected
# cost; the warm-up before pruning is this share of the epochs.
MIN_TRIALS, WARMUP_SHARE = 10, 0.2
MIN_EPOCHS, MAX_EPOCHS = 10, 200  # MAX_EPOCHS: the most without a budget (resolve_model)
# ... and with one, the epochs of MAX_STEPS optimizer steps a model where that is more: small
# data takes few steps an epoch (`most_epochs`; measured in docs/model.md, "Epochs")
MAX_STEPS = 16_000
CHECKPOINTS = 20  # validation checkpoints per trial
# A trial's cost besides its epochs: each validation checkpoint (the folds' validation rows,
# the report to the study's storage, the pruner's look at the other trials), and the trial's
# start and end (the sampler, logging it to MLflow). Upper bounds on small data: docs/sizing.md.
CHECKPOINT_SECONDS, TRIAL_OVERHEAD_SECONDS = 0.05, 0.5
# The share of the trials after the pruner's start-up ones that run past the warm-up: the
# rest are pruned at its checkpoint. An upper bound (a percentile pruner keeps fewer as the
# study's history grows: docs/sizing.md), so the planned trials fit in the study's share.
KEEP_SHARE = {"none": 1.0, "median": 0.5, "hyperband": 1 / 3}  # percentile: percentile / 100
# Time: the fixed cost of the stages' start-ups and of DVC; the references' share of the
# budget, of which the GBM's; the study's share of what is left after both (the final fit
# gets the rest). The overhead is rounded up to OVERHEAD_STEP seconds.
FIXED_SECONDS, OVERHEAD_STEP = 60.0, 10.0
REFERENCE_SHARE, GBM_SHARE, STUDY_SHARE = 0.10, 0.8, 0.60
# ... and more for the references where the GBM's share would hold fewer than
# GBM_WANTED_ROUNDS rounds (on large data LightGBM keeps improving for thousands of rounds:
# docs/model.md), up to MAX_REFERENCE_SHARE of the budget
GBM_WANTED_ROUNDS, MAX_REFERENCE_SHARE = 2_000, 0.35
MAX_AUTO_SEEDS = 5
# Trials on one fold (tune.trial_folds auto) where a fold's validation rows number at least
# this many: a score on them is as steady as the folds' mean on smaller data, and the study
# gets n_folds times the trials
ONE_FOLD_ROWS = 32_768
MIN_GBM_ROUNDS = 100  # the fewest boosting rounds the plan gives the GBM (below its max)
# The GBM's leaves with reference.gbm_num_leaves auto: about sqrt(fit rows) / 4 as a power of
# two less one, between these (15 below 8k fit rows, 31 below 32k, 63 above); its rate with
# reference.gbm_learning_rate auto: GBM_RATE_ROUNDS / the plan's rounds (LightGBM needs
# rounds roughly in inverse proportion to its rate; the rounds it picked per competition are in
# docs/model.md), between these: the lowest where the budget holds the rounds, higher where
# it does not (docs/sizing.md)
GBM_LEAVES = (15, 63)
GBM_RATES = (0.03, 0.1)
GBM_RATE_ROUNDS = 200.0
# Measured seconds are snapped up to the next point of a grid with GRID_STEPS points per
# octave (2: a half-octave grid, 2 ** (k / 2)), each point GRID times the one below: a timing
# is planned at up to 1.41 times its reading. A quarter-octave grid (up to 1.19 times) let
# House Prices' study outrun its time cap: trials cost more than their epochs' readings
# (docs/sizing.md)
GRID_STEPS = 2
GRID = 2 ** (1 / GRID_STEPS)
# Hysteresis: a timing that snaps within this many grid steps (an octave) of the previous
# plan's, on the same basis, keeps the previous value (why an octave: docs/sizing.md).
KEEP_STEPS = GRID_STEPS
# The hard caps: the study and the reference stage may run this share of the budget past
# their planned time; then they are cut (and the outputs depend on the machine's speed).
CAP_MARGIN = 0.10
# Written by each capped stage into its outputs: whether its cap cut it, read by the summary
TIME_CAP_FILE = "time_cap.json"


@dataclass(frozen=True)
class Measured:
    """The plan's inputs from this machine and data: shape, device and timings (raw)."""

    rows: int  # training rows
    fit_rows: int  # rows one fold fits on
    inputs: int  # columns of the preprocessed matrix
    n_folds: int
    device: str  # cpu | cuda
    epoch_seconds: float  # one epoch of every fold at once, at the planned batch size, of the
    # dearest network the study can draw (the final fit's, at most)
    features_seconds: float  # fitting and applying one view's fold preprocessing
    gbm_round_seconds: float = 0.0  # one boosting round on a fold's fitting rows
    gbm_setup_seconds: float = 0.0  # building LightGBM's data set of a fold's fitting rows
    # a trial's epoch on average over the networks the study draws (calibrate.networks);
    # None: epoch_seconds
    trial_epoch_seconds: float | None = None
    # each of those networks' epoch, by `network_key`: the final fit's seeds are sized for
    # the network the study picks
    network_epoch_seconds: dict[str, float] = field(default_factory=dict)
    # one epoch of the dearest network with MAX_AUTO_SEEDS seeds of every fold in one batch
    # (the final fit's batch when it trains its seeds together); 0: not measured
    seeds_epoch_seconds: float = 0.0

    @property
    def trial_epoch(self) -> float:
        return self.epoch_seconds if self.trial_epoch_seconds is None \
            else self.trial_epoch_seconds


@dataclass(frozen=True)
class TrialCosts:
    """What the plan expects a trial to cost, from the snapped epoch (not written down)."""

    epoch_seconds: float  # a trial's measured epoch, snapped up to the grid
    fit_seconds: float  # one seed of one view in the final fit: every fold's epochs
    full_seconds: float  # a trial that runs to the end
    mean_seconds: float  # a trial after the pruner's start-up trials, on average
    n_full: int  # trials that always run to the end (the pruner's start-up trials)


@dataclass(frozen=True)
class Plan:
    """Sizes, counts and time shares for one run of the pipeline: decisions only, no clock
    readings (they go to the plan stage's log), so plan.json is the same whenever the
    decisions are."""

    budget_seconds: float
    rows: int
    fit_rows: int
    inputs: int
    n_folds: int
    device: str
    batch_size: int
    epochs: int
    eval_every: int
    n_warmup_steps: int
    lr_range: tuple[float, float]
    # the trials the study holds: tune.n_trials; with auto, what its share is expected to hold
    # (the study then runs until its trials' planned cost, `trial_seconds`, fills the share)
    n_trials: int
    trial_folds: int  # the folds each trial trains: tune.trial_folds, or the plan's
    n_startup_trials: int
    n_seeds: int  # the final fit's seeds with ensemble.n_seeds auto, for the dearest network
    network_seeds: dict[str, int]  # ... for each network timed (`network_key`)
    # the timed networks whose final fit (one seed of one view at the planned epochs) would
    # not fit the final share: the study prunes their trials before training (never the
    # cheapest network)
    too_dear: list[str]
    gbm_rounds: int  # the most boosting rounds of the GBM reference
    gbm_num_leaves: int  # its leaves and rate with reference.gbm_* auto
    gbm_learning_rate: float
    overhead_seconds: float
    reference_seconds: float
    study_seconds: float
    final_seconds: float
    # the snapped timings the plan was made from (TIMINGS), and the data and params they
    # belong to (`basis`): the next plan keeps them while its readings stay within
    # KEEP_STEPS grid steps
    timings: dict[str, float]
    basis: str
    # the feature views one seed of each timed network fits in the final share, where that is
    # fewer than ensemble.feature_views: with ensemble.n_seeds auto its final fit trains the
    # first of them (a network the study found better is worth more than a second view)
    network_views: dict[str, int] = field(default_factory=dict)
    # the seeds the final fit trains in one batch with ensemble.seed_batch auto: MAX_AUTO_SEEDS
    # where one batch of them measured no dearer than that many batches of one, else 1 (a
    # batch of many models can outgrow the caches: then one at a time is cheaper, and the
    # final fit costs what the plan, linear in the seeds, says)
    seed_batch: int = MAX_AUTO_SEEDS

    def apply(self, cfg: Config, params: dict | None = None) -> Config:
        """`cfg` with every "auto" size filled in from this plan (explicit values stay), the
        seeds, and the GBM's rounds (the plan's, at most reference.gbm_max_rounds). The
        seeds are the dearest network's, or with the best trial's `params` its network's
        (`seeds_for`; then also only the feature views one seed of it fits in the final
        share, `network_views`). The study's trials: `trials(cfg)`."""
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
        if tune.trial_folds == AUTO:
            changes["trial_folds"] = self.trial_folds
        seeds = cfg.ensemble.n_seeds
        ensemble = cfg.ensemble
        if seeds == AUTO:
            network = None if params is None else model.replace(params, "model.")
            seeds = self.n_seeds if network is None else self.seeds_for(network)
            held = None if network is None else self.network_views.get(network_key(network))
            if held is not None and held < len(ensemble.feature_views):
                ensemble = ensemble.replace({"feature_views": ensemble.feature_views[:held]})
        ensemble = ensemble.replace({"n_seeds": seeds})
        if ensemble.seed_batch == AUTO:
            ensemble = ensemble.replace({"seed_batch": self.seed_batch})
        reference = resolve_reference(cfg.reference, self.fit_rows).replace({
            "gbm_max_rounds": min(self.gbm_rounds, cfg.reference.gbm_max_rounds),
            **({"gbm_learning_rate": self.gbm_learning_rate}
               if cfg.reference.gbm_learning_rate == AUTO else {})})
        base = cfg.base.replace({"device": self.device})
        return cfg.replace({"base": base, "model": model, "tune": tune.replace(changes, "tune."),
                            "ensemble": ensemble, "reference": reference})

    def seeds_for(self, model: ModelConfig) -> int:
        """The final fit's seeds for this network: what the final share holds of it, or the
        dearest network's count for one the plan did not time."""
        return self.network_seeds.get(network_key(model), self.n_seeds)

    def trials(self, cfg: Config) -> int:
        """The finished trials the study should hold: tune.n_trials, or the plan's."""
        return self.n_trials if cfg.tune.n_trials == AUTO else cfg.tune.n_trials

    def trial_seconds(self, model: ModelConfig, epochs_run: int, checkpoints: int) -> float:
        """What a trial of this network that trained `epochs_run` epochs and reported
        `checkpoints` costs by the plan's timings (its network's snapped epoch, on the trial's
        folds; the dearest network's for one the plan did not time): the study's share is
        spent in these planned seconds, not in clock time, so which trials run does not
        depend on the machine's speed."""
        epoch = self.timings.get(f"{NETWORK_TIMING}[{network_key(model)}]",
                                 self.timings["epoch_seconds"])
        share = min(self.trial_folds, self.n_folds) / self.n_folds
        return (epochs_run * epoch * share + checkpoints * CHECKPOINT_SECONDS
                + TRIAL_OVERHEAD_SECONDS)

    def warmup(self, cfg: Config) -> int:
        """The epochs before pruning: tune.pruner.n_warmup_steps, or the plan's."""
        steps = cfg.tune.pruner.n_warmup_steps
        return self.n_warmup_steps if steps == AUTO else steps

    def study_cap_seconds(self, cfg: Config) -> float | None:
        """The study's hard cap: with tune.n_trials auto, its share plus CAP_MARGIN of the
        budget (a safety net: the planned trials fit in the share); tune.timeout_minutes caps
        it further, and with explicit trials only the timeout bounds it."""
        timeout = None if cfg.tune.timeout_minutes is None else cfg.tune.timeout_minutes * 60
        if cfg.tune.n_trials != AUTO:
            return timeout
        cap = self.study_seconds + CAP_MARGIN * self.budget_seconds
        return cap if timeout is None else min(timeout, cap)

    def reference_cap_seconds(self) -> float:
        """The reference stage's hard cap: its share plus CAP_MARGIN of the budget."""
        return self.reference_seconds + CAP_MARGIN * self.budget_seconds

    def lines(self, cfg: Config, measured: Measured) -> list[str]:
        """The plan as the plan stage prints it, with what it was decided from."""
        costs = trial_costs(cfg.tune.pruner, measured, self.epochs, self.eval_every,
                            self.warmup(cfg), self.trial_folds)
        minutes = self.budget_seconds / 60
        return [
            f"budget {minutes:g} min: study ~{self.study_seconds / 60:.1f} min, references "
            f"~{self.reference_seconds / 60:.1f} min, final fit ~{self.final_seconds / 60:.1f} "
            f"min, start-ups and data ~{self.overhead_seconds / 60:.1f} min",
            f"{self.n_trials} trials{self._folds_said()} at ~{costs.mean_seconds:.1f} s each once "
            f"pruning starts ({costs.full_seconds:.1f} s unpruned); {self._seeds_said()} in "
            f"the final fit{self._seed_batch_said(measured)}; "
            f"the GBM reference boosts at most {self.gbm_rounds} rounds ({self.gbm_num_leaves} "
            f"leaves, rate {self.gbm_learning_rate:g}); {self.rows} rows "
            f"({self.fit_rows} per fold fit), {self.inputs} input columns, {self.n_folds} "
            f"folds on {self.device}",
            f"sizes: batch {self.batch_size}, {self.epochs} epochs (an epoch of all "
            f"{self.n_folds} folds: {measured.trial_epoch:.3g} s for the networks a trial "
            f"draws on average as measured, {measured.epoch_seconds:.3g} s for the dearest; "
            f"a trial's epoch planned at {costs.epoch_seconds:.3g} s), validation every "
            f"{self.eval_every}, pruning after epoch {self.warmup(cfg)}, learning rate "
            f"{self.lr_range[0]:.2g} to {self.lr_range[1]:.2g}",
            self._steps_said(cfg, measured),
        ] + ([f"{len(self.too_dear)} of the {len(self.network_seeds)} networks the study "
              "draws are too dear for the final fit's share (one seed of one view): their "
              f"trials are pruned before training ({'; '.join(self.too_dear)})"]
             if self.too_dear else []) + (
            ["networks the final share holds on fewer views (one seed each: trained on the "
             "first ones if the study picks them): " + "; ".join(
                 f"{key}: {held} of {len(cfg.ensemble.feature_views)}"
                 for key, held in fewer.items())]
            if (fewer := {k: n for k, n in self.network_views.items()
                          if k not in self.too_dear}) else [])

    def _steps_said(self, cfg: Config, measured: Measured) -> str:
        """The optimizer steps each model trains and, where the budget cut the epochs, the
        budget at which the plan would give the rule's most epochs."""
        per_epoch = -(-self.fit_rows // self.batch_size)
        said = (f"each model trains {per_epoch * self.epochs} optimizer steps ({per_epoch} an "
                "epoch)")
        most = most_epochs(self.fit_rows, self.batch_size)
        if cfg.model.epochs != AUTO or self.epochs >= most:
            return said
        return (f"{said}; the budget holds {self.epochs} of the {most} epochs the rule "
                f"allows: {most} ({per_epoch * most} steps) would need "
                f"base.budget_minutes of about {minutes_for_epochs(cfg, measured, most)}")

    def _folds_said(self) -> str:
        if self.trial_folds >= self.n_folds:
            return ""
        return (f" on {self.trial_folds} of {self.n_folds} folds (each validates on "
                f"{self.rows // self.n_folds} rows: the final fit trains all {self.n_folds})")

    def _seed_batch_said(self, measured: Measured) -> str:
        """Where the final fit trains its seeds one at a time (ensemble.seed_batch auto)."""
        if self.seed_batch >= MAX_AUTO_SEEDS or measured.epoch_seconds <= 0:
            return ""
        times = measured.seeds_epoch_seconds / measured.epoch_seconds
        return (f", one at a time ({MAX_AUTO_SEEDS} seeds in one batch measured {times:.1f}x "
                "one seed's epoch)")

    def _seeds_said(self) -> str:
        counts = sorted(set(self.network_seeds.values()) | {self.n_seeds})
        if len(counts) == 1:
            return f"{self.n_seeds} seeds"
        return (f"{counts[0]} to {counts[-1]} seeds (by the network the study picks: "
                f"{self.n_seeds} for the dearest)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(**{**data, "lr_range": tuple(data["lr_range"])})


# The timings a plan is made from (Measured's fields), each snapped to the grid
TIMINGS = ("epoch_seconds", "trial_epoch_seconds", "features_seconds", "gbm_round_seconds",
           "gbm_setup_seconds", "seeds_epoch_seconds")


NETWORK_TIMING = "network_epoch_seconds"  # + "[" + network_key + "]" in a plan's timings


def planned_timings(measured: Measured) -> dict[str, float]:
    """The snapped timings a plan is made from."""
    timings = {name: snap(measured.trial_epoch if name == "trial_epoch_seconds"
                          else getattr(measured, name)) for name in TIMINGS}
    timings.update({f"{NETWORK_TIMING}[{key}]": snap(seconds)
                    for key, seconds in measured.network_epoch_seconds.items()})
    return timings


def network_key(model: ModelConfig) -> str:
    """What names a network as far as an epoch's cost goes (the plan's timings per network)."""
    return (f"width={model.width},depth={model.depth},members={model.members},"
            f"embedding={model.numeric_embedding}")


def basis(cfg: Config, measured: Measured) -> str:
    """What the timings belong to: the data's shape, the device, and every params
    section that changes what one epoch or one boosting round does (a hash)."""
    shape = {k: getattr(measured, k) for k in ("rows", "fit_rows", "inputs", "n_folds",
                                               "device")}
    sections = {"model": cfg.model, "features": cfg.features, "cv": cfg.cv,
                "reference": cfg.reference, "search_space": cfg.tune.search_space,
                "views": cfg.ensemble.feature_views, "seed": cfg.base.seed,
                "threads": cfg.base.threads, "grid": GRID_STEPS}
    text = json.dumps({"shape": shape, **sections}, sort_keys=True, default=_dump)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dump(value: object) -> object:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else str(value)


def settle(measured: Measured, previous: Plan | None, on: str) -> tuple[Measured, list[str]]:
    """`measured` with each timing that snaps to within KEEP_STEPS grid steps of the previous plan's
    replaced by that plan's value (hysteresis: a reading drifting across a grid point keeps
    the plan it made before), when the previous plan's `basis` is this one; and
    the names of the timings kept."""
    if previous is None or previous.basis != on:
        return measured, []
    now = planned_timings(measured)
    kept = {}
    for name, before in previous.timings.items():
        if name in now and before > 0 and now[name] > 0 and now[name] != before \
                and abs(round(math.log2(now[name] / before) * GRID_STEPS)) <= KEEP_STEPS:
            kept[name] = before
    networks = dict(measured.network_epoch_seconds)
    fixed = {}
    for name, value in kept.items():
        if name.startswith(NETWORK_TIMING + "["):
            networks[name[len(NETWORK_TIMING) + 1:-1]] = value
        else:
            fixed[name] = value
    return replace(measured, **fixed, network_epoch_seconds=networks), sorted(kept)


def previous_plan(plan_dir: str | Path) -> Plan | None:
    """The plan an earlier run left in `plan_dir` (DVC keeps it: `persist`), or None."""
    try:
        return read_plan(plan_dir)
    except (DataError, OSError, TypeError, ValueError, KeyError):
        return None


def read_plan(plan_dir: str | Path) -> Plan:
    """The plan stage's plan.json; DataError for one another version of the pipeline wrote."""
    path = Path(plan_dir) / "plan.json"
    data = read_json(path)
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(Plan)}:
        raise DataError(path, "written by another version of the pipeline (its keys differ); "
                        "run the plan stage again (dvc repro, or python -m pipeline plan)")
    return Plan.from_dict(data)


def cap_record(stage: str, cap_seconds: float | None, cut: str | None) -> dict:
    """A capped stage's TIME_CAP_FILE: its cap (planned, not measured) and, when the cap cut
    it short, what was cut (then its outputs depend on the machine's speed)."""
    return {"stage": stage, "cap_minutes": None if cap_seconds is None
            else round(cap_seconds / 60, 2), "hit": cut is not None, "cut": cut}


def snap(seconds: float) -> float:
    """`seconds` rounded up to the next point of the grid GRID ** k (0 stays 0): readings a
    little apart on one machine, or on two alike, give the same value."""
    if seconds <= 0:
        return 0.0
    return 2.0 ** (math.ceil(round(math.log2(seconds) * GRID_STEPS, 9)) / GRID_STEPS)


def batch_size(cfg: Config, fit_rows: int, device: str) -> int:
    """model.batch_size, or about STEPS_PER_EPOCH steps an epoch as a power of two."""
    return _batch(cfg.model, fit_rows, device)


def _batch(model: ModelConfig, fit_rows: int, device: str) -> int:
    if model.batch_size != AUTO:
        return model.batch_size
    target = 2 ** round(math.log2(max(fit_rows / STEPS_PER_EPOCH, 1)))
    return int(min(MAX_BATCH[device], max(MIN_BATCH, target)))


def most_epochs(fit_rows: int, batch: int) -> int:
    """The most epochs the plan gives a model: MAX_STEPS optimizer steps' worth (a multiple
    of 10), at least MAX_EPOCHS."""
    per_epoch = -(-fit_rows // batch)
    return max(MAX_EPOCHS, 10 * (MAX_STEPS // per_epoch // 10))


def resolve_model(model: ModelConfig, fit_rows: int, device: str = "cpu") -> ModelConfig:
    """A model config's "auto" sizes from the rows alone, without a budget (for use from
    Python, and the estimator): the plan's batch, learning rate and checkpoints, and
    MAX_EPOCHS epochs (without a budget, not the plan's `most_epochs`)."""
    batch = _batch(model, fit_rows, device)
    epochs = MAX_EPOCHS if model.epochs == AUTO else model.epochs
    scale = math.sqrt(batch / MIN_BATCH)
    sizes = {"batch_size": batch, "epochs": epochs,
             "eval_every": max(1, epochs // CHECKPOINTS),
             "lr": math.sqrt(LR_RANGE[0] * LR_RANGE[1]) * scale}
    return model.replace({k: v for k, v in sizes.items() if getattr(model, k) == AUTO},
                         "model.")


def keep_share(pruner: PrunerConfig) -> float:
    """The share of the trials after the pruner's start-up ones expected to run to the end."""
    return pruner.percentile / 100 if pruner.kind == "percentile" else KEEP_SHARE[pruner.kind]


def trial_costs(pruner: PrunerConfig, measured: Measured, epochs: int, eval_every: int,
                warmup: int, folds: int | None = None) -> TrialCosts:
    """A trial's expected cost at these sizes, from the snapped epochs: its epochs (on
    `folds` of the folds: default all; an epoch's cost is in proportion to the models it
    trains), its validation checkpoints (CHECKPOINT_SECONDS each) and TRIAL_OVERHEAD_SECONDS;
    and a seed's in the final fit (every fold, at the dearest network's epoch)."""
    share = 1.0 if folds is None else min(folds, measured.n_folds) / measured.n_folds
    epoch = snap(measured.trial_epoch) * share
    checks = epochs // max(eval_every, 1)
    full = epochs * epoch + checks * CHECKPOINT_SECONDS + TRIAL_OVERHEAD_SECONDS
    warmup = min(warmup, epochs)
    pruned = (warmup * epoch + max(warmup // max(eval_every, 1), 1) * CHECKPOINT_SECONDS
              + TRIAL_OVERHEAD_SECONDS)
    keep = keep_share(pruner)
    n_full = {"none": 0, "hyperband": 0}.get(pruner.kind, pruner.n_startup_trials)
    return TrialCosts(epoch_seconds=epoch, fit_seconds=epochs * snap(measured.epoch_seconds),
                      full_seconds=full,
                      mean_seconds=keep * full + (1 - keep) * pruned, n_full=n_full)


def study_trials(seconds: float, costs: TrialCosts) -> int:
    """How many trials `seconds` hold: the pruner's start-up trials in full, then trials at
    their mean cost; at least one."""
    first = costs.n_full * costs.full_seconds
    if seconds <= first:
        return max(1, int(seconds // costs.full_seconds))
    return costs.n_full + int((seconds - first) // costs.mean_seconds)


def gbm_costs(cfg: Config, measured: Measured) -> tuple[float, float]:
    """The GBM's seconds per round and per fold's data sets, at the snapped timings: a
    round is boosted on the fitting rows less the held-out share, then (refit) on all of
    them for the rounds found / (1 - share)."""
    ref = cfg.reference
    kept = 1 - ref.gbm_validation_share
    per_round = snap(measured.gbm_round_seconds) * (kept + (1 / kept if ref.gbm_refit else 0))
    return per_round, snap(measured.gbm_setup_seconds) * (2 if ref.gbm_refit else 1)


def gbm_fit_seconds(cfg: Config, measured: Measured, rounds: int) -> float:
    """Seconds the GBM takes over every fold for `rounds` rounds (search and refit)."""
    per_round, setup = gbm_costs(cfg, measured)
    return measured.n_folds * (rounds * per_round + setup)


def gbm_rounds(cfg: Config, measured: Measured, seconds: float) -> int:
    """The most boosting rounds the GBM's `seconds` hold over every fold (a search on the
    fitting rows less the held-out share, then the refit on all of them for the rounds found
    scaled up), at the snapped cost per round; between MIN_GBM_ROUNDS and
    reference.gbm_max_rounds."""
    ref = cfg.reference
    per_round, setup = gbm_costs(cfg, measured)
    if per_round <= 0:
        return ref.gbm_max_rounds
    fit = int(max(seconds / measured.n_folds - setup, 0.0) // per_round)
    return min(ref.gbm_max_rounds, max(MIN_GBM_ROUNDS, fit))


def gbm_leaves(fit_rows: int) -> int:
    """The GBM's leaves with reference.gbm_num_leaves auto, from a fold's fitting rows."""
    exponent = math.floor(math.log2(max(fit_rows, 1)) / 2 + 0.5) - 2
    low, high = (round(math.log2(n + 1)) for n in GBM_LEAVES)
    return 2 ** min(max(exponent, low), high) - 1


def gbm_rate(rounds: int) -> float:
    """The GBM's learning rate with reference.gbm_learning_rate auto, for at most `rounds`
    boosting rounds (rounded to two significant digits)."""
    rate = min(max(GBM_RATE_ROUNDS / max(rounds, 1), GBM_RATES[0]), GBM_RATES[1])
    return float(f"{rate:.2g}")


def resolve_reference(ref: ReferenceConfig, fit_rows: int) -> ReferenceConfig:
    """The reference's "auto" values from the rows alone (without a plan, the lowest rate:
    the most rounds are needed)."""
    changes = {}
    if ref.gbm_num_leaves == AUTO:
        changes["gbm_num_leaves"] = gbm_leaves(fit_rows)
    if ref.gbm_learning_rate == AUTO:
        changes["gbm_learning_rate"] = GBM_RATES[0]
    return ref.replace(changes, "reference.")


def reference_seconds(cfg: Config, measured: Measured) -> float:
    """The reference stage's time: REFERENCE_SHARE of the budget, or more (at most
    MAX_REFERENCE_SHARE) where the GBM's part would not hold GBM_WANTED_ROUNDS rounds (or
    reference.gbm_max_rounds, when fewer), rounded up to OVERHEAD_STEP seconds."""
    budget = cfg.base.budget_minutes * 60
    wanted = gbm_fit_seconds(cfg, measured, min(GBM_WANTED_ROUNDS,
                                                cfg.reference.gbm_max_rounds)) / GBM_SHARE
    seconds = min(max(REFERENCE_SHARE * budget, wanted), MAX_REFERENCE_SHARE * budget)
    return max(REFERENCE_SHARE * budget, OVERHEAD_STEP * math.floor(seconds / OVERHEAD_STEP))


def resolve_trial_folds(cfg: Config, measured: Measured) -> int:
    """The folds a trial trains: tune.trial_folds (at most the folds), or with auto one where a
    fold validates on ONE_FOLD_ROWS rows or more, else every fold."""
    if cfg.tune.trial_folds != AUTO:
        return min(cfg.tune.trial_folds, measured.n_folds)
    return 1 if measured.rows // measured.n_folds >= ONE_FOLD_ROWS else measured.n_folds


def minutes_for_epochs(cfg: Config, measured: Measured, epochs: int) -> int:
    """The fewest whole base.budget_minutes at which the plan (model.epochs auto) gives at
    least `epochs` epochs, more than it gives at cfg's budget; found by search, since not
    every share grows with the budget (the references', the start-ups' and each trial's
    overhead do not). The most minutes the params allow where no budget does."""

    def holds(minutes: int) -> bool:
        budget = cfg.replace({"base": {**cfg.base.model_dump(), "budget_minutes": minutes}})
        return make_plan(budget, measured).epochs >= epochs

    low, step = math.floor(cfg.base.budget_minutes), 1  # low: known not to hold
    while not holds(low + step):  # doubling the step ...
        if low + step >= MAX_BUDGET_MINUTES:
            return MAX_BUDGET_MINUTES
        low, step = low + step, min(2 * step, MAX_BUDGET_MINUTES - low - step)
    high = low + step
    while high - low > 1:  # ... then halving the gap
        middle = (low + high) // 2
        low, high = (low, middle) if holds(middle) else (middle, high)
    return high


def make_plan(cfg: Config, measured: Measured) -> Plan:
    """The plan for this config and measurement (see docs/sizing.md for the rule)."""
    budget = cfg.base.budget_minutes * 60
    batch = batch_size(cfg, measured.fit_rows, measured.device)
    views = max(1, len(cfg.ensemble.feature_views))
    # the stages that fit fold preprocessing: tune, reference, train (once per view)
    overhead = FIXED_SECONDS + (2 + views) * snap(measured.features_seconds)
    overhead = OVERHEAD_STEP * math.ceil(overhead / OVERHEAD_STEP)
    reference = reference_seconds(cfg, measured)
    left = max(budget - overhead - reference, 0.0)
    study = STUDY_SHARE * left
    final = left - study
    pruner = cfg.tune.pruner
    trial_folds = resolve_trial_folds(cfg, measured)

    def sizes(epochs: int) -> tuple[int, int, TrialCosts]:
        eval_every = (cfg.model.eval_every if cfg.model.eval_every != AUTO
                      else max(1, epochs // CHECKPOINTS))
        warmup = min(eval_every * max(1, round(epochs * WARMUP_SHARE / eval_every)), epochs)
        costs = trial_costs(pruner, measured, epochs, eval_every,
                            warmup if pruner.n_warmup_steps == AUTO else pruner.n_warmup_steps,
                            trial_folds)
        return eval_every, warmup, costs

    if cfg.model.epochs != AUTO:
        epochs = cfg.model.epochs
    else:  # the most epochs (a multiple of 10) at which the share holds MIN_TRIALS trials
        # and the final share one seed of every view of the network a trial draws on
        # average: not of the dearest, which would cut every network's training to what the
        # dearest affords (dearer networks get fewer views, or are `too_dear`)
        typical = snap(measured.trial_epoch)
        epochs = next((e for e in range(most_epochs(measured.fit_rows, batch), MIN_EPOCHS,
                                        -10)
                       if study_trials(study, sizes(e)[2]) >= MIN_TRIALS
                       and views * e * typical <= final), MIN_EPOCHS)
    eval_every, warmup, costs = sizes(epochs)
    # what the final fit cannot use (it holds at most MAX_AUTO_SEEDS seeds) runs trials; the
    # seeds are ensemble.n_seeds: auto's (an explicit count wins in `apply`, and the plan
    # does not read it: changing it re-runs only train)
    needed = OVERHEAD_STEP * math.ceil(MAX_AUTO_SEEDS * views * costs.fit_seconds
                                       / OVERHEAD_STEP)  # rounded up as the overhead is
    if final > needed:
        study, final = study + final - needed, needed

    def seeds(fit_seconds: float) -> int:
        return int(min(MAX_AUTO_SEEDS, max(1, final // max(fit_seconds * views, 1e-9))))

    n_seeds = seeds(costs.fit_seconds)
    # one seed of one view of each timed network, from its snapped epoch
    fit_of = {key: epochs * snap(seconds)
              for key, seconds in sorted(measured.network_epoch_seconds.items())}
    network_seeds = {key: seeds(fit) for key, fit in fit_of.items()}
    network_views = {key: held for key, fit in fit_of.items()
                     if (held := int(max(1, final // fit))) < views}
    cheapest = min(fit_of, default=None, key=lambda key: (fit_of[key], key))
    too_dear = [key for key, fit in fit_of.items() if fit > final and key != cheapest]
    seed_batch = (MAX_AUTO_SEEDS if snap(measured.seeds_epoch_seconds)
                  <= MAX_AUTO_SEEDS * snap(measured.epoch_seconds) else 1)
    n_trials = (cfg.tune.n_trials if cfg.tune.n_trials != AUTO
                else study_trials(study, costs))
    scale = math.sqrt(batch / MIN_BATCH)
    rounds = gbm_rounds(cfg, measured, GBM_SHARE * reference)
    return Plan(
        budget_seconds=budget, rows=measured.rows, fit_rows=measured.fit_rows,
        inputs=measured.inputs, n_folds=measured.n_folds, device=measured.device,
        batch_size=batch, epochs=epochs, eval_every=eval_every, n_warmup_steps=warmup,
        lr_range=(LR_RANGE[0] * scale, LR_RANGE[1] * scale), n_trials=n_trials,
        trial_folds=trial_folds,
        n_startup_trials=int(min(8, max(2, n_trials // 3))), n_seeds=n_seeds,
        network_seeds=network_seeds, too_dear=too_dear, network_views=network_views,
        seed_batch=seed_batch,
        gbm_rounds=rounds, gbm_num_leaves=resolve_reference(cfg.reference,
                                                            measured.fit_rows).gbm_num_leaves,
        gbm_learning_rate=(gbm_rate(rounds) if cfg.reference.gbm_learning_rate == AUTO
                           else cfg.reference.gbm_learning_rate),
        overhead_seconds=overhead, reference_seconds=round(reference, 1),
        study_seconds=round(study, 1), final_seconds=round(final, 1),
        timings=planned_timings(measured), basis=basis(cfg, measured))


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
