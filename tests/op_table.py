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
    elementwise: bool = False        # any broadcasting shapes work: test_op_fuzz.py draws random ones

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
