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
from gradflow.ops.efficient_attention import efficient_attention
from gradflow.ops.softmax import checked_cross_entropy_ignoring

import cnn_reference as cnn

LABELS = np.array([2, 0, 1, 2])
# Transformer-layer and loss rows: constants are made on the device of the row's first input.
IGNORED_LABELS = np.array([2, -100, 1, 0])          # one target equal to ignore_index
SPATIAL_LABELS = np.array([[0, 2], [1, -100]])      # (N, d1) targets for (N, C, d1) logits
TOKENS = np.array([[0, 2, 2], [1, 0, 3]])           # embedding indices, one row repeated
ADDITIVE_MASK = np.array([[0.5, -1.0, 0.0, 2.0, -0.3], [1.0, 0.2, -2.0, 0.0, 0.1], [0.0, 0.0, 0.3, -0.5, 1.5]])
UNPOOL_INDICES = np.array([[[[0, 3, 5], [13, 9, 22]], [[29, 2, 7], [12, 14, 17]]]])  # max_unpool2d: one per cell
BOOL_MASK = np.array([[True, False, True, True, False], [False, True, True, False, False],
                      [True, True, True, True, True]])


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
    elementwise: bool = False        # any broadcasting shapes work: test_op_fuzz.py draws random ones

    def __str__(self):
        return self.name


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _on(like, array):
    return gf.tensor(array, device=like.device)


def _efficient(fn):
    """``fn`` run with the memory-efficient attention kernel selected."""
    def run(*xs):
        with F.sdpa_kernel("efficient"):
            return fn(*xs)
    return run


def _layer_norm(x, shape, w=1.0, b=0.0, eps=1e-5):
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centered = x - x.mean(axis=axes, keepdims=True)
    return centered / np.sqrt((centered ** 2).mean(axis=axes, keepdims=True) + eps) * w + b


def _attention(q, k, v, mask=None, scale=None):
    scores = q @ np.swapaxes(k, -1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    return _softmax(scores, -1) @ v


def _nll(log_probs, labels, reduction="mean", smoothing=0.0):
    rows = np.moveaxis(log_probs, 1, -1).reshape(-1, log_probs.shape[1])
    flat = labels.reshape(-1)
    keep = flat != -100
    loss = np.where(keep, -rows[np.arange(len(flat)), np.where(keep, flat, 0)], 0.0)
    loss = (1 - smoothing) * loss + smoothing * np.where(keep, -rows.mean(axis=1), 0.0)
    if reduction == "none":
        return loss.reshape(labels.shape)
    return loss.sum() / keep.sum() if reduction == "mean" else loss.sum()


def _huber(d, delta):
    return np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


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
    # the output layer fused into its loss (gradflow/ops/output_layer.py)
    OpCase("linear_cross_entropy", lambda x, w, b: F.linear_cross_entropy(x, w, b, gf.tensor(LABELS)),
           ((4, 5), (3, 5), (3,)), lambda x, w, b: -np.log(_softmax(x @ w.T + b, 1))[np.arange(4), LABELS].mean()),
    OpCase("linear_cross_entropy_none",
           lambda x, w, b: F.linear_cross_entropy(x, w, b, gf.tensor(LABELS), reduction="none"),
           ((4, 5), (3, 5), (3,)), lambda x, w, b: -np.log(_softmax(x @ w.T + b, 1))[np.arange(4), LABELS]),
    OpCase("mse_loss", lambda x, y: F.mse_loss(x, y), ((3, 4), (3, 4)), lambda x, y: ((x - y) ** 2).mean()),
    # ----- transformer layers and PyTorch's losses (gradflow/ops/normalization.py, attention.py, losses.py)
    OpCase("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), ((3, 4), (4,), (4,)),
           lambda x, w, b: _layer_norm(x, (4,), w, b)),
    OpCase("layer_norm_2d_no_affine", lambda x: F.layer_norm(x, (2, 3), eps=0.1), ((2, 2, 3),),
           lambda x: _layer_norm(x, (2, 3), eps=0.1)),
    OpCase("embedding", lambda w: F.embedding(_on(w, TOKENS), w), ((4, 3),), lambda w: w[TOKENS]),
    OpCase("sdpa", F.scaled_dot_product_attention, ((2, 3, 4), (2, 5, 4), (2, 5, 2)), _attention),
    OpCase("sdpa_causal_heads", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
           ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4)),
           lambda q, k, v: _attention(q, k, v, np.tril(np.ones((3, 3), dtype=bool)))),
    OpCase("sdpa_bool_mask", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, _on(q, BOOL_MASK)),
           ((3, 4), (5, 4), (5, 2)), lambda q, k, v: _attention(q, k, v, BOOL_MASK)),
    OpCase("sdpa_additive_mask_scale", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m, scale=0.3),
           ((2, 3, 4), (2, 5, 4), (2, 5, 2), (3, 5)), lambda q, k, v, m: _attention(q, k, v, m, 0.3)),
    # memory-efficient attention (gradflow/ops/efficient_attention.py): blocks of 2-3 query rows
    OpCase("efficient_attention_blocks", lambda q, k, v: efficient_attention(q, k, v, 0.5, block=2),
           ((2, 5, 4), (2, 6, 4), (2, 6, 3)), lambda q, k, v: _attention(q, k, v, scale=0.5)),
    OpCase("efficient_attention_causal_broadcast",
           lambda q, k, v: efficient_attention(q, k, v, 0.4, causal=True, block=3),
           ((2, 1, 5, 4), (1, 2, 5, 4), (2, 2, 5, 3)),
           lambda q, k, v: _attention(q, k, v, np.tril(np.ones((5, 5), dtype=bool)), 0.4)),
    OpCase("sdpa_efficient_bool_mask",
           _efficient(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, _on(q, BOOL_MASK))),
           ((3, 4), (5, 4), (5, 2)), lambda q, k, v: _attention(q, k, v, BOOL_MASK)),
    OpCase("sdpa_efficient_additive_mask",
           _efficient(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, _on(q, ADDITIVE_MASK))),
           ((2, 3, 4), (2, 5, 4), (2, 5, 2)), lambda q, k, v: _attention(q, k, v, ADDITIVE_MASK)),
    # Without smoothing: the general composition on the CPU; on a device the fused op that counts
    # the kept labels itself (softmax.py's note [ignore_index on a device]).
    OpCase("cross_entropy_ignore", lambda x: F.cross_entropy(x, _on(x, IGNORED_LABELS)), ((4, 3),),
           lambda x: _nll(np.log(_softmax(x, 1)), IGNORED_LABELS)),
    OpCase("cross_entropy_ignore_sum", lambda x: F.cross_entropy(x, _on(x, IGNORED_LABELS), reduction="sum"),
           ((4, 3),), lambda x: _nll(np.log(_softmax(x, 1)), IGNORED_LABELS, "sum")),
    OpCase("cross_entropy_ignore_none", lambda x: F.cross_entropy(x, _on(x, IGNORED_LABELS), reduction="none"),
           ((4, 3),), lambda x: _nll(np.log(_softmax(x, 1)), IGNORED_LABELS, "none")),
    # The device op itself, run here on its NumPy twin: ignore_index 0 is a class, as in PyTorch.
    OpCase("cross_entropy_ignoring_op",
           lambda x: checked_cross_entropy_ignoring(x, _on(x, LABELS), "mean", 0), ((4, 3),),
           lambda x: _nll(np.log(_softmax(x, 1)), np.where(LABELS == 0, -100, LABELS))),
    OpCase("cross_entropy_ignore_smoothing",
           lambda x: F.cross_entropy(x, _on(x, IGNORED_LABELS), label_smoothing=0.2), ((4, 3),),
           lambda x: _nll(np.log(_softmax(x, 1)), IGNORED_LABELS, smoothing=0.2)),
    OpCase("cross_entropy_spatial_none", lambda x: F.cross_entropy(x, _on(x, SPATIAL_LABELS), reduction="none"),
           ((2, 3, 2),), lambda x: _nll(np.log(_softmax(x, 1)), SPATIAL_LABELS, "none")),
    OpCase("cross_entropy_probabilities", lambda x, t: F.cross_entropy(x, F.softmax(t, axis=1), label_smoothing=0.1),
           ((3, 4), (3, 4)), lambda x, t: -(np.log(_softmax(x, 1)) * (0.9 * _softmax(t, 1) + 0.025)).sum(1).mean()),
    OpCase("nll_loss_sum", lambda x: F.nll_loss(x, _on(x, IGNORED_LABELS), reduction="sum"), ((4, 3),),
           lambda x: _nll(x, IGNORED_LABELS, "sum")),
    OpCase("binary_cross_entropy", F.binary_cross_entropy, ((3, 4), (3, 4)),
           lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(), low=0.1, high=0.9),
    OpCase("bce_with_logits_pos_weight",
           lambda x, t, w: F.binary_cross_entropy_with_logits(x, t, reduction="sum", pos_weight=w),
           ((3, 4), (3, 4), (4,)),
           lambda x, t, w: ((1 - t) * x + (1 + (w - 1) * t) * np.logaddexp(0, -x)).sum()),
    OpCase("l1_loss", lambda x, t: F.l1_loss(x, 0.02 * t), ((3, 4), (3, 4)),
           lambda x, t: np.abs(x - 0.02 * t).mean(), avoid=(0.0,)),
    OpCase("smooth_l1_loss", lambda x, t: F.smooth_l1_loss(x, 0.02 * t, reduction="none", beta=0.5),
           ((3, 4), (3, 4)), lambda x, t: _huber(x - 0.02 * t, 0.5) / 0.5, avoid=(-0.5, 0.5)),
    OpCase("huber_loss", lambda x, t: F.huber_loss(x, 0.02 * t, reduction="sum", delta=1.5), ((3, 4), (3, 4)),
           lambda x, t: _huber(x - 0.02 * t, 1.5).sum(), avoid=(-1.5, 1.5)),
    # ----- end of the transformer-layer and loss rows
    OpCase("l2_penalty", lambda w1, w2: F.l2_penalty([w1, w2], 0.1), ((3, 4), (2, 3)),
           lambda w1, w2: 0.05 * ((w1 ** 2).sum() + (w2 ** 2).sum())),
    # ---- opsA block (issue 13): elementwise math, rounding and remainders --------------------------
    OpCase("sin", gf.sin, ((3, 4),), np.sin),
    OpCase("cos", lambda x: x.cos(), ((3, 4),), np.cos),
    OpCase("tan", gf.tan, ((3, 4),), np.tan, low=-1.2, high=1.2),
    OpCase("arcsin", gf.arcsin, ((3, 4),), np.arcsin, low=-0.9, high=0.9),
    OpCase("arccos", gf.acos, ((3, 4),), np.arccos, low=-0.9, high=0.9),
    OpCase("arctan", gf.arctan, ((3, 4),), np.arctan),
    OpCase("arctan2", gf.arctan2, ((3, 4), (4,)), np.arctan2, low=0.3, high=2.0),
    OpCase("atan2_signs", lambda y, x: gf.atan2(y - 1.0, x - 1.0), ((2, 3), (2, 1)),
           lambda y, x: np.arctan2(y - 1.0, x - 1.0), low=0.0, high=0.8),
    OpCase("sinh", gf.sinh, ((3, 4),), np.sinh),
    OpCase("cosh", gf.cosh, ((3, 4),), np.cosh),
    OpCase("arcsinh", gf.asinh, ((3, 4),), np.arcsinh),
    OpCase("arccosh", gf.arccosh, ((3, 4),), np.arccosh, low=1.2, high=3.0),
    OpCase("arctanh", gf.arctanh, ((3, 4),), np.arctanh, low=-0.9, high=0.9),
    OpCase("hypot", gf.hypot, ((3, 1), (1, 4)), np.hypot, avoid=(0.0,)),
    OpCase("exp2", gf.exp2, ((3, 4),), np.exp2),
    OpCase("expm1", gf.expm1, ((3, 4),), np.expm1),
    OpCase("log2", gf.log2, ((3, 4),), np.log2, low=0.2, high=3.0),
    OpCase("log10", gf.log10, ((3, 4),), np.log10, low=0.2, high=3.0),
    OpCase("log1p", gf.log1p, ((3, 4),), np.log1p, low=-0.8, high=2.0),
    OpCase("rsqrt", gf.rsqrt, ((3, 4),), lambda x: 1 / np.sqrt(x), low=0.3, high=3.0),
    OpCase("reciprocal", gf.reciprocal, ((3, 4),), np.reciprocal, low=0.5, high=2.0),
    OpCase("square", gf.square, ((3, 4),), np.square),
    OpCase("logaddexp", gf.logaddexp, ((2, 3), (3,)), np.logaddexp),
    OpCase("lerp", gf.lerp, ((3, 4), (4,), (3, 1)), lambda a, b, w: a + w * (b - a)),
    OpCase("lerp_scalar_weight", lambda a, b: gf.lerp(a, b, 0.25), ((3, 4), (3, 4)), lambda a, b: a + 0.25 * (b - a)),
    OpCase("floor", gf.floor, ((3, 4),), np.floor, avoid=(-2.0, -1.0, 0.0, 1.0, 2.0), smooth=False),
    OpCase("ceil", lambda x: x.ceil(), ((3, 4),), np.ceil, avoid=(-2.0, -1.0, 0.0, 1.0, 2.0), smooth=False),
    OpCase("trunc", gf.trunc, ((3, 4),), np.trunc, avoid=(-2.0, -1.0, 0.0, 1.0, 2.0), smooth=False),
    OpCase("round", gf.round, ((3, 4),), np.round, avoid=(-1.5, -0.5, 0.5, 1.5), smooth=False),
    OpCase("copysign", gf.copysign, ((3, 4), (4,)), np.copysign, avoid=(0.0,)),
    # x - 1.25 in (-0.75, 0.75) and y in (0.5, 2): both signs of the dividend, x / y off integers.
    OpCase("fmod", lambda x, y: gf.fmod(x - 1.25, y), ((3, 4), (4,)), lambda x, y: np.fmod(x - 1.25, y),
           low=0.5, high=2.0),
    OpCase("remainder", lambda x, y: (x - 1.25) % y, ((3, 4), (3, 1)), lambda x, y: np.remainder(x - 1.25, y),
           low=0.5, high=2.0),
    OpCase("floor_divide", lambda x, y: (x * 3 - 4) // y, ((3, 4), (4,)), lambda x, y: np.floor_divide(x * 3 - 4, y),
           low=0.5, high=2.0, smooth=False),  # zero gradient: nothing to differentiate twice
    # NaN below -1, -inf in (-1, 0), x above 0 (made without a floating-point warning on the way)
    OpCase("nan_to_num", lambda x: gf.nan_to_num(gf.where(x.detach() > 0, x, gf.where(
        x.detach() > -1, x * 0 - np.inf, x * 0 + np.nan)), nan=-1.0, neginf=-5.0), ((3, 4),),
           lambda x: np.nan_to_num(np.where(x > 0, x, np.where(x > -1, -np.inf, np.nan)), nan=-1.0, neginf=-5.0),
           avoid=(-1.0, 0.0)),
    # ---- opsA block: activations built from primitives (gradflow/nn/functional_activations.py) ------
    OpCase("elu", F.elu, ((3, 4),), lambda x: np.where(x > 0, x, np.expm1(x)), avoid=(0.0,)),
    OpCase("elu_alpha", lambda x: F.elu(x, 0.5), ((3, 4),), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)),
           avoid=(0.0,)),
    OpCase("selu", F.selu, ((3, 4),),
           lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)), avoid=(0.0,)),
    OpCase("celu", lambda x: F.celu(x, 0.7), ((3, 4),), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x / 0.7)),
           avoid=(0.0,)),
    OpCase("mish", F.mish, ((3, 4),), lambda x: x * np.tanh(np.logaddexp(0, x))),
    OpCase("hardswish", F.hardswish, ((3, 4),), lambda x: x * np.clip(x + 3, 0, 6) / 6, low=-4.0, high=4.0,
           avoid=(-3.0, 3.0)),
    OpCase("hardsigmoid", F.hardsigmoid, ((3, 4),), lambda x: np.clip(x + 3, 0, 6) / 6, low=-4.0, high=4.0,
           avoid=(-3.0, 3.0)),
    OpCase("logsigmoid", F.logsigmoid, ((3, 4),), lambda x: -np.logaddexp(0, -x), low=-4.0, high=4.0),
    OpCase("softsign", F.softsign, ((3, 4),), lambda x: x / (1 + np.abs(x)), avoid=(0.0,)),
    OpCase("relu6", F.relu6, ((3, 4),), lambda x: np.clip(x, 0, 6), low=-2.0, high=8.0, avoid=(0.0, 6.0)),
    OpCase("hardtanh", lambda x: F.hardtanh(x, -1.0, 1.5), ((3, 4),), lambda x: np.clip(x, -1, 1.5),
           avoid=(-1.0, 1.5)),
    OpCase("softmin", lambda x: F.softmin(x, dim=0), ((3, 4),), lambda x: _softmax(-x, 0)),
    # beta x crosses the threshold at x = 1.5, where softplus switches to the identity (as PyTorch's)
    OpCase("softplus_beta_threshold", lambda x: F.softplus(x, beta=2.0, threshold=3.0), ((3, 4),),
           lambda x: np.where(2 * x > 3, x, np.logaddexp(0, 2 * x) / 2), avoid=(1.5,)),
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
    # pooling options (issue 14 follow-up): ceil mode, dilation, 1-D pools, unpooling
    OpCase("max_pool2d_ceil_dilation", lambda x: F.max_pool2d(x, 2, 2, 1, dilation=(2, 1), ceil_mode=True),
           ((1, 2, 6, 5),), lambda x: cnn.pool2d(x, 2, 2, 1, dilation=(2, 1), ceil_mode=True)),
    OpCase("max_pool2d_ceil_unpadded", lambda x: F.max_pool2d(x, (2, 3), 2, ceil_mode=True), ((1, 2, 5, 6),),
           lambda x: cnn.pool2d(x, (2, 3), 2, ceil_mode=True)),
    OpCase("avg_pool2d_ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), ((1, 2, 6, 5),),
           lambda x: cnn.pool2d(x, 3, 2, 1, reduce=np.mean, fill=0.0, ceil_mode=True)),
    OpCase("avg_pool2d_ceil_real_cells", lambda x: F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False),
           ((1, 2, 5, 3),), lambda x: cnn.pool2d(x, 2, 2, reduce=np.mean, ceil_mode=True)),
    OpCase("max_pool1d", lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True), ((2, 3, 6),),
           lambda x: cnn.pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1), ceil_mode=True)[:, :, 0]),
    OpCase("avg_pool1d", lambda x: F.avg_pool1d(x, 2, 1, 1, count_include_pad=False), ((2, 3, 5),),
           lambda x: cnn.pool2d(x[:, :, None], (1, 2), (1, 1), (0, 1), reduce=np.mean, fill=np.nan)[:, :, 0]),
    OpCase("max_unpool2d", lambda x: F.max_unpool2d(x, _on(x, UNPOOL_INDICES), 2, output_size=(5, 6)),
           ((1, 2, 2, 3),), lambda x: cnn.max_unpool2d(x, UNPOOL_INDICES, (5, 6))),
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
    OpCase("interpolate_bilinear_align_corners",
           lambda x: F.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True), ((1, 2, 3, 4),),
           lambda x: cnn.resize(x, (5, 3), (None, None), "bilinear", align_corners=True)),
    OpCase("interpolate_linear_1d", lambda x: F.interpolate(x, scale_factor=1.5, mode="linear"), ((2, 3, 4),),
           lambda x: cnn.resize(x[:, :, None], (1, 6), (1.0, 1 / 1.5), "bilinear")[:, :, 0]),
    OpCase("interpolate_linear_1d_align_corners",
           lambda x: F.interpolate(x, size=7, mode="linear", align_corners=True), ((2, 3, 4),),
           lambda x: cnn.resize(x[:, :, None], (1, 7), (None, None), "bilinear", align_corners=True)[:, :, 0]),
    OpCase("interpolate_nearest_exact", lambda x: F.interpolate(x, size=(5, 3), mode="nearest-exact"),
           ((1, 2, 3, 4),), lambda x: cnn.resize(x, (5, 3), (3 / 5, 4 / 3), "nearest-exact")),
    # ----- end of the CNN layers
]

# Elementwise rows (opsA block and the earlier ones): test_op_fuzz.py runs them on random broadcast
# shapes, 0-d and empty included.
_ELEMENTWISE = set("""add add_size1 sub mul mul_broadcast mul_scalar div rdiv_scalar pow pow_scalar neg exp log sqrt
    abs erf tanh sigmoid relu leaky_relu gelu gelu_tanh softplus silu maximum minimum clip where
    sin cos tan arcsin arccos arctan arctan2 atan2_signs sinh cosh arcsinh arccosh arctanh hypot exp2 expm1 log2
    log10 log1p rsqrt reciprocal square logaddexp lerp lerp_scalar_weight floor ceil trunc round copysign fmod
    remainder floor_divide nan_to_num elu elu_alpha selu celu mish hardswish hardsigmoid logsigmoid softsign relu6
    hardtanh softplus_beta_threshold""".split())
for _case in OP_CASES:
    _case.elementwise = _case.elementwise or _case.name in _ELEMENTWISE


# ----- issue 13 part B: reductions and scans, movement, indexing ------------------------------------
# Index arguments are NumPy arrays: the ops move them to the data's device, so these rows also run
# unchanged on CUDA (tests/kernels/test_gpu_op_table.py).
IDX = np.array([[0, 3], [1, 1], [2, 0]])              # gather/scatter along axis 1 of a (3, 4)
IDX_UNIQUE = np.array([[3, 1], [0, 2], [2, 3]])       # per row, distinct targets
IDX_ROWS = np.array([[2, 0, 1, 2], [0, 0, 2, 1]])     # along axis 0 of a (3, 4), repeats
MASK = np.array([[True, False, False, True], [False, False, True, False], [True, True, False, False]])
MASK_ROW = np.array([True, False, True, True])


def _np_scatter(x, index, src, axis, ufunc=None, include_self=True, mean=False):
    """Reference scatter/scatter_reduce by NumPy's ufunc.at (``ufunc`` None: overwrite, last wins)."""
    out = x.copy()
    full = tuple(index if d == axis else np.arange(n).reshape([-1 if k == d else 1 for k in range(index.ndim)])
                 for d, n in enumerate(index.shape))
    src = src[tuple(slice(0, n) for n in index.shape)]
    if ufunc is None:
        out[full] = src
        return out
    hit = np.zeros(x.shape)
    np.add.at(hit, full, 1.0)
    if not include_self:
        out[hit > 0] = ufunc.identity if ufunc.identity is not None else (-np.inf if ufunc is np.maximum else np.inf)
    ufunc.at(out, full, src)
    if mean:
        out = np.divide(out, hit + include_self, out=out, where=hit > 0)
    return out


def _np_cumulative(fn, x, axis):
    return fn.accumulate(x, axis=axis)


OPS_B_CASES = [
    # reductions and scans
    OpCase("prod_axis", lambda x: gf.prod(x, axis=1), ((3, 4),), lambda x: np.prod(x, 1)),
    OpCase("prod_all", lambda x: x.prod(), ((2, 3),), np.prod),
    OpCase("prod_dim_keepdim", lambda x: x.prod(dim=0, keepdim=True), ((3, 2, 2),),
           lambda x: x.prod(axis=0, keepdims=True)),
    OpCase("prod_axes", lambda x: gf.prod(x, axis=(0, 2)), ((2, 3, 2),), lambda x: x.prod(axis=(0, 2))),
    OpCase("logsumexp", lambda x: gf.logsumexp(x, dim=1), ((3, 4),), lambda x: scipy.special.logsumexp(x, 1)),
    OpCase("logsumexp_keepdims", lambda x: x.logsumexp(axis=(0, 1), keepdims=True), ((2, 3),),
           lambda x: scipy.special.logsumexp(x, (0, 1), keepdims=True)),
    OpCase("cumsum", lambda x: gf.cumsum(x, dim=1), ((3, 4),), lambda x: np.cumsum(x, 1)),
    OpCase("cumsum_flat", gf.cumsum, ((2, 3),), np.cumsum),
    OpCase("cumprod", lambda x: x.cumprod(0), ((4, 3),), lambda x: np.cumprod(x, 0), low=0.3, high=1.5),
    OpCase("cumprod_signed", lambda x: gf.cumprod(x, dim=-1), ((2, 4),), lambda x: np.cumprod(x, -1)),
    OpCase("cummax", lambda x: gf.cummax(x, dim=1).values, ((3, 5),), lambda x: _np_cumulative(np.maximum, x, 1)),
    OpCase("cummin", lambda x: x.cummin(0).values, ((5, 2),), lambda x: _np_cumulative(np.minimum, x, 0)),
    OpCase("logcumsumexp", lambda x: gf.logcumsumexp(x, dim=1), ((3, 4),),
           lambda x: _np_cumulative(np.logaddexp, x, 1)),
    OpCase("sort", lambda x: gf.sort(x, dim=1).values, ((3, 4),), lambda x: np.sort(x, 1)),
    OpCase("sort_descending", lambda x: x.sort(0, descending=True).values, ((4, 3),), lambda x: -np.sort(-x, 0)),
    OpCase("topk", lambda x: gf.topk(x, 2, dim=1).values, ((3, 5),), lambda x: -np.sort(-x, 1)[:, :2]),
    OpCase("topk_smallest", lambda x: x.topk(3, 0, largest=False).values, ((4, 2),), lambda x: np.sort(x, 0)[:3]),
    OpCase("median_dim", lambda x: gf.median(x, dim=1).values, ((3, 4),), lambda x: np.sort(x, 1)[:, 1]),
    OpCase("median_keepdim", lambda x: x.median(0, keepdim=True).values, ((5, 2),),
           lambda x: np.sort(x, 0)[2:3]),
    OpCase("median_all", gf.median, ((2, 3),), lambda x: np.sort(x.ravel())[2]),
    OpCase("norm", gf.linalg.norm, ((3, 4),), np.linalg.norm),
    OpCase("norm_vector_axis", lambda x: gf.linalg.norm(x, axis=1, keepdims=True), ((3, 4),),
           lambda x: np.linalg.norm(x, axis=1, keepdims=True)),
    OpCase("norm_p3", lambda x: gf.linalg.norm(x, 3, dim=0), ((3, 4),), lambda x: np.linalg.norm(x, 3, axis=0),
           avoid=(0.0,)),
    OpCase("norm_p1", lambda x: gf.linalg.norm(x, 1), ((5,),), lambda x: np.linalg.norm(x, 1), avoid=(0.0,)),
    OpCase("norm_inf", lambda x: gf.linalg.norm(x, np.inf, axis=1), ((3, 4),),
           lambda x: np.linalg.norm(x, np.inf, axis=1), avoid=(0.0,)),
    OpCase("norm_neg_inf", lambda x: gf.linalg.norm(x, -np.inf, axis=-1), ((3, 4),),
           lambda x: np.linalg.norm(x, -np.inf, axis=-1), avoid=(0.0,)),
    OpCase("norm_fro", lambda x: gf.linalg.norm(x, "fro", axis=(1, 2)), ((2, 3, 4),),
           lambda x: np.linalg.norm(x, "fro", axis=(1, 2))),
    OpCase("norm_matrix_1", lambda x: gf.linalg.norm(x, 1), ((3, 4),), lambda x: np.linalg.norm(x, 1),
           avoid=(0.0,)),
    OpCase("norm_matrix_inf", lambda x: gf.linalg.norm(x, np.inf), ((3, 4),), lambda x: np.linalg.norm(x, np.inf),
           avoid=(0.0,)),
    OpCase("norm_matrix_neg1", lambda x: gf.linalg.norm(x, -1, axis=(0, 1)), ((3, 4),),
           lambda x: np.linalg.norm(x, -1), avoid=(0.0,)),
    OpCase("norm_matrix_neg_inf", lambda x: gf.linalg.norm(x, -np.inf), ((3, 4),),
           lambda x: np.linalg.norm(x, -np.inf), avoid=(0.0,)),
    # Singular values (ops/norms.py's note [singular vectors]): random draws have distinct, nonzero ones.
    OpCase("svdvals", gf.linalg.svdvals, ((2, 3, 4),), lambda x: np.linalg.svd(x, compute_uv=False)),
    OpCase("norm_matrix_2", lambda x: gf.linalg.norm(x, 2), ((4, 3),), lambda x: np.linalg.norm(x, 2)),
    OpCase("norm_matrix_neg2", lambda x: gf.linalg.norm(x, -2, axis=(-1, -2)), ((3, 3),),
           lambda x: np.linalg.norm(x, -2, axis=(-1, -2))),
    OpCase("norm_nuc", lambda x: gf.linalg.norm(x, "nuc", axis=(1, 2)), ((2, 3, 4),),
           lambda x: np.linalg.norm(x, "nuc", axis=(1, 2))),
    # movement
    OpCase("pad_constant", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), ((2, 3),),
           lambda x: np.pad(x, ((0, 1), (1, 2)), constant_values=0.5)),
    OpCase("pad_constant_crop", lambda x: gf.pad(x, (-1, 1)), ((2, 3),), lambda x: np.pad(x[:, 1:], ((0, 0), (0, 1)))),
    OpCase("pad_reflect", lambda x: F.pad(x, (2, 1), mode="reflect"), ((2, 4),),
           lambda x: np.pad(x, ((0, 0), (2, 1)), "reflect")),
    OpCase("pad_replicate", lambda x: F.pad(x, (1, 2, 2, 1), mode="replicate"), ((2, 3, 4),),
           lambda x: np.pad(x, ((0, 0), (2, 1), (1, 2)), "edge")),
    OpCase("pad_circular", lambda x: F.pad(x, (1, 3), mode="circular"), ((2, 3),),
           lambda x: np.pad(x, ((0, 0), (1, 3)), "wrap")),
    OpCase("flip", lambda x: gf.flip(x, dims=(0,)), ((3, 4),), lambda x: np.flip(x, 0)),
    OpCase("flip_all", gf.flip, ((2, 3, 2),), np.flip),
    OpCase("roll", lambda x: gf.roll(x, (1, -2), (0, 1)), ((3, 4),), lambda x: np.roll(x, (1, -2), (0, 1))),
    OpCase("roll_flat", lambda x: x.roll(2), ((2, 3),), lambda x: np.roll(x, 2)),
    OpCase("tile", lambda x: gf.tile(x, (2, 1, 2)), ((3, 2),), lambda x: np.tile(x, (2, 1, 2))),
    OpCase("repeat_tensor", lambda x: x.repeat(2, 3), ((3, 2),), lambda x: np.tile(x, (2, 3))),
    OpCase("repeat_interleave", lambda x: gf.repeat_interleave(x, 2, dim=1), ((2, 3),), lambda x: np.repeat(x, 2, 1)),
    OpCase("repeat_counts", lambda x: gf.repeat(x, np.array([1, 0, 2]), axis=0), ((3, 2),),
           lambda x: np.repeat(x, [1, 0, 2], 0)),
    OpCase("split", lambda x: gf.split(x, [1, 3], dim=1)[1], ((2, 4),), lambda x: x[:, 1:]),
    OpCase("array_split", lambda x: gf.cat([c * (i + 1.0) for i, c in enumerate(gf.array_split(x, 3, axis=1))], 1),
           ((2, 5),), lambda x: x * np.array([1.0, 1.0, 2.0, 2.0, 3.0])),
    OpCase("tensor_split_cuts", lambda x: gf.cat([c * (i + 1.0) for i, c in enumerate(x.tensor_split([1, -1]))]),
           ((4, 2),), lambda x: x * np.array([[1.0], [2.0], [2.0], [3.0]])),
    OpCase("chunk", lambda x: gf.cat([c * (i + 1.0) for i, c in enumerate(x.chunk(3))]), ((5, 2),),
           lambda x: x * np.array([[1.0], [1.0], [2.0], [2.0], [3.0]])),
    OpCase("unbind", lambda x: gf.stack(x.unbind(1)[::-1]), ((2, 3),), lambda x: x.T[::-1]),
    OpCase("tril", lambda x: gf.tril(x, -1), ((2, 3, 4),), lambda x: np.tril(x, -1)),
    OpCase("triu", lambda x: x.triu(diagonal=1), ((3, 4),), lambda x: np.triu(x, 1)),
    OpCase("diag_vector", lambda x: gf.diag(x, 1), ((3,),), lambda x: np.diag(x, 1)),
    OpCase("diag_matrix", lambda x: gf.diag(x, -1), ((3, 4),), lambda x: np.diag(x, -1)),
    OpCase("diagonal", lambda x: gf.diagonal(x, 1, 0, 2), ((3, 2, 4),), lambda x: np.diagonal(x, 1, 0, 2)),
    OpCase("trace", gf.trace, ((3, 4),), np.trace),
    OpCase("einsum_matmul", lambda x, y: gf.einsum("ij,jk->ik", x, y), ((2, 3), (3, 4)),
           lambda x, y: np.einsum("ij,jk->ik", x, y)),
    OpCase("einsum_batched_implicit", lambda x, y: gf.einsum("bij,bjk", x, y), ((2, 2, 3), (2, 3, 2)),
           lambda x, y: np.einsum("bij,bjk", x, y)),
    OpCase("einsum_ellipsis_broadcast", lambda x, y: gf.einsum("...ij,...jk->...ik", x, y), ((2, 1, 2, 3), (3, 3, 2)),
           lambda x, y: np.einsum("...ij,...jk->...ik", x, y)),
    OpCase("einsum_diagonal", lambda x: gf.einsum("ii->i", x), ((3, 3),), lambda x: np.einsum("ii->i", x)),
    OpCase("einsum_trace", lambda x: gf.einsum("ii", x), ((3, 3),), lambda x: np.einsum("ii", x)),
    OpCase("einsum_outer_lonely", lambda x, y: gf.einsum("i,jk->ij", x, y), ((3,), (2, 4)),
           lambda x, y: np.einsum("i,jk->ij", x, y)),
    OpCase("einsum_three", lambda x, y, z: gf.einsum("ij,jk,kl->li", x, y, z), ((2, 3), (3, 4), (4, 2)),
           lambda x, y, z: np.einsum("ij,jk,kl->li", x, y, z)),
    OpCase("meshgrid_xy", lambda x, y: gf.stack(gf.meshgrid(x, y)), ((3,), (2,)), lambda x, y: np.stack(np.meshgrid(x, y))),
    OpCase("meshgrid_ij", lambda x, y: gf.meshgrid(x, y, indexing="ij")[0] * gf.meshgrid(x, y, indexing="ij")[1],
           ((3,), (2,)), lambda x, y: np.prod(np.meshgrid(x, y, indexing="ij"), axis=0)),
    OpCase("unfold", lambda x: x.unfold(1, 2, 1), ((2, 5),),
           lambda x: np.lib.stride_tricks.sliding_window_view(x, 2, axis=1)),
    OpCase("unfold_step", lambda x: gf.unfold(x, 0, 3, 2), ((7, 2),),
           lambda x: np.lib.stride_tricks.sliding_window_view(x, 3, axis=0)[::2]),
    OpCase("unfold_wide_window", lambda x: gf.unfold(x, 1, 17, 2), ((2, 20),),
           lambda x: np.lib.stride_tricks.sliding_window_view(x, 17, axis=1)[:, ::2]),
    OpCase("movedim", lambda x: gf.movedim(x, (0, 1), (2, 0)), ((2, 3, 4),), lambda x: np.moveaxis(x, (0, 1), (2, 0))),
    # indexing
    OpCase("gather", lambda x: gf.gather(x, 1, IDX), ((3, 4),), lambda x: np.take_along_axis(x, IDX, 1)),
    OpCase("gather_smaller_index", lambda x: x.gather(0, IDX_ROWS[:, :3]), ((3, 4),),
           lambda x: np.take_along_axis(x[:, :3], IDX_ROWS[:, :3], 0)),
    OpCase("take_along_axis_broadcast", lambda x: gf.take_along_axis(x, IDX[:1], axis=1), ((3, 4),),
           lambda x: np.take_along_axis(x, IDX[:1], 1)),
    OpCase("scatter_add", lambda x, s: gf.scatter_add(x, 0, IDX_ROWS, s), ((3, 4), (2, 5)),
           lambda x, s: _np_scatter(x, IDX_ROWS, s, 0, np.add)),
    OpCase("scatter_add_narrow_index", lambda x, s: x.scatter_add(0, IDX_ROWS[:, :3], s), ((3, 4), (2, 3)),
           lambda x, s: _np_scatter(x, IDX_ROWS[:, :3], s, 0, np.add)),
    OpCase("scatter", lambda x, s: gf.scatter(x, 1, IDX_UNIQUE, s), ((3, 4), (3, 2)),
           lambda x, s: _np_scatter(x, IDX_UNIQUE, s, 1)),
    OpCase("scatter_repeats", lambda x, s: x.scatter(0, IDX_ROWS, s), ((3, 4), (2, 4)),
           lambda x, s: _np_scatter(x, IDX_ROWS, s, 0)),
    OpCase("scatter_value", lambda x: gf.scatter(x, 1, IDX, 0.25), ((3, 4),),
           lambda x: _np_scatter(x, IDX, np.full(IDX.shape, 0.25), 1)),
    OpCase("scatter_reduce_sum", lambda x, s: gf.scatter_reduce(x, 0, IDX_ROWS, s, "sum", include_self=False),
           ((3, 4), (2, 4)), lambda x, s: _np_scatter(x, IDX_ROWS, s, 0, np.add, include_self=False)),
    OpCase("scatter_reduce_mean", lambda x, s: x.scatter_reduce(0, IDX_ROWS, s, "mean"), ((3, 4), (2, 4)),
           lambda x, s: _np_scatter(x, IDX_ROWS, s, 0, np.add, mean=True)),
    OpCase("scatter_reduce_mean_no_self",
           lambda x, s: gf.scatter_reduce(x, 0, IDX_ROWS, s, "mean", include_self=False), ((3, 4), (2, 4)),
           lambda x, s: _np_scatter(x, IDX_ROWS, s, 0, np.add, include_self=False, mean=True)),
    OpCase("scatter_reduce_prod", lambda x, s: gf.scatter_reduce(x, 0, IDX_ROWS, s, "prod"), ((3, 4), (2, 4)),
           lambda x, s: _np_scatter(x, IDX_ROWS, s, 0, np.multiply), low=0.5, high=1.5),
    OpCase("scatter_reduce_prod_no_self",
           lambda x, s: gf.scatter_reduce(x, 1, IDX, s, "prod", include_self=False), ((3, 4), (3, 2)),
           lambda x, s: _np_scatter(x, IDX, s, 1, np.multiply, include_self=False), low=0.5, high=1.5),
    OpCase("scatter_reduce_amax", lambda x, s: gf.scatter_reduce(x, 0, IDX_ROWS, s, "amax"), ((3, 4), (2, 4)),
           lambda x, s: _np_scatter(x, IDX_ROWS, s, 0, np.maximum)),
    OpCase("scatter_reduce_amin_no_self",
           lambda x, s: gf.scatter_reduce(x, 0, IDX_ROWS, s, "amin", include_self=False), ((3, 4), (2, 4)),
           lambda x, s: _np_scatter(x, IDX_ROWS, s, 0, np.minimum, include_self=False)),
    OpCase("index_select", lambda x: gf.index_select(x, 1, np.array([2, 0, 2])), ((3, 4),),
           lambda x: np.take(x, [2, 0, 2], 1)),
    OpCase("masked_fill", lambda x: x.masked_fill(MASK, 0.5), ((3, 4),), lambda x: np.where(MASK, 0.5, x)),
    OpCase("masked_fill_tensor_value", lambda x, v: gf.masked_fill(x, MASK_ROW, v), ((3, 4), ()),
           lambda x, v: np.where(MASK_ROW, v, x)),
    OpCase("masked_select", lambda x: gf.masked_select(x, MASK_ROW), ((3, 4),),
           lambda x: x[np.broadcast_to(MASK_ROW, x.shape)]),
]
OP_CASES += OPS_B_CASES


def _np_cumulative_index(fn, x, axis):
    """Index of the latest entry equal to the running extremum (PyTorch's cummax/cummin indices)."""
    x = np.moveaxis(x, axis, -1)
    running = fn.accumulate(x, axis=-1)
    positions = np.where(x == running, np.arange(x.shape[-1]), 0)
    return np.moveaxis(np.maximum.accumulate(positions, axis=-1), -1, axis)


@dataclass
class IndexCase:
    """An op with an integer (or bool) output: forward only, against NumPy, on one float64 input."""
    name: str
    fn: Callable
    shape: tuple
    reference: Callable

    def __str__(self):
        return self.name


TIES = np.array([[3.0, 1.0, 3.0, 2.0], [0.0, 0.0, -1.0, 0.0], [2.0, 5.0, 5.0, 1.0]])
INDEX_CASES = [
    IndexCase("argsort", lambda x: gf.argsort(x, dim=1), (3, 4), lambda x: np.argsort(x, 1, kind="stable")),
    IndexCase("argsort_descending", lambda x: x.argsort(0, descending=True), (4, 3),
              lambda x: np.argsort(-x, 0, kind="stable")),
    IndexCase("argsort_ties_stable", lambda x: gf.argsort(gf.tensor(TIES, device=x.device)), (3, 4),
              lambda x: np.argsort(TIES, -1, kind="stable")),
    IndexCase("sort_indices", lambda x: gf.sort(x, 1).indices, (3, 4), lambda x: np.argsort(x, 1, kind="stable")),
    IndexCase("topk_indices", lambda x: gf.topk(x, 2).indices, (3, 5), lambda x: np.argsort(-x, -1, kind="stable")[:, :2]),
    IndexCase("median_indices", lambda x: gf.median(x, dim=0).indices, (5, 3),
              lambda x: np.argsort(x, 0, kind="stable")[2]),
    IndexCase("cummax_indices", lambda x: gf.cummax(x, dim=1).indices, (3, 6),
              lambda x: _np_cumulative_index(np.maximum, x, 1)),
    IndexCase("cummax_indices_ties", lambda x: gf.cummax(gf.tensor(TIES, device=x.device), dim=1).indices, (3, 4),
              lambda x: _np_cumulative_index(np.maximum, TIES, 1)),
    IndexCase("cummin_indices_ties", lambda x: gf.cummin(gf.tensor(TIES, device=x.device), 0).indices, (3, 4),
              lambda x: _np_cumulative_index(np.minimum, TIES, 0)),
    IndexCase("nonzero", lambda x: gf.nonzero(x > 0), (3, 4), lambda x: np.argwhere(x > 0)),
    IndexCase("nonzero_as_tuple", lambda x: gf.stack(gf.nonzero(x > 0, as_tuple=True)), (3, 4),
              lambda x: np.stack(np.nonzero(x > 0))),
    IndexCase("argwhere", lambda x: gf.argwhere(x > 0.5), (2, 3, 2), lambda x: np.argwhere(x > 0.5)),
    IndexCase("one_hot", lambda x: gf.one_hot(gf.argmax(x, 1), 5), (3, 4), lambda x: np.eye(5, dtype=np.int64)[x.argmax(1)]),
    IndexCase("one_hot_inferred", lambda x: F.one_hot(gf.argmax(x, 0)), (3, 4),
              lambda x: np.eye(x.argmax(0).max() + 1, dtype=np.int64)[x.argmax(0)]),
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
