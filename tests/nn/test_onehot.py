import copy

import pytest
import torch

from pipeline.nn import onehot
from pipeline.nn.model import BatchedMLP
from pipeline.nn.onehot import OneHotRows, onehot_layout


def mixed_inputs(n_rows=40, n_dense=3, levels=(5, 4, 6), seed=0, dense_first=False):
    """Dense columns in two runs amid one-hot groups, or all first; row 0 of
    the last group is all zero (an unseen category), so rows hold 2 or 3 ones."""
    g = torch.Generator().manual_seed(seed)
    groups = []
    for n in levels:
        codes = torch.randint(0, n, (n_rows,), generator=g)
        groups.append(torch.nn.functional.one_hot(codes, n).float())
    groups[-1][0] = 0.0
    dense = torch.randn(n_rows, n_dense, generator=g)
    parts = ([dense] + groups if dense_first
             else [dense[:, :1], groups[0], dense[:, 1:]] + groups[1:])
    return torch.cat(parts, dim=1)


def rows_of(x, layout, k_models, batch, seed=0):
    """The same random minibatch as a dense [K, B, d] tensor and as OneHotRows."""
    idx = torch.randint(0, x.shape[0], (k_models, batch),
                        generator=torch.Generator().manual_seed(seed))
    return x[idx], OneHotRows(layout.dense_x[idx], layout.ones[idx], layout)


def test_layout_finds_the_dense_columns_and_each_rows_ones():
    x = mixed_inputs()
    layout = onehot_layout(x)
    assert layout.dense_cols.tolist() == [0, 6, 7]
    assert layout.dense_span is None  # not one run of columns: gathered, not sliced
    torch.testing.assert_close(layout.dense_x, x[:, [0, 6, 7]])
    assert layout.ones.shape == (40, 3) and layout.padded
    for row in range(40):
        expected = x[row].nonzero().squeeze(1).tolist()
        expected = [c for c in expected if c not in (0, 6, 7)]
        got = [c for c in layout.ones[row].tolist() if c >= 0]
        assert got == expected
    assert layout.ones[0].tolist()[-1] == -1  # row 0 holds two ones, padded


def test_layout_of_dense_columns_first_is_a_span():
    layout = onehot_layout(mixed_inputs(dense_first=True))
    assert layout.dense_span == (0, 3)


def test_layout_is_built_the_same_in_chunks(monkeypatch):
    x = mixed_inputs(n_rows=50)
    whole = onehot_layout(x)
    monkeypatch.setattr(onehot, "ROW_CHUNK", 7)
    chunked = onehot_layout(x)
    torch.testing.assert_close(chunked.ones, whole.ones)
    torch.testing.assert_close(chunked.dense_x, whole.dense_x)


@pytest.mark.parametrize("x", [
    torch.randn(30, 4, generator=torch.Generator().manual_seed(0)),  # no 0/1 column
    torch.zeros(30, 4),  # 0/1 columns without a single one
    # 0/1 columns, but about half of them ones
    torch.randint(0, 2, (30, 8), generator=torch.Generator().manual_seed(0)).float(),
], ids=["dense", "all-zero", "too-many-ones"])
def test_no_layout_where_lookups_do_not_pay(x):
    assert onehot_layout(x) is None


@pytest.mark.parametrize("dense_first", [False, True])
@pytest.mark.parametrize("linear_skip", [False, True])
def test_lookups_give_the_dense_products_outputs_and_gradients(dense_first, linear_skip):
    x = mixed_inputs(dense_first=dense_first)
    layout = onehot_layout(x)
    torch.manual_seed(0)
    dense_model = BatchedMLP(n_models=3, n_inputs=x.shape[1], width=8, depth=2,
                             linear_skip=linear_skip)
    if linear_skip:
        with torch.no_grad():
            dense_model.skip.normal_()
    lookup_model = copy.deepcopy(dense_model)
    x_batch, rows = rows_of(x, layout, 3, 16)
    out = dense_model(x_batch)
    torch.testing.assert_close(lookup_model(rows), out)
    g = torch.randn_like(out)
    (dense_model(x_batch) * g).sum().backward()
    (lookup_model(rows) * g).sum().backward()
    for (name, p), q in zip(dense_model.named_parameters(), lookup_model.parameters(),
                               strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_lookups_without_dense_columns():
    x = mixed_inputs(n_dense=0)
    layout = onehot_layout(x)
    assert len(layout.dense_cols) == 0
    weight = torch.randn(2, x.shape[1], 5, requires_grad=True)
    bias = torch.randn(2, 1, 5, requires_grad=True)
    x_batch, rows = rows_of(x, layout, 2, 9)
    g = torch.randn(2, 9, 5)
    expected = torch.baddbmm(bias, x_batch, weight)
    expected_grads = torch.autograd.grad((expected * g).sum(), [weight, bias])
    got = rows.affine(weight, bias)
    torch.testing.assert_close(got, expected)
    grads = torch.autograd.grad((got * g).sum(), [weight, bias])
    for a, b in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b)
