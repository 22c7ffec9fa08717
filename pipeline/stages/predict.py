"""predict: check the raw test file as prepare does, predict it with the final model (loaded
only if its SHA-256 matches the train stage's record); check the submission against the
sample submission and write it."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.data.read import read_csv
from pipeline.ensemble import FinalModel
from pipeline.io import load_pickle
from pipeline.runtime import set_threads
from pipeline.submission import build_submission, validate_submission, write_submission

log = logging.getLogger("pipeline")


def run(cfg: Config, model_path: Path, out_path: Path) -> pd.DataFrame:
    """Write `out_path`: the submission CSV, ids in the test file's order."""
    set_threads(None, cfg.base.threads)
    model: FinalModel = load_pickle(model_path)
    schema = model.schema
    test = model.validated(read_csv(cfg.data.test, model.reading), cfg.data.test)
    ids = test[schema.id_column]
    submission = build_submission(ids, model.predict_typed(test), schema.id_column,
                                  schema.target)
    sample = (read_csv(cfg.data.sample_submission, model.reading)
              if cfg.data.sample_submission else None)
    validate_submission(submission, ids, sample, model.scale,
                        sample_path=cfg.data.sample_submission or "")
    write_submission(out_path, submission)
    log.info("wrote %s: %d rows", out_path, len(submission))
    return submission
