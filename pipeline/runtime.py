"""The process's share of the machine: torch threads for the stages that train or predict."""

from __future__ import annotations

import os

import torch


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
