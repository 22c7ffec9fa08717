"""summary: what the last run scored, and where its results are and how to open them."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Config
from pipeline.io import read_json
from pipeline.report import reference_key, rounded
from pipeline.services import masked
from pipeline.tracking import resolve_tracking_uri


def run(cfg: Config, metrics_path: Path, tune_dir: Path, train_dir: Path,
        submission: Path) -> str:
    """Print (and return) the summary."""
    metrics = read_json(metrics_path)
    best = read_json(Path(tune_dir) / "best_params.json")
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
          for name, s in metrics["reference"].items()),
        "final model = " + " + ".join(f"{w:.3f} x {name}"
                                      for name, w in metrics["blend_weights"].items())
        + " (weights fitted on OOF predictions)",
        "per fold: " + ", ".join(f"{v:.4f}" for v in metrics["fold_rmse"].values()),
        f"best trial: #{best['trial']} of study {best['study']} (CV {best['value']:.5f}) "
        f"with {rounded(best['params'])}",
        f"submission: {submission}",
        f"model:      {Path(train_dir) / 'model.pkl'} (also logged to MLflow)",
        f"MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {masked(uri)}",
    ]
    if cfg.tracking.registered_model:
        lines.append(f"registry:   models:/{cfg.tracking.registered_model}@"
                     f"{cfg.tracking.champion_alias} (the best final model so far)")
    text = "\n".join(lines)
    print(text, flush=True)
    return text
