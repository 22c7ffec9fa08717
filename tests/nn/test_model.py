import typing

import pytest
import torch

from pipeline.config import ModelConfig
from pipeline.nn.model import BatchedMLP


@pytest.mark.parametrize("activation",
                         typing.get_args(typing.get_type_hints(ModelConfig)["activation"]))
def test_output_shape(activation):  # every activation the config accepts
    model = BatchedMLP(n_models=3, n_inputs=7, width=5, depth=2, dropout=0.2,
                       activation=activation)
    assert model(torch.randn(3, 11, 7)).shape == (3, 11)


def test_each_model_is_an_ordinary_mlp():
    torch.manual_seed(0)
    model = BatchedMLP(n_models=2, n_inputs=4, width=6, depth=2, activation="relu").eval()
    x = torch.randn(2, 9, 4)
    for k in range(2):
        reference = torch.nn.Sequential(
            torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6), torch.nn.ReLU(),
            torch.nn.Linear(6, 1))
        linears = [m for m in reference if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, model.weights, model.biases, strict=True):
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
        torch.testing.assert_close(model(x)[k], reference(x[k]).squeeze(-1))


def test_models_do_not_share_gradients():
    model = BatchedMLP(n_models=2, n_inputs=3, width=4, depth=1)
    x = torch.randn(2, 5, 3)
    model(x)[0].sum().backward()
    assert model.weights[0].grad[0].abs().sum() > 0
    assert model.weights[0].grad[1].abs().sum() == 0


def test_dropout_only_in_training_mode():
    model = BatchedMLP(n_models=1, n_inputs=3, width=64, depth=1, dropout=0.5)
    x = torch.randn(1, 20, 3)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_linear_skip_adds_a_linear_term_that_starts_at_zero():
    torch.manual_seed(0)
    plain = BatchedMLP(n_models=2, n_inputs=3, width=4, depth=1).eval()
    torch.manual_seed(0)
    wide = BatchedMLP(n_models=2, n_inputs=3, width=4, depth=1, linear_skip=True).eval()
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(wide(x), plain(x))  # zero-initialised skip
    with torch.no_grad():
        wide.skip.fill_(1.0)
    torch.testing.assert_close(wide(x), plain(x) + x.sum(-1))


def test_gradients_match_an_ordinary_mlp():
    # the output layer is a multiply and row sum, not a bmm: its gradients must be nn.Linear's
    torch.manual_seed(0)
    model = BatchedMLP(n_models=2, n_inputs=4, width=6, depth=1, linear_skip=True)
    with torch.no_grad():
        model.skip.normal_()
    x, y = torch.randn(2, 9, 4), torch.randn(2, 9)
    ((model(x) - y) ** 2).sum().backward()
    for k in range(2):
        hidden, out = torch.nn.Linear(4, 6), torch.nn.Linear(6, 1)
        skip = torch.nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            hidden.weight.copy_(model.weights[0][k].T)
            hidden.bias.copy_(model.biases[0][k, 0])
            out.weight.copy_(model.weights[1][k].T)
            out.bias.copy_(model.biases[1][k, 0])
            skip.weight.copy_(model.skip[k].T)
        pred = out(torch.relu(hidden(x[k]))).squeeze(-1) + skip(x[k]).squeeze(-1)
        ((pred - y[k]) ** 2).sum().backward()
        torch.testing.assert_close(model.weights[0].grad[k], hidden.weight.grad.T)
        torch.testing.assert_close(model.weights[1].grad[k], out.weight.grad.T)
        torch.testing.assert_close(model.biases[1].grad[k, 0], out.bias.grad)
        torch.testing.assert_close(model.skip.grad[k], skip.weight.grad.T)


def test_members_share_the_weights_and_differ_by_their_vectors_and_heads():
    torch.manual_seed(0)
    model = BatchedMLP(n_models=2, n_inputs=4, width=6, depth=2, members=3).eval()
    x = torch.randn(2, 5, 4)
    per_member = model.forward_members(x)
    assert per_member.shape == (2, 3, 5)
    torch.testing.assert_close(model(x), per_member.mean(dim=1))
    assert set(model.member_scale.unique().tolist()) <= {-1.0, 1.0}
    # member m of model k is an ordinary MLP whose first layer's outputs are scaled by its
    # vector and whose output layer is its head
    k, m = 1, 2
    hidden = torch.relu((x[k] @ model.weights[0][k] + model.biases[0][k])
                        * model.member_scale[k, m])
    hidden = torch.relu(hidden @ model.weights[1][k] + model.biases[1][k])
    expected = hidden @ model.head[k, m, 0] + model.head_bias[k, m]
    torch.testing.assert_close(per_member[k, m], expected)


def test_front_scale_starts_at_one_and_scales_only_the_numeric_inputs():
    x = torch.cat([torch.randn(1, 6, 2), torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
                   .unsqueeze(0)], dim=-1)
    scaled = BatchedMLP(1, 5, 4, 1, numeric_cols=[0, 1], front_scale=True).eval()
    plain = BatchedMLP(1, 5, 4, 1).eval()
    plain.load_state_dict({k: v for k, v in scaled.state_dict().items() if k != "scale"},
                          strict=False)
    torch.testing.assert_close(scaled(x), plain(x))  # scale 1: the same function
    assert scaled.scale.shape == (1, 1, 2)
    with torch.no_grad():
        scaled.scale.fill_(2.0)
        doubled = x.clone()
        doubled[..., :2] *= 2
    torch.testing.assert_close(scaled(x), plain(doubled))


def test_data_dependent_init_gives_unit_spread_and_kinks_among_the_rows():
    torch.manual_seed(0)
    model = BatchedMLP(n_models=2, n_inputs=5, width=64, depth=2)
    x = torch.randn(2, 500, 5) * torch.tensor([1.0, 10.0, 100.0, 0.1, 5.0]) + 3.0
    model.init_from_data(x, torch.Generator().manual_seed(0))
    pre = torch.bmm(x, model.weights[0])
    torch.testing.assert_close(pre.std(dim=1, correction=0), torch.ones(2, 64))
    active = (pre + model.biases[0] > 0).float().mean(dim=1)  # share of rows past the kink
    assert ((active > 0) & (active < 1)).float().mean() > 0.9


def test_the_architecture_rebuilds_the_same_module():
    model = BatchedMLP(2, 6, 8, 2, dropout=0.1, activation="mish", numeric_cols=[0, 3],
                       embedding={"n_frequencies": 4, "dim": 2, "sigma": 0.1},
                       front_scale=True, members=3, linear_skip=True)
    rebuilt = BatchedMLP(**model.architecture())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 7, 6)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))


def test_level_codes_are_looked_up_and_the_architecture_keeps_them():
    # columns 0-1 codes (of 5 and 3 codes), 2-3 numeric, 4-5 0/1
    model = BatchedMLP(2, 6, 8, 1, numeric_cols=[2, 3], code_levels=[5, 3], code_dim=4,
                       embedding={"n_frequencies": 4, "dim": 2, "sigma": 0.1})
    assert model.n_inputs == model.embedding.width + 2 * 4 + 2
    x = torch.cat([torch.randint(0, 5, (2, 7, 1)).float(), torch.randint(0, 3, (2, 7, 1)).float(),
                   torch.randn(2, 7, 2), torch.randint(0, 2, (2, 7, 2)).float()], dim=-1)
    first = model.first_layer_inputs(x)
    numeric = model.embedding.width
    torch.testing.assert_close(first[..., numeric:numeric + 8], model.levels(x[..., :2]))
    torch.testing.assert_close(first[..., numeric + 8:], x[..., 4:])
    rebuilt = BatchedMLP(**model.architecture())
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))
    # another level of one row moves that row's prediction only
    moved = x.clone()
    moved[0, 3, 0] = (moved[0, 3, 0] + 1) % 5
    changed = (model(moved) != model(x))
    assert changed[0, 3] and changed.sum() == 1
