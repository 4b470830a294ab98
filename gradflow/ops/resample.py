"""interpolate: nearest and (bi)linear resizing as products with constant interpolation matrices.

Every mode is separable: ``out = A_h · x · A_wᵀ`` (or ``x · Aᵀ`` for one axis) with A (out, in)
holding, per output row, one 1 (nearest) or the two linear weights. As matmul keeps an operand only
when the other needs a gradient, and the matrices need none, resizing keeps nothing for backward;
its gradients, JVPs and second derivatives are matmul's. Source coordinates follow PyTorch: with
scale = in/out, or 1/scale_factor when a scale factor is given, "nearest" reads
``floor(dst·scale)``, "nearest-exact" ``floor((dst + ½)·scale)``, and the linear modes
``max((dst + ½)·scale - ½, 0)``, or with ``align_corners=True`` ``dst·(in - 1)/(out - 1)`` (the
corner pixels' centres coincide).
"""
from __future__ import annotations

import math

import numpy as np

from ..backends import of_array
from ..errors import ShapeError
from ..tensor import Tensor

_LINEAR = {"linear": 3, "bilinear": 4}       # the input rank each linear mode takes
_NEAREST = ("nearest", "nearest-exact")


def interpolation_matrix(size, out, scale, mode, align_corners=False):
    """(out, size) float64 matrix resampling one axis of length ``size`` to ``out``."""
    matrix = np.zeros((out, size))
    rows = np.arange(out)
    if mode in _NEAREST:
        offset = 0.5 if mode == "nearest-exact" else 0.0
        matrix[rows, np.minimum(np.floor((rows + offset) * scale).astype(np.int64), size - 1)] = 1.0
        return matrix
    if align_corners:
        source = rows * ((size - 1) / (out - 1)) if out > 1 else np.zeros(out)
    else:
        source = np.maximum((rows + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    weight_high = source - low
    np.add.at(matrix, (rows, low), 1.0 - weight_high)
    np.add.at(matrix, (rows, high), weight_high)
    return matrix


def _as_tuple(value, count, name):
    values = (value,) * count if isinstance(value, (int, float)) else tuple(value)
    if len(values) != count:
        raise ValueError(f"interpolate: {name} {value} must give {count} value(s) for the {count} spatial axes")
    return values


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
    """Resize the spatial axes of (N, C, L) or (N, C, H, W) ``x`` to ``size`` or by ``scale_factor``.

    ``mode``: "nearest" or "nearest-exact" (either rank), "linear" (N, C, L) or "bilinear"
    (N, C, H, W); ``align_corners`` (linear modes only) as in PyTorch, False by default.
    ``recompute_scale_factor=True`` samples at in/out instead of 1/scale_factor.

    >>> import gradflow as gf
    >>> gf.nn.functional.interpolate(gf.ones(1, 2, 3, 3), scale_factor=2).shape
    (1, 2, 6, 6)
    >>> gf.nn.functional.interpolate(gf.tensor([[[0., 3.]]]), size=4, mode="linear", align_corners=True).tolist()
    [[[0.0, 1.0, 2.0, 3.0]]]
    """
    if mode not in _NEAREST and mode not in _LINEAR:
        raise ValueError(f"interpolate: mode must be one of 'nearest', 'nearest-exact', 'linear', 'bilinear', "
                         f"got {mode!r}")
    if x.ndim not in (3, 4) or (mode in _LINEAR and x.ndim != _LINEAR[mode]):
        wanted = {3: "(N, C, L)", 4: "(N, C, H, W)"}
        shapes = wanted[_LINEAR[mode]] if mode in _LINEAR else "(N, C, L) or (N, C, H, W)"
        raise ShapeError(f"interpolate: mode {mode!r} takes {shapes} inputs, got shape {x.shape}")
    if align_corners is not None and mode in _NEAREST:
        raise ValueError(f"interpolate: align_corners applies to the linear modes only, not {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = x.shape[2:]
    if size is not None:
        out = tuple(int(s) for s in _as_tuple(size, len(spatial), "size"))
        scales = tuple(i / o if o else 0.0 for i, o in zip(spatial, out))
    else:
        factors = tuple(float(f) for f in _as_tuple(scale_factor, len(spatial), "scale_factor"))
        if min(factors) <= 0:
            raise ValueError(f"interpolate: scale_factor {scale_factor} must be positive")
        out = tuple(int(math.floor(i * f)) for i, f in zip(spatial, factors))
        scales = (tuple(i / o if o else 0.0 for i, o in zip(spatial, out)) if recompute_scale_factor
                  else tuple(1.0 / f for f in factors))
    if min(out) < 1:
        raise ValueError(f"interpolate: output size {out} for input {x.shape} must be positive")
    xp = of_array(x.data).xp
    mats = [Tensor(xp.asarray(interpolation_matrix(i, o, s, mode, bool(align_corners)).astype(x.dtype)))
            for i, o, s in zip(spatial, out, scales)]
    if len(mats) == 1:
        return x @ mats[0].T
    return mats[0] @ (x @ mats[1].T)
