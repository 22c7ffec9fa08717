"""Command line: one subcommand per dvc.yaml stage, plus `summary`. Progress display lives here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from pipeline.config import Config, ConfigError, load_config
from pipeline.data import DataError
from pipeline.io import ServiceError
from pipeline.submission import SubmissionError

log = logging.getLogger("pipeline")

STAGES = {
    "prepare": "validate the raw CSVs, infer column kinds, write typed frames",
    "tune": "run or resume the Optuna study (K-fold CV objective); write best_params.json",
    "tune-worker": "add trials to the tune stage's study from this process (or --processes N); "
                   "writes no output: start as many as you like, on any machine",
    "reference": "cross-validate the reference models (linear, gradient boosting)",
    "train": "train the final model with the best params; write model and OOF predictions",
    "predict": "predict the test file; validate and write the submission CSV",
    "evaluate": "write metrics.json (model beside references) and the diagnostic plots",
    "summary": "print where the results are and how to open them",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the params file (default: params.yaml)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    cmd = {name: sub.add_parser(name, help=text, description=text)
           for name, text in STAGES.items()}
    cmd["prepare"].add_argument("--out", type=Path, default=Path("data/prepared"))
    for name in ("tune", "tune-worker", "reference", "train"):
        cmd[name].add_argument("--prepared", type=Path, default=Path("data/prepared"))
    cmd["tune"].add_argument("--out", type=Path, default=Path("data/tune"))
    for name in ("tune", "tune-worker"):
        cmd[name].add_argument("--storage-dir", type=Path, default=Path("data/optuna"),
                               help="where the default SQLite study storage lives")
    worker = cmd["tune-worker"]
    worker.add_argument("--processes", type=_positive, default=1,
                        help="worker processes to start on this machine (default 1)")
    worker.add_argument("--threads", type=_positive, default=None,
                        help="torch threads per process (default: base.threads, else the "
                             "cores divided among the processes)")
    worker.add_argument("--n-trials", type=_positive, default=None,
                        help="at most this many trials per process (default: until the study "
                             "holds tune.n_trials finished trials)")
    cmd["reference"].add_argument("--out", type=Path, default=Path("data/reference"))
    cmd["train"].add_argument("--best-params", type=Path,
                              default=Path("data/tune/best_params.json"))
    cmd["train"].add_argument("--references", type=Path,
                              default=Path("data/reference/reference_models.pkl"),
                              help="fitted reference models to blend in (ensemble.blend_with)")
    cmd["train"].add_argument("--out", type=Path, default=Path("models"))
    cmd["predict"].add_argument("--model", type=Path, default=Path("models/model.pkl"))
    cmd["predict"].add_argument("--out", type=Path, default=Path("data/submission.csv"))
    for name in ("evaluate", "summary"):
        cmd[name].add_argument("--train-dir", type=Path, default=Path("models"))
        cmd[name].add_argument("--best-params", type=Path,
                               default=Path("data/tune/best_params.json"))
        cmd[name].add_argument("--metrics", type=Path, default=Path("reports/metrics.json"))
    cmd["evaluate"].add_argument("--reference-dir", type=Path, default=Path("data/reference"))
    cmd["evaluate"].add_argument("--plots", type=Path, default=Path("reports/plots"))
    cmd["evaluate"].add_argument("--learning-curve", type=Path,
                                 default=Path("reports/learning_curve.csv"),
                                 help="train/validation RMSE by epoch, averaged over folds")
    cmd["summary"].add_argument("--submission", type=Path, default=Path("data/submission.csv"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("alembic", "mlflow", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler stopping a worker: as Ctrl-C
    try:
        cfg = load_config(args.params)
        if args.stage == "tune-worker" and args.processes > 1:
            return _spawn_workers(args, cfg)
        _set_threads(cfg, args.stage, getattr(args, "threads", None))
        _run(args, cfg)
    except (ConfigError, DataError, SubmissionError, ServiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished trials and outputs are saved; run the same command again "
              "to resume", file=sys.stderr)
        return 128 + _signal_received.get("number", signal.SIGINT)
    return 0


_signal_received: dict[str, int] = {}


def _interrupt(number: int, _frame: object) -> None:
    _signal_received["number"] = number
    raise KeyboardInterrupt


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _run(args: argparse.Namespace, cfg: Config) -> None:
    from pipeline import stages

    if args.stage == "prepare":
        stages.prepare(cfg, args.out)
    elif args.stage == "tune":
        stages.tune(cfg, args.prepared, args.out, args.storage_dir)
    elif args.stage == "tune-worker":
        report = stages.tune_worker(cfg, args.prepared, args.storage_dir, args.n_trials)
        print(report.line(cfg.tune.n_trials), flush=True)
    elif args.stage == "reference":
        stages.reference(cfg, args.prepared, args.out)
    elif args.stage == "train":
        stages.train(cfg, args.prepared, args.best_params, args.references, args.out)
    elif args.stage == "predict":
        stages.predict(cfg, args.model, args.out)
    elif args.stage == "evaluate":
        stages.evaluate(cfg, args.train_dir, args.reference_dir, args.best_params,
                        args.metrics, args.plots, args.learning_curve)
    elif args.stage == "summary":
        print(_summary(cfg, args))


def _summary(cfg: Config, args: argparse.Namespace) -> str:
    from pipeline.io import read_json
    from pipeline.report import reference_key
    from pipeline.tracking import resolve_tracking_uri

    metrics = read_json(args.metrics)
    best = read_json(args.best_params)
    ref = metrics["reference"]
    uri = resolve_tracking_uri(cfg.tracking.uri)
    lines = [
        "",
        "OOF RMSE (model scale)            all rows  without rows excluded from fitting",
        f"  final model                      {metrics['oof_rmse']:.5f}  "
        f"{metrics['oof_rmse_fit_rows']:.5f}",
        f"  MLP alone                        {metrics['mlp_oof_rmse']:.5f}  "
        f"{metrics['mlp_oof_rmse_fit_rows']:.5f}",
        *(f"  {reference_key(name).replace('_', ' ', 1):32s} "
          f"{s['oof_rmse']:.5f}  {s['oof_rmse_fit_rows']:.5f}"
          for name, s in ref.items()),
        "final model = " + " + ".join(f"{w:.3f} x {name}"
                                  for name, w in metrics["blend_weights"].items())
        + " (weights fitted on OOF predictions)",
        "per fold: " + ", ".join(f"{v:.4f}" for v in metrics["fold_rmse"].values()),
        f"best trial: #{best['trial']} of study {best['study']} (CV {best['value']:.5f}) "
        f"with {best['params']}",
        f"submission: {args.submission}",
        f"model:      {args.train_dir / 'model.pkl'} (also logged to MLflow)",
        f"MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {uri}",
    ]
    if cfg.tracking.registered_model:
        lines.append(f"registry:   models:/{cfg.tracking.registered_model}@"
                     f"{cfg.tracking.champion_alias} (the best final model so far)")
    return "\n".join(lines)


def _set_threads(cfg: Config, stage: str, threads: int | None = None) -> None:
    """Torch threads: --threads, else base.threads, else the cores shared among the trials
    this process runs at once, so parallel trials or workers do not oversubscribe the CPU."""
    import torch

    cores = threads or cfg.base.threads or os.cpu_count() or 1
    jobs = cfg.tune.n_jobs if stage in ("tune", "tune-worker") and not threads else 1
    torch.set_num_threads(max(1, cores // jobs))


def _spawn_workers(args: argparse.Namespace, cfg: Config) -> int:
    """Start --processes tune workers on this machine, the cores split among them; wait."""
    processes = args.processes
    threads = args.threads or max(1, (cfg.base.threads or os.cpu_count() or 1)
                                  // (processes * cfg.tune.n_jobs))
    command = [sys.executable, "-m", "pipeline", "--params", str(args.params)]
    if args.quiet:
        command.append("-q")
    command += ["tune-worker", "--prepared", str(args.prepared), "--storage-dir",
                str(args.storage_dir), "--threads", str(threads)]
    if args.n_trials:
        command += ["--n-trials", str(args.n_trials)]
    log.info("starting %d workers with %d torch threads each", processes, threads)
    children = [subprocess.Popen(command) for _ in range(processes)]
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt:  # Ctrl-C reached the children too; a SIGTERM did not: pass it on
        number = _signal_received.get("number", signal.SIGINT)
        for child in children:
            if number != signal.SIGINT and child.poll() is None:
                child.send_signal(number)
        codes = [child.wait() for child in children]
        print("interrupted: finished trials are saved", file=sys.stderr)
        return 128 + number
    return max(codes, key=abs)
