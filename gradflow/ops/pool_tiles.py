"""Max-pool over windows that tile the image: the common 2×2/stride-2 case without window views.

# Note: [tiling windows]
When stride == kernel, there is no padding or dilation and the kernel divides H and W, window
cell (i, j) of every output is the strided slice ``x6[:, :, :, i, :, j]`` of the view
``x6 = x.reshape(N, C, OH, kh, OW, kw)``. The general path copies the window view to
(N, C, OH, OW, kh·kw) and runs ``argmax`` over its last axis, whose per-row overhead dominates
for 4-cell rows (0.5 ms for the digits CNN's first pool, 65k inputs). Here the cells are copied
once, cell-major, to (kh·kw, N·C·OH·OW), and everything after runs on whole contiguous rows:

- the maximum is ``max(axis=0)`` (NaN if any cell is NaN);
- the argmax is the number of leading cells that miss it — ``c != m`` where m is a number, ``c``
  is a number where m is NaN — which is ``argmax``'s rule exactly: the first cell equal to the
  maximum (-0.0 equals 0.0), or the first NaN;
- the output is gathered from the cells at that index, so its bits (the sign of a zero, a NaN's
  payload) are the first winning cell's, as the general path's ``take_along_axis`` gives.

The scatter (backward) writes ``(index == k) * g`` — the same product as the general path's
one-hot columns — straight into the strided slot of cell k of the image: no (…, kh·kw) columns
and no transposing col2im. Both are bit-identical to the general path (tests/test_pool_tiles.py).
"""
from __future__ import annotations

import numpy as np


def tiles(size, kernel, stride, padding, dilation):
    """True when the windows tile the (H, W) image exactly (see the note above)."""
    return (tuple(stride) == tuple(kernel) and not any(padding) and tuple(dilation) == (1, 1)
            and size[0] % kernel[0] == 0 and size[1] % kernel[1] == 0)


def _cells_view(x, kernel):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // kernel[0], kernel[0], w // kernel[1], kernel[1])


def tiled_max(xp, x, kernel, index_dtype):
    """(max, argmax as ``index_dtype``) over each tiling (kh, kw) window of (N, C, H, W) ``x``."""
    n, c, h, w = x.shape
    out_shape = (n, c, h // kernel[0], w // kernel[1])
    cells = xp.ascontiguousarray(_cells_view(x, kernel).transpose(3, 5, 0, 1, 2, 4))
    cells = cells.reshape(kernel[0] * kernel[1], -1)
    top = cells.max(axis=0)
    found_nan = top != top
    index = xp.zeros(top.shape, dtype=index_dtype)
    missed = None
    for cell in cells[:-1]:
        miss = cell != top
        miss &= ~(found_nan & (cell != cell))   # where the maximum is NaN, the first NaN wins
        missed = miss if missed is None else xp.logical_and(missed, miss, out=missed)
        index += missed
    width = cells.shape[1]
    flat = index.astype(np.intp) * width
    flat += xp.arange(width, dtype=np.intp)
    return cells.reshape(-1).take(flat).reshape(out_shape), index.reshape(out_shape)


def tiled_scatter(xp, g, index, size, kernel):
    """The (N, C, H, W) image with each ``g`` at cell ``index`` of its tiling window, 0 elsewhere."""
    image = xp.empty(g.shape[:2] + tuple(size), dtype=g.dtype)
    slots = _cells_view(image, kernel)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            xp.multiply(index == i * kernel[1] + j, g, out=slots[:, :, :, i, :, j])
    return image
