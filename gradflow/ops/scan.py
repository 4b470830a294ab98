"""Scans and the product reduction: cumsum, cumprod, prod and logcumsumexp (primitives) and what is
built on them (logsumexp, cummax, cummin).

The product rules are exact where inputs are zero (as PyTorch's): prod's VJP multiplies the
exclusive products from the left and from the right, never dividing; cumprod divides only when
no input of a slice is zero and otherwise forms the products leaving one factor out directly.
logcumsumexp runs a logaddexp scan forward and a scan with decays of at most 1 in its rules, so
no range of inputs overflows or underflows to a wrong -inf.
"""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from ..backends import of_array
from ..tensor import Tensor, _axis_alias, _keepdims_alias
from .indexing import _take_along, one_axis
from .reduce import _normalize_axis, _sum
from .registry import constant, data_of, primitive
from .shape import _getitem, broadcast_to, cast, concatenate, reshape, transpose

values_indices = namedtuple("values_indices", ["values", "indices"])


def _reverse(x, axis):
    """``x`` reversed along ``axis`` (a strided view; its VJP reverses back)."""
    index = (builtins.slice(None),) * axis + (builtins.slice(None, None, -1),)
    return _getitem(x, index=index, basic=True)


def _scan_operand(x, axis, dim, dtype, what):
    """The array a scan runs over and its axis: NumPy's ``axis=None`` scans the flattened tensor."""
    axis = _axis_alias(axis, dim)
    if dtype is not None:
        x = cast(x, dtype)
    if axis is None:
        return reshape(x, (-1,)), 0
    if x.ndim == 0:
        one_axis(axis, 0, x.shape, what)
        return reshape(x, (1,)), 0
    return x, one_axis(axis, x.ndim, x.shape, what)


def _finish(out, x):
    return reshape(out, ()) if x.ndim == 0 and out.shape == (1,) else out


# ----- cumsum ---------------------------------------------------------------------------------------
@primitive("cumsum")
def _cumsum(backend, x, axis):
    return backend.xp.cumsum(x, axis=axis)


@_cumsum.vjp
def _cumsum_vjp(ctx, g):
    axis = ctx.params["axis"]
    return _reverse(_cumsum(_reverse(g, axis), axis=axis), axis)


@_cumsum.jvp
def _cumsum_jvp(ctx, t):
    return _cumsum(t, **ctx.params)


def cumsum(x, axis=None, dtype=None, *, dim=None):
    """Running sum along ``axis`` (NumPy: ``axis=None`` scans the flattened tensor; PyTorch's ``dim=``).

    >>> gradflow.cumsum(gradflow.tensor([1., 2., 3.]), 0).tolist()
    [1.0, 3.0, 6.0]
    """
    operand, axis = _scan_operand(x, axis, dim, dtype, "cumsum")
    return _finish(_cumsum(operand, axis=axis), x)


# ----- cumprod --------------------------------------------------------------------------------------
@primitive("cumprod", save=("x", "out"))
def _cumprod(backend, x, axis):
    return backend.xp.cumprod(x, axis=axis)


def _to_last(x, axis):
    axes = [d for d in range(x.ndim) if d != axis] + [axis]
    return transpose(x, *axes) if axis != x.ndim - 1 else x


def _from_last(x, axis):
    axes = list(range(x.ndim - 1))
    axes.insert(axis, x.ndim - 1)
    return transpose(x, *axes) if axis != x.ndim - 1 else x


@_cumprod.vjp
def _cumprod_vjp(ctx, g):
    x, out = ctx.saved
    axis = ctx.params["axis"]
    if not (data_of(x) == 0).any():
        # d out_i / d x_k = out_i / x_k for i >= k: a reversed cumsum, divided once.
        return _reverse(_cumsum(_reverse(g * out, axis), axis=axis), axis) / x
    # A zero somewhere: form C[k, i] = prod_{j <= i, j != k} x_j for every k (x_k set to one), so
    # grad_k = sum_{i >= k} g_i C[k, i] needs no division. O(n^2) memory in the scanned length.
    xp = of_array(data_of(g)).xp
    xs = _to_last(x, axis)
    n = xs.shape[-1]
    square = xs.shape[:-1] + (n, n)
    eye = constant(xp.eye(n, dtype=bool))
    from .elementwise import where

    left_out = _cumprod(where(eye, constant(xp.ones((), dtype=g.dtype)), broadcast_to(
        reshape(xs, xs.shape[:-1] + (1, n)), square)), axis=len(square) - 1)
    upper = constant(xp.triu(xp.ones((n, n), dtype=g.dtype)))
    gs = reshape(_to_last(g, axis), xs.shape[:-1] + (1, n))
    grad = _sum(left_out * upper * gs, axis=(len(square) - 1,), keepdims=False)
    return _from_last(grad, axis)


@_cumprod.jvp
def _cumprod_jvp(ctx, t):
    # The VJP's operator is a linear map of g; its transpose (the JVP) is the same sums taken
    # the other way: out_i * sum_{k <= i} t_k / x_k without zeros; else the explicit products.
    x, out = ctx.inputs[0], ctx.out
    axis = ctx.params["axis"]
    if not (x.data == 0).any():
        return _cumsum(t / x, axis=axis) * out
    xp = of_array(x.data).xp
    from .elementwise import where

    xs = _to_last(x, axis)
    n = xs.shape[-1]
    square = xs.shape[:-1] + (n, n)
    left_out = _cumprod(where(Tensor(xp.eye(n, dtype=bool)), Tensor(xp.ones((), dtype=x.dtype)),
                              broadcast_to(reshape(xs, xs.shape[:-1] + (1, n)), square)), axis=len(square) - 1)
    upper = Tensor(xp.triu(xp.ones((n, n), dtype=x.dtype)))
    ts = reshape(_to_last(t, axis), xs.shape + (1,))
    return _from_last(_sum(left_out * upper * ts, axis=(len(square) - 2,), keepdims=False), axis)


def cumprod(x, axis=None, dtype=None, *, dim=None):
    """Running product along ``axis``; its gradient is exact where inputs are zero.

    >>> gradflow.cumprod(gradflow.tensor([1., 2., 3.]), 0).tolist()
    [1.0, 2.0, 6.0]
    """
    operand, axis = _scan_operand(x, axis, dim, dtype, "cumprod")
    return _finish(_cumprod(operand, axis=axis), x)


# ----- prod ----------------------------------------------------------------------------------------
@primitive("prod_last", save=("x",))
def _prod_last(backend, x):
    return x.prod(axis=-1)


def _others(x):
    """prod_{j != k} x_j along the last axis, for every k: left and right exclusive products."""
    xp = of_array(data_of(x)).xp
    n = x.shape[-1]
    if n == 0:  # the empty product is 1 and depends on nothing
        return constant(xp.zeros(x.shape, dtype=x.dtype))
    one = constant(xp.ones(x.shape[:-1] + (1,), dtype=x.dtype))
    last = x.ndim - 1
    head = _getitem(x, index=(builtins.Ellipsis, builtins.slice(0, n - 1)), basic=True)
    tail = _getitem(x, index=(builtins.Ellipsis, builtins.slice(1, n)), basic=True)
    left = _cumprod(concatenate([one, head], axis=last), axis=last)
    right = _reverse(_cumprod(_reverse(concatenate([tail, one], axis=last), last), axis=last), last)
    return left * right


@_prod_last.vjp
def _prod_last_vjp(ctx, g):
    (x,) = ctx.saved
    return reshape(g, tuple(g.shape) + (1,)) * _others(x)


@_prod_last.jvp
def _prod_last_jvp(ctx, t):
    return _sum(t * _others(ctx.inputs[0]), axis=(ctx.inputs[0].ndim - 1,), keepdims=False)


def prod(x, axis=None, keepdims=False, dtype=None, *, dim=None, keepdim=None):
    """Product over ``axis`` (all axes by default); the gradient is exact where inputs are zero
    (one zero: only it gets a gradient, the product of the others; two or more: all zero).

    >>> gradflow.prod(gradflow.tensor([[1., 2.], [3., 4.]]), dim=1).tolist()
    [2.0, 12.0]
    """
    if dtype is not None:
        x = cast(x, dtype)
    keep = bool(_keepdims_alias(keepdims, keepdim))
    axes = _normalize_axis(_axis_alias(axis, dim), x.ndim, x.shape)
    if axes is None:
        axes = tuple(range(x.ndim))
    kept = [d for d in range(x.ndim) if d not in axes]
    moved = transpose(x, *(kept + list(axes))) if x.ndim else x
    count = 1
    for d in axes:
        count *= x.shape[d]
    out = _prod_last(reshape(moved, tuple(x.shape[d] for d in kept) + (count,)))
    if keep:
        out = reshape(out, tuple(1 if d in axes else s for d, s in enumerate(x.shape)))
    return out


# ----- built from the primitives -----------------------------------------------------------------
def _shift(x, axis):
    """The largest finite value along ``axis`` (kept dims), as a constant: subtracting it keeps exp
    from overflowing and, being constant, changes no derivative."""
    data = x.data
    xp = of_array(data).xp
    if data.size == 0:
        return Tensor(xp.zeros(tuple(1 for _ in data.shape) if axis is None else
                               tuple(1 if d in axis else s for d, s in enumerate(data.shape)), dtype=data.dtype))
    m = data.max(axis=axis, keepdims=True)
    return Tensor(xp.where(xp.isfinite(m), m, 0).astype(data.dtype, copy=False))


def logsumexp(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """log(sum(exp(x))) over ``axis``, computed without overflow; its gradient is softmax(x).

    >>> round(gradflow.logsumexp(gradflow.tensor([0., 0.]), 0).item(), 6)
    0.693147
    """
    from .elementwise import exp, log

    axes = _normalize_axis(_axis_alias(axis, dim), x.ndim, x.shape)
    keep = bool(_keepdims_alias(keepdims, keepdim))
    m = _shift(x, axes)
    out = log(_sum(exp(x - m), axis=axes, keepdims=True)) + m
    if not keep:
        out = reshape(out, tuple(s for d, s in enumerate(x.shape) if axes is not None and d not in axes))
    return out


@primitive("logcumsumexp", save=("x", "out"))
def _logcumsumexp(backend, x, axis):
    return _running(backend.xp, backend.xp.logaddexp, x, axis)


def _shifted(v, axis, step, later):
    """``v`` moved ``step`` places along ``axis`` (toward the start if ``later``: entry k then holds
    v[k + step]), zeros filling in; built from a slice and a constant so it differentiates."""
    xp = of_array(data_of(v)).xp
    n = v.shape[axis]
    fill = constant(xp.zeros(v.shape[:axis] + (builtins.min(step, n),) + v.shape[axis + 1:], dtype=v.dtype))
    if step >= n:
        return fill
    head = (builtins.slice(None),) * axis
    if later:
        return concatenate([_getitem(v, index=head + (builtins.slice(step, None),), basic=True), fill], axis=axis)
    return concatenate([fill, _getitem(v, index=head + (builtins.slice(0, n - step),), basic=True)], axis=axis)


def _decaying_scan(decay, b, axis, backward):
    """S_k = b_k + decay_k S_(k+1) (``backward``; S_(k-1) forward), by doubling in gradflow ops.
    The decays here lie in [0, 1], so no step can overflow."""
    n, step = b.shape[axis], 1
    while step < n:
        b = b + decay * _shifted(b, axis, step, backward)
        decay = decay * _shifted(decay, axis, step, backward)
        step *= 2
    return b


def _logcumsumexp_decay(out, axis, backward):
    """exp(out_k - out_(k+1)) (backward) or exp(out_(k-1) - out_k) (forward): at most 1, as out
    never decreases; 0 past the end."""
    from .elementwise import exp

    neighbour = _shifted(out, axis, 1, backward)
    xp = of_array(data_of(out)).xp
    edge = xp.zeros(out.shape, dtype=bool)
    edge[(builtins.slice(None),) * axis + ((-1 if backward else 0),)] = True
    difference = out - neighbour if backward else neighbour - out
    from .elementwise import where

    # Zero the edge before exp too: exp of (out - the zero fill) could overflow, and inf * 0 in a
    # second derivative is NaN.
    zero = constant(xp.zeros((), dtype=out.dtype))
    return where(constant(edge), zero, exp(where(constant(edge), zero, difference)))


@_logcumsumexp.vjp
def _logcumsumexp_vjp(ctx, g):
    # grad_k = sum_(i >= k) g_i exp(x_k - out_i) = exp(x_k - out_k) S_k with S_k = g_k +
    # exp(out_k - out_(k+1)) S_(k+1): every factor is at most 1, so nothing overflows.
    from .elementwise import exp

    x, out = ctx.saved
    axis = ctx.params["axis"]
    return exp(x - out) * _decaying_scan(_logcumsumexp_decay(out, axis, True), g, axis, True)


@_logcumsumexp.jvp
def _logcumsumexp_jvp(ctx, t):
    from .elementwise import exp

    x, out = ctx.inputs[0], ctx.out
    axis = ctx.params["axis"]
    return _decaying_scan(_logcumsumexp_decay(out, axis, False), exp(x - out) * t, axis, False)


def logcumsumexp(x, axis=None, *, dim=None):
    """log(cumsum(exp(x))) along ``axis``, stable for any range of values (a running logaddexp).

    >>> [round(v, 4) for v in gradflow.logcumsumexp(gradflow.tensor([0., 0.]), 0).tolist()]
    [0.0, 0.6931]
    """
    operand, axis = _scan_operand(x, axis, dim, None, "logcumsumexp")
    return _finish(_logcumsumexp(operand, axis=axis), x)


def _running(xp, fn, data, axis):
    """``fn.accumulate`` along ``axis`` by doubling, for an associative ``fn`` (log2(n) whole-array
    steps; CuPy's ufuncs lack accumulate for maximum, minimum and logaddexp)."""
    out = data.copy()
    n, shift = data.shape[axis], 1
    while shift < n:
        head = (builtins.slice(None),) * axis
        later = out[head + (builtins.slice(shift, None),)]
        earlier = out[head + (builtins.slice(None, n - shift),)]
        out[head + (builtins.slice(shift, None),)] = fn(later, earlier)
        shift *= 2
    return out


def _cumulative_extremum(x, axis, dim, fn, what):
    operand, axis = _scan_operand(x, axis, dim, None, what)
    data = operand.data
    xp = of_array(data).xp
    running = _running(xp, fn, data, axis)
    # The index of the latest entry equal to the running extremum (PyTorch's choice at ties): the
    # running maximum of the positions where an entry matches it.
    positions = xp.arange(data.shape[axis]).reshape((-1,) + (1,) * (data.ndim - axis - 1))
    hits = xp.where((data == running) | (xp.isnan(data) if data.dtype.kind == "f" else False), positions, 0)
    indices = _running(xp, xp.maximum, hits.astype(np.int64), axis)
    values = _take_along(operand, index=indices, axis=axis)
    return values_indices(_finish(values, x), Tensor(indices.reshape(x.shape) if x.ndim == 0 else indices))


def cummax(x, axis=None, *, dim=None):
    """PyTorch's cummax: (values, indices) of the running maximum along ``dim``; the gradient goes
    to the entry each value came from (the latest one at ties, as PyTorch).

    >>> gradflow.cummax(gradflow.tensor([1., 3., 2.]), 0).values.tolist()
    [1.0, 3.0, 3.0]
    """
    return _cumulative_extremum(x, axis, dim, of_array(x.data).xp.maximum, "cummax")


def cummin(x, axis=None, *, dim=None):
    """PyTorch's cummin: (values, indices) of the running minimum along ``dim``."""
    return _cumulative_extremum(x, axis, dim, of_array(x.data).xp.minimum, "cummin")
