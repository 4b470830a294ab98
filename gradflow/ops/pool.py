"""Pooling: max-pool as a primitive that keeps its argmax, average pools as compositions.

# Note: [what max-pool keeps]
Backward routes each output gradient to the input cell that won its window, so the primitive
keeps only *which cell of the window* won: an index below kh·kw, stored at the narrowest unsigned
type that holds it (uint8 for any window up to 16×16) — a 2×2 pool of float32 activations keeps
one byte per output instead of the input's four per input cell. Neither x nor the output is
saved. The rule scatters g into the winning cells (``window_scatter``, col2im) and that
scatter's own VJP is the matching gather (``window_gather``), so every order is exact where the
maximum is unique. Windows that tile the image (stride = kernel, no padding or dilation, the
kernel dividing H and W: the 2×2 pool of a CNN) skip the window view and its columns: forward and
scatter run on cell-major rows (pool_tiles.py, the note [tiling windows]), bit for bit the same.

avg_pool2d is conv2d with a constant kernel of ones on the channels folded into the batch, divided
by kh·kw — or, where windows differ in size (count_include_pad=False, ceil mode), by each window's
cell count, a constant (OH, OW) array that the product keeps; adaptive_avg_pool2d is two products
with constant pooling matrices (PyTorch's bins floor(i·H/out) .. ceil((i+1)·H/out)).
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor
from .conv import _conv2d
from .registry import data_of, primitive
from .movement import pad as pad_op
from .shape import reshape, squeeze, unsqueeze
from .pool_tiles import tiled_max, tiled_scatter, tiles
from .windows import pair, windows, windows_add


def _index_dtype(cells):
    return np.min_scalar_type(max(cells - 1, 0))


def pool_geometry(name, size, kernel, stride, padding, dilation, ceil_mode):
    """(OH, OW) and the grid (Hp, Wp) the windows read: the input, ``padding`` on both sides and,
    in ceil mode, the cells past the bottom/right edge that the last windows reach.

    PyTorch's rule: floor((size + 2p - d(k-1) - 1) / s) + 1 windows, rounded up instead in ceil
    mode, where the last window is dropped if it would start past the input and its left padding."""
    out, grid = [], []
    for s, k, st, p, d in zip(size, kernel, stride, padding, dilation):
        reach, span = d * (k - 1) + 1, s + 2 * p - d * (k - 1) - 1
        count = (-(-span // st) if ceil_mode else span // st) + 1
        if ceil_mode and (count - 1) * st >= s + p:
            count -= 1
        out.append(count)
        grid.append(max(s + 2 * p, (count - 1) * st + reach))
    if min(out) < 1:
        raise ShapeError(f"{name}: kernel {kernel} (dilation {dilation}) does not fit input {tuple(size)} "
                         f"padded by {padding}; the output would be {tuple(out)}")
    return tuple(out), tuple(grid)


def _flat_windows(backend, x, kernel, stride, padding, dilation, ceil_mode, fill):
    out_hw, grid = pool_geometry("max_pool2d", x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    (ph, pw), (h, w) = padding, x.shape[2:]
    padded = x
    if grid != (h, w):
        padded = backend.xp.full(x.shape[:2] + grid, fill, dtype=x.dtype)
        padded[..., ph:ph + h, pw:pw + w] = x
    view = windows(backend, padded, kernel, stride, dilation, out_hw)
    return view.reshape(view.shape[:4] + (kernel[0] * kernel[1],))


@primitive("max_pool2d", keeps=1)
def _max_pool2d(backend, x, kernel, stride, padding, dilation, ceil_mode=False):
    if tiles(x.shape[2:], kernel, stride, padding, dilation):  # ceil mode adds no window then
        return tiled_max(backend.xp, x, kernel, _index_dtype(kernel[0] * kernel[1]))
    return window_max(backend, x, kernel, stride, padding, dilation, ceil_mode)


def window_max(backend, x, kernel, stride, padding, dilation, ceil_mode=False):
    """(max, argmax) of every window on a window view: the general path of max-pool's forward."""
    flat = _flat_windows(backend, x, kernel, stride, padding, dilation, ceil_mode, -np.inf)
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
def window_gather(backend, x, index, kernel, stride, padding, dilation, ceil_mode=False):
    """Cell ``index`` of each window of ``x`` (the forward of max-pool once its argmax is known)."""
    flat = _flat_windows(backend, x, kernel, stride, padding, dilation, ceil_mode, 0.0)
    return backend.xp.take_along_axis(flat, index[..., None].astype(np.intp), axis=-1)[..., 0]


@primitive("window_scatter")
def window_scatter(backend, g, index, size, kernel, stride, padding, dilation, ceil_mode=False):
    """Each g added at cell ``index`` of its window on a zero image of spatial ``size`` (col2im)."""
    if tiles(size, kernel, stride, padding, dilation):
        return tiled_scatter(backend.xp, g, index, size, kernel)
    return window_scatter_cols(backend, g, index, size, kernel, stride, padding, dilation, ceil_mode)


def window_scatter_cols(backend, g, index, size, kernel, stride, padding, dilation, ceil_mode=False):
    """window_scatter's general path: one-hot columns (…, kh·kw) times g, then col2im."""
    cells = backend.xp.arange(kernel[0] * kernel[1], dtype=index.dtype)
    cols = (index[..., None] == cells) * g[..., None]          # (N, C, OH, OW, kh·kw), g in one cell
    cols = cols.reshape(g.shape + tuple(kernel))
    grid = pool_geometry("max_pool2d", size, kernel, stride, padding, dilation, ceil_mode)[1]
    image = windows_add(backend, cols, grid, stride, dilation, padding, size)
    return image[..., :size[0], :size[1]]  # without padding windows_add leaves ceil mode's extra cells on


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


def _batched(name, x):
    """(N, C, H, W) ``x`` as it is, or an unbatched (C, H, W) one with a batch axis of 1."""
    if x.ndim == 3:
        return unsqueeze(x, 0), True
    if x.ndim != 4:
        raise ShapeError(f"{name} expects a (N, C, H, W) or (C, H, W) input, got shape {x.shape}")
    return x, False


def _pool_args(name, kernel_size, stride, padding):
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == () else pair(stride, "stride")
    padding = pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{name}: kernel_size {kernel} and stride {stride} must be positive and padding "
                         f"{padding} non-negative")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel size {kernel}")
    return kernel, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum of each (kh, kw) window of (N, C, H, W) ``x``; ``stride`` defaults to the kernel.

    ``ceil_mode`` rounds the output size up (the last window may hang past the input, as long as it
    starts inside it or its left padding). ``return_indices=True`` also returns, as PyTorch does, the
    int64 position of each maximum in its channel's flattened H·W image, which ``max_unpool2d``
    takes. Backward keeps only the argmax of each window, as uint8 for windows up to 16×16.

    >>> import gradflow as gf
    >>> gf.nn.functional.max_pool2d(gf.arange(16.).reshape(1, 1, 4, 4), 2).numpy().tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    >>> gf.nn.functional.max_pool2d(gf.arange(9.).reshape(1, 3, 3), 2, ceil_mode=True, return_indices=True)[1].tolist()
    [[[4, 5], [7, 8]]]
    """
    x4, unbatched = _batched("max_pool2d", x)
    kernel, stride, padding = _pool_args("max_pool2d", kernel_size, stride, padding)
    params = dict(kernel=kernel, stride=stride, padding=padding, dilation=pair(dilation, "dilation"),
                  ceil_mode=bool(ceil_mode))
    if min(params["dilation"]) < 1:
        raise ValueError(f"max_pool2d: dilation {params['dilation']} must be positive")
    out = _max_pool2d(x4, **params)
    if unbatched:
        out = squeeze(out, 0)
    if not return_indices:
        return out
    node = out.grad_fn
    while node is not None and node.op is not _max_pool2d:  # through the squeeze of an unbatched input
        node = node.next[0]
    if node is not None:
        index = node.saved[-1]      # the argmax the node keeps for backward
    else:                           # no graph recorded: run the window argmax again, on arrays
        data = data_of(x4)
        index = _max_pool2d.forward(_backend_of(data), data, **params)[1]
    flat = Tensor(flat_indices(_xp_of(x4), index, x4.shape[3], **params))
    return out, (flat[0] if unbatched else flat)


def flat_indices(xp, index, width, kernel, stride, padding, dilation, ceil_mode=False):
    """PyTorch's pooling indices: window cell ``index`` (below kh·kw) of output (i, j) as the
    position row·W + col of that cell in the unpadded (H, W) image (int64)."""
    out_h, out_w = index.shape[-2:]
    cell = index.astype(np.int64)
    rows = (xp.arange(out_h, dtype=np.int64)[:, None] * stride[0] - padding[0]) + (cell // kernel[1]) * dilation[0]
    cols = (xp.arange(out_w, dtype=np.int64) * stride[1] - padding[1]) + (cell % kernel[1]) * dilation[1]
    return rows * width + cols


def _cells_per_window(size, out, kernel, stride, padding, count_include_pad):
    """How many cells each window along one axis averages (PyTorch's divisor): those inside the
    input and its padding, or with ``count_include_pad=False`` inside the input only."""
    start = np.arange(out) * stride - padding
    stop = np.minimum(start + kernel, size + padding)
    if count_include_pad:
        return stop - start
    return np.minimum(stop, size) - np.maximum(start, 0)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """The mean of each (kh, kw) window: zero padding counted by default (PyTorch's
    count_include_pad=True); ``count_include_pad=False`` divides by the real cells only, and
    ``divisor_override`` by a number of your choosing. ``ceil_mode`` rounds the output size up as
    max_pool2d does; cells past the padded input are never counted. A conv2d with a constant
    kernel: it keeps nothing but, where windows differ in size, their divisors.

    >>> import gradflow as gf
    >>> gf.nn.functional.avg_pool2d(gf.ones(1, 1, 3, 3), 2, padding=1, count_include_pad=False).numpy().tolist()
    [[[[1.0, 1.0], [1.0, 1.0]]]]
    """
    x4, unbatched = _batched("avg_pool2d", x)
    kernel, stride, padding = _pool_args("avg_pool2d", kernel_size, stride, padding)
    n, c, h, w = x4.shape
    out_hw, grid = pool_geometry("avg_pool2d", (h, w), kernel, stride, padding, (1, 1), bool(ceil_mode))
    xp = _xp_of(x4)
    ones = Tensor(xp.ones((1, 1) + kernel, dtype=x4.dtype))
    folded = reshape(x4, (n * c, 1, h, w))
    extra = (grid[0] - h - 2 * padding[0], grid[1] - w - 2 * padding[1])
    if any(extra):  # ceil mode: zeros past the bottom/right edge too (the conv pads both sides alike)
        folded = pad_op(folded, (padding[1], padding[1] + extra[1], padding[0], padding[0] + extra[0]))
        total = _conv2d(folded, ones, stride=stride, padding=(0, 0), dilation=(1, 1), groups=1)
    else:
        total = _conv2d(folded, ones, stride=stride, padding=padding, dilation=(1, 1), groups=1)
    if divisor_override:
        out = total / float(divisor_override)
    else:
        rows, cols = (_cells_per_window(s, o, k, st, p, count_include_pad)
                      for s, o, k, st, p in zip((h, w), out_hw, kernel, stride, padding))
        divisor = np.outer(rows, cols)
        if (divisor == kernel[0] * kernel[1]).all():
            out = total / float(kernel[0] * kernel[1])
        else:
            out = total * Tensor(xp.asarray((1.0 / divisor).astype(x4.dtype)))
    out = reshape(out, (n, c) + out_hw)
    return squeeze(out, 0) if unbatched else out


def _backend_of(data):
    from ..backends import of_array

    return of_array(data)


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
