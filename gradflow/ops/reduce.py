"""Reductions: sum and max/min are primitives; mean, var and std are built from them.

Every reduction takes NumPy's ``axis=``/``keepdims=`` and PyTorch's ``dim=``/``keepdim=``.
"""
from __future__ import annotations

import math

import warnings

import numpy as np

from ..errors import ShapeError, check_axis
from ..tensor import Tensor, _axis_alias, _keepdims_alias
from .shape import _SMALL, broadcast_to, reshape
from .registry import apply, constant, data_of, primitive

_add_reduce = np.add.reduce


def _normalize_axis(axis, ndim, shape):
    """Sorted non-negative axes; AxisError when one is out of range. A 0-d tensor takes axis 0 or
    -1 as PyTorch does, which reduces over no axis at all (the empty tuple)."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    normalized = {check_axis(a, ndim, shape) for a in axes}
    return tuple(sorted(normalized)) if ndim else ()


def _kept_shape(shape, axis):
    """The shape a reduction over ``axis`` has with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else s for i, s in enumerate(shape))


def _count(shape, axis):
    count = 1
    for i, s in enumerate(shape):
        if axis is None or i in axis:
            count *= s
    return count


def _as_dtype(x, dtype):
    from .. import dtypes
    from .shape import cast

    dtype = dtypes.resolve(dtype)
    return x if x.dtype == dtype else cast(x, dtype)


@primitive("sum")
def _sum(backend, x, axis, keepdims):
    if type(x) is np.ndarray:  # ndarray.sum is this call behind a Python wrapper frame
        return _add_reduce(x, axis, None, None, keepdims)
    return x.sum(axis=axis, keepdims=keepdims)


@_sum.vjp
def _sum_vjp(ctx, g):
    shape = ctx.shapes[0]
    if g.ndim and not ctx.params["keepdims"]:
        g = reshape(g, _kept_shape(shape, ctx.params["axis"]))  # put the reduced axes back as 1s
    return broadcast_to(g, shape)


@_sum.fast_vjp
def _sum_arrays(ctx, g):
    # A full sum's rule on arrays (loss.sum(), chain.sum()): g filled into x's shape, as
    # broadcast_to fills a small shape, without the reshape, broadcast_to and primitive layers.
    shape = ctx.shapes[0]
    if ctx.params["axis"] is None and type(g) is np.ndarray and g.shape != shape and math.prod(shape) <= _SMALL:
        out = np.empty(shape, g.dtype)
        out[...] = g
        return (out,)
    return (_sum_vjp(ctx, g),)


@_sum.jvp
def _sum_jvp(ctx, t):
    return _sum(t, **ctx.params)


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
    """Sum over ``axis`` (all axes by default); ``dtype=`` converts first (NumPy and PyTorch)."""
    if dtype is not None:
        x = _as_dtype(x, dtype)
    if axis is None and dim is None and keepdim is None:
        return _sum(x, axis=None, keepdims=bool(keepdims))
    axis = _normalize_axis(_axis_alias(axis, dim), x.ndim, x.shape)
    return _sum(x, axis=axis, keepdims=bool(_keepdims_alias(keepdims, keepdim)))


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
    """Arithmetic mean over ``axis``; ``dtype=`` converts first."""
    if dtype is not None:
        x = _as_dtype(x, dtype)
    axis = _normalize_axis(_axis_alias(axis, dim), x.ndim, x.shape)
    scale = _inverse_count(_count(x.shape, axis), 0, "Mean of empty slice")
    return _sum(x, axis=axis, keepdims=bool(_keepdims_alias(keepdims, keepdim))) * scale


def _inverse_count(count, ddof, warning):
    """1 / (count - ddof), or inf with NumPy's RuntimeWarning when that is not positive, so that
    an empty mean is 0 * inf = NaN and a variance with ddof >= count is NaN or inf, as in NumPy."""
    if count - ddof > 0:
        return 1.0 / (count - ddof)
    warnings.warn(warning, RuntimeWarning, stacklevel=3)
    return math.inf


def var(x, axis=None, keepdims=False, *, ddof=0, dim=None, keepdim=None, correction=None, unbiased=None):
    """Variance with NumPy's default ``ddof=0``; PyTorch's ``correction=``/``unbiased=`` also work."""
    if correction is not None:
        ddof = correction
    elif unbiased is not None:
        ddof = int(unbiased)
    axis = _normalize_axis(_axis_alias(axis, dim), x.ndim, x.shape)
    keep = bool(_keepdims_alias(keepdims, keepdim))
    centered = x - mean(x, axis=axis, keepdims=True)
    count = _count(x.shape, axis)
    scale = _inverse_count(count, ddof, "Mean of empty slice" if count == 0 else "Degrees of freedom <= 0 for slice")
    return _sum(centered * centered, axis=axis, keepdims=keep) * scale


def std(x, axis=None, keepdims=False, *, ddof=0, dim=None, keepdim=None, correction=None, unbiased=None):
    """Standard deviation, the square root of ``var`` (same arguments)."""
    from .elementwise import sqrt

    return sqrt(var(x, axis, keepdims, ddof=ddof, dim=dim, keepdim=keepdim, correction=correction,
                    unbiased=unbiased))


@primitive("amax", save=("x", "out"))
def _amax(backend, x, axis, keepdims):
    return x.max(axis=axis, keepdims=keepdims)


@primitive("amin", save=("x", "out"))
def _amin(backend, x, axis, keepdims):
    return x.min(axis=axis, keepdims=keepdims)


def _extremum_vjp(ctx, g):
    # Ties share the gradient equally (so the rule is a valid subgradient of max).
    x, out = map(data_of, ctx.saved)
    shape = ctx.shapes[0]
    axis = ctx.params["axis"]
    kept = _kept_shape(shape, axis)
    hits = x == out.reshape(kept)
    share = hits / hits.sum(axis=axis, keepdims=True)
    return broadcast_to(reshape(g, kept), shape) * constant(share.astype(g.dtype, copy=False))


_amax.vjp(_extremum_vjp)
_amin.vjp(_extremum_vjp)


def _extremum_jvp(ctx, t):
    # The tangent of the winners, shared equally among ties (the VJP's subgradient, transposed).
    x, out = ctx.inputs[0], ctx.out
    axis = ctx.params["axis"]
    hits = x.data == out.data.reshape(_kept_shape(ctx.shapes[0], axis))
    share = hits / hits.sum(axis=axis, keepdims=True)
    return _sum(t * Tensor(share.astype(t.data.dtype, copy=False)), **ctx.params)


_amax.jvp(_extremum_jvp)
_amin.jvp(_extremum_jvp)


def _reduce_extremum(op, x, axis, keepdims, dim, keepdim):
    axis = _normalize_axis(_axis_alias(axis, dim), x.ndim, x.shape)
    if x.data.size == 0 and _count(x.shape, axis) == 0:  # as NumPy: only a reduction over no elements fails
        raise ShapeError(f"{op.name} of an empty tensor (shape {x.shape}) over axis {axis} has no value")
    return op(x, axis=axis, keepdims=bool(_keepdims_alias(keepdims, keepdim)))


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Largest value over ``axis`` (values only, as NumPy's ``max``; see ``argmax`` for indices)."""
    return _reduce_extremum(_amax, x, axis, keepdims, dim, keepdim)


def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Smallest value over ``axis`` (values only)."""
    return _reduce_extremum(_amin, x, axis, keepdims, dim, keepdim)


amax, amin = max, min


def _index_axis(x, axis):
    """An axis for NumPy's argmax/any/all: a 0-d tensor's axis 0 or -1 (PyTorch) is NumPy's None."""
    if axis is None or x.ndim:
        return axis
    check_axis(axis, 0, x.shape)
    return None


def argmax(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the largest value (int64, no gradient)."""
    axis = _index_axis(x, _axis_alias(axis, dim))
    return Tensor(x.data.argmax(axis=axis, keepdims=bool(_keepdims_alias(keepdims, keepdim))))


def argmin(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the smallest value (int64, no gradient)."""
    axis = _index_axis(x, _axis_alias(axis, dim))
    return Tensor(x.data.argmin(axis=axis, keepdims=bool(_keepdims_alias(keepdims, keepdim))))


def any(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    axis = _index_axis(x, _axis_alias(axis, dim))
    return Tensor(x.data.any(axis=axis, keepdims=bool(_keepdims_alias(keepdims, keepdim))))


def all(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    axis = _index_axis(x, _axis_alias(axis, dim))
    return Tensor(x.data.all(axis=axis, keepdims=bool(_keepdims_alias(keepdims, keepdim))))


@primitive("sum_of_squares", save=("x",))
def _sum_of_squares(backend, x):
    flat = x.reshape(-1)
    return backend.xp.dot(flat, flat)


@_sum_of_squares.vjp
def _sum_of_squares_vjp(ctx, g):
    (x,) = ctx.saved
    # g is a scalar: scale it first so the full-size pass happens once.
    return x * (g * 2)


@_sum_of_squares.jvp
def _sum_of_squares_jvp(ctx, t):
    return _sum(t * ctx.inputs[0], axis=None, keepdims=False) * 2


def sum_of_squares(x):
    """‖x‖² over all elements (one BLAS dot forward; one pass backward): the L2 penalty's core."""
    return _sum_of_squares(x)


# Note: [the L2 penalty is one primitive]
# λ/2 Σ‖Wᵢ‖² as sum_of_squares per weight, adds and a scalar mul recorded 2n + 1 nodes, and the
# mul by a Python float coerced it into a Tensor: bookkeeping that cost the textbook MLP's step
# more than the penalty's arithmetic. One variadic node saves the weights and returns λWᵢ each.
@primitive("l2_penalty", save=("xs",), same_dtype=True)
def _l2_penalty(backend, *xs, weight_decay=1.0):
    total = 0
    for x in xs:
        flat = x.reshape(-1)
        total = total + backend.xp.dot(flat, flat)
    return total * (weight_decay / 2)


@_l2_penalty.vjp
def _l2_penalty_vjp(ctx, g):
    # g is a scalar: scale it first so each weight takes one full-size pass.
    scale = g * ctx.params["weight_decay"]
    return tuple([x * scale if needed else None for x, needed in zip(ctx.saved, ctx.needs_input_grad)])


@_l2_penalty.jvp
def _l2_penalty_jvp(ctx, *tangents):
    total = None
    for t, x in zip(tangents, ctx.inputs):
        if t is not None:
            term = _sum(t * x, axis=None, keepdims=False)
            total = term if total is None else total + term
    return total * ctx.params["weight_decay"]


def l2_penalty(params, weight_decay=1.0):
    """The textbook's ``λ/2 Σ‖W‖²_F`` over ``params`` (``weight_decay`` is λ), one recorded op."""
    params = tuple(params)
    if not params:
        raise ValueError("l2_penalty needs at least one parameter")
    if isinstance(params[0], Tensor):  # what calling the op does, without packing its arguments again
        return apply(_l2_penalty, params, {"weight_decay": float(weight_decay)})
    return _l2_penalty(*params, weight_decay=float(weight_decay))
