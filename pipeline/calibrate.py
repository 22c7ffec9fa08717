"""What one training epoch and one boosting round cost on this machine and data: short timed
runs of the trainer and of LightGBM.

The plan sizes epochs, trials and the GBM's rounds from them. The trainer runs on a sample
of the rows (cost per row is flat in the rows; benchmarks/scale.py shows it), with each
network the study can draw (`networks`; the dearest is what the final fit is planned at, and
it is timed again with several seeds in one batch: whether the final fit batches its seeds),
timed over a few epochs after a warm-up one (the fastest counts);
LightGBM boosts a few rounds on one fold's fitting rows (the median round counts).
"""

from __future__ import annotations

import itertools
import math
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
import torch

from pipeline.config import Config, ModelConfig, ReferenceConfig
from pipeline.config.fields import AUTO
from pipeline.cv import Folds, model_target
from pipeline.data.schema import Schema
from pipeline.features import (
    build_preprocessor,
    build_tree_preprocessor,
    code_levels,
    n_categorical,
    stack_transforms,
)
from pipeline.nn.train import fit_mlps
from pipeline.reference import gbm_reference

SAMPLE_ROWS = 16_384
TIMED_EPOCHS = 3  # the fastest counts: another job's spell on the machine only slows some
TIMED_ROUNDS = 20
SEEDS_STEPS = 4  # minibatches a model when several seeds are timed in one batch


def features_seconds(train: pd.DataFrame, folds: Folds, schema: Schema,
                     cfg: Config) -> tuple[float, int, np.ndarray, list[int]]:
    """Seconds to fit and apply one fold's preprocessing, times the folds; the matrix width;
    the first fold's matrix of every training row; its leading level-code columns' codes."""
    start = time.perf_counter()
    rows = folds.fit_rows[0]
    preprocessor = build_preprocessor(schema, cfg.features, cfg.base.seed)
    preprocessor.fit_transform(train.iloc[rows], model_target(train, schema)[rows])
    x = stack_transforms([preprocessor], train)[0]
    seconds = (time.perf_counter() - start) * folds.n_folds
    return seconds, x.shape[1], x, code_levels(preprocessor)


def gbm_matrix(train: pd.DataFrame, folds: Folds, schema: Schema, cfg: Config,
               x: np.ndarray) -> tuple[np.ndarray, int]:
    """The GBM reference's matrix of the first fold's fitting rows and its leading category
    codes: the tree models' view with `reference.gbm_categoricals: native`, else `x` (the
    MLP's, every training row)."""
    rows = folds.fit_rows[0]
    if cfg.reference.gbm_categoricals != "native":
        return x[rows], 0
    preprocessor = build_tree_preprocessor(schema, cfg.features, cfg.base.seed)
    fitted = preprocessor.fit_transform(train.iloc[rows], model_target(train, schema)[rows])
    return np.asarray(fitted, dtype=np.float32), n_categorical(preprocessor)


def epoch_seconds(x: np.ndarray, train: pd.DataFrame, schema: Schema, folds: Folds,
                  network: ModelConfig, batch_size: int, seed: int,
                  device: str = "cpu", levels: list[int] | tuple[int, ...] = (),
                  n_seeds: int = 1, sample_rows: int = SAMPLE_ROWS,
                  timed_epochs: int = TIMED_EPOCHS) -> float:
    """Seconds for one epoch of every fold's model at once (`n_seeds` of each, in one batch),
    on all of a fold's fit rows, with this network (`networks`, `network`), timed on
    `sample_rows` rows over `timed_epochs` epochs; x's first len(levels) columns are level
    codes."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), size=min(len(x), sample_rows), replace=False))
    share = len(folds.fit_rows[0]) / len(train)
    fit = [np.sort(rng.choice(len(rows), size=max(1, int(share * len(rows))), replace=False))
           for _ in range(folds.n_folds)]
    y = torch.as_tensor(model_target(train, schema)[rows], dtype=torch.float32)
    sample = torch.from_numpy(np.ascontiguousarray(x[rows]))
    model = network.replace(
        {"epochs": 1 + timed_epochs, "eval_every": 1 + timed_epochs, "batch_size": batch_size,
         "lr": 1e-3, "lr_schedule": "constant"})
    stamps: dict[int, float] = {}

    def stamp(epoch: int) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        stamps[epoch] = time.perf_counter()

    fit_mlps(sample.expand(folds.n_folds, *sample.shape), y, fit * n_seeds, None, model, seed,
             on_epoch=stamp, device=device, code_levels=levels)
    per_epoch = min(stamps[e + 1] - stamps[e] for e in range(1, 1 + timed_epochs))
    return per_epoch * len(folds.fit_rows[0]) / len(fit[0])


def seeds_epoch_seconds(x: np.ndarray, train: pd.DataFrame, schema: Schema, folds: Folds,
                        network: ModelConfig, batch_size: int, seed: int, n_seeds: int,
                        device: str = "cpu",
                        levels: list[int] | tuple[int, ...] = ()) -> float:
    """`epoch_seconds` with `n_seeds` seeds of every fold in one batch, timed cheaply: on
    SEEDS_STEPS minibatches a model (what makes a batch of many models dear is each step's
    size, not the rows) over one epoch after the warm-up."""
    share = len(folds.fit_rows[0]) / len(train)
    rows = min(SAMPLE_ROWS, math.ceil(SEEDS_STEPS * batch_size / share))
    return epoch_seconds(x, train, schema, folds, network, batch_size, seed, device, levels,
                         n_seeds=n_seeds, sample_rows=rows, timed_epochs=1)


# The searched model params that change an epoch's cost: counts (more costs more), and the
# numeric embedding (from the cheapest kind to the dearest)
COSTLY_COUNTS = ("width", "depth", "members")
EMBEDDING_COST = ("none", "pbld", "ple")
# The most networks timed one by one; a larger space is timed at its dearest and cheapest
MAX_NETWORKS = 18


def networks(cfg: Config) -> list[ModelConfig]:
    """The networks the study's search space draws, as far as an epoch's cost goes: every
    combination of the searched counts (`_counts`) and embeddings, which the sampler
    draws alike before it learns; the dearest and the cheapest when there are more than
    MAX_NETWORKS; the model as it is when the study draws none of them."""
    dims = [(name, _counts(cfg.tune.search_space[name])) for name in COSTLY_COUNTS
            if cfg.tune.search_space.get(name) not in (None, AUTO)]
    embedding = cfg.tune.search_space.get("numeric_embedding")
    if embedding not in (None, AUTO):
        dims.append(("numeric_embedding", sorted(set(embedding.values),
                                                 key=EMBEDDING_COST.index)))
    combos = list(itertools.product(*(values for _, values in dims)))
    if len(combos) > MAX_NETWORKS:
        return [network(cfg, min), network(cfg, max)]
    names = [name for name, _ in dims]
    return [cfg.model.replace(dict(zip(names, combo, strict=True))) for combo in combos]


def _counts(dim) -> list[int]:
    """A searched count's values: its choices, every whole number of a short range, or the
    range's edges."""
    low, high = min(int(v) for v in dim.values), max(int(v) for v in dim.values)
    if dim.choices is None and high - low < 4:
        return list(range(low, high + 1))
    return sorted({int(v) for v in dim.values})


def network(cfg: Config, pick=max) -> ModelConfig:
    """The model config with the dearest network (pick=max: widest, deepest, most members,
    the dearest embedding) or the cheapest one (pick=min) the study's search space allows."""
    model = cfg.model
    changes = {}
    for name in COSTLY_COUNTS:
        dim = cfg.tune.search_space.get(name)
        if dim is not None and dim != AUTO:
            changes[name] = pick(int(v) for v in dim.values)
    dim = cfg.tune.search_space.get("numeric_embedding")
    if dim is not None and dim != AUTO:
        changes["numeric_embedding"] = pick(dim.values, key=EMBEDDING_COST.index)
    return model.replace(changes)


def gbm_seconds(x: np.ndarray, y: np.ndarray, cfg: ReferenceConfig, seed: int,
                threads: int = 0, n_categorical: int = 0) -> tuple[float, float]:
    """Seconds to build LightGBM's data set of these rows (one fold's fitting rows; the first
    `n_categorical` columns category codes) and to boost one round on it (the median of
    TIMED_ROUNDS), with the reference's settings."""
    model = gbm_reference(cfg, seed, threads=threads, n_categorical=n_categorical)
    params = model.booster_params()
    start = time.perf_counter()
    data = model.dataset(x, y, params=params).construct()
    setup = time.perf_counter() - start
    stamps = [time.perf_counter()]
    lgb.train(params, data, TIMED_ROUNDS,
              callbacks=[lambda _env: stamps.append(time.perf_counter())])
    return setup, float(np.median(np.diff(stamps)))
