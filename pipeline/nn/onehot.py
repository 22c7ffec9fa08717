"""Inputs with one-hot columns, read as lookups: the input layers' products without the zeros.

After one-hot encoding most input columns hold 0 or 1 with a few ones per row (House Prices:
199 of 257 columns, 25-26 ones per row). For those columns `x @ W` only adds up the rows of W
where a row has a one, and the weight gradient `x.T @ g` only adds each row's gradient into
those rows of the gradient: the dense product spends most of its multiplies on zeros. Here the
other (dense) columns go through `baddbmm`/`bmm` and the 0/1 columns through `embedding_bag`
sums, forward and backward. The result is the dense product's up to float rounding (sums run in
another order). What it saves depends on the machine: see docs/speed.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

ROW_CHUNK = 4096  # rows examined at a time while building the layout (bounded temporaries)
MIN_COLUMNS_PER_ONE = 4  # below this many 0/1 columns per one, the dense product is cheaper


@dataclass(frozen=True)
class OneHotLayout:
    """A flat data matrix [rows, d] split into its dense columns and, per row, its ones."""

    n_inputs: int  # d
    dense_cols: torch.Tensor  # [d_dense] long, ascending
    dense_x: torch.Tensor  # [rows, d_dense] float32: the values of the dense columns
    ones: torch.Tensor  # [rows, max_ones] long: the 0/1 columns holding a one, -1 pads
    padded: bool  # whether some row holds fewer than max_ones ones
    dense_span: tuple[int, int] | None  # (first, count) when the dense columns are one run


def binary_columns(x_flat: torch.Tensor) -> torch.Tensor:
    """Which columns of `x_flat` [rows, d] hold only 0 and 1 (one-hot columns): [d] bool."""
    binary = torch.ones(x_flat.shape[1], dtype=torch.bool, device=x_flat.device)
    for chunk in x_flat.split(ROW_CHUNK):
        binary &= ((chunk == 0) | (chunk == 1)).all(0)
    return binary


def onehot_layout(x_flat: torch.Tensor, dense_width: int | None = None,
                  n_codes: int = 0) -> OneHotLayout | None:
    """The layout of `x_flat` [rows, d]: columns holding only 0 and 1 are looked up. None when
    there are no such columns or their rows hold too many ones for lookups to pay.

    With `dense_width`, the model's input is not x itself but its dense columns turned into
    `dense_width` values (a numeric embedding) followed by the 0/1 columns in order: the
    ones then index the weight rows after the first `dense_width`. The first `n_codes`
    columns are level codes: dense, whatever values they hold.
    """
    n_inputs = x_flat.shape[1]
    binary = binary_columns(x_flat)
    binary[:n_codes] = False
    binary_cols = binary.nonzero().squeeze(1)
    if len(binary_cols) == 0:
        return None
    max_ones = 0
    for chunk in x_flat.split(ROW_CHUNK):
        max_ones = max(max_ones, int((chunk[:, binary_cols] != 0).sum(1).max()))
    if max_ones == 0 or max_ones * MIN_COLUMNS_PER_ONE > len(binary_cols):
        return None
    dense_cols = (~binary).nonzero().squeeze(1)
    n_dense = len(dense_cols)
    one_run = n_dense > 0 and int(dense_cols[-1]) - int(dense_cols[0]) == n_dense - 1
    targets = binary_cols  # the weight row each 0/1 column's one adds up
    span = (int(dense_cols[0]), n_dense) if one_run else None
    if dense_width is not None:
        targets = dense_width + torch.arange(len(binary_cols), device=x_flat.device)
        n_inputs, span = dense_width + len(binary_cols), (0, dense_width)
    ones = torch.cat([_ones_of(chunk[:, binary_cols], targets, max_ones)
                      for chunk in x_flat.split(ROW_CHUNK)])
    return OneHotLayout(n_inputs, dense_cols, x_flat[:, dense_cols].contiguous(), ones,
                        padded=bool((ones < 0).any()), dense_span=span)


def _ones_of(values: torch.Tensor, cols: torch.Tensor, width: int) -> torch.Tensor:
    """Column numbers of the ones in each row of `values` (0/1 columns `cols`), in column
    order, padded with -1 to `width`."""
    big = torch.iinfo(torch.long).max
    positions = torch.where(values != 0, cols, big).sort(dim=1).values[:, :width].clone()
    return positions.masked_fill_(positions == big, -1)  # a copy: the sort's rows are freed


class OneHotRows:
    """One minibatch in a layout: model k's rows as dense values and ones. Stands in for the
    [K, B, d] input tensor of a BatchedMLP, whose input layers call `affine`."""

    def __init__(self, dense_x: torch.Tensor, ones: torch.Tensor, layout: OneHotLayout) -> None:
        """dense_x [K, B, d_dense] and ones [K, B, max_ones]: rows gathered from the layout."""
        n_models, n_rows, width = ones.shape
        self.dense_x = dense_x
        self.layout = layout
        self.n_flat = n_models * layout.n_inputs
        # row k*d + c of a weight [K, d, F] viewed as [K*d, F] is model k's row for column c
        base = (torch.arange(n_models, device=ones.device) * layout.n_inputs).view(-1, 1, 1)
        if layout.padded:
            valid = ones >= 0
            # a padding slot looks up row 0 with weight 0 and, for the gradient, goes to an
            # extra row n_flat that is dropped
            self.lookup = torch.where(valid, ones + base, 0).view(-1, width)
            self.lookup_weights = valid.view(-1, width).float()
            self.gradient_rows = torch.where(valid, ones + base, self.n_flat).view(-1)
        else:
            self.lookup = (ones + base).view(-1, width)
            self.lookup_weights = None
            self.gradient_rows = self.lookup.view(-1)
        self._by_row: tuple[torch.Tensor, torch.Tensor] | None = None

    def with_dense(self, dense_x: torch.Tensor) -> OneHotRows:
        """The same rows with other dense values (a numeric embedding of these)."""
        rows = copy.copy(self)
        rows.dense_x = dense_x
        return rows

    def affine(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """bias + x @ weight, as `model._affine` for a dense x: weight [K, d, F] -> [K, B, F]."""
        return _OneHotAffine.apply(weight, bias, self.dense_x, self)

    def by_weight_row(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The transpose of the ones, for the weight gradient: for each flat weight row (and
        the padding row n_flat) the batch rows that looked it up, grouped by weight row, and
        where each group starts."""
        if self._by_row is None:
            rows = self.gradient_rows
            if rows.is_cuda:
                order = torch.sort(rows, stable=True).indices
            else:  # numpy's stable sort of 16-bit keys is a radix sort, far faster than torch's
                key = rows.numpy().astype(np.int16 if self.n_flat < 2**15 else np.int32)
                order = torch.from_numpy(np.argsort(key, kind="stable"))
            per_row = torch.bincount(self.gradient_rows, minlength=self.n_flat + 1)
            starts = torch.zeros_like(per_row)
            torch.cumsum(per_row[:-1], 0, out=starts[1:])
            self._by_row = (order // self.lookup.shape[1], starts)
        return self._by_row


class _OneHotAffine(torch.autograd.Function):
    """bias + x @ weight for x given as OneHotRows; gradients for weight and bias."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, bias: torch.Tensor, dense_x: torch.Tensor,
                rows: OneHotRows) -> torch.Tensor:
        n_out = weight.shape[2]
        out = torch.baddbmm(bias, dense_x, _dense_rows(weight, rows.layout))
        looked_up = F.embedding_bag(rows.lookup, weight.view(-1, n_out), mode="sum",
                                    per_sample_weights=rows.lookup_weights)
        out.view(-1, n_out).add_(looked_up)
        ctx.rows = rows
        ctx.bias_shape = bias.shape
        ctx.weight_shape = weight.shape
        if ctx.needs_input_grad[2]:  # dense values computed by the model (an embedding)
            ctx.save_for_backward(weight)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows: OneHotRows = ctx.rows
        n_out = ctx.weight_shape[2]
        grad = grad.contiguous()
        grad_weight = grad_bias = grad_dense = None
        if ctx.needs_input_grad[0]:
            batch_rows, starts = rows.by_weight_row()
            # each weight row's gradient: the sum of the gradients of the batch rows that looked
            # it up; dense columns' rows get none (zero here) and are filled in next
            grad_weight = F.embedding_bag(batch_rows, grad.view(-1, n_out), starts,
                                          mode="sum")[:-1].view(ctx.weight_shape)
            dense_grad = torch.bmm(rows.dense_x.transpose(1, 2), grad)
            span = rows.layout.dense_span
            if span is not None:
                grad_weight.narrow(1, *span).copy_(dense_grad)
            else:
                grad_weight.index_copy_(1, rows.layout.dense_cols, dense_grad)
        if ctx.needs_input_grad[1]:
            grad_bias = grad.sum_to_size(ctx.bias_shape)
        if ctx.needs_input_grad[2]:
            (weight,) = ctx.saved_tensors
            grad_dense = torch.bmm(grad, _dense_rows(weight, rows.layout).transpose(1, 2))
        return grad_weight, grad_bias, grad_dense, None


def _dense_rows(weight: torch.Tensor, layout: OneHotLayout) -> torch.Tensor:
    """The rows [K, d_dense, F] of a weight [K, d, F] for the dense columns: a view when they
    are one run of columns (as the features module orders them), else a copy."""
    span = layout.dense_span
    return weight.narrow(1, *span) if span is not None else weight.index_select(
        1, layout.dense_cols)
