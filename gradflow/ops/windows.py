"""Sliding windows over the last two axes, on the array module: the im2col / col2im pair.

``windows`` is a strided *view* ``(..., OH, OW, kh, kw)`` of a padded array (no copy; pooling
reduces over it; conv.py builds its own batch-last view). ``windows_add`` is its adjoint, col2im: it adds a
``(..., OH, OW, kh, kw)`` array back onto the padded grid with one strided slice per kernel
offset — kh·kw vectorized adds, never a loop over pixels or the batch. NumPy and CuPy share the
code: both have ``lib.stride_tricks.as_strided`` with strides in bytes.
"""
from __future__ import annotations

from ..errors import ShapeError


def pair(value, name):
    """``value`` as a pair of ints (PyTorch accepts an int or a pair for each spatial argument)."""
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, (tuple, list))):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value}")
    return value


def output_size(size, kernel, stride, padding, dilation):
    """Output length along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def output_shape(op_name, spatial, kernel, stride, padding, dilation):
    """(OH, OW), or a ShapeError naming the sizes when the kernel does not fit the padded input."""
    out = tuple(output_size(s, k, st, p, d) for s, k, st, p, d in zip(spatial, kernel, stride, padding, dilation))
    if min(out) < 1:
        raise ShapeError(f"{op_name}: kernel {kernel} (dilation {dilation}) does not fit input {tuple(spatial)} "
                         f"padded by {padding}; the output would be {out}")
    return out


def pad(backend, x, padding, value=0.0):
    """``x`` with ``padding`` (ph, pw) cells of ``value`` around its last two axes (x itself if none)."""
    ph, pw = padding
    if not ph and not pw:
        return x
    out = backend.xp.full(x.shape[:-2] + (x.shape[-2] + 2 * ph, x.shape[-1] + 2 * pw), value, dtype=x.dtype)
    out[..., ph:ph + x.shape[-2], pw:pw + x.shape[-1]] = x
    return out


def windows(backend, padded, kernel, stride, dilation, out_hw):
    """The view ``(..., OH, OW, kh, kw)``: window (p, q) of ``padded``, sampled with ``dilation``."""
    *lead, sh, sw = padded.strides
    shape = padded.shape[:-2] + tuple(out_hw) + tuple(kernel)
    strides = (*lead, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    return backend.xp.lib.stride_tricks.as_strided(padded, shape=shape, strides=strides)


def windows_add(backend, cols, padded_hw, stride, dilation, padding, size):
    """col2im: the sum of ``cols`` (..., OH, OW, kh, kw) over every window cell, on a zero grid
    ``padded_hw``, cropped by ``padding`` to ``size`` — the adjoint of ``windows`` after ``pad``."""
    *lead, oh, ow, kh, kw = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    if (sh, sw) == (kh, kw) and (dh, dw) == (1, 1) and (oh * kh, ow * kw) == tuple(padded_hw):
        # Windows that tile the grid exactly (a 2×2 pool of an even image) do not overlap:
        # col2im is one transposing copy.
        n = len(lead)
        out = cols.transpose(tuple(range(n)) + (n, n + 2, n + 1, n + 3)).reshape(tuple(lead) + tuple(padded_hw))
    else:
        out = backend.xp.zeros(tuple(lead) + tuple(padded_hw), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                out[..., i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += cols[..., i, j]
    ph, pw = padding
    return out[..., ph:ph + size[0], pw:pw + size[1]] if ph or pw else out

