"""plan: the sizes, counts and time shares of this run (every "auto" in params.yaml), from the
rows, the columns, the budget and one measured training epoch and boosting round; printed
first, written to plan.json (decisions, and the snapped timings they came from: the raw
readings go to the log). A previous plan.json in `out_dir` (DVC persists it) holds the plan
steady while this run's readings snap within an octave (two grid steps) of its timings."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.calibrate import (
    epoch_seconds,
    features_seconds,
    gbm_matrix,
    gbm_seconds,
    networks,
    seeds_epoch_seconds,
)
from pipeline.config import Config
from pipeline.cv import make_folds, model_target
from pipeline.data.prepared import load_prepared
from pipeline.io import atomic_dir, write_json
from pipeline.plan import (
    MAX_AUTO_SEEDS,
    Measured,
    Plan,
    basis,
    batch_size,
    make_plan,
    network_key,
    previous_plan,
    resolve_reference,
    settle,
    snap,
)
from pipeline.runtime import record_time, resolve_device, set_threads, timings_dir

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, out_dir: Path) -> Plan:
    """Write `out_dir`/plan.json."""
    started = time.monotonic()
    threads = set_threads(None, cfg.base.threads)
    device = resolve_device(cfg.base.device)
    prepared = load_prepared(prepared_dir)
    train, schema = prepared.train, prepared.schema
    folds = make_folds(train, cfg.cv.n_folds, cfg.base.seed, cfg.features.fit_exclude)
    fit_rows = folds.fit_rows[0]
    log.info("measuring one epoch and one boosting round on this machine (%s)", device)
    seconds, width, x, levels = features_seconds(train, folds, schema, cfg)
    batch = batch_size(cfg, len(fit_rows), device)
    drawn = networks(cfg)  # the dearest the space allows is always among them
    timed = [epoch_seconds(x, train, schema, folds, model, batch, cfg.base.seed, device,
                           levels) for model in drawn]
    epoch, trial_epoch = max(timed), sum(timed) / len(timed)
    dearest = drawn[timed.index(epoch)]
    # the final fit's batch of seeds, measured whatever ensemble.* says (the plan does not
    # read that section: changing it re-runs only train)
    seeds_epoch = seeds_epoch_seconds(x, train, schema, folds, dearest, batch, cfg.base.seed,
                                      MAX_AUTO_SEEDS, device, levels)
    gbm_x, codes = gbm_matrix(train, folds, schema, cfg, x)
    gbm_setup, gbm_round = gbm_seconds(gbm_x, model_target(train, schema)[fit_rows],
                                       resolve_reference(cfg.reference, len(fit_rows)),
                                       cfg.base.seed, threads, codes)
    measured = Measured(rows=len(train), fit_rows=len(fit_rows), inputs=width,
                        n_folds=folds.n_folds, device=device, epoch_seconds=epoch,
                        trial_epoch_seconds=trial_epoch, features_seconds=seconds,
                        gbm_round_seconds=gbm_round, gbm_setup_seconds=gbm_setup,
                        network_epoch_seconds={network_key(model): seconds for model, seconds
                                               in zip(drawn, timed, strict=True)},
                        seeds_epoch_seconds=seeds_epoch)
    log.info("measured (planned as, snapped up to a half-octave grid): epoch %.4g s (%.4g), "
             "a trial's mean epoch over %d networks %.4g s (%.4g), fold preprocessing %.3g s "
             "(%.3g), boosting round %.3g ms (%.3g), GBM data set %.3g s (%.3g), the dearest "
             "network's epoch with %d seeds in one batch %.4g s (%.4g)", epoch,
             snap(epoch), len(drawn), measured.trial_epoch_seconds,
             snap(measured.trial_epoch_seconds), seconds,
             snap(seconds), 1000 * gbm_round, 1000 * snap(gbm_round), gbm_setup,
             snap(gbm_setup), MAX_AUTO_SEEDS, seeds_epoch, snap(seeds_epoch))
    measured, kept = settle(measured, previous_plan(out_dir), basis(cfg, measured))
    if kept:
        log.info("kept the previous plan's %s: this run's readings snap within an octave "
                 "of them (docs/sizing.md)", ", ".join(kept))
    plan = make_plan(cfg, measured)
    for line in plan.lines(cfg, measured):
        log.info("%s", line)
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / "plan.json", plan.to_dict())
    record_time(timings_dir(prepared_dir), "plan", started)
    return plan
