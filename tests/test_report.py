"""The figures and tables the stages draw from their outputs: pure functions, real matplotlib."""

import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline import report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def history_frame(n_folds: int = 2, epochs: int = 6, eval_every: int = 2) -> pd.DataFrame:
    """learning_curves.csv as the train stage writes it: two views, two seeds."""
    rows = []
    for view in ("standard", "quantile"):
        for seed in range(2):
            for fold in range(n_folds):
                for epoch in range(1, epochs + 1):
                    scored = epoch % eval_every == 0
                    rows.append({"view": view, "epoch": epoch, "fold": fold, "seed": seed,
                                 "train_rmse": 1.0 / epoch + 0.01 * fold,
                                 "val_rmse": 1.5 / epoch + 0.01 * seed if scored else np.nan})
    return pd.DataFrame(rows)


def oof_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    actual = rng.normal(12, 0.4, 50)
    return pd.DataFrame({"Id": np.arange(50), "fold": np.arange(50) % 2,
                         "excluded_from_fit": [True] + [False] * 49, "actual": actual,
                         "predicted": actual + rng.normal(0, 0.1, 50)})


def trials_frame() -> pd.DataFrame:
    return pd.DataFrame({"number": [0, 1, 2, 3], "state": ["COMPLETE", "PRUNED", "COMPLETE",
                                                           "FAIL"],
                         "value": [0.3, np.nan, 0.2, np.nan], "param_lr": [0.1, 0.2, 0.3, 0.4]})


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    return buffer.getvalue()


def test_mean_learning_curve_averages_folds_seeds_and_views_at_scored_epochs():
    history = history_frame()
    curve = report.mean_learning_curve(history)
    assert curve.columns.tolist() == ["epoch", "train_rmse", "val_rmse"]
    assert curve["epoch"].tolist() == [2, 4, 6]  # only epochs the validation folds were scored
    assert not curve.isna().any().any()
    at_4 = history[history["epoch"] == 4]
    assert curve.loc[1, "train_rmse"] == pytest.approx(at_4["train_rmse"].mean())
    assert curve.loc[1, "val_rmse"] == pytest.approx(1.5 / 4 + 0.005)


def test_run_figures_are_pngs_matplotlib_can_read():
    figs = report.figures(oof_frame(), history_frame(), "log target")
    try:
        assert set(figs) == {"predicted_vs_actual", "residuals", "learning_curves"}
        for fig in figs.values():
            data = png_bytes(fig)
            assert data.startswith(PNG_MAGIC)
            assert mpimg.imread(io.BytesIO(data), format="png").ndim == 3
    finally:
        report.close(figs)


def test_optimisation_history_marks_complete_and_pruned_trials():
    fig = report.optimisation_history(trials_frame())
    try:
        ax = fig.axes[0]
        assert "2 complete, 1 pruned" in ax.get_title()
        best_so_far = [line for line in ax.get_lines() if line.get_label() == "best so far"][0]
        assert list(best_so_far.get_ydata()) == [0.3, 0.2]
        assert png_bytes(fig).startswith(PNG_MAGIC)
    finally:
        report.close({"h": fig})


def test_study_figures_leave_out_importances_when_there_are_none():
    figs = report.study_figures(trials_frame(), {})
    assert set(figs) == {"optimisation_history"}
    report.close(figs)
    figs = report.study_figures(trials_frame(), {"lr": 0.7, "dropout": 0.3})
    try:
        assert set(figs) == {"optimisation_history", "param_importances"}
        bars = figs["param_importances"].axes[0].patches
        assert sorted(round(b.get_width(), 3) for b in bars) == [0.3, 0.7]
    finally:
        report.close(figs)


def test_optimisation_history_of_a_study_without_complete_trials_still_draws():
    trials = pd.DataFrame({"number": [0], "state": ["PRUNED"], "value": [np.nan]})
    fig = report.optimisation_history(trials)
    try:
        assert png_bytes(fig).startswith(PNG_MAGIC)
    finally:
        report.close({"h": fig})


def test_curve_metrics_are_the_mean_over_folds_and_each_fold_under_one_prefix():
    history = history_frame(n_folds=2)
    curves = report.curve_metrics(history, "fold_curves")
    assert set(curves) == {"train_rmse", "val_rmse", "fold_curves/fold_0_train_rmse",
                           "fold_curves/fold_0_val_rmse", "fold_curves/fold_1_train_rmse",
                           "fold_curves/fold_1_val_rmse"}
    assert sorted(curves["train_rmse"]) == [1, 2, 3, 4, 5, 6]  # step = epoch
    at_4 = history[history["epoch"] == 4]
    assert curves["train_rmse"][4] == pytest.approx(at_4["train_rmse"].mean())
    fold_1 = at_4[at_4["fold"] == 1]
    assert curves["fold_curves/fold_1_train_rmse"][4] == pytest.approx(fold_1["train_rmse"].mean())
    assert curves["val_rmse"][4] == pytest.approx(at_4["val_rmse"].mean())
    assert np.isnan(curves["val_rmse"][3])  # not scored there: the tracker skips it


def test_fold_table_scores_the_final_model_and_each_member_per_fold():
    oof = oof_frame().assign(predicted_mlp=lambda f: f["actual"] + 0.2)
    table = report.fold_table(oof)
    assert table.columns.tolist() == ["fold", "rows", "final", "mlp"]
    assert table["fold"].tolist() == [0, 1] and table["rows"].sum() == len(oof)
    assert table["mlp"].tolist() == pytest.approx([0.2, 0.2])
    part = oof[oof["fold"] == 1]
    assert table.loc[1, "final"] == pytest.approx(
        np.sqrt(np.mean((part["actual"] - part["predicted"]) ** 2)))


def test_headline_holds_final_mlp_and_references_under_one_key_sorting_first():
    summary = {"oof_rmse": 0.12, "mlp_oof_rmse": 0.13,
               "reference": {"linear": {"oof_rmse": 0.14}, "gbm": {"oof_rmse": 0.15},
                             "reference_average": {"oof_rmse": 0.125}}}
    head = report.headline(summary)
    (key,) = head
    assert key < "blend_weights"  # DVC sorts every metrics file's columns together
    assert list(head[key]) == ["final", "mlp", "ref_linear", "ref_gbm", "ref_average"]
    assert sorted(head[key])[:2] == ["final", "mlp"]  # DVC sorts: final, mlp, references
    assert head[key]["final"] == 0.12 and head[key]["ref_gbm"] == 0.15


def test_rounded_keeps_three_significant_digits_of_floats_only():
    assert report.rounded({"lr": 0.0007759643886385674, "dropout": 0.5230309628146388,
                           "width": 128, "linear_skip": False}) == {
        "lr": 0.000776, "dropout": 0.523, "width": 128, "linear_skip": False}


def test_importance_plot_says_how_many_trials_it_rests_on():
    few = report.param_importances({"lr": 0.7, "dropout": 0.3}, n_trials=5, few=10)
    enough = report.param_importances({"lr": 0.7, "dropout": 0.3}, n_trials=12, few=10)
    try:
        assert "5 complete trials: too few to trust" in few.axes[0].get_title()
        assert enough.axes[0].get_title().endswith("(12 complete trials)")
    finally:
        report.close({"a": few, "b": enough})
    table = report.importance_table({"lr": 0.3, "dropout": 0.7})
    assert table.to_dict("list") == {"param": ["dropout", "lr"], "importance": [0.7, 0.3]}
