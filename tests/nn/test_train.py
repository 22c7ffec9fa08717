import numpy as np
import pytest
import torch

from pipeline.config import ModelConfig
from pipeline.nn import onehot, train
from pipeline.nn.model import BatchedMLP
from pipeline.nn.onehot import onehot_layout
from pipeline.nn.train import _predict_rows, fit_mlps, predict_mlps

CFG = ModelConfig(depth=1, width=16, dropout=0.1, epochs=30, batch_size=16, lr=0.01,
                  weight_decay=1e-4, eval_every=5)


def linear_problem(n=120, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0][:d]) + 3.0 + rng.normal(0, 0.05, n)
    return torch.from_numpy(x), torch.as_tensor(y, dtype=torch.float32)


def two_folds(n):
    rows = np.arange(n)
    return [rows[: n // 2], rows[n // 2:]], [rows[n // 2:], rows[: n // 2]]


def test_same_seed_same_predictions_and_other_seed_differs():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    a = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=3)
    b = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=3)
    c = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=4)
    for pa, pb in zip(a.val_predictions, b.val_predictions, strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(a.val_predictions[0], c.val_predictions[0])


def test_learns_far_better_than_the_mean():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    trained = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0)
    for rows, pred in zip(val_rows, trained.val_predictions, strict=True):
        model_rmse = np.sqrt(np.mean((pred - y[rows].numpy()) ** 2))
        mean_rmse = np.std(y[rows].numpy())
        assert model_rmse < 0.3 * mean_rmse


def test_a_target_of_1e20_trains_with_finite_scores():
    # within the data limit (1e30), but (1e20)^2 overflows float32: every validation RMSE
    # was inf and a study ended with "no complete trial"
    x, y = linear_problem()
    y = y.double() * 1e19
    y[7] = 1e20
    fit_rows, val_rows = two_folds(len(y))
    trained = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0)
    assert np.isfinite(trained.target_std).all() and np.isfinite(trained.target_mean).all()
    assert np.isfinite(trained.history["val_rmse"]).all()
    assert np.isfinite(trained.history["train_rmse"]).all()
    for rows, pred in zip(val_rows, trained.val_predictions, strict=True):
        assert np.isfinite(pred).all()
        assert np.sqrt(np.mean((pred - y[rows].numpy()) ** 2)) < np.std(y[rows].numpy())


def test_a_target_far_from_zero_keeps_its_spread():
    # float32 spaces numbers near 1e9 by 64: a spread of a few units would be rounding noise
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    trained = fit_mlps(x, y.double() + 1e9, fit_rows, val_rows, CFG, seed=0)
    for rows, pred in zip(val_rows, trained.val_predictions, strict=True):
        model_rmse = np.sqrt(np.mean((pred - 1e9 - y[rows].numpy()) ** 2))
        assert model_rmse < 0.3 * np.std(y[rows].numpy())


def test_each_model_only_sees_its_own_rows():
    # rows 0..59 have target 0, rows 60..119 target 10; identical features
    x = torch.zeros(120, 2)
    y = torch.cat([torch.zeros(60), torch.full((60,), 10.0)])
    rows = np.arange(120)
    trained = fit_mlps(x, y, [rows[:60], rows[60:]], None, CFG, seed=0)
    pred = predict_mlps(trained, x[:1])
    assert pred[0, 0] == pytest.approx(0.0, abs=0.05)
    assert pred[1, 0] == pytest.approx(10.0, abs=0.05)


def test_history_and_checkpoint_callback():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    seen = []
    trained = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0,
                       on_checkpoint=lambda epoch, rmse: seen.append((epoch, rmse.copy())))
    assert [e for e, _ in seen] == [5, 10, 15, 20, 25, 30]
    assert trained.history["val_rmse"].shape == (6, 2)
    np.testing.assert_allclose(trained.history["val_rmse"][-1], seen[-1][1])
    assert trained.history["train_rmse"][-1].mean() < trained.history["train_rmse"][0].mean()


def test_callback_can_stop_training():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))

    class Stop(Exception):
        pass

    def stop_at_ten(epoch, _):
        if epoch == 10:
            raise Stop

    with pytest.raises(Stop):
        fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0, on_checkpoint=stop_at_ten)


def test_early_stopping_keeps_best_checkpoint():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    cfg = ModelConfig(depth=1, width=16, epochs=200, batch_size=16, lr=0.05, eval_every=1,
                      patience=5, lr_schedule="constant")
    trained = fit_mlps(x, y, fit_rows, val_rows, cfg, seed=0)
    assert trained.epochs_run < 200
    val = trained.history["val_rmse"]
    epochs = trained.history["epoch"]
    for k in range(2):
        best = int(np.argmin(val[:, k]))
        assert trained.best_epoch[k] == epochs[best]
        pred_rmse = np.sqrt(np.mean((trained.val_predictions[k] - y[val_rows[k]].numpy()) ** 2))
        assert pred_rmse == pytest.approx(val[best, k], rel=1e-4)


def test_seeds_share_fold_matrices():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    trained = fit_mlps(torch.stack([x, x]), y, fit_rows * 3, val_rows * 3, CFG, seed=0)
    assert trained.model.n_models == 6 and len(trained.val_predictions) == 6


def test_input_l1_zeroes_the_weights_of_useless_inputs():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(200, 6)), dtype=torch.float32)
    y = 2.0 * x[:, 0]  # only input 0 matters
    rows = np.arange(200)
    cfg = ModelConfig(depth=1, width=8, epochs=60, batch_size=32, lr=0.01, weight_decay=0.0,
                      lr_schedule="constant", input_l1=0.5, linear_skip=True, eval_every=60)
    trained = fit_mlps(x, y, [rows], None, cfg, seed=0)
    first = trained.model.weights[0][0]  # [inputs, width]
    useless = first[1:].abs().sum().item() + trained.model.skip[0, 1:].abs().sum().item()
    assert useless == 0.0
    assert first[0].abs().sum().item() + trained.model.skip[0, 0].abs().item() > 0
    plain = fit_mlps(x, y, [rows], None, cfg.replace({"input_l1": 0.0}), seed=0)
    assert plain.model.weights[0][0][1:].abs().sum().item() > 0


def test_clip_to_target_range_bounds_predictions_by_the_fitted_targets():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    base = CFG.replace({"linear_skip": True})
    trained = fit_mlps(x, y, fit_rows, val_rows,
                       base.replace({"clip_to_target_range": True}), seed=0)
    far = torch.tensor([[20.0, -20.0, 20.0, 0.0]])  # up the target's slope, far beyond the data
    pred = predict_mlps(trained, far)
    for k, rows in enumerate(fit_rows):
        low, high = y[rows].min().item(), y[rows].max().item()
        assert low <= pred[k, 0] <= high
        assert trained.target_range[1][k] == pytest.approx(high)
    unclipped = fit_mlps(x, y, fit_rows, val_rows, base, seed=0)
    raw = predict_mlps(unclipped, far)[:, 0]
    low, high = trained.target_range
    assert (raw > high).all()  # without clipping it extrapolates


def test_validation_predictions_match_the_trained_models_and_history():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    cfg = CFG.replace({"clip_to_target_range": False, "epochs": 10})
    trained = fit_mlps(x, y, fit_rows, val_rows, cfg, seed=0)
    for k, rows in enumerate(val_rows):
        np.testing.assert_allclose(trained.val_predictions[k],
                                   predict_mlps(trained, x[rows])[k], rtol=1e-6)
        rmse = np.sqrt(np.mean((trained.val_predictions[k] - y[rows].numpy()) ** 2))
        assert trained.history["val_rmse"][-1][k] == pytest.approx(rmse, rel=1e-5)


def test_rows_are_predicted_chunk_by_chunk_with_the_same_result():

    torch.manual_seed(0)
    model = BatchedMLP(n_models=2, n_inputs=3, width=8, depth=1)
    x = torch.randn(2 * 50, 3)  # two stacked [50, 3] matrices, one per model
    base = torch.tensor([[0], [50]])
    idx = torch.stack([torch.arange(0, 40), torch.arange(10, 50)])
    whole = _predict_rows(model, x, base, idx)
    torch.testing.assert_close(_predict_rows(model, x, base, idx, chunk_rows=7), whole)
    torch.testing.assert_close(whole[1], model(x[50:].unsqueeze(0).expand(2, -1, -1))[1, 10:])


def test_onehot_lookups_train_the_same_models_as_dense_inputs(monkeypatch):
    # 0/1 columns read as lookups (pipeline/onehot.py) change only the float rounding

    lookups = []  # minibatches the trainer fed as lookups (a spy: the real class runs)
    monkeypatch.setattr(train, "OneHotRows",
                        lambda *a: lookups.append(1) or onehot.OneHotRows(*a))
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 6, size=(120, 2))
    numeric = rng.normal(size=(120, 3))
    x = np.concatenate([numeric, np.eye(6)[codes[:, 0]], np.eye(6)[codes[:, 1]]], axis=1)
    y = numeric @ np.array([1.0, -1.0, 0.5]) + 0.3 * codes[:, 0] - 0.2 * codes[:, 1]
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    assert onehot_layout(x) is not None  # the lookups are used on these inputs
    fit_rows, val_rows = two_folds(len(y))
    lookup = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0)
    assert len(lookups) == CFG.epochs * 4  # every step of 60 rows in minibatches of 16
    again = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0)
    lookups.clear()
    dense = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0, onehot_lookup=False)
    assert not lookups
    for a, b, c in zip(lookup.val_predictions, dense.val_predictions, again.val_predictions,
                       strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
        np.testing.assert_array_equal(a, c)  # reproducible, as the dense path is


def test_one_cycle_schedule_of_exactly_ten_steps():
    # torch's OneCycleLR raised ZeroDivisionError when its 10% warm-up was exactly one step
    x, y = linear_problem(n=320)
    fit_rows, val_rows = two_folds(len(y))  # 160 rows in minibatches of 16: 10 steps
    cfg = CFG.replace({"epochs": 1, "eval_every": 1, "lr_schedule": "onecycle"})
    trained = fit_mlps(x, y, fit_rows, val_rows, cfg, seed=0)
    assert all(np.isfinite(p).all() for p in trained.val_predictions)


RECIPE = CFG.replace({"depth": 2, "activation": "mish", "lr": 0.2, "lr_schedule": "coslog4",
                      "dropout": 0.15, "dropout_schedule": "flat_cos", "weight_decay": 0.02,
                      "weight_decay_schedule": "flat_cos", "adam_beta2": 0.95,
                      "parametrization": "ntk", "init": "data", "front_scale": True,
                      "numeric_embedding": "pbld", "members": 4})


def test_the_recipe_with_every_piece_on_learns_and_ends_at_its_own_dropout():
    x, y = linear_problem()
    fit_rows, val_rows = two_folds(len(y))
    trained = fit_mlps(x, y, fit_rows, val_rows, RECIPE, seed=0)
    for rows, pred in zip(val_rows, trained.val_predictions, strict=True):
        assert np.sqrt(np.mean((pred - y[rows].numpy()) ** 2)) < 0.3 * np.std(y[rows].numpy())
    assert trained.model.dropout == RECIPE.dropout and trained.model.members == 4
    np.testing.assert_allclose(predict_mlps(trained, x)[0][val_rows[0]],
                               trained.val_predictions[0], rtol=0, atol=1e-6)


def test_ntk_groups_train_each_layer_at_lr_over_root_fan_in():
    model = BatchedMLP(2, 9, 16, 2, numeric_cols=[0, 1], front_scale=True, members=3)
    groups = train._param_groups(model, RECIPE)
    by_param = {id(p): g for g in groups for p in g.params}
    for w in model.weights:
        assert by_param[id(w)].lr_factor == pytest.approx(w.shape[1] ** -0.5)
        assert by_param[id(w)].decay_factor == 1.0
    assert by_param[id(model.biases[0])].decay_factor == 0.0
    assert by_param[id(model.scale)].lr_factor == 6.0
    assert sum(len(g.params) for g in groups) == len(list(model.parameters()))
    standard = train._param_groups(model, CFG)
    assert len(standard) == 1 and len(standard[0].params) == len(list(model.parameters()))


def test_checkpoints_score_only_the_validation_rows_asked_for():
    """`score_rows` (a mask over each model's validation rows) is what the checkpoints, the
    history and early stopping score: the tuning objective's rows, not every row."""
    x, y = linear_problem()
    y[::7] += 5.0  # outliers, left out of the scored rows
    fit_rows, val_rows = two_folds(len(y))
    scored = [(rows % 7 != 0) for rows in val_rows]
    seen = []
    trained = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0, score_rows=scored,
                       on_checkpoint=lambda epoch, rmse: seen.append(rmse.copy()))
    for k, (rows, mask) in enumerate(zip(val_rows, scored, strict=True)):
        error = trained.val_predictions[k] - y[rows].numpy()
        assert seen[-1][k] == pytest.approx(np.sqrt(np.mean(error[mask] ** 2)), rel=1e-4)
        assert seen[-1][k] < 0.75 * np.sqrt(np.mean(error ** 2))  # the outliers left out
    np.testing.assert_allclose(trained.history["val_rmse"][-1], seen[-1])
    assert len(trained.val_predictions[0]) == len(val_rows[0])  # still predicts every row
    all_rows = fit_mlps(x, y, fit_rows, val_rows, CFG, seed=0,
                        score_rows=[np.zeros(len(r), dtype=bool) for r in val_rows])
    for k, rows in enumerate(val_rows):  # a model with no row to score is scored on all
        error = all_rows.val_predictions[k] - y[rows].numpy()
        assert all_rows.history["val_rmse"][-1][k] == pytest.approx(
            np.sqrt(np.mean(error ** 2)), rel=1e-4)


def level_problem(n=600, levels=60, seed=0):
    """y from a numeric input and a 60-level category: x = [code, numeric, 0/1 columns]."""
    rng = np.random.default_rng(seed)
    code = rng.integers(1, levels, n)
    effect = rng.normal(0, 1, levels)
    numeric = rng.normal(size=n)
    flags = np.eye(4)[rng.integers(0, 4, n)]
    y = effect[code] + 0.5 * numeric + rng.normal(0, 0.1, n)
    x = np.column_stack([code, numeric, flags]).astype(np.float32)
    return torch.from_numpy(x), torch.as_tensor(y, dtype=torch.float32), levels


def test_level_codes_learn_a_wide_category_and_lookups_match_the_dense_path():
    x, y, levels = level_problem()
    fit_rows, val_rows = two_folds(len(y))
    cfg = CFG.replace({"epochs": 60, "category_embedding_dim": 4})
    coded = fit_mlps(x, y, fit_rows, val_rows, cfg, seed=0, code_levels=[levels])
    dense = fit_mlps(x, y, fit_rows, val_rows, cfg, seed=0, code_levels=[levels],
                     onehot_lookup=False)
    for a, b in zip(coded.val_predictions, dense.val_predictions, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # the same code column read as a number cannot tell the levels apart
    as_number = fit_mlps(x, y, fit_rows, val_rows, cfg, seed=0)
    assert coded.history["val_rmse"][-1].max() < 0.5 * as_number.history["val_rmse"][-1].min()
