"""evaluate: the headline scores (headline.json: final model, MLP, references), every score
beside the references' (metrics.json), the diagnostic plots, and the learning curve averaged
over folds for `dvc plots`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import report
from pipeline.config import Config
from pipeline.io import atomic_dir, read_json, write_csv, write_json


def run(cfg: Config, train_dir: Path, reference_dir: Path, tune_dir: Path,
        out_dir: Path) -> dict:
    """Write `out_dir`: headline.json, metrics.json, learning_curve.csv and plots/*.png."""
    train_dir = Path(train_dir)
    summary = report.metrics_summary(read_json(train_dir / "train_metrics.json"),
                                     read_json(Path(reference_dir) / "reference_metrics.json"),
                                     read_json(Path(tune_dir) / "best_params.json"))
    oof = pd.read_csv(train_dir / "oof_predictions.csv")
    history = pd.read_csv(train_dir / "learning_curves.csv")
    figs = report.figures(oof, history, cfg.data.log_target.label)
    try:
        with atomic_dir(out_dir) as tmp:
            (tmp / "plots").mkdir()
            for stem, fig in figs.items():
                fig.savefig(tmp / "plots" / f"{stem}.png", dpi=100)
            write_csv(tmp / "learning_curve.csv", report.mean_learning_curve(history))
            write_json(tmp / "metrics.json", summary)
            write_json(tmp / "headline.json", report.headline(summary))
    finally:
        report.close(figs)
    return summary
