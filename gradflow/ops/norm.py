"""Batch normalization as a primitive that keeps x̂ and 1/σ; group normalization as a composition.

# Note: [what batch norm keeps]
Training-mode batch norm over the axes (N, *spatial) of channel axis 1 computes
``x̂ = (x - μ)/σ`` with the batch's biased variance, ``σ = √(var + eps)``, and ``y = γ x̂ + β``.
Its first-order backward needs only x̂ and 1/σ (M = elements per channel):
    gβ = Σ g,   gγ = Σ g x̂,   gx = γ/σ · (g - gβ/M - x̂ gγ/M)
so the node keeps x̂ (one activation-sized array, which the ReLU after it does not duplicate:
ReLU keeps its own output) and 1/σ per channel, plus γ when x needs a gradient. x is not kept.

Double backward needs x̂ and σ as functions of x, which the kept arrays are not. The differentiable
rule therefore rebuilds x up to its per-channel mean — ``x̂·σ = x - μ`` — as a Tensor on x's own
graph edge (``ctx.next[0]``) and writes the same formula in gradflow ops on it; batch norm is
shift invariant per channel, so the missing μ changes neither value nor derivatives.

The forward works on x as (N, C, M) and sums the batch axis first (``_channel_sum``); in training
mode it also updates the running buffers it is handed (``running=(mean, var, momentum)``) from the
statistics it has just computed, instead of a second mean/variance pass over x.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import sqrt
from .reduce import mean, sum
from .registry import constant, data_of, primitive
from .shape import jvp_total, reshape
from .autocast import float32_under_autocast


def _axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _channel_shape(ndim, channels):
    return (1, channels) + (1,) * (ndim - 2)


def _per_channel(x):
    """``x`` (N, C, ...) as (N, C, M): a view when x is contiguous."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _channel_sum(x3):
    """Σ over axes 0 and 2 of (N, C, M) ``x3``, shape (C,). NumPy reduces a middle axis slowly
    (per-channel strided runs: 32 µs for the digits CNN's 64×16×64 floats); summing the batch
    axis first adds whole contiguous (C, M) slabs, then the rows: 6 µs. Like ``mean``, it adds
    float16 in float32."""
    total = x3.sum(axis=0, dtype=np.promote_types(x3.dtype, np.float32)).sum(axis=1)
    return total.astype(x3.dtype, copy=False)


def _channel_stats(x3):
    """(mean, centered x3, biased variance) per channel of (N, C, M) ``x3``; shared by the
    forward and the running-statistics update so both see the same numbers."""
    m = x3.shape[0] * x3.shape[2]
    mean = _channel_sum(x3) / m
    centered = x3 - mean[:, None]
    squares = centered * centered
    return mean, centered, _channel_sum(squares) / m


@primitive("batch_norm", save=("weight",), save_when=("x",), same_dtype=True, keeps=2)
def _batch_norm(backend, x, weight, bias, eps, running=None):
    mean, xhat, var = _channel_stats(_per_channel(x))
    if running is not None:  # (running_mean, running_var, momentum): update from these statistics
        _update_running(mean, var, xhat.shape[0] * xhat.shape[2], *running)
    var += x.dtype.type(eps)
    inv_std = backend.xp.sqrt(var, out=var)
    backend.xp.reciprocal(inv_std, out=inv_std)
    xhat *= inv_std[:, None]
    out = xhat * weight[:, None]
    out += bias[:, None]
    return out.reshape(x.shape), xhat.reshape(x.shape), inv_std


@_batch_norm.fast_vjp
def _batch_norm_arrays(ctx, g):
    weight, xhat, inv_std = ctx.saved
    g3, xhat3 = _per_channel(g), _per_channel(xhat)
    g_bias = _channel_sum(g3)
    g_weight = _channel_sum(g3 * xhat3)
    gx = None
    if ctx.needs_input_grad[0]:
        m = g3.shape[0] * g3.shape[2]
        gx = g3 - (g_bias / m)[:, None]
        gx -= xhat3 * (g_weight / m)[:, None]
        gx *= (weight * inv_std)[:, None]
        gx = gx.reshape(g.shape)
    return (gx, g_weight if ctx.needs_input_grad[1] else None, g_bias if ctx.needs_input_grad[2] else None)


def _normalized(x, eps):
    """(x̂, 1/σ) of ``x`` in gradflow ops, 1/σ shaped to broadcast over x."""
    axes = _axes(x.ndim)
    centered = x - mean(x, axis=axes, keepdims=True)
    inv_std = 1.0 / sqrt(mean(centered * centered, axis=axes, keepdims=True) + eps)
    return centered * inv_std, inv_std


def _input_of(ctx, xhat, inv_std):
    """x - μ as a Tensor on x's graph edge (see the note above), or None when x needs no gradient."""
    edge = ctx.next[0]
    if edge is None:
        return None
    if isinstance(edge, Tensor):
        return edge  # x is a leaf: the Tensor itself
    return Tensor(xhat / inv_std.reshape(_channel_shape(xhat.ndim, xhat.shape[1])), True, edge)


@_batch_norm.vjp
def _batch_norm_vjp(ctx, g):
    weight, xhat_array, inv_std_array = (data_of(v) for v in ctx.saved)
    shape = _channel_shape(g.ndim, g.shape[1])
    x = _input_of(ctx, xhat_array, inv_std_array) if ctx.needs_input_grad[0] else None
    if x is None:
        xhat = constant(xhat_array)
    else:
        xhat, inv_std = _normalized(x, ctx.params["eps"])
    axes = _axes(g.ndim)
    g_bias = sum(g, axis=axes)
    g_weight = sum(g * xhat, axis=axes)
    gx = None
    if x is not None:
        m = math.prod(g.shape) // g.shape[1]
        gamma = reshape(ctx.saved[0], shape)
        gx = (g - reshape(g_bias, shape) * (1.0 / m) - xhat * reshape(g_weight, shape) * (1.0 / m)) * (gamma * inv_std)
    return (gx, g_weight if ctx.needs_input_grad[1] else None, g_bias if ctx.needs_input_grad[2] else None)


@_batch_norm.jvp
def _batch_norm_jvp(ctx, tx, tw, tb):
    x, weight, _ = ctx.inputs
    shape = _channel_shape(x.ndim, x.shape[1])
    xhat, inv_std = _normalized(x, ctx.params["eps"])
    axes = _axes(x.ndim)
    t_xhat = None
    if tx is not None:
        t_xhat = (tx - mean(tx, axis=axes, keepdims=True)
                  - xhat * mean(tx * xhat, axis=axes, keepdims=True)) * inv_std * reshape(weight, shape)
    return jvp_total(ctx.out.shape, t_xhat, None if tw is None else xhat * reshape(tw, shape),
                     None if tb is None else reshape(tb, shape))


def _affine_defaults(x, weight, bias):
    from ..backends import of_array

    xp, c = of_array(x.data).xp, x.shape[1]
    weight = Tensor(xp.ones(c, dtype=x.dtype)) if weight is None else weight
    bias = Tensor(xp.zeros(c, dtype=x.dtype)) if bias is None else bias
    for name, t in (("weight", weight), ("bias", bias)):
        if tuple(t.shape) != (c,):
            raise ShapeError(f"batch_norm: {name} of shape {t.shape} does not match the {c} channels of input {x.shape}")
    return weight, bias


@float32_under_autocast
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over channel axis 1 of (N, C, ...) ``x`` (PyTorch's semantics).

    ``training=True`` normalizes with the batch's statistics and, when running buffers are given,
    updates them in place: ``running = (1 - momentum)·running + momentum·batch``, with the
    unbiased batch variance (``momentum=None``: the caller passes 1/batches seen). Otherwise it
    normalizes with ``running_mean`` / ``running_var``.

    >>> import gradflow as gf
    >>> y = gf.nn.functional.batch_norm(gf.randn(8, 3, 4, 4), None, None, training=True)
    >>> abs(float(y.numpy().mean())) < 1e-6, y.shape
    (True, (8, 3, 4, 4))
    """
    if x.ndim < 2:
        raise ShapeError(f"batch_norm expects an input (N, C, ...), got shape {x.shape}")
    weight, bias = _affine_defaults(x, weight, bias)
    c, shape = x.shape[1], _channel_shape(x.ndim, x.shape[1])
    if training:
        m = x.data.size // c
        if m < 2:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input {x.shape}")
        running = None
        if running_mean is not None or running_var is not None:
            running = (running_mean, running_var, momentum)   # updated by the forward, in place
        return _batch_norm(x, weight, bias, eps=float(eps), running=running)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: training=False needs running_mean and running_var")
    scale = weight * (1.0 / sqrt(running_var.detach() + eps))
    return (x - reshape(running_mean.detach(), shape)) * reshape(scale, shape) + reshape(bias, shape)


def _update_running(batch_mean, batch_var, m, running_mean, running_var, momentum):
    """``running = (1 - momentum)·running + momentum·batch``, the variance made unbiased."""
    for buffer, value in ((running_mean, batch_mean), (running_var, batch_var * (m / (m - 1)))):
        if buffer is not None:
            buffer.data *= 1 - momentum
            buffer.data += momentum * value.astype(buffer.dtype)


@float32_under_autocast
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize (N, C, ...) ``x`` over each group of C/num_groups channels and its spatial axes,
    then scale and shift per channel; a composition of gradflow ops (its gradients come for free).
    """
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ShapeError(f"group_norm: num_groups={num_groups} must divide the channels of input {x.shape}")
    n, c = x.shape[:2]
    grouped = reshape(x, (n, num_groups, -1))
    centered = grouped - mean(grouped, axis=2, keepdims=True)
    inv_std = 1.0 / sqrt(mean(centered * centered, axis=2, keepdims=True) + eps)
    out = reshape(centered * inv_std, x.shape)
    shape = _channel_shape(x.ndim, c)
    if weight is not None:
        out = out * reshape(weight, shape)
    if bias is not None:
        out = out + reshape(bias, shape)
    return out
