"""Shape primitives: broadcasting and its undoing, reshape, transpose, indexing, joining, moving.

``sum_to`` and ``broadcast_to`` are each other's VJPs; every broadcasting op undoes broadcasting
through ``sum_to``. Views (reshape, transpose, basic indexing) share memory with their input, so
they save nothing.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..backends import of_array
from ..errors import ShapeError, check_axis
from ..tensor import Tensor, _axis_alias, _shape_args_of
from .registry import primitive


def _sum_to_axes(shape, target):
    """Axes to sum so an array of ``shape`` becomes ``target`` (NumPy broadcasting reversed)."""
    lead = len(shape) - len(target)
    if lead < 0:
        raise ShapeError(f"cannot sum shape {shape} down to the larger shape {target}")
    axes = tuple(range(lead))
    for i, size in enumerate(target):
        if size == 1 and shape[lead + i] != 1:
            axes += (lead + i,)
        elif size != shape[lead + i]:
            raise ShapeError(f"cannot sum shape {shape} down to shape {target}")
    return axes


@primitive("sum_to")
def _sum_to(backend, x, shape):
    axes = _sum_to_axes(x.shape, shape)
    return x.sum(axis=axes).reshape(shape) if axes else x


def sum_to(x, shape):
    """Sum ``x`` over the axes broadcasting added, giving ``shape`` (identity when shapes agree)."""
    if x.shape == shape:  # the usual call: a rule passes ctx.shapes' tuple, x's shape agrees
        return x
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return _sum_to(x, shape=shape)


@_sum_to.vjp
def _sum_to_vjp(ctx, g):
    return broadcast_to(g, ctx.shapes[0])


@_sum_to.jvp
def _sum_to_jvp(ctx, t):
    return _sum_to(t, shape=ctx.params["shape"])


_SMALL = 4096


@primitive("broadcast_to")
def _broadcast_to(backend, x, shape):
    try:
        if builtins.len(shape) >= x.ndim and math.prod(shape) <= _SMALL:
            # np.broadcast_to costs microseconds of Python; a small filled copy costs less.
            out = backend.xp.empty(shape, dtype=x.dtype)
            out[...] = x
            return out
        return backend.xp.broadcast_to(x, shape)
    except ValueError:
        raise ShapeError(f"cannot broadcast shape {tuple(x.shape)} to {tuple(shape)}") from None


@_broadcast_to.vjp
def _broadcast_to_vjp(ctx, g):
    return sum_to(g, ctx.shapes[0])


@_broadcast_to.jvp
def _broadcast_to_jvp(ctx, t):
    return _broadcast_to(t, shape=ctx.params["shape"])


def broadcast_to(x, shape):
    """NumPy's broadcast_to: a read-only view of ``x`` with ``shape``."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return _broadcast_to(x, shape=shape)


def jvp_total(shape, *terms):
    """The output tangent of a many-input op: the sum of the terms of the inputs that have a
    tangent (None for the others), broadcast to the output's ``shape``; None if there are none."""
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else total + term
    return None if total is None else broadcast_to(total, shape)


def expand(x, *sizes):
    """PyTorch's expand: broadcast to ``sizes``, where -1 keeps that axis's size."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


def expand_as(x, other):
    return broadcast_to(x, other.shape)


@primitive("reshape")
def _reshape(backend, x, shape):
    try:
        return x.reshape(shape)
    except ValueError:
        raise ShapeError(f"cannot reshape a tensor of shape {tuple(x.shape)} ({x.size} elements) "
                         f"into shape {tuple(shape)}") from None


@_reshape.vjp
def _reshape_vjp(ctx, g):
    return reshape(g, ctx.shapes[0])


@_reshape.jvp
def _reshape_jvp(ctx, t):
    return _reshape(t, shape=ctx.params["shape"])


def reshape(x, *shape):
    """NumPy/PyTorch reshape; accepts ``reshape(2, 3)`` and ``reshape((2, 3))`` and one -1."""
    shape = _shape_args_of(shape)
    if tuple(x.shape) == shape:
        return x
    return _reshape(x, shape=shape)


view = reshape


@primitive("transpose")
def _transpose(backend, x, axes):
    return x.transpose(axes)


@_transpose.vjp
def _transpose_vjp(ctx, g):
    return _transpose(g, axes=tuple(np.argsort(ctx.params["axes"]).tolist()))


@_transpose.jvp
def _transpose_jvp(ctx, t):
    return _transpose(t, axes=ctx.params["axes"])


def transpose(x, *axes):
    """NumPy semantics: no axes reverses them; otherwise ``axes`` is a permutation."""
    axes = _shape_args_of(axes)
    ndim = x.ndim
    if not axes:
        axes = tuple(range(ndim - 1, -1, -1))
    if len(axes) != ndim:
        raise ShapeError(f"axes {axes} are not a permutation of the {ndim} axes of shape {x.shape}")
    checked = tuple(check_axis(a, ndim, x.shape) for a in axes)
    if sorted(checked) != list(range(ndim)):
        raise ShapeError(f"axes {axes} are not a permutation of the {ndim} axes of shape {x.shape}")
    axes = checked
    if axes == tuple(range(ndim)):
        return x
    return _transpose(x, axes=axes)


permute = transpose


def swapaxes(x, axis1, axis2):
    axes = list(range(x.ndim))
    axis1, axis2 = check_axis(axis1, x.ndim, x.shape), check_axis(axis2, x.ndim, x.shape)
    if x.ndim == 0:
        return x
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, *axes)


def squeeze(x, axis=None, *, dim=None):
    """Drop size-1 axes (all of them, or the given ones)."""
    axis = _axis_alias(axis, dim)
    shape = x.shape
    if axis is None:
        return reshape(x, tuple(s for s in shape if s != 1))
    axes = {check_axis(a, x.ndim, shape) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
    if not x.ndim:
        return x  # PyTorch: squeezing axis 0 or -1 of a 0-d tensor leaves it as it is
    for a in axes:
        if shape[a] != 1:
            raise ShapeError(f"cannot squeeze axis {a} of shape {shape}: its size is {shape[a]}, not 1")
    return reshape(x, tuple(s for i, s in enumerate(shape) if i not in axes))


def unsqueeze(x, axis=None, *, dim=None):
    """Insert a size-1 axis at ``axis`` (NumPy's expand_dims)."""
    axis = _axis_alias(axis, dim)
    ndim = x.ndim + 1
    axis = check_axis(axis, ndim, x.shape, "unsqueeze axis")
    shape = list(x.shape)
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


expand_dims = unsqueeze


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes ``start_dim..end_dim`` into one (all of them by default)."""
    start, end = check_axis(start_dim, x.ndim, x.shape, "start_dim"), check_axis(end_dim, x.ndim, x.shape, "end_dim")
    if x.ndim == 0:
        return reshape(x, (1,))
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {x.shape}")
    shape = x.shape
    merged = 1
    for s in shape[start:end + 1]:
        merged *= s
    return reshape(x, shape[:start] + (merged,) + shape[end + 1:])


# ----- indexing -------------------------------------------------------------------------------
def _normalize_index(index, backend):
    """Index with Tensors and lists turned into arrays; reports whether it is basic (a view)."""
    items = index if isinstance(index, tuple) else (index,)
    normalized, basic = [], True
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):
            item = backend.xp.asarray(item)
        if isinstance(item, np.generic) or (hasattr(item, "ndim") and item.ndim == 0 and item.dtype.kind in "iu"):
            item = int(item)
        elif hasattr(item, "ndim"):
            basic = False
        normalized.append(item)
    return tuple(normalized), basic


@primitive("getitem")
def _getitem(backend, x, index, basic):
    try:
        return x[index]
    except IndexError as exc:
        raise IndexError(f"index {index!r} does not fit shape {tuple(x.shape)}: {exc}") from None


@_getitem.vjp
def _getitem_vjp(ctx, g):
    return _index_add(g, shape=ctx.shapes[0], index=ctx.params["index"], basic=ctx.params["basic"])


@_getitem.jvp
def _getitem_jvp(ctx, t):
    return _getitem(t, index=ctx.params["index"], basic=ctx.params["basic"])


def getitem(x, index):
    """``x[index]`` with NumPy semantics; integer-array indices scatter-add in backward."""
    index, basic = _normalize_index(index, of_array(x.data))
    return _getitem(x, index=index, basic=basic)


@primitive("index_add")
def _index_add(backend, g, shape, index, basic):
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeated indices accumulate)."""
    out = backend.xp.zeros(shape, dtype=g.dtype)
    if basic:
        out[index] = g
    else:
        backend.index_add(out, index, g)
    return out


@_index_add.vjp
def _index_add_vjp(ctx, g):
    return _getitem(g, index=ctx.params["index"], basic=ctx.params["basic"])


@_index_add.jvp
def _index_add_jvp(ctx, t):
    return _index_add(t, **ctx.params)


# ----- joining --------------------------------------------------------------------------------
@primitive("concatenate", same_dtype=True)
def _concatenate(backend, *arrays, axis=0):
    return backend.xp.concatenate(arrays, axis=axis)


@_concatenate.vjp
def _concatenate_vjp(ctx, g):
    axis = ctx.params["axis"]
    grads, start = [], 0
    prefix = (builtins.slice(None),) * (axis % g.ndim)
    for shape, needed in zip(ctx.shapes, ctx.needs_input_grad):
        stop = start + shape[axis]
        grads.append(_getitem(g, index=prefix + (builtins.slice(start, stop),), basic=True) if needed else None)
        start = stop
    return tuple(grads)


@_concatenate.jvp
def _concatenate_jvp(ctx, *tangents):
    # An input without a tangent contributes zeros to its slice of the output tangent.
    xp = of_array(ctx.out.data).xp
    return _concatenate(*(Tensor(xp.zeros(shape, dtype=ctx.out.dtype)) if t is None else t
                          for shape, t in zip(ctx.shapes, tangents)), axis=ctx.params["axis"])


def concatenate(tensors, axis=0, *, dim=None):
    """Join tensors along an existing axis (NumPy's concatenate, PyTorch's cat)."""
    axis = _axis_alias(None if dim is not None else axis, dim)
    tensors = tuple(tensors)
    if not tensors:
        raise ShapeError("concatenate needs at least one tensor")
    first = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.ndim != len(first) or any(a != b for k, (a, b) in enumerate(zip(t.shape, first))
                                       if k != axis % len(first)):
            raise ShapeError(f"concatenate along axis {axis}: tensor {i} has shape {t.shape}, "
                             f"which does not match tensor 0's shape {first} off that axis")
    return _concatenate(*tensors, axis=axis)


cat = concatenate


def stack(tensors, axis=0, *, dim=None):
    """Join tensors along a new axis."""
    axis = _axis_alias(None if dim is not None else axis, dim)
    tensors = tuple(tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ShapeError(f"stack needs tensors of one shape, got {sorted(shapes)}")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis=axis)


# ----- dtype and device -----------------------------------------------------------------------
@primitive("cast")
def _cast(backend, x, dtype, copy, source):
    return x.astype(dtype, copy=copy)


@_cast.vjp
def _cast_vjp(ctx, g):
    return _cast(g, dtype=ctx.params["source"], copy=False, source=g.dtype)


@_cast.jvp
def _cast_jvp(ctx, t):
    return _cast(t, dtype=ctx.params["dtype"], copy=False, source=t.dtype)


def cast(x, dtype, copy=False):
    """A copy of ``x`` in ``dtype``; gradients flow back converted to the source dtype."""
    if x.requires_grad and np.dtype(dtype).kind != "f":
        from ..errors import DTypeError

        raise DTypeError(f"cannot cast a tensor that requires grad to the non-floating dtype {dtype}; "
                         "detach() it first")
    return _cast(x, dtype=np.dtype(dtype), copy=copy, source=x.dtype)


@primitive("to_device")
def _to_device(backend, x, target, source):
    from ..backends import for_device

    destination = for_device(target)
    if destination.xp is np:
        return x if destination is backend else backend.to_numpy(x)
    if destination is backend and (target.index is None or target.index == x.device.id):
        return x
    with destination.on(target):  # cuda:N: made on device N (a copy between GPUs)
        return destination.xp.asarray(x)


@_to_device.vjp
def _to_device_vjp(ctx, g):
    return _to_device(g, target=ctx.params["source"], source=ctx.params["target"])


def to_device(x, target):
    return _to_device(x, target=target, source=x.device)


@_to_device.jvp
def _to_device_jvp(ctx, t):
    return _to_device(t, **ctx.params)
