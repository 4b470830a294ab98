"""Indexing along an axis: gather/scatter and the ops built on them.

Two primitives carry every gradient here: ``take_along`` (NumPy's take_along_axis) and its
transpose ``put_along_add`` (zeros with values added at the indices, repeated indices
accumulating), each the other's VJP. ``scatter`` (overwrite) and the max/min/prod flavours of
``scatter_reduce`` are primitives of their own because which element wins is data dependent.
Index arrays are parameters, not inputs: they get no gradient and travel to the data's device.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..backends import of_array
from ..errors import DeviceError, DTypeError, ShapeError, check_axis
from ..tensor import Tensor, _axis_alias
from .registry import constant, data_of, primitive
from .shape import _getitem, broadcast_to, getitem, jvp_total, reshape


def one_axis(axis, ndim, shape, what):
    """``axis`` in range(ndim) (negative counts from the end); a 0-d tensor takes 0 or -1."""
    return check_axis(axis, ndim, shape, f"{what}: axis")


def index_array(index, x, what):
    """An integer index (Tensor, array or list) as an array on ``x``'s device."""
    backend = of_array(x.data)
    if isinstance(index, Tensor):
        if index.device != x.device:
            raise DeviceError(f"{what}: index is on {index.device} but the tensor is on {x.device}")
        array = index.data
    elif isinstance(index, backend.array_type):
        array = index
    elif isinstance(index, (np.ndarray, list, tuple, int, np.integer)):
        array = backend.asarray(np.asarray(index))  # host data goes to the tensor's device
    else:
        raise DeviceError(f"{what}: index of type {type(index).__name__} is not on the tensor's device {x.device}")
    if array.dtype.kind not in "iu":
        raise DTypeError(f"{what}: index must be an integer tensor, got dtype {array.dtype}")
    return array


def _checked(index, size, what, shape):
    """``index`` wrapped into [0, size) (NumPy's negative indices), or IndexError naming the shapes."""
    if index.size:
        low, high = int(index.min()), int(index.max())
        if low < -size or high >= size:
            raise IndexError(f"{what}: index {low if low < -size else high} is out of bounds for an axis "
                             f"of size {size} (tensor shape {tuple(shape)})")
        if low < 0:
            index = index % size
    return index.astype(np.int64, copy=False)


def _full_index(xp, index, axis):
    """The advanced-index tuple that addresses ``out[..., index[i], ...]`` for every i of ``index``."""
    shape = index.shape
    parts = []
    for d, n in enumerate(shape):
        if d == axis:
            parts.append(index)
        else:
            view = [1] * len(shape)
            view[d] = n
            parts.append(xp.arange(n).reshape(view))
    return tuple(parts)


def _leading(shape, axis, like):
    """Basic index keeping the first ``shape[d]`` entries of every axis but ``axis``."""
    return tuple(builtins.slice(None) if d == axis or n == like[d] else builtins.slice(0, n)
                 for d, n in enumerate(shape))


# ----- the two linear primitives ----------------------------------------------------------------
@primitive("take_along")
def _take_along(backend, x, index, axis):
    return backend.xp.take_along_axis(x, index, axis=axis)


@_take_along.vjp
def _take_along_vjp(ctx, g):
    return _put_along_add(g, index=ctx.params["index"], axis=ctx.params["axis"], shape=ctx.shapes[0])


@_take_along.jvp
def _take_along_jvp(ctx, t):
    return _take_along(t, **ctx.params)


@primitive("put_along_add")
def _put_along_add(backend, g, index, axis, shape):
    """Zeros of ``shape`` with ``g`` added at ``index`` along ``axis`` (repeats accumulate)."""
    return _counts_of(backend.xp, g, index, axis, shape)


@_put_along_add.vjp
def _put_along_add_vjp(ctx, g):
    index, axis = ctx.params["index"], ctx.params["axis"]
    if tuple(index.shape[:axis] + index.shape[axis + 1:]) != tuple(g.shape[:axis] + g.shape[axis + 1:]):
        g = _getitem(g, index=_leading(index.shape, axis, g.shape), basic=True)  # a rule: raw arrays too
    return _take_along(g, index=index, axis=axis)


@_put_along_add.jvp
def _put_along_add_jvp(ctx, t):
    return _put_along_add(t, **ctx.params)


def _add_at(xp, out, index, values):
    """``out[index] += values`` with repeats accumulating, on raw arrays of either backend."""
    if xp is np:
        np.add.at(out, index, values)
    else:
        import cupyx

        cupyx.scatter_add(out, index, values)


def _counts_of(xp, values, index, axis, shape):
    """``put_along_add`` on raw arrays, for the masks and counts rules compute (no graph)."""
    out = xp.zeros(shape, dtype=values.dtype)
    _add_at(xp, out, _full_index(xp, index, axis), values)
    return out


def _counts(xp, index, axis, shape, dtype):
    """How many entries of ``index`` land on each position of an array of ``shape``."""
    return _counts_of(xp, xp.ones(index.shape, dtype=dtype), index, axis, shape)


# ----- NumPy / PyTorch functions ------------------------------------------------------------------
def take_along_axis(x, indices, axis=-1, *, dim=None):
    """NumPy's take_along_axis: ``out[..., i, ...] = x[..., indices[..., i, ...], ...]``; the other axes
    broadcast. Gradient: scatter-add back into x's shape.

    >>> gradflow.take_along_axis(gradflow.tensor([[10., 20.], [30., 40.]]), [[1], [0]], axis=1).tolist()
    [[20.0], [30.0]]
    """
    axis = _axis_alias(axis, dim)
    index = index_array(indices, x, "take_along_axis")
    if index.ndim != x.ndim:
        raise ShapeError(f"take_along_axis: indices of shape {tuple(index.shape)} need as many axes as the "
                         f"tensor of shape {x.shape}")
    axis = one_axis(axis, x.ndim, x.shape, "take_along_axis")
    index = _checked(index, x.shape[axis], "take_along_axis", x.shape)
    try:
        common = np.broadcast_shapes(tuple(s for d, s in enumerate(x.shape) if d != axis),
                                     tuple(s for d, s in enumerate(index.shape) if d != axis))
    except ValueError:
        raise ShapeError(f"take_along_axis: indices of shape {tuple(index.shape)} do not broadcast with the "
                         f"tensor of shape {x.shape} off axis {axis}") from None
    common = list(common)
    x_shape = tuple(common[:axis] + [x.shape[axis]] + common[axis:])
    i_shape = tuple(common[:axis] + [index.shape[axis]] + common[axis:])
    xp = of_array(x.data).xp
    index = xp.broadcast_to(index, i_shape) if tuple(index.shape) != i_shape else index
    return _take_along(broadcast_to(x, x_shape), index=xp.ascontiguousarray(index), axis=axis)


def take_along_dim(x, indices, dim=None):
    """PyTorch's take_along_dim: ``take_along_axis`` along ``dim``, or over the flattened tensor when None.

    >>> gradflow.take_along_dim(gradflow.tensor([[10., 20.], [30., 40.]]), gradflow.tensor([3, 0])).tolist()
    [40.0, 10.0]
    """
    if dim is None:
        return take_along_axis(reshape(x, (-1,)), index_array(indices, x, "take_along_dim").reshape(-1), 0)
    return take_along_axis(x, indices, dim)


def gather(x, dim, index):
    """PyTorch's gather: ``out[i][j] = x[index[i][j]][j]`` for dim 0; ``index`` may be smaller than x
    off ``dim`` (no broadcasting).

    >>> gradflow.gather(gradflow.tensor([[1., 2.], [3., 4.]]), 1, gradflow.tensor([[0, 0], [1, 0]])).tolist()
    [[1.0, 1.0], [4.0, 3.0]]
    """
    index = index_array(index, x, "gather")
    if x.ndim == 0:  # PyTorch treats a 0-d tensor as one entry along dim 0 or -1
        one_axis(dim, 0, x.shape, "gather")
        return reshape(gather(reshape(x, (1,)), 0, index.reshape(-1)), index.shape)
    axis = one_axis(dim, x.ndim, x.shape, "gather")
    _check_fits(index, x, axis, "gather", "input")
    index = _checked(index, x.shape[axis] if x.ndim else 1, "gather", x.shape)
    part = x if all(i == s for d, (i, s) in enumerate(zip(index.shape, x.shape)) if d != axis) \
        else getitem(x, _leading(index.shape, axis, x.shape))
    return _take_along(part, index=index, axis=axis)


def _check_fits(index, x, axis, what, name, including_axis=False):
    if index.ndim != x.ndim:
        raise ShapeError(f"{what}: index of shape {tuple(index.shape)} must have as many axes as the "
                         f"{name} of shape {x.shape}")
    for d, (i, s) in enumerate(zip(index.shape, x.shape)):
        if (d != axis or including_axis) and i > s:
            raise ShapeError(f"{what}: index of shape {tuple(index.shape)} is larger than the {name} of "
                             f"shape {x.shape} along axis {d}")


def _scatter_operands(x, dim, index, src, what):
    index = index_array(index, x, what)
    axis = one_axis(dim, x.ndim, x.shape, what)
    _check_fits(index, x, axis, what, "input")
    index = _checked(index, x.shape[axis], what, x.shape)
    if not isinstance(src, Tensor):
        src = Tensor(of_array(x.data).xp.full(index.shape, src, dtype=x.dtype))
    elif src.ndim != index.ndim:
        raise ShapeError(f"{what}: src of shape {src.shape} must have as many axes as index {tuple(index.shape)}")
    else:
        _check_fits(index, src, axis, what, "src", including_axis=True)
        if src.shape != tuple(index.shape):
            src = getitem(src, tuple(builtins.slice(0, n) for n in index.shape))
    return axis, index, src


def scatter_add(x, dim, index, src):
    """PyTorch's scatter_add: ``out = x`` with ``src[i][j]`` added at ``out[index[i][j]][j]`` (dim 0).

    >>> gradflow.scatter_add(gradflow.zeros(3), 0, gradflow.tensor([0, 0, 2]), gradflow.ones(3)).tolist()
    [2.0, 0.0, 1.0]
    """
    axis, index, src = _scatter_operands(x, dim, index, src, "scatter_add")
    return x + _put_along_add(src, index=index, axis=axis, shape=x.shape)


# ----- scatter: overwrite ---------------------------------------------------------------------------
def _flat_targets(xp, index, axis, shape):
    """The flat position in an array of ``shape`` each entry of ``index`` addresses."""
    full = [xp.broadcast_to(part, index.shape) for part in _full_index(xp, index, axis)]
    flat = xp.zeros(index.shape, dtype=np.int64)
    for part, n in zip(full, shape):
        flat = flat * n + part
    return flat.reshape(-1)


def _last_of_runs(xp, keys):
    """Order that sorts ``keys`` stably, and which sorted places end a run of equal keys."""
    order = xp.argsort(keys, kind="stable") if xp is np else xp.argsort(keys)
    ordered = keys[order]
    last = xp.ones(ordered.shape, dtype=bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    return order, last


def _winners(xp, index, axis, shape):
    """Which entries of ``index`` write their target (the last in index order among repeats: one
    deterministic choice on every backend, found by sorting, not by racing writes) and which
    positions of ``shape`` are written."""
    targets = _flat_targets(xp, index, axis, shape)
    order, last = _last_of_runs(xp, targets)
    won = xp.zeros(targets.shape, dtype=bool)
    won[order[last]] = True
    hit = xp.zeros(math.prod(shape), dtype=bool)
    hit[targets] = True
    return won.reshape(index.shape), hit.reshape(shape)


@primitive("scatter")
def _scatter(backend, x, src, index, axis):
    won, _ = _winners(backend.xp, index, axis, x.shape)
    out = x.copy()
    out.reshape(-1)[_flat_targets(backend.xp, index, axis, x.shape)[won.reshape(-1)]] = src[won]
    return out


@_scatter.vjp
def _scatter_vjp(ctx, g):
    index, axis = ctx.params["index"], ctx.params["axis"]
    xp = of_array(data_of(g)).xp
    won, hit = _winners(xp, index, axis, ctx.shapes[0])
    needs = ctx.needs_input_grad
    return (g * constant((~hit).astype(g.dtype)) if needs[0] else None,
            _take_along(g, index=index, axis=axis) * constant(won.astype(g.dtype)) if needs[1] else None)


@_scatter.jvp
def _scatter_jvp(ctx, tx, tsrc):
    xp = of_array(ctx.out.data).xp
    zeros = [Tensor(xp.zeros(s, dtype=ctx.out.dtype)) for s in ctx.shapes]
    return _scatter(zeros[0] if tx is None else tx, zeros[1] if tsrc is None else tsrc, **ctx.params)


def scatter(x, dim, index, src=None, *, value=None, reduce=None):
    """PyTorch's scatter: ``out = x`` with ``out[index[i][j]][j] = src[i][j]`` (dim 0); ``src`` may be a
    number (or ``value=``). Where indices repeat, the last entry in index order is written (PyTorch
    leaves that choice unspecified); only it gets a gradient. ``reduce="add"``/``"multiply"`` as PyTorch.

    >>> gradflow.scatter(gradflow.zeros(3), 0, gradflow.tensor([2, 0]), gradflow.tensor([5., 6.])).tolist()
    [6.0, 0.0, 5.0]
    """
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter needs src (a tensor or a number) or value=")
    if reduce is not None:
        table = {"add": "sum", "multiply": "prod"}
        if reduce not in table:
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        return scatter_reduce(x, dim, index, src, table[reduce])
    axis, index, src = _scatter_operands(x, dim, index, src, "scatter")
    return _scatter(x, src, index=index, axis=axis)


# ----- scatter_reduce ---------------------------------------------------------------------------------
def _scatter_extremum_into(xp, kind, out, index, axis, values):
    """``np.maximum.at`` / ``np.minimum.at`` by sorting: entries ordered by target, then by value, so
    the last of each target's run is its extremum; then one write per target, no atomics."""
    targets = _flat_targets(xp, index, axis, out.shape)
    flat = values.reshape(-1)
    by_value = xp.argsort(flat if kind == "maximum" else -flat)
    order, last = _last_of_runs(xp, targets[by_value])
    chosen = by_value[order[last]]
    view = out.reshape(-1)
    view[targets[chosen]] = getattr(xp, kind)(view[targets[chosen]], flat[chosen])


@primitive("scatter_extremum", save=("x", "src", "out"))
def _scatter_extremum(backend, x, src, index, axis, kind, include_self):
    xp = backend.xp
    if include_self:
        out = x.copy()
    else:
        fill = -np.inf if kind == "maximum" else np.inf
        hit = _counts(xp, index, axis, x.shape, x.dtype) > 0
        out = xp.where(hit, xp.asarray(fill, dtype=x.dtype), x)
    _scatter_extremum_into(xp, kind, out, index, axis, src)
    return out


def _extremum_shares(ctx, x, src, out):
    """Which of x and src reach the result, each divided by the number of ties (PyTorch's rule)."""
    index, axis = ctx.params["index"], ctx.params["axis"]
    xp = of_array(out).xp
    # Without include_self, x reaches the result only where no index lands.
    self_in = (x == out) if ctx.params["include_self"] else _counts(xp, index, axis, x.shape, out.dtype) == 0
    src_in = src == xp.take_along_axis(out, index, axis=axis)
    ties = self_in.astype(out.dtype) + _counts_of(xp, src_in.astype(out.dtype), index, axis, x.shape)
    return self_in / ties, src_in / xp.take_along_axis(ties, index, axis=axis)


@_scatter_extremum.vjp
def _scatter_extremum_vjp(ctx, g):
    x, src, out = map(data_of, ctx.saved)
    share_x, share_src = _extremum_shares(ctx, x, src, out)
    needs = ctx.needs_input_grad
    return (g * constant(share_x.astype(g.dtype)) if needs[0] else None,
            _take_along(g, index=ctx.params["index"], axis=ctx.params["axis"])
            * constant(share_src.astype(g.dtype)) if needs[1] else None)


@_scatter_extremum.jvp
def _scatter_extremum_jvp(ctx, tx, tsrc):
    x, src, out = ctx.inputs[0].data, ctx.inputs[1].data, ctx.out.data
    share_x, share_src = _extremum_shares(ctx, x, src, out)
    index, axis = ctx.params["index"], ctx.params["axis"]
    return jvp_total(out.shape, None if tx is None else tx * Tensor(share_x),
                     None if tsrc is None else _put_along_add(tsrc * Tensor(share_src), index=index, axis=axis,
                                                              shape=out.shape))


@primitive("scatter_prod", save=("x", "src", "out"))
def _scatter_prod(backend, x, src, index, axis, include_self):
    xp = backend.xp
    out = x.copy() if include_self else xp.where(
        _counts(xp, index, axis, x.shape, x.dtype) > 0, xp.ones((), dtype=x.dtype), x)
    if xp is np:
        np.multiply.at(out, _full_index(xp, index, axis), src)
    else:
        # CuPy has no scatter-multiply: multiply by the product of each target's entries, taken as
        # exp(sum log|v|) with the sign and zeros counted apart (a few ulp from the exact product).
        magnitude = xp.exp(_counts_of(xp, xp.log(xp.where(src == 0, 1, xp.abs(src))), index, axis, x.shape))
        negatives = _counts_of(xp, (src < 0).astype(x.dtype), index, axis, x.shape)
        zeros = _counts_of(xp, (src == 0).astype(x.dtype), index, axis, x.shape)
        sign = xp.where(negatives % 2 == 1, -1, 1).astype(x.dtype)
        out = (out * magnitude * sign * (zeros == 0)).astype(x.dtype, copy=False)
    return out


@_scatter_prod.vjp
def _scatter_prod_vjp(ctx, g):
    # d out / d v = out / v for every factor v of out (PyTorch's rule; undefined where a factor is 0).
    x, src, out = ctx.saved
    index, axis = ctx.params["index"], ctx.params["axis"]
    needs = ctx.needs_input_grad
    g_out = g * out
    grad_x = None
    if needs[0]:
        grad_x = g_out / x
        if not ctx.params["include_self"]:
            xp = of_array(data_of(out)).xp
            hit = _counts(xp, index, axis, ctx.shapes[0], data_of(out).dtype) > 0
            grad_x = grad_x * constant((~hit).astype(g.dtype))
    return grad_x, (_take_along(g_out, index=index, axis=axis) / src if needs[1] else None)


@_scatter_prod.jvp
def _scatter_prod_jvp(ctx, tx, tsrc):
    x, src, out = ctx.inputs[0], ctx.inputs[1], ctx.out
    index, axis = ctx.params["index"], ctx.params["axis"]
    terms = []
    if tx is not None:
        term = tx / x * out
        if not ctx.params["include_self"]:
            hit = _counts(of_array(out.data).xp, index, axis, out.shape, out.dtype) > 0
            term = term * Tensor((~hit).astype(out.dtype))
        terms.append(term)
    if tsrc is not None:
        terms.append(_put_along_add(tsrc / src, index=index, axis=axis, shape=out.shape) * out)
    return jvp_total(out.shape, *terms) if terms else None


def scatter_reduce(x, dim, index, src, reduce, *, include_self=True):
    """PyTorch's scatter_reduce: reduce ``src`` into ``x`` at ``index`` along ``dim`` with ``reduce`` one of
    "sum", "prod", "mean", "amax", "amin"; ``include_self=False`` leaves x's own value out where any
    index lands. amax/amin share the gradient equally among ties; prod's gradient is out / factor.

    >>> x = gradflow.tensor([1., 1.])
    >>> gradflow.scatter_reduce(x, 0, gradflow.tensor([0, 0]), gradflow.tensor([3., 5.]), "amax").tolist()
    [5.0, 1.0]
    """
    kinds = ("sum", "prod", "mean", "amax", "amin")
    if reduce not in kinds:
        raise ValueError(f"scatter_reduce: reduce must be one of {kinds}, got {reduce!r}")
    axis, index, src = _scatter_operands(x, dim, index, src, "scatter_reduce")
    include_self = bool(include_self)
    if reduce in ("amax", "amin"):
        return _scatter_extremum(x, src, index=index, axis=axis, kind="maximum" if reduce == "amax" else "minimum",
                                 include_self=include_self)
    if reduce == "prod":
        return _scatter_prod(x, src, index=index, axis=axis, include_self=include_self)
    xp = of_array(x.data).xp
    count = _counts(xp, index, axis, x.shape, x.dtype)
    base = x if include_self else x * Tensor((count == 0).astype(x.dtype))
    total = base + _put_along_add(src, index=index, axis=axis, shape=x.shape)
    if reduce == "sum":
        return total
    denominator = xp.where(count > 0, count + include_self, 1).astype(x.dtype)
    return total / Tensor(denominator)


# ----- selection by index or mask -------------------------------------------------------------------
def index_select(x, dim, index):
    """PyTorch's index_select: the entries ``index`` (1-D) along ``dim``; gradient scatter-adds.

    >>> gradflow.index_select(gradflow.tensor([[1., 2.], [3., 4.]]), 0, gradflow.tensor([1, 1])).tolist()
    [[3.0, 4.0], [3.0, 4.0]]
    """
    index = index_array(index, x, "index_select")
    if index.ndim > 1:
        raise ShapeError(f"index_select: index must be 1-D, got shape {tuple(index.shape)}")
    axis = one_axis(dim, x.ndim, x.shape, "index_select")
    index = _checked(index.reshape(-1), x.shape[axis] if x.ndim else 1, "index_select", x.shape)
    return getitem(reshape(x, (1,)) if x.ndim == 0 else x, (builtins.slice(None),) * axis + (index,))


def masked_fill(x, mask, value):
    """``x`` with ``value`` where ``mask`` (broadcast to x) is true; value may be a 0-d tensor (it gets the
    summed gradient of the positions it fills).

    >>> gradflow.masked_fill(gradflow.tensor([1., 2.]), gradflow.tensor([True, False]), 0.).tolist()
    [0.0, 2.0]
    """
    from .elementwise import where

    mask = _mask_array(mask, x, "masked_fill")
    if np.broadcast_shapes(mask.shape, x.shape) != x.shape:
        raise ShapeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to the tensor's "
                         f"shape {x.shape}")
    if isinstance(value, Tensor) and value.ndim:
        raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
    if not isinstance(value, Tensor):
        value = Tensor(of_array(x.data).xp.asarray(value, dtype=x.dtype))
    return where(Tensor(mask), value, x)


def _mask_array(mask, x, what):
    backend = of_array(x.data)
    if isinstance(mask, Tensor):
        if mask.device != x.device:
            raise DeviceError(f"{what}: mask is on {mask.device} but the tensor is on {x.device}")
        array = mask.data
    else:
        array = backend.asarray(mask)
    if array.dtype != np.bool_:
        raise DTypeError(f"{what}: mask must be a bool tensor, got dtype {array.dtype}")
    return array


def masked_select(x, mask):
    """The entries of ``x`` where ``mask`` is true, as a 1-D tensor (x and mask broadcast together).

    >>> gradflow.masked_select(gradflow.tensor([[1., 2.], [3., 4.]]), gradflow.tensor([True, False])).tolist()
    [1.0, 3.0]
    """
    mask = _mask_array(mask, x, "masked_select")
    try:
        shape = np.broadcast_shapes(mask.shape, x.shape)
    except ValueError:
        raise ShapeError(f"masked_select: mask of shape {tuple(mask.shape)} does not broadcast with the "
                         f"tensor's shape {x.shape}") from None
    xp = of_array(x.data).xp
    positions = xp.nonzero(xp.broadcast_to(mask, shape))
    return getitem(broadcast_to(x, shape), tuple(positions))


def nonzero(x, *, as_tuple=False):
    """PyTorch's nonzero: an (n, ndim) int64 tensor of the indices of nonzero entries, or with
    ``as_tuple=True`` NumPy's form, one 1-D index tensor per axis. No gradient.

    >>> gradflow.nonzero(gradflow.tensor([[0, 3], [4, 0]])).tolist()
    [[0, 1], [1, 0]]
    """
    xp = of_array(x.data).xp
    if x.ndim == 0:  # one entry, no axes: PyTorch gives (n, 0), or one index tensor over [0]
        found = int(bool(x.data))
        return (Tensor(xp.zeros(found, dtype=np.int64)),) if as_tuple else Tensor(xp.zeros((found, 0), dtype=np.int64))
    parts = [p.astype(np.int64, copy=False) for p in xp.nonzero(x.data)]
    return tuple(Tensor(p) for p in parts) if as_tuple else Tensor(xp.stack(parts, axis=1))


def argwhere(x):
    """NumPy's argwhere: the (n, ndim) indices of nonzero entries (PyTorch's ``nonzero``)."""
    return nonzero(x)


def one_hot(indices, num_classes=-1):
    """PyTorch's one_hot: int64 tensor with a trailing axis of ``num_classes`` (largest index + 1 by
    default), 1 at each index. No gradient.

    >>> gradflow.one_hot(gradflow.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    if not isinstance(indices, Tensor):
        from ..tensor import tensor

        indices = tensor(indices)
    array = indices.data
    if array.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: indices must be an integer tensor, got dtype {array.dtype}")
    xp = of_array(array).xp
    if array.size and int(array.min()) < 0:
        raise IndexError(f"one_hot: class values must be non-negative, got {int(array.min())}")
    largest = int(array.max()) + 1 if array.size else 0
    if num_classes == -1:
        if not array.size:
            raise ShapeError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
        num_classes = largest
    elif largest > num_classes:
        raise IndexError(f"one_hot: class value {largest - 1} is out of range for num_classes={num_classes}")
    return Tensor((array[..., None] == xp.arange(num_classes)).astype(np.int64))
