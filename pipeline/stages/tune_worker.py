"""tune-worker: add trials to the tune stage's study from this process, or from N processes
started here; writes no stage output (the tune stage does)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.config.fields import AUTO
from pipeline.plan import read_plan
from pipeline.runtime import set_threads
from pipeline.services import masked
from pipeline.tune.session import open_tuning
from pipeline.tune.study import Spend, run_study, worker_id
from pipeline.tune.trials import finished_trials, trial_counts

log = logging.getLogger("pipeline")


@dataclass
class WorkerReport:
    """What one tune worker did."""

    worker: str
    study: str
    ran: dict[str, int]  # trial state -> how many this worker ran
    study_counts: dict[str, int]  # trial state -> how many the study holds

    def line(self, n_trials: int) -> str:
        ran = sum(self.ran.values())
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.ran.items())) or "none"
        finished = self.study_counts.get("COMPLETE", 0) + self.study_counts.get("PRUNED", 0)
        return (f"worker {self.worker} ran {ran} trials ({states}); study {self.study} holds "
                f"{finished} finished of {n_trials}")


def run(cfg: Config, prepared_dir: Path, plan_dir: Path, storage_dir: Path,
        max_trials: int | None = None, threads: int | None = None) -> WorkerReport:
    """Contribute trials to the shared study until it holds tune.n_trials finished ones (with
    auto: until their cost by the plan's timings fills the study's share), or this worker ran
    `max_trials`."""
    set_threads(threads, cfg.base.threads, cfg.tune.n_jobs)
    plan = read_plan(plan_dir)
    n_trials = plan.trials(cfg)
    by_plan = cfg.tune.n_trials == AUTO  # until the trials' planned cost fills the share
    cfg = plan.apply(cfg)
    me = worker_id()
    t = open_tuning(cfg, prepared_dir, storage_dir, worker=me, too_dear=plan.too_dear)
    if t.storage.startswith("sqlite"):
        log.warning("the study lives in SQLite (%s): parallel workers may stop on 'database is "
                    "locked'; use PostgreSQL (or a journal file on one machine), see "
                    "docs/scaling-out.md", masked(t.storage))
    log.info("worker %s joins study %s in %s: %d of %d trials finished", me, t.name,
             masked(t.storage), finished_trials(t.study), n_trials)
    deadline = (None if cfg.tune.timeout_minutes is None
                else time.monotonic() + cfg.tune.timeout_minutes * 60)
    ran = run_study(t.study, t.objective, None if by_plan else n_trials, deadline,
                    cfg.tune.n_jobs, t.on_trial, max_trials=max_trials,
                    spend=Spend.planned(plan, cfg.model) if by_plan else None)
    counts: dict[str, int] = {}
    for record in ran:
        counts[record.state] = counts.get(record.state, 0) + 1
    report = WorkerReport(me, t.name, counts, trial_counts(t.study))
    print(report.line(n_trials), flush=True)
    return report


def spawn(cfg: Config, params: Path, prepared_dir: Path, plan_dir: Path, storage_dir: Path,
          processes: int, threads: int | None, max_trials: int | None, quiet: bool) -> int:
    """Start `processes` tune workers on this machine, the cores split among them; wait for
    them and return the exit code to report (a signal passed on to them counts)."""
    threads = threads or max(1, (cfg.base.threads or os.cpu_count() or 1)
                             // (processes * cfg.tune.n_jobs))
    command = [sys.executable, "-m", "pipeline", "--params", str(params)]
    if quiet:
        command.append("-q")
    command += ["tune-worker", "--prepared", str(prepared_dir), "--plan", str(plan_dir),
                "--storage-dir", str(storage_dir), "--threads", str(threads)]
    if max_trials:
        command += ["--n-trials", str(max_trials)]
    log.info("starting %d workers with %d torch threads each", processes, threads)
    children = [subprocess.Popen(command) for _ in range(processes)]
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt as exc:  # Ctrl-C reached the children too; a SIGTERM did not
        number = getattr(exc, "signal_number", signal.SIGINT)
        for child in children:
            if number != signal.SIGINT and child.poll() is None:
                child.send_signal(number)
        for child in children:
            child.wait()
        raise
    return max(codes, key=abs)
