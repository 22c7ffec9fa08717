"""plan: the sizes and time shares of this run (every "auto" in params.yaml), from the rows,
the columns, the budget and one measured training epoch; printed first, written to plan.json."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.calibrate import epoch_seconds, features_seconds
from pipeline.config import Config
from pipeline.cv import make_folds
from pipeline.data.prepared import load_prepared
from pipeline.io import atomic_dir, write_json
from pipeline.plan import Measured, Plan, batch_size, make_plan
from pipeline.runtime import record_time, resolve_device, set_threads, timings_dir

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, out_dir: Path) -> Plan:
    """Write `out_dir`/plan.json."""
    started = time.monotonic()
    set_threads(None, cfg.base.threads)
    device = resolve_device(cfg.base.device)
    prepared = load_prepared(prepared_dir)
    train, schema = prepared.train, prepared.schema
    folds = make_folds(train, cfg.cv.n_folds, cfg.base.seed, cfg.features.fit_exclude)
    fit_rows = len(folds.fit_rows[0])
    log.info("measuring one epoch on this machine (%s)", device)
    seconds, width, x = features_seconds(train, folds, schema, cfg)
    batch = batch_size(cfg, fit_rows, device)
    measured = Measured(rows=len(train), fit_rows=fit_rows, inputs=width,
                        n_folds=folds.n_folds, device=device,
                        epoch_seconds=epoch_seconds(x, train, schema, folds, cfg, batch,
                                                    cfg.base.seed, device),
                        features_seconds=seconds)
    plan = make_plan(cfg, measured)
    for line in plan.lines():
        log.info("%s", line)
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / "plan.json", plan.to_dict())
    record_time(timings_dir(prepared_dir), "plan", started)
    return plan

