"""PBLD embeddings of numeric inputs, batched over K models."""

import numpy as np
import pytest
import torch

from pipeline.config import ModelConfig
from pipeline.nn.embeddings import PBLDEmbedding
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


def test_an_embedded_model_rebuilds_from_its_architecture_and_weights():
    x, y, fit, val = periodic_problem()
    cfg = CFG.replace({"numeric_embedding": "pbld", "front_scale": True, "epochs": 5,
                       "eval_every": 5})
    model = fit_mlps(x, y, fit, val, cfg, seed=0).model
    rebuilt = BatchedMLP(**model.architecture())
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x.unsqueeze(0)), model(x.unsqueeze(0)))
