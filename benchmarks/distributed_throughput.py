"""Trials per minute of one study on PostgreSQL: one tune worker against two.

    .venv/bin/python benchmarks/distributed_throughput.py            # ~3 min on 2 cores
    .venv/bin/python benchmarks/distributed_throughput.py --trials 20 --epochs 60

Needs the PostgreSQL server (default postgresql+psycopg://postgres@127.0.0.1:5432, or
--postgres); creates a database per run and drops it. The trial: the House Prices training
rows, params.yaml's model and features with `--epochs` epochs, 5 folds; no pruning, and
only lr, weight_decay, dropout and input_l1 tuned, so every trial costs the same. Each
setting runs `python -m pipeline tune-worker` on a fresh study of `--trials` trials, MLflow
tracking in PostgreSQL too. Rate = finished trials over the span from the first trial's
start to the last one's end (process start-up excluded); the wall time includes it. Prints
figures; asserts nothing; other load on the machine skews them.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = [  # (worker processes, torch threads each)
    (1, 2),
    (1, 1),
    (2, 1),
]


def admin(postgres: str):
    import psycopg

    return psycopg.connect(postgres.replace("+psycopg", "") + "/postgres", autocommit=True,
                           connect_timeout=5)


def run_setting(project: Path, postgres: str, processes: int, threads: int) -> dict:
    import optuna

    names = [f"bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("optuna", "mlflow")]
    with admin(postgres) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    storage, tracking = (f"{postgres}/{name}" for name in names)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OPTUNA_STORAGE": storage,
               "MLFLOW_TRACKING_URI": tracking}
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "pipeline", "-q", "--params",
                        str(project / "params.yaml"), "tune-worker", "--prepared",
                        str(project / "prepared"), "--plan", str(project / "plan"),
                        "--processes", str(processes),
                        "--threads", str(threads)], env=env, check=True, cwd=project)
        wall = time.monotonic() - started
        summary = optuna.get_all_study_summaries(storage)
        study = optuna.load_study(study_name=next(s.study_name for s in summary
                                                  if ":" not in s.study_name),
                                  storage=storage)
        trials = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        span = (max(t.datetime_complete for t in trials)
                - min(t.datetime_start for t in trials)).total_seconds()
        optuna.storages.RDBStorage(storage).engine.dispose()
    finally:
        with admin(postgres) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {"processes": processes, "threads": threads, "trials": len(trials),
            "span_s": span, "wall_s": wall, "per_min": 60 * len(trials) / span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--postgres", default=os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        for key in ("train", "test", "sample_submission"):
            params["data"][key] = str(ROOT / params["data"][key])
        params["model"]["epochs"] = args.epochs
        # every trial the same cost: no pruning, and only parameters that do not change
        # the network's size are tuned (workers sample different points)
        space = {k: v for k, v in params["tune"]["search_space"].items()
                 if k in ("lr", "weight_decay", "dropout", "input_l1")}
        params["tune"].update({"n_trials": args.trials, "pruner": {"kind": "none"},
                               "n_startup_trials": args.trials, "search_space": space})
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        subprocess.run([sys.executable, "-m", "pipeline", "-q", "--params",
                        str(project / "params.yaml"), "prepare", "--out",
                        str(project / "prepared")], check=True, cwd=project,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        subprocess.run([sys.executable, "-m", "pipeline", "-q", "--params",
                        str(project / "params.yaml"), "plan", "--prepared",
                        str(project / "prepared"), "--out", str(project / "plan")],
                       check=True, cwd=project, env={**os.environ, "PYTHONPATH": str(ROOT)})
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
              f"{args.trials} trials of 5-fold CV on House Prices, {args.epochs} epochs, "
              "no pruning; storage and tracking in PostgreSQL")
        print(f"{'workers':>7} {'threads':>7} {'trials':>6} {'span s':>7} {'wall s':>7} "
              f"{'trials/min':>10}")
        results = []
        for processes, threads in SETTINGS:
            r = run_setting(project, args.postgres, processes, threads)
            results.append(r)
            print(f"{r['processes']:>7} {r['threads']:>7} {r['trials']:>6} {r['span_s']:>7.1f} "
                  f"{r['wall_s']:>7.1f} {r['per_min']:>10.1f}", flush=True)
        one = results[0]["per_min"]
        two = results[-1]["per_min"]
        print(f"two workers (1 thread each) vs one worker (2 threads): {two / one:.2f}x")


if __name__ == "__main__":
    main()
