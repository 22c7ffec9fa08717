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
