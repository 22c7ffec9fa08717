"""The final model's out-of-fold table: its own columns never overwrite the id column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import report
from pipeline.config import config_from_dict
from pipeline.cv import fit_fold_features, oof_id_column, setup_folds
from pipeline.data.validate import load_competition
from pipeline.ensemble import MLPBatches
from pipeline.final import fit_final_model, learning_curves
from pipeline.plan import resolve_reference
from pipeline.reference import references_frame, score_references

from .conftest import make_houses, small_params, write_competition


@pytest.mark.parametrize("id_name", ["fold", "actual", "predicted", "predicted_mlp"])
def test_an_id_column_named_like_an_oof_column_keeps_its_ids(tmp_path, id_name):
    train = make_houses(90, seed=1).rename(columns={"Id": id_name})
    train[id_name] += 5000  # ids that no fold number, price or prediction could equal
    test = make_houses(20, seed=2, first_id=9001).drop(columns="SalePrice")
    raw = write_competition(tmp_path / "raw", train.rename(columns={id_name: "Id"}), test)
    train.to_csv(raw / "train.csv", index=False)
    test.rename(columns={"Id": id_name}).to_csv(raw / "test.csv", index=False)
    cfg = config_from_dict(small_params(raw, data={"id_column": id_name},
                                        ensemble={"blend_with": ["linear"]}))
    frame, _, schema = load_competition(cfg.data)
    setup = setup_folds(frame, schema, cfg)
    refs = score_references(setup, resolve_reference(cfg.reference, 100), cfg.base.seed)
    oof = fit_final_model(frame, schema, cfg, {}, refs, setup).oof
    refs_oof = references_frame(refs, frame[id_name], setup.y)

    column = oof_id_column(id_name)
    assert column == f"id_{id_name}"
    for table in (oof, refs_oof):
        assert list(table.columns).count(column) == 1
        np.testing.assert_array_equal(table[column], train[id_name])
        np.testing.assert_allclose(table["actual"], np.log(train["SalePrice"]))
    assert set(oof["fold"]) == {0, 1, 2}
    assert {"predicted", "predicted_mlp", "predicted_linear"} <= set(oof.columns)
    # what reads the written table (evaluate's figures, the fold table in MLflow) still works
    written = tmp_path / "oof_predictions.csv"
    oof.to_csv(written, index=False)
    table = report.fold_table(pd.read_csv(written))
    assert table["rows"].sum() == len(train) and list(table["fold"]) == [0, 1, 2]
    report.close(report.figures(pd.read_csv(written), pd.DataFrame(
        {"epoch": [1], "fold": [0], "seed": [0], "train_rmse": [1.0], "val_rmse": [1.0]}),
        "log target"))


def test_an_id_column_with_its_own_name_keeps_it():
    assert oof_id_column("Id") == "Id"
    assert oof_id_column("id_fold") == "id_fold"
    assert oof_id_column("folds") == "folds"


def test_a_gbm_on_native_categories_blends_in_and_predicts_raw_rows(tmp_path):
    """The GBM reads the tree view (category codes), the Lasso the MLP's one-hot view; the
    final model keeps both views and predicts new rows through each."""
    train = make_houses(120, seed=1)
    test = make_houses(20, seed=2, first_id=9001).drop(columns="SalePrice")
    raw = write_competition(tmp_path / "raw", train, test)
    cfg = config_from_dict(small_params(raw, ensemble={"blend_with": ["linear", "gbm"]},
                                        reference={"gbm_max_rounds": 50}))
    frame, test_frame, schema = load_competition(cfg.data)
    setup = setup_folds(frame, schema, cfg)
    trees = fit_fold_features(frame, setup.folds, schema, cfg.features, trees=True)
    assert 0 < trees.n_categorical < trees.width < setup.features.width
    refs = score_references(setup, resolve_reference(cfg.reference, 100), cfg.base.seed,
                            trees=trees)
    assert refs.member_views == {"linear": "features", "gbm": "trees"}
    assert refs.members["gbm"].estimators[0].n_categorical == trees.n_categorical
    fitted = fit_final_model(frame, schema, cfg, {}, refs, setup)
    assert set(fitted.model.views) == {"mlp_standard", "reference_features", "reference_trees"}
    assert fitted.model.members["gbm"][0] == "reference_trees"
    # the OOF blend of the members is what the final model's OOF column says
    oof = fitted.oof
    blend = sum(w * oof[f"predicted_{k}"] for k, w in fitted.weights.items())
    np.testing.assert_allclose(oof["predicted"], blend)
    predictions = fitted.model.predict_typed(test_frame)
    assert predictions.shape == (20,) and np.isfinite(predictions).all()


def test_the_feature_views_are_blended_by_their_oof_and_never_worse_than_the_best(tmp_path):
    """Each feature view's MLP is a member of the MLP's own OOF-fitted blend: the MLP alone is
    never worse than its best view on the fit rows, and the final model predicts with those
    weights."""
    train = make_houses(120, seed=3)
    test = make_houses(10, seed=4, first_id=9001).drop(columns="SalePrice")
    raw = write_competition(tmp_path / "raw", train, test)
    cfg = config_from_dict(small_params(raw, ensemble={"feature_views": ["standard",
                                                                         "quantile"]}))
    frame, _, schema = load_competition(cfg.data)
    fitted = fit_final_model(frame, schema, cfg, {})
    assert set(fitted.view_weights) == {"standard", "quantile"}
    assert sum(fitted.view_weights.values()) == pytest.approx(1.0)
    kept = ~fitted.oof["excluded_from_fit"].to_numpy()
    actual = fitted.oof["actual"].to_numpy()[kept]

    def score(column: str) -> float:
        return float(np.sqrt(np.mean((fitted.oof[column].to_numpy()[kept] - actual) ** 2)))

    best_view = min(score("predicted_mlp_standard"), score("predicted_mlp_quantile"))
    assert score("predicted_mlp") <= best_view + 1e-12
    blend = sum(w * fitted.oof[f"predicted_mlp_{v}"] for v, w in fitted.view_weights.items())
    np.testing.assert_allclose(fitted.oof["predicted_mlp"], blend)
    for view, weight in fitted.view_weights.items():
        assert fitted.model.weights[f"mlp_{view}"] == pytest.approx(weight
                                                                   * fitted.weights["mlp"])


def test_seeds_trained_one_batch_at_a_time_make_one_member_and_number_their_curves(tmp_path):
    """With ensemble.seed_batch 1 each seed is its own batch: the member averages them all,
    and the learning curves number the seeds across the batches."""
    train = make_houses(120, seed=3)
    test = make_houses(10, seed=4, first_id=9001).drop(columns="SalePrice")
    raw = write_competition(tmp_path / "raw", train, test)
    cfg = config_from_dict(small_params(raw, ensemble={"n_seeds": 2, "seed_batch": 1}))
    frame, test_frame, schema = load_competition(cfg.data)
    fitted = fit_final_model(frame, schema, cfg, {})
    member = fitted.model.members["mlp_standard"][1]
    assert isinstance(member, MLPBatches) and len(member.batches) == 2
    curves = learning_curves(fitted.mlp, cfg.cv.n_folds)
    assert sorted(curves["seed"].unique()) == [0, 1]
    assert len(curves) == 2 * cfg.cv.n_folds * curves["epoch"].nunique()
    # the stored model predicts new rows with both batches (tests/test_cv.py: as one batch of
    # all the models would)
    predicted = fitted.model.predict_typed(test_frame)
    assert np.isfinite(predicted).all() and len(predicted) == len(test_frame)
