"""The process's share of the machine: torch threads, the device, and the stages' wall time."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

from pipeline.config import ConfigError

log = logging.getLogger("pipeline")


def set_threads(threads: int | None, base_threads: int = 0, n_jobs: int = 1) -> int:
    """Torch threads: `threads` (a --threads option), else `base.threads`, else the cores
    shared among the trials this process runs at once (`n_jobs`), so parallel trials or
    workers do not oversubscribe the CPU. Returns the count set."""
    if threads:
        count = threads
    else:
        count = max(1, (base_threads or os.cpu_count() or 1) // n_jobs)
    torch.set_num_threads(count)
    return count


def resolve_device(setting: str) -> str:
    """`base.device` as a torch device type: auto is CUDA when torch sees a GPU, else CPU."""
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("base.device: cuda, but torch sees no GPU (set auto or cpu)")
    return setting


def timings_dir(beside: str | Path) -> Path:
    """Where the stages note their wall time: `timings/` beside a stage directory they were
    given (the stages: their --prepared, data/prepared -> data/timings; the summary: its
    --tune-dir), so a stage writes only where it was pointed. Outside every DVC output: the
    times depend on the clock, a stage's outputs only on its inputs."""
    return Path(beside).parent / "timings"


def record_time(timings: Path, stage: str, started: float, **extra: float | int | None) -> None:
    """Note in `timings`/<stage>.json how long a stage took (time.monotonic() at its start),
    for the summary's budget line. The stage's outputs are in place by then: a note that
    cannot be written is a warning, not a failed stage."""
    seconds = round(time.monotonic() - started, 1)
    path = Path(timings) / f"{stage}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seconds": seconds, **extra}) + "\n")
    except OSError as exc:
        log.warning("could not note the %s stage's time in %s: %s", stage, path,
                    exc.strerror or exc)
