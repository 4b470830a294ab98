"""The op table the gradient tests run over: one row per op.

Each row names a function of gradflow tensors, the shapes of its differentiable inputs
(broadcasting and size-1 axes included), the domain inputs are drawn from (kept off kinks and
singularities), and its NumPy reference. ``test_ops.py`` runs every row through forward-vs-NumPy,
float64 gradcheck, gradgradcheck and a float32 run. A new op is one new row here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.special

import gradflow as gf
import gradflow.nn.functional as F

import cnn_reference as cnn

LABELS = np.array([2, 0, 1, 2])


@dataclass
class OpCase:
    name: str
    fn: Callable                     # gradflow tensors -> tensor
    shapes: tuple                    # shapes of the inputs
    reference: Callable | None = None  # numpy arrays -> array (forward check)
    low: float = -2.0
    high: float = 2.0
    smooth: bool = True              # second derivative defined (gradgradcheck)
    avoid: tuple = ()                # values inputs keep a distance of 0.1 from (kinks)
    positive_pairs: bool = False     # binary ops whose inputs must not tie (max/min)
    atol32: float = 1e-4
    extra: dict = field(default_factory=dict)

    def __str__(self):
        return self.name


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


OP_CASES = [
    # binary arithmetic, with broadcasting and size-1 axes
    OpCase("add", lambda x, y: x + y, ((3, 4), (4,)), np.add),
    OpCase("add_size1", lambda x, y: x + y, ((3, 1), (1, 4)), np.add),
    OpCase("sub", lambda x, y: x - y, ((2, 3), (2, 1)), np.subtract),
    OpCase("mul", lambda x, y: x * y, ((3, 4), (3, 4)), np.multiply),
    OpCase("mul_broadcast", lambda x, y: x * y, ((2, 1, 3), (4, 1)), np.multiply),
    OpCase("mul_scalar", lambda x: x * 2.5 + 1.0, ((3,),), lambda x: x * 2.5 + 1.0),
    OpCase("div", lambda x, y: x / y, ((3, 4), (4,)), np.divide, low=0.5, high=2.0),
    OpCase("rdiv_scalar", lambda x: 1.0 / x, ((5,),), lambda x: 1.0 / x, low=0.5, high=2.0),
    OpCase("pow", lambda x, y: x ** y, ((3, 2), (3, 2)), np.power, low=0.5, high=2.0),
    OpCase("pow_scalar", lambda x: x ** 3, ((4,),), lambda x: x ** 3),
    OpCase("neg", lambda x: -x, ((2, 3),), np.negative),
    # unary functions
    OpCase("exp", gf.exp, ((3, 4),), np.exp),
    OpCase("log", gf.log, ((3, 4),), np.log, low=0.2, high=3.0),
    OpCase("sqrt", gf.sqrt, ((3, 4),), np.sqrt, low=0.2, high=3.0),
    OpCase("abs", gf.abs, ((3, 4),), np.abs, avoid=(0.0,)),
    OpCase("erf", gf.erf, ((5,),), scipy.special.erf),
    OpCase("tanh", gf.tanh, ((3, 4),), np.tanh),
    OpCase("sigmoid", gf.sigmoid, ((3, 4),), scipy.special.expit),
    OpCase("relu", gf.relu, ((3, 4),), lambda x: np.maximum(x, 0), avoid=(0.0,)),
    OpCase("leaky_relu", lambda x: F.leaky_relu(x, 0.1), ((3, 4),), lambda x: np.where(x > 0, x, 0.1 * x),
           avoid=(0.0,)),
    OpCase("gelu", F.gelu, ((3, 4),), lambda x: 0.5 * x * (1 + scipy.special.erf(x / np.sqrt(2)))),
    OpCase("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), ((3, 4),), _gelu_tanh),
    OpCase("softplus", F.softplus, ((3, 4),), lambda x: np.logaddexp(0, x)),
    OpCase("silu", F.silu, ((3, 4),), lambda x: x * scipy.special.expit(x)),
    # selection
    OpCase("maximum", gf.maximum, ((3, 4), (4,)), np.maximum, positive_pairs=True),
    OpCase("minimum", gf.minimum, ((3, 4), (3, 4)), np.minimum, positive_pairs=True),
    OpCase("clip", lambda x: gf.clip(x, -1.0, 1.0), ((3, 4),), lambda x: np.clip(x, -1, 1), avoid=(-1.0, 1.0)),
    OpCase("where", lambda x, y: gf.where(x.detach() > 0, x, y), ((3, 4), (4,)),
           lambda x, y: np.where(x > 0, x, y), avoid=(0.0,)),
    # reductions
    OpCase("sum", lambda x: x.sum(), ((3, 4),), np.sum),
    OpCase("sum_axis", lambda x: x.sum(axis=1), ((3, 4),), lambda x: x.sum(axis=1)),
    OpCase("sum_dim_keepdim", lambda x: x.sum(dim=0, keepdim=True), ((3, 4),),
           lambda x: x.sum(axis=0, keepdims=True)),
    OpCase("mean", lambda x: x.mean(axis=(0, 2)), ((2, 3, 4),), lambda x: x.mean(axis=(0, 2))),
    OpCase("var", lambda x: x.var(axis=1), ((3, 5),), lambda x: x.var(axis=1)),
    OpCase("var_ddof", lambda x: gf.var(x, ddof=1), ((6,),), lambda x: x.var(ddof=1)),
    OpCase("max", lambda x: x.max(axis=1), ((3, 4),), lambda x: x.max(axis=1)),
    OpCase("min_all", lambda x: x.min(), ((3, 4),), np.min),
    # shape
    OpCase("reshape", lambda x: x.reshape(4, 3), ((3, 4),), lambda x: x.reshape(4, 3)),
    OpCase("transpose", lambda x: x.transpose(2, 0, 1), ((2, 3, 4),), lambda x: x.transpose(2, 0, 1)),
    OpCase("permute", lambda x: gf.permute(x, (1, 0)), ((2, 3),), lambda x: x.T),
    OpCase("T", lambda x: x.T, ((2, 3),), lambda x: x.T),
    OpCase("squeeze", lambda x: x.squeeze(1), ((3, 1, 2),), lambda x: x.squeeze(1)),
    OpCase("unsqueeze", lambda x: x.unsqueeze(0), ((3, 2),), lambda x: x[None]),
    OpCase("expand", lambda x: x.expand(3, -1, 4), ((2, 1),), lambda x: np.broadcast_to(x, (3, 2, 4))),
    OpCase("flatten", lambda x: x.flatten(1), ((2, 3, 2),), lambda x: x.reshape(2, 6)),
    OpCase("getitem_basic", lambda x: x[1:, ::2], ((3, 4),), lambda x: x[1:, ::2]),
    OpCase("getitem_int_array", lambda x: x[np.array([0, 2, 0])], ((3, 4),), lambda x: x[np.array([0, 2, 0])]),
    OpCase("getitem_pairs", lambda x: x[np.arange(4), LABELS], ((4, 3),), lambda x: x[np.arange(4), LABELS]),
    OpCase("concatenate", lambda x, y: gf.concatenate([x, y], axis=1), ((2, 3), (2, 2)),
           lambda x, y: np.concatenate([x, y], axis=1)),
    OpCase("stack", lambda x, y: gf.stack([x, y], dim=1), ((2, 3), (2, 3)), lambda x, y: np.stack([x, y], 1)),
    # linear algebra
    OpCase("matmul", lambda x, y: x @ y, ((3, 4), (4, 2)), np.matmul),
    OpCase("matmul_batched", lambda x, y: x @ y, ((2, 3, 4), (4, 5)), np.matmul),
    OpCase("matmul_batch_broadcast", lambda x, y: x @ y, ((2, 1, 3, 4), (3, 4, 2)), np.matmul),
    OpCase("matmul_vec_mat", lambda x, y: x @ y, ((4,), (4, 3)), np.matmul),
    OpCase("matmul_mat_vec", lambda x, y: x @ y, ((3, 4), (4,)), np.matmul),
    OpCase("matmul_vec_vec", lambda x, y: x @ y, ((4,), (4,)), np.matmul),
    # nn functions
    OpCase("linear", lambda x, w, b: F.linear(x, w, b), ((5, 3), (4, 3), (4,)), lambda x, w, b: x @ w.T + b),
    OpCase("linear_no_bias_batched", lambda x, w: F.linear(x, w), ((2, 5, 3), (4, 3)), lambda x, w: x @ w.T),
    # fused linear + activation: one primitive each (gradflow/ops/fused.py)
    OpCase("linear_relu", lambda x, w, b: F.linear_act(x, w, b, "relu"), ((5, 3), (4, 3), (4,)),
           lambda x, w, b: np.maximum(x @ w.T + b, 0)),
    OpCase("linear_sigmoid", lambda x, w, b: F.linear_act(x, w, b, "sigmoid"), ((5, 3), (4, 3), (4,)),
           lambda x, w, b: scipy.special.expit(x @ w.T + b)),
    OpCase("linear_tanh_batched", lambda x, w, b: F.linear_act(x, w, b, "tanh"), ((2, 5, 3), (4, 3), (4,)),
           lambda x, w, b: np.tanh(x @ w.T + b)),
    OpCase("linear_softplus_vector", lambda x, w, b: F.linear_act(x, w, b, "softplus"), ((3,), (4, 3), (4,)),
           lambda x, w, b: np.logaddexp(0, x @ w.T + b)),
    OpCase("sum_of_squares", gf.sum_of_squares, ((3, 4),), lambda x: (x * x).sum()),
    OpCase("softmax", lambda x: F.softmax(x, axis=1), ((3, 4),), lambda x: _softmax(x, 1)),
    OpCase("log_softmax", lambda x: F.log_softmax(x, dim=0), ((3, 4),), lambda x: np.log(_softmax(x, 0))),
    OpCase("cross_entropy", lambda x: F.cross_entropy(x, gf.tensor(LABELS)), ((4, 3),),
           lambda x: -np.log(_softmax(x, 1))[np.arange(4), LABELS].mean()),
    OpCase("cross_entropy_sum", lambda x: F.cross_entropy(x, gf.tensor(LABELS), reduction="sum"), ((4, 3),),
           lambda x: -np.log(_softmax(x, 1))[np.arange(4), LABELS].sum()),
    OpCase("cross_entropy_none", lambda x: F.cross_entropy(x, gf.tensor(LABELS), reduction="none"), ((4, 3),),
           lambda x: -np.log(_softmax(x, 1))[np.arange(4), LABELS]),
    OpCase("mse_loss", lambda x, y: F.mse_loss(x, y), ((3, 4), (3, 4)), lambda x, y: ((x - y) ** 2).mean()),
    OpCase("l2_penalty", lambda w1, w2: F.l2_penalty([w1, w2], 0.1), ((3, 4), (2, 3)),
           lambda w1, w2: 0.05 * ((w1 ** 2).sum() + (w2 ** 2).sum())),
    # ----- CNN layers (gradflow/ops/conv.py, pool.py, norm.py, resample.py): references in cnn_reference.py
    OpCase("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), ((2, 3, 5, 4), (4, 3, 3, 3), (4,)),
           lambda x, w, b: cnn.conv2d(x, w, b, padding=1)),
    OpCase("conv2d_stride_dilation_groups",
           lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
           ((1, 4, 6, 5), (6, 2, 2, 3)),
           lambda x, w: cnn.conv2d(x, w, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    OpCase("conv2d_weight", lambda x, g: gf.ops.conv._conv2d_weight(x, g, kernel=(2, 2), stride=(1, 1),
                                                                  padding=(1, 1), dilation=(1, 1), groups=1),
           ((2, 2, 3, 3), (2, 3, 4, 4)),
           lambda x, g: np.einsum("nopq,ncpqij->ocij", g, np.lib.stride_tricks.sliding_window_view(
               np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (2, 2), axis=(2, 3)))),
    OpCase("conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), ((2, 3, 7), (4, 3, 3), (4,)),
           lambda x, w, b: cnn.conv2d(x[:, :, None], w[:, :, None], b, stride=(1, 2), padding=(0, 1))[:, :, 0]),
    OpCase("conv_transpose2d",
           lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
           ((1, 4, 3, 3), (4, 3, 3, 2), (6,)),
           lambda x, w, b: cnn.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2)),
    OpCase("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1), ((2, 2, 5, 5),), lambda x: cnn.pool2d(x, 3, 2, 1)),
    OpCase("max_pool2d_2x2", lambda x: F.max_pool2d(x, 2), ((1, 2, 4, 6),), lambda x: cnn.pool2d(x, 2)),
    OpCase("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), ((2, 2, 5, 4),),
           lambda x: cnn.pool2d(x, 3, 2, 1, reduce=np.mean, fill=0.0)),
    OpCase("avg_pool2d_real_cells", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), ((1, 2, 5, 4),),
           lambda x: cnn.pool2d(x, 3, 2, 1, reduce=np.nanmean, fill=np.nan)),
    OpCase("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), ((1, 2, 5, 7),),
           lambda x: cnn.adaptive_avg_pool2d(x, (3, 2))),
    OpCase("batch_norm", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           ((4, 3, 2, 2), (3,), (3,)), cnn.batch_norm),
    OpCase("batch_norm_1d_after_tanh", lambda x, w, b: F.batch_norm(gf.tanh(x), None, None, w, b, training=True),
           ((6, 3), (3,), (3,)), lambda x, w, b: cnn.batch_norm(np.tanh(x), w, b)),
    OpCase("batch_norm_eval", lambda x, w, b: F.batch_norm(
        x, gf.tensor([0.1, -0.2, 0.3], dtype=x.dtype, device=x.device),
        gf.tensor([0.5, 1.5, 2.0], dtype=x.dtype, device=x.device), w, b),
           ((2, 3, 2), (3,), (3,)),
           lambda x, w, b: (x - np.array([0.1, -0.2, 0.3])[:, None]) / np.sqrt(np.array([0.5, 1.5, 2.0])[:, None] + 1e-5)
           * w[:, None] + b[:, None]),
    OpCase("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), ((2, 4, 3, 2), (4,), (4,)),
           lambda x, w, b: cnn.group_norm(x, 2, w, b)),
    OpCase("interpolate_nearest", lambda x: F.interpolate(x, size=(5, 7)), ((1, 2, 3, 4),),
           lambda x: cnn.resize(x, (5, 7), (3 / 5, 4 / 7), "nearest")),
    OpCase("interpolate_bilinear", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), ((1, 2, 3, 4),),
           lambda x: cnn.resize(x, (6, 8), (0.5, 0.5), "bilinear")),
    # ----- end of the CNN layers
]


def sample_inputs(case: OpCase, rng: np.random.Generator, dtype=np.float64):
    """Random inputs inside the case's domain, away from its kinks and (for max/min) from ties."""
    arrays = []
    for shape in case.shapes:
        x = rng.uniform(case.low, case.high, size=shape)
        for kink in case.avoid:
            near = np.abs(x - kink) < 0.1
            x[near] = kink + np.where(x[near] >= kink, 0.1, -0.1) + np.sign(x[near] - kink + 1e-12) * 0.05
        arrays.append(x)
    if case.positive_pairs and len(arrays) == 2:
        a, b = np.broadcast_arrays(*arrays)
        close = np.abs(a - b) < 0.1
        if close.any():
            arrays[0] = arrays[0] + 0.3 * (np.abs(np.broadcast_to(arrays[0], a.shape) - b) < 0.1).any(
                axis=tuple(range(a.ndim - arrays[0].ndim))) if arrays[0].ndim < a.ndim else arrays[0] + 0.3 * close
    return [x.astype(dtype) for x in arrays]
