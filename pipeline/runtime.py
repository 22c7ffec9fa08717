"""The process's share of the machine: torch threads, the device, and the stages' wall time."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from pipeline.config import ConfigError

TIMINGS = Path("data/timings")  # each stage's last wall time, read by `summary`


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


def record_time(stage: str, started: float, **extra: float | int | None) -> None:
    """Note how long a stage took (time.monotonic() at its start) for the summary's budget
    line. A side file outside DVC's outputs: a stage's outputs stay what its inputs make."""
    TIMINGS.mkdir(parents=True, exist_ok=True)
    seconds = round(time.monotonic() - started, 1)
    (TIMINGS / f"{stage}.json").write_text(json.dumps({"seconds": seconds, **extra}) + "\n")
