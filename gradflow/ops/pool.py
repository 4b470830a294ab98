"""Pooling: max-pool as a primitive that keeps its argmax, average pools as compositions.

# Note: [what max-pool keeps]
Backward routes each output gradient to the input cell that won its window, so the primitive
keeps only *which cell of the window* won: an index below kh·kw, stored at the narrowest unsigned
type that holds it (uint8 for any window up to 16×16) — a 2×2 pool of float32 activations keeps
one byte per output instead of the input's four per input cell. Neither x nor the output is
saved. The rule scatters g into the winning cells (``window_scatter``, col2im) and that
scatter's own VJP is the matching gather (``window_gather``), so every order is exact where the
maximum is unique.

avg_pool2d is conv2d with a constant 1/(kh·kw) kernel on the channels folded into the batch
(PyTorch's count_include_pad=True), so it keeps nothing; adaptive_avg_pool2d is two products
with constant pooling matrices (PyTorch's bins floor(i·H/out) .. ceil((i+1)·H/out)).
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor
from .conv import _conv2d
from .registry import data_of, primitive
from .shape import reshape
from .windows import output_shape, pad, pair, windows, windows_add


def _index_dtype(cells):
    return np.min_scalar_type(max(cells - 1, 0))


def _flat_windows(backend, x, kernel, stride, padding, dilation, fill):
    out_hw = output_shape("max_pool2d", x.shape[2:], kernel, stride, padding, dilation)
    view = windows(backend, pad(backend, x, padding, fill), kernel, stride, dilation, out_hw)
    return view.reshape(view.shape[:4] + (kernel[0] * kernel[1],))


@primitive("max_pool2d", keeps=1)
def _max_pool2d(backend, x, kernel, stride, padding, dilation):
    flat = _flat_windows(backend, x, kernel, stride, padding, dilation, -np.inf)
    index = flat.argmax(axis=-1)
    out = backend.xp.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    return out, index.astype(_index_dtype(flat.shape[-1]))


@_max_pool2d.vjp
def _max_pool2d_vjp(ctx, g):
    (index,) = ctx.saved
    return window_scatter(g, index=index, size=ctx.shapes[0][2:], **ctx.params)


@_max_pool2d.jvp
def _max_pool2d_jvp(ctx, t):
    from ..backends import of_array

    x = ctx.inputs[0].data
    index = _max_pool2d.forward(of_array(x), x, **ctx.params)[1]
    return window_gather(t, index=index, **ctx.params)


@primitive("window_gather")
def window_gather(backend, x, index, kernel, stride, padding, dilation):
    """Cell ``index`` of each window of ``x`` (the forward of max-pool once its argmax is known)."""
    flat = _flat_windows(backend, x, kernel, stride, padding, dilation, 0.0)
    return backend.xp.take_along_axis(flat, index[..., None].astype(np.intp), axis=-1)[..., 0]


@primitive("window_scatter")
def window_scatter(backend, g, index, size, kernel, stride, padding, dilation):
    """Each g added at cell ``index`` of its window on a zero image of spatial ``size`` (col2im)."""
    cells = backend.xp.arange(kernel[0] * kernel[1], dtype=index.dtype)
    cols = (index[..., None] == cells) * g[..., None]          # (N, C, OH, OW, kh·kw), g in one cell
    cols = cols.reshape(g.shape + tuple(kernel))
    padded_hw = (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    return windows_add(backend, cols, padded_hw, stride, dilation, padding, size)


@window_gather.vjp
def _window_gather_vjp(ctx, g):
    return window_scatter(g, size=ctx.shapes[0][2:], **ctx.params)


@window_gather.jvp
def _window_gather_jvp(ctx, t):
    return window_gather(t, **ctx.params)


@window_scatter.vjp
def _window_scatter_vjp(ctx, g):
    params = dict(ctx.params)
    del params["size"]
    return window_gather(g, **params)


@window_scatter.jvp
def _window_scatter_jvp(ctx, t):
    return window_scatter(t, **ctx.params)


def _pool_args(name, x, kernel_size, stride, padding):
    if x.ndim != 4:
        raise ShapeError(f"{name} expects a (N, C, H, W) input, got shape {x.shape}")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == () else pair(stride, "stride")
    padding = pair(padding, "padding")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel size {kernel}")
    return kernel, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """The maximum of each (kh, kw) window of (N, C, H, W) ``x``; ``stride`` defaults to the kernel.

    Backward keeps only the argmax of each window, as uint8 for windows up to 16×16.

    >>> import gradflow as gf
    >>> gf.nn.functional.max_pool2d(gf.arange(16.).reshape(1, 1, 4, 4), 2).numpy().tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    kernel, stride, padding = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    return _max_pool2d(x, kernel=kernel, stride=stride, padding=padding, dilation=pair(dilation, "dilation"))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """The mean of each (kh, kw) window, zero padding counted (PyTorch's count_include_pad=True)."""
    kernel, stride, padding = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    n, c, h, w = x.shape
    xp_module = _xp_of(x)
    mean_kernel = Tensor(xp_module.full((1, 1) + kernel, 1.0 / (kernel[0] * kernel[1]), dtype=x.dtype))
    out = _conv2d(reshape(x, (n * c, 1, h, w)), mean_kernel, stride=stride, padding=padding, dilation=(1, 1),
                  groups=1)
    return reshape(out, (n, c) + out.shape[2:])


def _xp_of(x):
    from ..backends import of_array

    return of_array(data_of(x)).xp


def adaptive_pool_matrix(size, out, xp, dtype):
    """(out, size): row i averages PyTorch's bin floor(i·size/out) .. ceil((i+1)·size/out)."""
    matrix = np.zeros((out, size))
    for i in range(out):
        start, stop = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return Tensor(xp.asarray(matrix.astype(dtype)))


def adaptive_avg_pool2d(x, output_size):
    """Average-pool (N, C, H, W) ``x`` to ``output_size`` (an int, a pair, None keeps that axis)."""
    if x.ndim != 4:
        raise ShapeError(f"adaptive_avg_pool2d expects a (N, C, H, W) input, got shape {x.shape}")
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    out_h, out_w = (s if o is None else int(o) for s, o in zip(x.shape[2:], output_size))
    if out_h < 1 or out_w < 1:
        raise ValueError(f"adaptive_avg_pool2d: output size must be positive, got {output_size}")
    xp = _xp_of(x)
    rows = adaptive_pool_matrix(x.shape[2], out_h, xp, x.dtype)
    cols = adaptive_pool_matrix(x.shape[3], out_w, xp, x.dtype)
    return rows @ (x @ cols.T)
