"""prepare: validate the raw CSVs, infer column kinds, write typed frames and the schema."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Config
from pipeline.data.errors import DataError
from pipeline.data.prepared import Prepared, write_prepared
from pipeline.data.read import ReadOptions, read_csv
from pipeline.data.schema import describe_schema
from pipeline.data.validate import load_competition, validate_sample
from pipeline.features import check_datetime_parts, validate_feature_config
from pipeline.io import atomic_dir, file_hash

log = logging.getLogger("pipeline")


def run(cfg: Config, out_dir: Path) -> Prepared:
    """Write `out_dir`: train.parquet, test.parquet, schema.json, meta.json, reading.json."""
    train, test, schema = load_competition(cfg.data)
    check_datetime_parts(schema, cfg.data.train)
    try:
        validate_feature_config(schema, cfg.features)
    except ValueError as exc:
        raise DataError("params.yaml", str(exc)) from exc
    reading = ReadOptions.of(cfg.data)
    if cfg.data.sample_submission:
        sample = read_csv(cfg.data.sample_submission, reading)
        validate_sample(sample, test[cfg.data.id_column], cfg.data, cfg.data.sample_submission)
    prepared = Prepared(train, test, schema, file_hash([cfg.data.train, cfg.data.test]), reading)
    log.info("%s: %d rows; %s: %d rows", cfg.data.train, len(train), cfg.data.test, len(test))
    for line in describe_schema(schema).splitlines():
        log.info("%s", line)
    for note in schema.warnings:
        log.warning("check: %s", note)
    with atomic_dir(out_dir) as tmp:
        write_prepared(tmp, prepared)
    log.info("column kinds and notes: %s", Path(out_dir) / "schema.json")
    return prepared
