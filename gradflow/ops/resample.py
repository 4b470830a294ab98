"""interpolate: nearest and bilinear resizing as products with constant interpolation matrices.

Both modes are separable: ``out = A_h · x · A_wᵀ`` with A (out, in) holding, per output row,
one 1 (nearest) or the two linear weights (bilinear). As matmul keeps an operand only when the
other needs a gradient, and the matrices need none, resizing keeps nothing for backward; its
gradients, JVPs and second derivatives are matmul's. Source coordinates follow PyTorch
(align_corners=False): with scale = in/out, or 1/scale_factor when a scale factor is given,
nearest reads ``floor(dst·scale)`` and bilinear ``max((dst + ½)·scale - ½, 0)``.
"""
from __future__ import annotations

import math

import numpy as np

from ..backends import of_array
from ..errors import ShapeError
from ..tensor import Tensor


def interpolation_matrix(size, out, scale, mode):
    """(out, size) float64 matrix resampling one axis of length ``size`` to ``out``."""
    matrix = np.zeros((out, size))
    rows = np.arange(out)
    if mode == "nearest":
        matrix[rows, np.minimum(np.floor(rows * scale).astype(np.int64), size - 1)] = 1.0
        return matrix
    source = np.maximum((rows + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    weight_high = source - low
    np.add.at(matrix, (rows, low), 1.0 - weight_high)
    np.add.at(matrix, (rows, high), weight_high)
    return matrix


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize the last two axes of (N, C, H, W) ``x`` to ``size`` or by ``scale_factor``
    (``mode`` "nearest" or "bilinear", align_corners=False as in PyTorch's default).

    >>> import gradflow as gf
    >>> gf.nn.functional.interpolate(gf.ones(1, 2, 3, 3), scale_factor=2).shape
    (1, 2, 6, 6)
    """
    if x.ndim != 4:
        raise ShapeError(f"interpolate supports (N, C, H, W) inputs, got shape {x.shape}")
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"interpolate: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if align_corners:
        raise ValueError("interpolate: only align_corners=False is supported")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = x.shape[2:]
    if size is not None:
        out = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        scales = tuple(i / o for i, o in zip(spatial, out))
    else:
        factors = (scale_factor, scale_factor) if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        out = tuple(int(math.floor(i * f)) for i, f in zip(spatial, factors))
        scales = tuple(1.0 / f for f in factors)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"interpolate: output size {out} for input {x.shape} must be two positive sizes")
    xp = of_array(x.data).xp
    rows, cols = (Tensor(xp.asarray(interpolation_matrix(i, o, s, mode).astype(x.dtype)))
                  for i, o, s in zip(spatial, out, scales))
    return rows @ (x @ cols.T)
