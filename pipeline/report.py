"""Figures and the metrics summary built from the stages' outputs. Pure: returns, never writes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def metrics_summary(train_metrics: dict, reference_metrics: dict, best: dict) -> dict:
    """The numbers `dvc metrics show` prints: the model's OOF scores beside the references'."""
    summary = {
        "oof_rmse": train_metrics["oof_rmse"],
        "oof_rmse_fit_rows": train_metrics["oof_rmse_fit_rows"],
        "mlp_oof_rmse": train_metrics["mlp_oof_rmse"],
        "mlp_oof_rmse_fit_rows": train_metrics["mlp_oof_rmse_fit_rows"],
        "blend_weights": train_metrics["weights"],
        "fold_rmse": {f"fold_{k}": v for k, v in enumerate(train_metrics["fold_rmse"])},
        "tune": {"best_trial": best["trial"], "best_cv_rmse": best["value"]},
        "reference": {name: {k: v for k, v in scores.items() if k != "fold_rmse"}
                      for name, scores in reference_metrics.items()},
    }
    best_reference = min(s["oof_rmse"] for s in reference_metrics.values())
    summary["margin_over_best_reference"] = best_reference - train_metrics["oof_rmse"]
    return summary


def predicted_vs_actual(oof: pd.DataFrame, scale_label: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 6))
    kept = ~oof["excluded_from_fit"].astype(bool)
    ax.scatter(oof.loc[kept, "actual"], oof.loc[kept, "predicted"], s=6, alpha=0.5,
               label="OOF prediction")
    if (~kept).any():
        ax.scatter(oof.loc[~kept, "actual"], oof.loc[~kept, "predicted"], s=30, marker="x",
                   color="red", label="excluded from fitting")
    lo = float(min(oof["actual"].min(), oof["predicted"].min()))
    hi = float(max(oof["actual"].max(), oof["predicted"].max()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set_xlabel(f"actual ({scale_label})")
    ax.set_ylabel(f"predicted ({scale_label})")
    ax.set_title("Out-of-fold predictions")
    ax.legend()
    fig.tight_layout()
    return fig


def residuals(oof: pd.DataFrame, scale_label: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(oof["predicted"], oof["actual"] - oof["predicted"], s=6, alpha=0.5)
    ax.axhline(0, color="black", linewidth=1)
    ax.set_xlabel(f"predicted ({scale_label})")
    ax.set_ylabel("actual - predicted")
    ax.set_title("Residuals vs predicted (OOF)")
    fig.tight_layout()
    return fig


def learning_curves(history: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    first_seed = history[history["seed"] == 0]
    if "view" in first_seed:
        first_seed = first_seed[first_seed["view"] == first_seed["view"].iloc[0]]
    for fold, part in first_seed.groupby("fold"):
        line, = ax.plot(part["epoch"], part["train_rmse"], linewidth=1,
                        label=f"fold {fold} train")
        if part["val_rmse"].notna().any():
            ax.plot(part["epoch"], part["val_rmse"], linewidth=1, linestyle="--",
                    color=line.get_color(), label=f"fold {fold} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (model scale)")
    ax.set_yscale("log")
    ax.set_title("Learning curves (seed 0)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def figures(oof: pd.DataFrame, history: pd.DataFrame, log_target: bool) -> dict[str, Figure]:
    """Every figure by file stem."""
    label = "log target" if log_target else "target"
    return {"predicted_vs_actual": predicted_vs_actual(oof, label),
            "residuals": residuals(oof, label),
            "learning_curves": learning_curves(history)}


def close(figs: dict[str, Figure]) -> None:
    for fig in figs.values():
        plt.close(fig)


