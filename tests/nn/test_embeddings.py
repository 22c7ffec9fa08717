"""Numeric embeddings (PBLD, piecewise-linear encoding), batched over K models."""

import numpy as np
import pytest
import torch

from pipeline.config import ModelConfig
from pipeline.nn.embeddings import PBLDEmbedding, PLEncoding
from pipeline.nn.model import BatchedMLP
from pipeline.nn.train import fit_mlps, predict_mlps


def test_each_model_embeds_each_feature_on_its_own():
    emb = PBLDEmbedding(n_models=3, n_features=4, n_frequencies=6, dim=4, sigma=1.0)
    x = torch.randn(3, 7, 4)
    out = emb(x)
    assert out.shape == (3, 7, 20) and emb.width == 20
    # each feature's block ends with the feature itself (RealMLP's "densenet" part)
    torch.testing.assert_close(out.view(3, 7, 4, 5)[..., -1], x)
    moved = x.clone()
    moved[1, :, 2] += 1.0  # model 1, feature 2 only
    changed = (emb(moved) != out).any(dim=1)  # [K, n * (dim + 1)]
    assert not changed[0].any() and not changed[2].any()
    assert changed[1, 10:15].all() and not changed[1, :10].any() and not changed[1, 15:].any()


def test_the_embedding_is_the_per_feature_formula():
    """cos(2 pi w x + b) mapped linearly per feature, computed naively for each model."""
    emb = PBLDEmbedding(n_models=2, n_features=3, n_frequencies=5, dim=2, sigma=0.5)
    x = torch.randn(2, 4, 3)
    out = emb(x).view(2, 4, 3, 3)
    for k in range(2):
        for j in range(3):
            waves = torch.cos(2 * np.pi * x[k, :, j, None] * emb.frequencies[k, 0, j]
                              + emb.phases[k, 0, j])
            expected = waves @ emb.weight[k, j] + emb.bias[k, 0, j]
            torch.testing.assert_close(out[k, :, j, :2], expected, rtol=1e-5, atol=1e-5)


def periodic_problem(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n, 4))
    levels = rng.integers(0, 5, n)
    x = torch.tensor(np.hstack([numbers, np.eye(5)[levels]]), dtype=torch.float32)
    y = torch.tensor(np.sin(3 * numbers[:, 0]) + 0.3 * levels, dtype=torch.float32)
    return x, y, [np.arange(400)], [np.arange(400, n)]


def val_rmse(trained, y, val) -> float:
    return float(np.sqrt(np.mean((trained.val_predictions[0] - y[val[0]].numpy()) ** 2)))


CFG = ModelConfig(depth=1, width=32, epochs=60, batch_size=64, lr=3e-3, eval_every=60)


def test_a_periodic_embedding_learns_what_a_plain_mlp_of_the_same_size_cannot():
    x, y, fit, val = periodic_problem()
    plain = fit_mlps(x, y, fit, val, CFG, seed=0)
    periodic = fit_mlps(x, y, fit, val, CFG.replace({"numeric_embedding": "pbld",
                                                     "embedding_scale": 0.3}), seed=0)
    assert val_rmse(periodic, y, val) < 0.5 * val_rmse(plain, y, val)
    # the 4 numeric inputs are embedded, the 5 one-hot ones go in as they are
    assert periodic.model.numeric_cols == [0, 1, 2, 3]
    assert periodic.model.weights[0].shape[1] == 4 * (3 + 1) + 5


@pytest.mark.parametrize("onehot_lookup", [True, False])
def test_lookups_dense_inputs_and_prediction_agree_with_an_embedding(onehot_lookup):
    x, y, fit, val = periodic_problem()
    cfg = CFG.replace({"numeric_embedding": "pbld", "front_scale": True, "epochs": 10,
                       "eval_every": 10})
    trained = fit_mlps(x, y, fit, val, cfg, seed=0, onehot_lookup=onehot_lookup)
    np.testing.assert_allclose(predict_mlps(trained, x)[0][val[0]], trained.val_predictions[0],
                               rtol=0, atol=1e-6)
    other = fit_mlps(x, y, fit, val, cfg, seed=0, onehot_lookup=not onehot_lookup)
    np.testing.assert_allclose(other.val_predictions[0], trained.val_predictions[0],
                               rtol=0, atol=1e-3)


@pytest.mark.parametrize("embedding", ["pbld", "ple"])
def test_an_embedded_model_rebuilds_from_its_architecture_and_weights(embedding):
    x, y, fit, val = periodic_problem()
    cfg = CFG.replace({"numeric_embedding": embedding, "front_scale": True, "epochs": 5,
                       "eval_every": 5})
    model = fit_mlps(x, y, fit, val, cfg, seed=0).model
    rebuilt = BatchedMLP(**model.architecture())
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x.unsqueeze(0)), model(x.unsqueeze(0)))


def naive_ple(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The piecewise-linear encoding of one feature, as the paper writes it: bin t is
    clip((x - e_t) / (e_{t+1} - e_t), 0, 1), the first bin open below, the last open above."""
    out = (x[:, None] - edges[None, :-1]) / np.diff(edges)[None, :]
    out[:, 1:] = np.maximum(out[:, 1:], 0)
    out[:, :-1] = np.minimum(out[:, :-1], 1)
    return out


def test_the_encoding_is_the_papers_formula_over_each_models_own_quantiles():
    rng = np.random.default_rng(0)
    train = torch.tensor(np.stack([rng.normal(size=(500, 3)), rng.exponential(size=(500, 3))]),
                         dtype=torch.float32)
    train[:, :, 2] = torch.tensor(rng.integers(0, 3, (2, 500)), dtype=torch.float32)  # 3 values
    train[0, :, 1] = 5.0  # constant
    enc = PLEncoding(n_models=2, n_features=3, n_bins=6).fit(train)
    x = torch.tensor(rng.normal(scale=3, size=(2, 50, 3)), dtype=torch.float32)
    full = enc(x).numpy()
    out = full[..., :18].reshape(2, 50, 3, 6)
    np.testing.assert_array_equal(full[..., 18:], x.numpy())  # then x itself
    for k in range(2):
        for j in range(3):
            edges = np.unique(np.quantile(train[k, :, j].double().numpy(),
                                          np.linspace(0, 1, 7)))
            if len(edges) < 2:  # a constant feature: nothing but x
                assert not out[k, :, j, :-1].any()
                continue
            expected = naive_ple(x[k, :, j].double().numpy(), edges)
            m = len(edges) - 1
            np.testing.assert_allclose(out[k, :, j, : m - 1], expected[:, :-1], atol=1e-5)
            np.testing.assert_allclose(out[k, :, j, 5], expected[:, -1], atol=1e-5)
            assert not out[k, :, j, m - 1:5].any()  # the unused slots stay zero
    assert enc.width == 21
    # the slots no model uses are left out: the 3-valued feature's (2 bins in both models)
    bins = PLEncoding.quantile_bins(train, 6)
    slots = PLEncoding.used_slots(bins)
    assert 12 + 0 in slots and 12 + 1 not in slots and 12 + 5 in slots
    compact = PLEncoding(2, 3, 6, slots).load_bins(bins)
    assert compact.width == len(slots) + 3 < enc.width
    np.testing.assert_array_equal(compact(x).numpy(),
                                  np.concatenate([full[..., slots], full[..., 18:]], -1))


def step_problem(n: int = 800, seed: int = 0):
    """A target made of steps in one feature: what PLE's bins cut without many units."""
    rng = np.random.default_rng(seed)
    numbers = rng.uniform(-2, 2, size=(n, 3))
    x = torch.tensor(numbers, dtype=torch.float32)
    y = torch.tensor(np.floor(2.5 * numbers[:, 0]) ** 2 / 4, dtype=torch.float32)
    return x, y, [np.arange(600)], [np.arange(600, n)]


def test_a_piecewise_linear_encoding_learns_steps_a_plain_mlp_of_the_same_size_blurs():
    x, y, fit, val = step_problem()
    cfg = CFG.replace({"width": 8, "epochs": 40, "eval_every": 40})
    plain = fit_mlps(x, y, fit, val, cfg, seed=0)
    ple = fit_mlps(x, y, fit, val, cfg.replace({"numeric_embedding": "ple", "ple_bins": 32}),
                   seed=0)
    assert val_rmse(ple, y, val) < 0.5 * val_rmse(plain, y, val)
    assert ple.model.weights[0].shape[1] == 3 * 33


def test_each_folds_model_takes_its_bins_from_its_own_training_rows():
    x, y, _, _ = step_problem()
    x[400:, 0] += 10.0  # the second half of the rows lies elsewhere
    cfg = CFG.replace({"numeric_embedding": "ple", "epochs": 1, "eval_every": 1})
    trained = fit_mlps(x, y, [np.arange(400), np.arange(400, 800)], None, cfg, seed=0)
    enc = trained.model.embedding
    # the first bin's left edge is -bias / weight: the model's own rows' minimum
    assert enc.slots[0] == 0  # feature 0's first bin
    first = (-enc.bias[:, 0] / enc.weight[:, 0]).numpy()
    np.testing.assert_allclose(first, [x[:400, 0].min(), x[400:, 0].min()], rtol=1e-5)
