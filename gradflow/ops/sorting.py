"""Sorting and order statistics: sort, argsort, topk, median.

Values are gathered from the input by the order's indices (``take_along``), so the gradient of a
value goes to the entry it came from. Ties: NumPy's stable order (equal entries keep their
positions) in both directions, which is PyTorch's ``stable=True`` order.
"""
from __future__ import annotations

import numpy as np

from ..backends import of_array
from ..errors import ShapeError
from ..tensor import Tensor, _axis_alias, _keepdims_alias
from .indexing import _take_along, one_axis
from .scan import values_indices
from .shape import _getitem, reshape


def _order(data, axis, descending):
    """Stable argsort along ``axis``; descending keeps equal entries in their original order too."""
    xp = of_array(data).xp
    keys = data
    if descending:
        keys = -(data.astype(np.int64) if data.dtype.kind in "ub" else data)
    if xp is np:
        return np.argsort(keys, axis=axis, kind="stable")
    return xp.argsort(keys, axis=axis)  # CuPy's sort is a stable radix sort


def _prepared(x, axis, dim, what):
    axis = _axis_alias(axis, dim)
    axis = -1 if axis is None else axis
    if x.ndim == 0:
        one_axis(axis, 0, x.shape, what)
        return reshape(x, (1,)), 0
    return x, one_axis(axis, x.ndim, x.shape, what)


def _back(t, x):
    return reshape(t, ()) if x.ndim == 0 else t


def sort(x, axis=-1, descending=False, stable=False, *, dim=None):
    """PyTorch's sort: (values, indices) along ``axis`` (last by default). Always stable.

    >>> gradflow.sort(gradflow.tensor([3., 1., 2.])).values.tolist()
    [1.0, 2.0, 3.0]
    """
    operand, axis = _prepared(x, None if dim is not None else axis, dim, "sort")
    indices = _order(operand.data, axis, descending)
    return values_indices(_back(_take_along(operand, index=indices, axis=axis), x), _back(Tensor(indices), x))


def argsort(x, axis=-1, descending=False, stable=False, *, dim=None):
    """Indices that sort ``x`` along ``axis`` (int64, no gradient; stable).

    >>> gradflow.argsort(gradflow.tensor([3., 1., 2.])).tolist()
    [1, 2, 0]
    """
    operand, axis = _prepared(x, None if dim is not None else axis, dim, "argsort")
    return _back(Tensor(_order(operand.data, axis, descending).astype(np.int64, copy=False)), x)


def topk(x, k, dim=-1, largest=True, sorted=True, *, axis=None):
    """PyTorch's topk: the ``k`` largest (or smallest) entries along ``dim`` and their indices, largest
    first.

    >>> gradflow.topk(gradflow.tensor([1., 5., 3.]), 2).values.tolist()
    [5.0, 3.0]
    """
    operand, a = _prepared(x, axis, None if axis is not None else dim, "topk")
    n = operand.shape[a]
    if not 0 <= k <= n:
        raise ShapeError(f"topk: k={k} is out of range for axis {a} of size {n} (shape {x.shape})")
    order = _order(operand.data, a, largest)
    indices = order[(slice(None),) * a + (slice(0, k),)]
    return values_indices(_back(_take_along(operand, index=indices, axis=a), x), _back(Tensor(indices), x))


def median(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """PyTorch's median: the lower of the two middle values for an even count (NumPy's median averages
    them). Without ``dim``, of all entries (a 0-d tensor); with it, (values, indices) along ``dim``.

    >>> gradflow.median(gradflow.tensor([4., 1., 3., 2.])).item()
    2.0
    """
    dim = _axis_alias(axis, dim)
    keep = bool(_keepdims_alias(keepdim, keepdims))
    if dim is None:
        if x.numel() == 0:
            raise ShapeError(f"median of an empty tensor (shape {x.shape}) has no value")
        flat = reshape(x, (-1,))
        order = _order(flat.data, 0, False)
        middle = order[(flat.shape[0] - 1) // 2:][:1]
        return reshape(_take_along(flat, index=middle, axis=0), ())
    operand, a = _prepared(x, dim, None, "median")
    n = operand.shape[a]
    if n == 0:
        raise ShapeError(f"median along axis {a} of size 0 (shape {x.shape}) has no value")
    order = _order(operand.data, a, False)
    middle = order[(slice(None),) * a + (slice((n - 1) // 2, (n - 1) // 2 + 1),)]
    values = _take_along(operand, index=middle, axis=a)
    indices = Tensor(middle)
    if not keep:
        values = _getitem(values, index=(slice(None),) * a + (0,), basic=True)
        indices = Tensor(middle[(slice(None),) * a + (0,)])
    if x.ndim == 0:
        values, indices = reshape(values, ()), Tensor(middle.reshape(()))
    return values_indices(values, indices)
