"""Moving data around: flip, roll, tile/repeat, splitting, triangles and diagonals, meshgrid,
sliding windows, pad.

No primitive of its own: each is basic or integer-array indexing (``getitem``, whose VJP
scatter-adds), ``broadcast_to``/``reshape``/``transpose``, ``concatenate`` or ``where``, so every
gradient, JVP and second derivative comes from those rules.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..backends import of_array
from ..errors import ShapeError
from ..tensor import Tensor, _axis_alias
from .indexing import one_axis
from .reduce import _normalize_axis, sum as _reduce_sum
from .shape import _getitem, _index_add, broadcast_to, concatenate, reshape, stack, transpose

_ALL = builtins.slice(None)


def _along(axis, item):
    return (_ALL,) * axis + (item,)


def _axes_of(axis, x, what):
    if isinstance(axis, (tuple, list)):
        return [one_axis(a, x.ndim, x.shape, what) for a in axis]
    return [one_axis(axis, x.ndim, x.shape, what)]


def flip(x, axis=None, *, dims=None):
    """Reverse the order of entries along ``axis`` (all axes when None; PyTorch's ``dims=``).

    >>> gradflow.flip(gradflow.tensor([1., 2., 3.])).tolist()
    [3.0, 2.0, 1.0]
    """
    axes = _normalize_axis(_axis_alias(axis, dims), x.ndim, x.shape)
    axes = range(x.ndim) if axes is None else axes
    index = tuple(builtins.slice(None, None, -1) if d in axes else _ALL for d in range(x.ndim))
    return _getitem(x, index=index, basic=True) if x.ndim else x


def roll(x, shifts, axis=None, *, dims=None):
    """Shift entries cyclically by ``shifts`` along ``axis`` (the flattened tensor when None).

    >>> gradflow.roll(gradflow.tensor([1., 2., 3.]), 1).tolist()
    [3.0, 1.0, 2.0]
    """
    axis = _axis_alias(axis, dims)
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    axes = _axes_of(axis, x, "roll")
    if len(shifts) != len(axes):
        raise ShapeError(f"roll: {len(shifts)} shifts given for {len(axes)} axes")
    for shift, a in zip(shifts, axes):
        n = x.shape[a]
        s = int(shift) % n if n else 0
        if s:
            x = concatenate([_getitem(x, index=_along(a, builtins.slice(n - s, None)), basic=True),
                             _getitem(x, index=_along(a, builtins.slice(0, n - s)), basic=True)], axis=a)
    return x


def tile(x, reps):
    """NumPy's tile: the whole tensor repeated ``reps`` times along each axis.

    >>> gradflow.tile(gradflow.tensor([1., 2.]), 2).tolist()
    [1.0, 2.0, 1.0, 2.0]
    """
    reps = tuple(int(r) for r in (reps if isinstance(reps, (tuple, list)) else (reps,)))
    if any(r < 0 for r in reps):
        raise ShapeError(f"tile: repetitions must be non-negative, got {reps}")
    ndim = builtins.max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    interleaved = tuple(v for s in shape for v in (1, s))
    big = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    return reshape(broadcast_to(reshape(x, interleaved), big), tuple(r * s for r, s in zip(reps, shape)))


def repeat_tensor(x, *sizes):
    """PyTorch's ``Tensor.repeat(*sizes)``: NumPy's tile, with at least as many sizes as axes."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: {len(sizes)} repeat sizes given for a tensor of shape {x.shape} "
                         f"(need at least {x.ndim}; NumPy's tile allows fewer)")
    return tile(x, sizes)


def repeat_interleave(x, repeats, axis=None, *, dim=None, output_size=None):
    """Repeat each entry ``repeats`` times along ``axis`` (the flattened tensor when None); ``repeats`` is
    an int or one count per entry. NumPy calls this ``repeat``.

    >>> gradflow.repeat_interleave(gradflow.tensor([1., 2.]), 2).tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    axis = _axis_alias(axis, dim)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = one_axis(axis, x.ndim, x.shape, "repeat_interleave")
    n = x.shape[axis]
    if isinstance(repeats, int) or (isinstance(repeats, Tensor) and repeats.ndim == 0):
        r = int(repeats)
        if r < 0:
            raise ShapeError(f"repeat_interleave: repeats must be non-negative, got {r}")
        shape = x.shape[:axis + 1] + (r,) + x.shape[axis + 1:]
        out = broadcast_to(reshape(x, x.shape[:axis + 1] + (1,) + x.shape[axis + 1:]), shape)
        return reshape(out, x.shape[:axis] + (n * r,) + x.shape[axis + 1:])
    backend = of_array(x.data)
    # The counts decide the output's shape, so they are read on the host (CuPy's repeat takes
    # counts only as a list); the index they make goes to x's device.
    counts = backend.to_numpy(repeats.data) if isinstance(repeats, Tensor) else np.asarray(repeats)
    if counts.shape != (n,) or counts.dtype.kind not in "iu" or (counts < 0).any():
        raise ShapeError(f"repeat_interleave: repeats must be {n} non-negative integers for axis {axis} of shape "
                         f"{x.shape}, got shape {tuple(counts.shape)} dtype {counts.dtype}")
    index = backend.asarray(np.repeat(np.arange(n), counts))
    return _getitem(x, index=_along(axis, index), basic=False)


repeat = repeat_interleave


def split(x, split_size_or_sections, dim=0, *, axis=None):
    """PyTorch's split: pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given
    sizes when a list. (NumPy's split takes a number of sections or cut points instead.)

    >>> [p.tolist() for p in gradflow.split(gradflow.tensor([1., 2., 3.]), 2)]
    [[1.0, 2.0], [3.0]]
    """
    if axis is not None:
        dim = axis
    a = one_axis(dim, x.ndim, x.shape, "split")
    n = x.shape[a]
    if isinstance(split_size_or_sections, (tuple, list)):
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ShapeError(f"split: sizes {sizes} do not add up to {n}, the size of axis {a} of shape {x.shape}")
    else:
        size = int(split_size_or_sections)
        if size <= 0:
            raise ShapeError(f"split: split size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
        sizes = sizes or [0]
    pieces, start = [], 0
    for s in sizes:
        pieces.append(_getitem(x, index=_along(a, builtins.slice(start, start + s)), basic=True))
        start += s
    return tuple(pieces)


def chunk(x, chunks, dim=0, *, axis=None):
    """PyTorch's chunk: at most ``chunks`` pieces of ceil(n / chunks) entries along ``dim``.

    >>> len(gradflow.chunk(gradflow.zeros(5), 3))
    3
    """
    if chunks <= 0:
        raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
    a = one_axis(dim if axis is None else axis, x.ndim, x.shape, "chunk")
    return split(x, builtins.max(1, math.ceil(x.shape[a] / chunks)), a)


def unbind(x, dim=0, *, axis=None):
    """The slices along ``dim`` as a tuple, the axis removed.

    >>> [t.tolist() for t in gradflow.unbind(gradflow.tensor([[1., 2.], [3., 4.]]), 1)]
    [[1.0, 3.0], [2.0, 4.0]]
    """
    a = one_axis(dim if axis is None else axis, x.ndim, x.shape, "unbind")
    return tuple(_getitem(x, index=_along(a, i), basic=True) for i in range(x.shape[a]))


def _triangle(x, k, upper, what):
    if x.ndim < 2:
        raise ShapeError(f"{what} needs a tensor of at least 2 axes, got shape {x.shape}")
    from .elementwise import where_op

    xp = of_array(x.data).xp
    n, m = x.shape[-2:]
    keep = xp.tri(n, m, k - 1, dtype=bool) if upper else xp.tri(n, m, k, dtype=bool)
    if upper:
        keep = ~keep
    return where_op(Tensor(keep), x, Tensor(xp.zeros((), dtype=x.dtype)))


def tril(x, k=0, *, diagonal=None):
    """The lower triangle of the last two axes (entries with column - row <= k), zeros elsewhere.

    >>> gradflow.tril(gradflow.ones(2, 2)).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    return _triangle(x, k if diagonal is None else diagonal, False, "tril")


def triu(x, k=0, *, diagonal=None):
    """The upper triangle of the last two axes (entries with column - row >= k), zeros elsewhere."""
    return _triangle(x, k if diagonal is None else diagonal, True, "triu")


def movedim(x, source, destination):
    """Move axes ``source`` to positions ``destination``, the others keeping their order (NumPy's moveaxis).

    >>> gradflow.movedim(gradflow.zeros(2, 3, 4), 0, -1).shape
    (3, 4, 2)
    """
    source, destination = _axes_of(source, x, "movedim"), _axes_of(destination, x, "movedim")
    if len(source) != len(destination) or len(set(source)) != len(source) or len(set(destination)) != len(
            destination):
        raise ShapeError(f"movedim: source {source} and destination {destination} must be distinct axes, as "
                         "many of each")
    order = [d for d in range(x.ndim) if d not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(x, *order) if order != list(range(x.ndim)) else x


moveaxis = movedim


def _diagonal_index(xp, n, m, offset):
    rows0, cols0 = builtins.max(-offset, 0), builtins.max(offset, 0)
    length = builtins.max(0, builtins.min(n - rows0, m - cols0))
    return xp.arange(length) + rows0, xp.arange(length) + cols0


def diagonal(x, offset=0, axis1=0, axis2=1, *, dim1=None, dim2=None):
    """The diagonal of the (axis1, axis2) planes, as a new last axis (NumPy and PyTorch agree).

    >>> gradflow.diagonal(gradflow.tensor([[1., 2.], [3., 4.]])).tolist()
    [1.0, 4.0]
    """
    a1 = one_axis(axis1 if dim1 is None else dim1, x.ndim, x.shape, "diagonal")
    a2 = one_axis(axis2 if dim2 is None else dim2, x.ndim, x.shape, "diagonal")
    if x.ndim < 2 or a1 == a2:
        raise ShapeError(f"diagonal needs two different axes of a tensor of at least 2 axes, got axes "
                         f"{axis1}, {axis2} of shape {x.shape}")
    moved = movedim(x, [a1, a2], [-2, -1])
    rows, cols = _diagonal_index(of_array(x.data).xp, *moved.shape[-2:], int(offset))
    return _getitem(moved, index=(builtins.Ellipsis, rows, cols), basic=False)


def diag(x, k=0, *, diagonal=None):
    """NumPy's diag: a 1-D tensor becomes a square matrix with it on diagonal ``k``; a 2-D one gives
    its ``k``-th diagonal.

    >>> gradflow.diag(gradflow.tensor([1., 2.])).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    k = int(k if diagonal is None else diagonal)
    if x.ndim == 2:
        return globals()["diagonal"](x, k)
    if x.ndim != 1:
        raise ShapeError(f"diag takes a 1-D or 2-D tensor, got shape {x.shape}")
    n = x.shape[0] + abs(k)
    rows, cols = _diagonal_index(of_array(x.data).xp, n, n, k)
    return _index_add(x, shape=(n, n), index=(rows, cols), basic=False)


def trace(x, offset=0, axis1=0, axis2=1):
    """Sum along the diagonal (NumPy's trace; any number of axes).

    >>> gradflow.trace(gradflow.tensor([[1., 2.], [3., 4.]])).item()
    5.0
    """
    return _reduce_sum(diagonal(x, offset, axis1, axis2), axis=-1)


def meshgrid(*tensors, indexing="xy"):
    """Coordinate grids from 1-D tensors; ``indexing="xy"`` (NumPy's default) swaps the first two axes of
    the grids, ``"ij"`` (PyTorch's default) does not.

    >>> [g.shape for g in gradflow.meshgrid(gradflow.zeros(2), gradflow.zeros(3))]
    [(3, 2), (3, 2)]
    """
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    for i, t in enumerate(tensors):
        if t.ndim > 1:
            raise ShapeError(f"meshgrid takes 0-d or 1-D tensors, tensor {i} has shape {t.shape}")
    sizes = [t.numel() for t in tensors]
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        order[0], order[1] = 1, 0
    shape = tuple(sizes[j] for j in order)
    grids = []
    for i, t in enumerate(tensors):
        view = [1] * len(tensors)
        view[order.index(i)] = sizes[i]
        grids.append(broadcast_to(reshape(t, tuple(view)), shape))
    return tuple(grids)


def unfold(x, dimension, size, step):
    """PyTorch's ``Tensor.unfold``: every window of ``size`` entries, ``step`` apart, along ``dimension``;
    the windows replace that axis and their entries form a new last axis.

    >>> gradflow.unfold(gradflow.arange(5.), 0, 2, 2).tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    a = one_axis(dimension, x.ndim, x.shape, "unfold")
    n = x.shape[a] if x.ndim else 1
    if size < 0 or size > n or step <= 0:
        raise ShapeError(f"unfold: windows of size {size} with step {step} do not fit axis {a} of size {n} "
                         f"(shape {x.shape})")
    if x.ndim == 0:
        return reshape(x, (1,))
    count = (n - size) // step + 1
    if size <= _SLICED_WINDOWS:
        # Offset s of every window is one strided slice: the backward is `size` slice additions,
        # ~20x faster than scattering through an index for convolution-sized windows.
        return stack([_getitem(x, index=_along(a, builtins.slice(s, s + step * (count - 1) + 1, step)), basic=True)
                      for s in range(size)], axis=-1)
    xp = of_array(x.data).xp
    windows = xp.arange(count)[:, None] * step + xp.arange(size)[None, :]
    out = _getitem(x, index=_along(a, windows), basic=False)
    return movedim(out, a + 1, -1)


_SLICED_WINDOWS = 16  # beyond this, `size` full-size slice additions cost more than one scatter


# ----- pad ------------------------------------------------------------------------------------------
_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular",
          "edge": "replicate", "wrap": "circular"}


def pad(x, pad, mode="constant", value=0.0):
    """PyTorch's pad: ``pad = (left, right)`` for the last axis, then ``(top, bottom)`` for the one before,
    and so on. Modes: "constant" (``value``; negative widths crop), "reflect" (mirror without repeating
    the edge), "replicate" (repeat the edge), "circular" (wrap around).

    >>> gradflow.pad(gradflow.tensor([1., 2., 3.]), (2, 1), mode="reflect").tolist()
    [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: {len(pad)} widths for a tensor of shape {x.shape}: give an even number, at most "
                         f"two per axis")
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {sorted(_MODES)}, got {mode!r}")
    mode = _MODES[mode]
    if mode != "constant" and value not in (0, 0.0, None):
        raise ValueError(f"pad: value={value} applies only to mode 'constant', not {mode!r}")
    xp = of_array(x.data).xp
    for i in range(len(pad) // 2):
        axis, before, after = x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        n = x.shape[axis]
        if mode == "constant":
            x = _pad_constant(x, axis, before, after, value, xp)
            continue
        if before < 0 or after < 0:
            raise ShapeError(f"pad: mode {mode!r} takes no negative widths, got {(before, after)} for axis {axis}")
        if not before and not after:
            continue
        limit = n if mode == "circular" else n - 1 if mode == "reflect" else None
        if limit is not None and builtins.max(before, after) > limit or n == 0:
            raise ShapeError(f"pad: mode {mode!r} needs widths {'<=' if mode == 'circular' else '<'} the size "
                             f"of axis {axis} ({n}, shape {x.shape}), got {(before, after)}")
        x = concatenate([p for p in _borders(x, axis, before, after, mode) if p is not None], axis=axis)
    return x


def _borders(x, axis, before, after, mode):
    """(left border, x, right border) along ``axis`` as basic slices of x (reversed for reflect,
    the edge broadcast for replicate), so the gradient is a few slice additions, not a scatter."""
    n = x.shape[axis]

    def part(start, stop, step=1):
        return _getitem(x, index=_along(axis, builtins.slice(start, stop, step)), basic=True)

    def edge(i, width):
        shape = x.shape[:axis] + (width,) + x.shape[axis + 1:]
        return broadcast_to(part(i, i + 1), shape)

    if mode == "reflect":  # left: x[before], ..., x[1]; right: x[n - 2], ..., x[n - 1 - after]
        left = part(before, 0, -1) if before else None
        right = part(n - 2, n - 2 - after if n - 2 - after >= 0 else None, -1) if after else None
    elif mode == "replicate":
        left = edge(0, before) if before else None
        right = edge(n - 1, after) if after else None
    else:  # circular
        left = part(n - before, n) if before else None
        right = part(0, after) if after else None
    return left, x, right


def _pad_constant(x, axis, before, after, value, xp):
    n = x.shape[axis]
    if before < 0 or after < 0:
        start, stop = builtins.max(-before, 0), n - builtins.max(-after, 0)
        if start > stop:
            raise ShapeError(f"pad: widths {(before, after)} crop more than the {n} entries of axis {axis}")
        x = _getitem(x, index=_along(axis, builtins.slice(start, stop)), basic=True)
    pieces = []
    for width in (before, after):
        if width > 0:
            shape = x.shape[:axis] + (width,) + x.shape[axis + 1:]
            pieces.append(Tensor(xp.full(shape, value, dtype=x.dtype)))
        else:
            pieces.append(None)
    parts = [p for p in (pieces[0], x, pieces[1]) if p is not None]
    return concatenate(parts, axis=axis) if len(parts) > 1 else x

