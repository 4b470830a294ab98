"""NumPy's splitting by sections or cut points: array_split (PyTorch's tensor_split), hsplit,
vsplit, dsplit.

``gradflow.split`` is PyTorch's (pieces of a given size, or a list of sizes); NumPy's ``split``
takes a number of equal sections or a list of cut points instead, and is not provided under that
name because the two would collide. These are its relatives, compositions of basic slicing, so the
gradient, JVP and second derivatives are getitem's.
"""
from __future__ import annotations

import builtins
import operator

from ..errors import ShapeError
from ..tensor import Tensor
from .indexing import one_axis
from .shape import _getitem

_ALL = builtins.slice(None)


def array_split(x: Tensor, indices_or_sections, axis=0, *, dim=None):
    """NumPy's array_split: ``n`` sections (the first ``len % n`` one entry longer), or the pieces
    between the cut points of a list (NumPy's slice rules: negative points count from the end,
    points past the end or out of order give empty pieces).

    >>> [p.tolist() for p in gradflow.array_split(gradflow.arange(5.0), 3)]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """
    a = one_axis(axis if dim is None else dim, x.ndim, x.shape, "array_split")
    n = x.shape[a]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, (tuple, list)):
        cuts = [operator.index(c) for c in indices_or_sections]
        bounds = list(zip([0, *cuts], [*cuts, None]))
    else:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ShapeError(f"array_split: the number of sections must be positive, got {sections}")
        size, extra = divmod(n, sections)
        starts = [i * size + builtins.min(i, extra) for i in range(sections + 1)]
        bounds = list(zip(starts[:-1], starts[1:]))
    return [_getitem(x, index=(_ALL,) * a + (builtins.slice(start, stop),), basic=True) for start, stop in bounds]


def tensor_split(x: Tensor, indices_or_sections, dim=0):
    """PyTorch's name for ``array_split`` (a tuple, as PyTorch returns)."""
    return tuple(array_split(x, indices_or_sections, dim))


def _equal_split(x, indices_or_sections, axis, what):
    """NumPy's split: a number of sections must divide the axis evenly."""
    if not isinstance(indices_or_sections, (tuple, list, Tensor)):
        sections = operator.index(indices_or_sections)
        if sections <= 0 or x.shape[axis] % sections:
            raise ShapeError(f"{what}: {sections} sections do not divide axis {axis} of shape {x.shape} "
                             "equally (array_split allows unequal sections)")
    return array_split(x, indices_or_sections, axis)


def hsplit(x: Tensor, indices_or_sections):
    """Split along axis 1 (axis 0 of a 1-d tensor), as NumPy's and PyTorch's hsplit."""
    if x.ndim == 0:
        raise ShapeError("hsplit needs a tensor of at least 1 axis, got a 0-d tensor")
    return _equal_split(x, indices_or_sections, 1 if x.ndim > 1 else 0, "hsplit")


def vsplit(x: Tensor, indices_or_sections):
    """Split along axis 0 of a tensor of at least 2 axes, as NumPy's and PyTorch's vsplit."""
    if x.ndim < 2:
        raise ShapeError(f"vsplit needs a tensor of at least 2 axes, got shape {x.shape}")
    return _equal_split(x, indices_or_sections, 0, "vsplit")


def dsplit(x: Tensor, indices_or_sections):
    """Split along axis 2 of a tensor of at least 3 axes, as NumPy's and PyTorch's dsplit."""
    if x.ndim < 3:
        raise ShapeError(f"dsplit needs a tensor of at least 3 axes, got shape {x.shape}")
    return _equal_split(x, indices_or_sections, 2, "dsplit")
