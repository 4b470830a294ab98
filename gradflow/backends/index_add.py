"""``out[index] += values`` with repeated indices accumulating: getitem's backward (scatter-add),
by the cheapest route that gives add.at's sums bit for bit (the same additions in the same order).

``np.add.at`` handles every index but visits one element at a time (5 ms for 256 rows of 1024
here). Two common cases need none of that:

- No integer array in the index (basic items and boolean masks): each element is selected at
  most once, so a plain fancy ``+=`` is exact (a mask's True positions are distinct, and two
  masks pair distinct positions). CuPy takes the same route. A single mask of ``out``'s shape
  goes through its flat positions (``flatnonzero``), which NumPy adds at several times the
  speed of a boolean setitem.
- One integer array among full slices (``x[idx]``, ``x[:, idx]``, an embedding lookup): the
  rows are sorted by index and added in passes, the first occurrence of every index in one fancy
  add, the second occurrences in the next, and so on (as many passes as the most repeated
  index occurs), so no pass sees an index twice and the sums are add.at's.

Anything else (several integer arrays, integers or slices beside one) keeps ``add.at`` on NumPy
and ``cupyx.scatter_add`` on CuPy (atomic adds, already the GPU's fast path).
"""
from __future__ import annotations

import numpy as np

_FULL = slice(None)


def selects_each_once(index) -> bool:
    """True when the index holds no integer array (nor a list, which could be one)."""
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if isinstance(item, list) or (hasattr(item, "dtype") and item.dtype.kind != "b"):
            return False
    return True


def _one_integer_array(index):
    """(axis, array) when the index is one integer array among full slices, else None."""
    items = index if isinstance(index, tuple) else (index,)
    found = None
    for axis, item in enumerate(items):
        if isinstance(item, slice) and item == _FULL:
            continue
        if found is None and hasattr(item, "dtype") and item.dtype.kind in "iu" and item.ndim > 0:
            found = (axis, item)
            continue
        return None
    return found


def numpy_index_add(out, index, values):
    if selects_each_once(index):
        mask = index[0] if isinstance(index, tuple) and len(index) == 1 else index
        if getattr(mask, "shape", None) == out.shape and out.flags.c_contiguous:
            # One full-shape mask: NumPy's boolean setitem is 3x slower than flat positions.
            out.reshape(-1)[np.flatnonzero(mask)] += values
        else:
            out[index] += values
        return
    one = _one_integer_array(index)
    if one is None:
        np.add.at(out, index, values)
        return
    axis, positions = one
    if positions.size == 0:
        return
    if np.shape(values) != out.shape[:axis] + positions.shape + out.shape[axis + 1:]:
        np.add.at(out, index, values)  # values broadcast: the general route
        return
    flat = positions.reshape(-1) % out.shape[axis]  # negatives count from the end (forward checked bounds)
    rows = values.reshape(out.shape[:axis] + (flat.size,) + out.shape[axis + 1:])
    # Sort by position (stable: repeats keep their order) and number each repeat: the k-th rows of
    # all positions go in one fancy add, whose positions are distinct. Pass k adds the k-th repeat
    # onto the sum of the earlier ones, the order add.at adds in, so the sums are its sums.
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    starts = np.flatnonzero(first)
    repeat = np.arange(ordered.size) - starts[np.cumsum(first) - 1]
    rows = np.moveaxis(rows, axis, 0)
    target = np.moveaxis(out, axis, 0)
    for k in range(int(repeat.max()) + 1):
        take = order[repeat == k] if k else order[starts]
        target[flat[take]] += rows[take]
