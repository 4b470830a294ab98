"""The NumPy kernel table: the reference twin of every fused CUDA kernel in ``kernels/``.

Each function here has a CUDA counterpart with the same name and contract; host tests compile
the CUDA headers for the CPU and compare them with these on random and edge-case inputs.
Contracts:

- ``act_forward(name, x, alpha)`` -> ``φ(x)``; ``act_backward(name, g, saved, alpha)`` ->
  ``g ⊙ φ'``, where ``saved`` is the op's output or input as ``ACTIVATION_SAVES[name]`` says
  (outputs where φ' can be written from them, so the input can be freed).
- ``bias_act_forward(name, x, b, alpha, out=None)`` -> ``φ(x + b)`` for x (N, F), b (F,), written
  into ``out`` when given, which may be ``x`` itself (the fused linear ops write h over x Wᵀ).
- ``bias_act_backward(name, g, saved, alpha, out=None)`` -> ``(gz, gb)`` with ``gb = gz.sum(0)``;
  gz is written into ``out`` when given, which may be ``g`` itself.
- ``softmax_xent_forward``/``softmax_xent_backward``, ``column_sum`` and the multi-tensor optimizer
  updates: in ``numpy_twins.py`` (the GPU step's kernels), imported into this table at the end.
- ``sgd_update`` / ``adam_update``: PyTorch's published update rules, in place.
- ``gemm(a, b, out, trans_a, trans_b, alpha, beta)``: ``out = alpha op(a) op(b) + beta out``
  (2-D operands; NumPy's BLAS, no second thread pool).
"""
from __future__ import annotations

import math

import numpy as np

from .numpy_special import erf, expit

ACTIVATION_SAVES = {
    "relu": "out", "leaky_relu": "x", "sigmoid": "out", "tanh": "out",
    "gelu": "x", "gelu_tanh": "x", "softplus": "out", "silu": "x",
}
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = math.sqrt(2.0 / math.pi)
_GELU_TANH_K = 0.044715


def _gelu_tanh_inner(x):
    return _GELU_TANH_C * (x + _GELU_TANH_K * x * x * x)


def act_forward(name, x, alpha=0.01):
    if name == "relu":
        return np.maximum(x, 0).astype(x.dtype, copy=False)
    if name == "leaky_relu":
        return np.where(x > 0, x, x * x.dtype.type(alpha))
    if name == "sigmoid":
        return expit(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "gelu":
        return (x * (1 + erf(x * _SQRT_HALF)) * 0.5).astype(x.dtype, copy=False)
    if name == "gelu_tanh":
        return (0.5 * x * (1 + np.tanh(_gelu_tanh_inner(x)))).astype(x.dtype, copy=False)
    if name == "softplus":
        return np.logaddexp(x.dtype.type(0), x)
    if name == "silu":
        return x * expit(x)
    raise KeyError(f"unknown activation {name!r}; known: {sorted(ACTIVATION_SAVES)}")


def act_derivative(name, saved, alpha=0.01):
    """φ' evaluated from what the op saved (output or input, see ACTIVATION_SAVES)."""
    one = saved.dtype.type(1)
    if name == "relu":
        return (saved > 0).astype(saved.dtype)
    if name == "leaky_relu":
        return np.where(saved > 0, one, saved.dtype.type(alpha))
    if name == "sigmoid":
        return saved * (one - saved)
    if name == "tanh":
        return one - saved * saved
    if name == "gelu":
        cdf = 0.5 * (1 + erf(saved * _SQRT_HALF))
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * saved * saved)
        return (cdf + saved * pdf).astype(saved.dtype, copy=False)
    if name == "gelu_tanh":
        t = np.tanh(_gelu_tanh_inner(saved))
        dinner = _GELU_TANH_C * (1 + 3 * _GELU_TANH_K * saved * saved)
        return (0.5 * (1 + t) + 0.5 * saved * (1 - t * t) * dinner).astype(saved.dtype, copy=False)
    if name == "softplus":
        return -np.expm1(-saved)
    if name == "silu":
        s = expit(saved)
        return s * (one + saved * (one - s))
    raise KeyError(f"unknown activation {name!r}; known: {sorted(ACTIVATION_SAVES)}")


def act_backward(name, g, saved, alpha=0.01):
    if name == "relu":
        return _select_by_mask(g, saved > 0)
    if name == "tanh":  # act_derivative's arithmetic, one call frame less on a hot rule
        return g * (saved.dtype.type(1) - saved * saved)
    return g * act_derivative(name, saved, alpha)


_SAME_WIDTH_INT = {2: np.int16, 4: np.int32, 8: np.int64}


def _select_by_mask(g, mask, out=None):
    """``mask ? g : 0`` elementwise (Chainer's ReLU backward, ``gz = out > 0 ? g : 0``), written
    into ``out`` when given (which may be ``g``).

    Done on the bits: g AND (all ones where mask, else zero). Exact, NaN and inf included, and
    about ten times faster than np.where, which mispredicts a branch per element on random signs.
    The all-ones mask is negated in place and the AND written over it (or ``out``): one
    integer temporary besides the boolean mask.
    """
    int_type = _SAME_WIDTH_INT[g.dtype.itemsize]
    bits = np.array(mask, dtype=int_type)  # an array even for a 0-d mask (astype gives a scalar)
    np.negative(bits, out=bits)
    if out is None:
        return np.bitwise_and(g.view(int_type), bits, out=bits).view(g.dtype)
    np.bitwise_and(g.view(int_type), bits, out=out.view(int_type))
    return out


# φ applied in place on the x + b temporary: without them the twin would hold x, x + b and φ(x + b)
# at once where the CUDA kernel holds only x and φ(x + b).
_IN_PLACE = {
    "relu": lambda z: np.maximum(z, 0, out=z),
    "sigmoid": lambda z: expit(z, out=z),
    "tanh": lambda z: np.tanh(z, out=z),
    "softplus": lambda z: np.logaddexp(z.dtype.type(0), z, out=z),
}


def bias_act_forward(name, x, b, alpha=0.01, out=None):
    z = np.add(x, b, out=out)
    if name in _IN_PLACE and z.dtype == x.dtype:
        return _IN_PLACE[name](z)
    if out is None:
        return act_forward(name, z, alpha)
    np.copyto(out, act_forward(name, z, alpha))
    return out


def bias_act_backward(name, g, saved, alpha=0.01, out=None):
    if name == "relu":  # straight into ``out``: no gz temporary to copy over
        gz = _select_by_mask(g, saved > 0, out)
    elif out is not None:
        gz = np.multiply(g, act_derivative(name, saved, alpha), out=out)
    else:
        gz = act_backward(name, g, saved, alpha)
    return gz, np.add.reduce(gz, axis=0)  # gz.sum(axis=0) less its Python wrapper frame


# NumPy reduces short rows slowly (a (1024, 10) row max takes ~70 µs); reducing the transposed
# copy along axis 0 runs vectorised across rows instead (~6 µs). Logits rows are usually short.
_SHORT_ROW = 64


# (The ufuncs' reduce is what ndarray.max and .sum call, less their Python wrapper frame: the loss
# takes three of these a step.)
def _row_max(a):
    if a.shape[1] <= _SHORT_ROW:
        return np.maximum.reduce(np.ascontiguousarray(a.T), axis=0)[:, None]
    return np.maximum.reduce(a, axis=1, keepdims=True)


def _row_sum(a):
    if a.shape[1] <= _SHORT_ROW:
        return np.add.reduce(np.ascontiguousarray(a.T), axis=0)[:, None]
    return np.add.reduce(a, axis=1, keepdims=True)


def sgd_update(param, grad, momentum_buffer, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
               nesterov=False, first_step=False):
    """One SGD step in place (PyTorch's rule). ``momentum_buffer`` is updated in place when given."""
    d = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if first_step:
            momentum_buffer[...] = d
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * d
        d = d + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * d


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, decoupled=False):
    """One Adam (decoupled=False) or AdamW (decoupled=True) step in place; ``step`` counts from 1."""
    if weight_decay and decoupled:
        param *= 1 - lr * weight_decay
    elif weight_decay:
        grad = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    denom = np.sqrt(exp_avg_sq) / math.sqrt(bias_correction2) + eps
    param -= (lr / bias_correction1) * exp_avg / denom


# Note: [gemm through NumPy's BLAS]
# BLAS's gemm can add into ``out`` itself (beta = 1), but NumPy exposes only matmul. Calling
# SciPy's sgemm instead would drive SciPy's own OpenBLAS pool beside NumPy's (see the note
# [one BLAS pool] in numpy_special.py), so the product goes through matmul: straight into
# ``out`` when beta = 0, else in row blocks of at most 1/8 of ``out`` into a scratch block that
# is added in. A weight gradient thus accumulates into .grad without a gradient-sized temporary.
_BLOCKS = 8


def gemm(a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """out = alpha op(a) op(b) + beta out, in place (NumPy's BLAS; see the note above)."""
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    if beta == 0:
        np.matmul(op_a, op_b, out=out)
        if alpha != 1:
            out *= alpha
        return out
    if beta != 1:
        out *= beta
    rows = out.shape[0]
    step = max(1, -(-rows // _BLOCKS))
    scratch = np.empty((min(step, rows),) + out.shape[1:], np.result_type(op_a, op_b))
    for start in range(0, rows, step):
        block = scratch[:min(step, rows - start)]
        np.matmul(op_a[start:start + step], op_b, out=block)
        if alpha != 1:
            block *= alpha
        out[start:start + step] += block
    return out


# The GPU step's twins live beside their launch-budget contract; they use the helpers above, so
# they are imported last.
from .numpy_twins import (adam_update_multi, column_sum, sgd_update_multi, softmax_xent_backward,  # noqa: E402,F401
                          softmax_xent_forward, softmax_xent_forward_ignoring)
