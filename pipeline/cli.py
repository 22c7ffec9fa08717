"""Command line: one subcommand per dvc.yaml stage, plus `summary`. Progress display lives here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pipeline.config import Config, ConfigError, load_config
from pipeline.data import DataError
from pipeline.submission import SubmissionError

log = logging.getLogger("pipeline")

STAGES = {
    "prepare": "validate the raw CSVs, infer column kinds, write typed frames",
    "tune": "run or resume the Optuna study (K-fold CV objective); write best_params.json",
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
    for name in ("tune", "reference", "train"):
        cmd[name].add_argument("--prepared", type=Path, default=Path("data/prepared"))
    cmd["tune"].add_argument("--out", type=Path, default=Path("data/tune"))
    cmd["tune"].add_argument("--storage-dir", type=Path, default=Path("data/optuna"),
                             help="where the default SQLite study storage lives")
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
    try:
        cfg = load_config(args.params)
        _set_threads(cfg, args.stage)
        _run(args, cfg)
    except (ConfigError, DataError, SubmissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; run the same command again to resume",
              file=sys.stderr)
        return 130
    return 0


def _run(args: argparse.Namespace, cfg: Config) -> None:
    from pipeline import stages

    if args.stage == "prepare":
        stages.prepare(cfg, args.out)
    elif args.stage == "tune":
        stages.tune(cfg, args.prepared, args.out, args.storage_dir)
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
    from pipeline.tracking import resolve_tracking_uri

    metrics = read_json(args.metrics)
    best = read_json(args.best_params)
    ref = metrics["reference"]
    uri = resolve_tracking_uri(cfg.tracking.uri)
    weights = metrics.get("blend_weights", {"mlp": 1.0})
    lines = [
        "",
        "OOF RMSE (model scale)            all rows  without rows excluded from fitting",
        f"  final model                      {metrics['oof_rmse']:.5f}  "
        f"{metrics['oof_rmse_fit_rows']:.5f}",
        f"  MLP alone                        {metrics['mlp_oof_rmse']:.5f}  "
        f"{metrics.get('mlp_oof_rmse_fit_rows', float('nan')):.5f}",
        *(f"  {name if name.startswith('reference') else 'reference ' + name:32s} "
          f"{s['oof_rmse']:.5f}  {s['oof_rmse_fit_rows']:.5f}"
          for name, s in ref.items()),
        "final model = " + " + ".join(f"{w:.3f} x {name}" for name, w in weights.items())
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


def _set_threads(cfg: Config, stage: str) -> None:
    import torch

    cores = cfg.base.threads or os.cpu_count() or 1
    jobs = cfg.tune.n_jobs if stage == "tune" else 1
    torch.set_num_threads(max(1, cores // jobs))
