"""Figures and the metrics summary built from the stages' outputs. Pure: returns, never writes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


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


def headline(summary: dict) -> dict:
    """The few numbers `dvc metrics show` prints first: the OOF RMSE of the final model, of
    the MLP alone and of each reference (`ref_<name>`). The key sorts before metrics.json's
    (DVC sorts the columns of all metrics files together), the names in the order final,
    mlp, references, and the row fits 120 columns."""
    scores = {"final": summary["oof_rmse"], "mlp": summary["mlp_oof_rmse"]}
    scores.update({f"ref_{name.removeprefix('reference_')}": s["oof_rmse"]
                   for name, s in summary["reference"].items()})
    return {"RMSE": scores}


def rounded(params: dict, digits: int = 3) -> dict:
    """Params for printing: floats to `digits` significant digits, the rest as they are."""
    return {k: float(f"{v:.{digits}g}") if isinstance(v, float) else v
            for k, v in params.items()}


def fold_table(oof: pd.DataFrame) -> pd.DataFrame:
    """One row per fold: its validation rows and the RMSE of the final model and of each
    member (the `predicted_<member>` columns of the OOF predictions)."""
    members = {c.removeprefix("predicted_"): c for c in oof.columns
               if c.startswith("predicted_")}
    rows = []
    for fold, part in oof.groupby("fold"):
        row = {"fold": int(fold), "rows": len(part),
               "final": _rmse(part["actual"], part["predicted"])}
        row.update({name: _rmse(part["actual"], part[column])
                    for name, column in members.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def curve_metrics(history: pd.DataFrame, fold_prefix: str) -> dict[str, dict[int, float]]:
    """The final model's learning curves as metrics (name -> {epoch: value}): train and
    validation RMSE averaged over folds, seeds and views, and the same per fold (averaged
    over seeds and views) as `<fold_prefix>/fold_<k>_<train|val>_rmse`."""
    curves = {}
    mean = history.groupby("epoch")[["train_rmse", "val_rmse"]].mean()
    for column in ("train_rmse", "val_rmse"):
        curves[column] = mean[column].to_dict()
    per_fold = history.groupby(["fold", "epoch"])[["train_rmse", "val_rmse"]].mean()
    for (column, fold), values in per_fold.unstack("fold").items():
        curves[f"{fold_prefix}/fold_{fold}_{column}"] = values.to_dict()
    return {name: {int(e): float(v) for e, v in values.items()}
            for name, values in curves.items()}


def importance_table(importances: dict[str, float]) -> pd.DataFrame:
    """The importances as a table, most important first."""
    ranked = sorted(importances.items(), key=lambda item: -item[1])
    return pd.DataFrame({"param": [k for k, _ in ranked],
                         "importance": [round(v, 4) for _, v in ranked]})


def _rmse(actual: pd.Series, predicted: pd.Series) -> float:
    return float(np.sqrt(np.mean((actual.to_numpy() - predicted.to_numpy()) ** 2)))


def reference_key(name: str) -> str:
    """How a reference's scores are named beside the model's: `reference_<name>`
    (`reference_average` stays as it is)."""
    return name if name.startswith("reference") else f"reference_{name}"


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


def mean_learning_curve(history: pd.DataFrame) -> pd.DataFrame:
    """Train and validation RMSE averaged over folds, seeds and views, at the epochs the
    validation folds were scored (for `dvc plots`, whose linear template wants one line per
    column, without gaps)."""
    scored = history.dropna(subset=["val_rmse"])
    curve = scored.groupby("epoch", as_index=False)[["train_rmse", "val_rmse"]].mean()
    return curve.sort_values("epoch").reset_index(drop=True)


def optimisation_history(trials: pd.DataFrame) -> Figure:
    """Each complete trial's objective value, the best so far, and where trials were pruned.

    `trials` has the tune stage's trials.csv columns: number, state, value."""
    fig, ax = plt.subplots(figsize=(7, 4))
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number")
    if len(complete):
        ax.scatter(complete["number"], complete["value"], s=18, label="complete trial")
        ax.step(complete["number"], complete["value"].cummin(), where="post", color="black",
                linewidth=1, label="best so far")
    pruned = trials[trials["state"] == "PRUNED"]
    if len(pruned):
        ax.plot(pruned["number"], [0] * len(pruned), "|", color="grey", markersize=12,
                transform=ax.get_xaxis_transform(), label="pruned trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (CV RMSE, model scale)")
    ax.set_title(f"Optimisation history ({len(complete)} complete, {len(pruned)} pruned)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def param_importances(importances: dict[str, float], n_trials: int | None = None,
                      few: int = 10) -> Figure:
    """A horizontal bar per tuned parameter: its share of the objective's variance (fANOVA),
    with the number of complete trials it rests on (and a caution below `few`)."""
    ranked = sorted(importances.items(), key=lambda item: item[1])
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(ranked) + 1.5))
    ax.barh([name for name, _ in ranked], [value for _, value in ranked])
    ax.set_xlabel("importance (share of the objective's variance)")
    ax.set_xlim(0, 1)
    title = "Hyperparameter importances"
    if n_trials is not None:
        title += f" ({n_trials} complete trials" + (": too few to trust)" if n_trials < few
                                                    else ")")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def study_figures(trials: pd.DataFrame, importances: dict[str, float],
                  n_complete: int | None = None, few: int = 10) -> dict[str, Figure]:
    """The study's figures by file stem; importances only when there are some."""
    figs = {"optimisation_history": optimisation_history(trials)}
    if importances:
        figs["param_importances"] = param_importances(importances, n_complete, few)
    return figs


def figures(oof: pd.DataFrame, history: pd.DataFrame, label: str) -> dict[str, Figure]:
    """Every figure by file stem; `label` names the model scale (TargetScale.label)."""
    return {"predicted_vs_actual": predicted_vs_actual(oof, label),
            "residuals": residuals(oof, label),
            "learning_curves": learning_curves(history)}


def close(figs: dict[str, Figure]) -> None:
    for fig in figs.values():
        plt.close(fig)


