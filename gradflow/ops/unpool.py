"""max_unpool1d / max_unpool2d: max-pool's partial inverse, as PyTorch defines it.

Each input value is written at the position its index names in a zero image of the output size
(the flat row·W + col positions ``max_pool2d(..., return_indices=True)`` returns). That is
``scatter`` along the flattened spatial axis (``gradflow/ops/indexing.py``), so it keeps nothing
for backward and its derivatives are scatter's: each value's gradient is the output gradient at
its position.

# Note: [repeated indices]
Overlapping pooling windows (stride < kernel) can pick the same cell twice, so two inputs share
an index; they hold the same value, and one is written. PyTorch leaves which unspecified and
hands the output gradient there to *both* inputs in backward; gradflow writes the last in index
order and gives the gradient to that one only — the derivative of what it computes. Without
repeated indices (any pooling whose windows do not overlap) the two agree exactly.
"""
from __future__ import annotations

from ..backends import of_array
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .indexing import _scatter
from .shape import reshape, squeeze, unsqueeze
from .windows import pair


def _single(value, name):
    """A 1-D spatial argument (an int or a 1-tuple) as an int."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {tuple(value)}")
        value = value[0]
    return int(value)


def _output_hw(name, size, kernel, stride, padding, output_size):
    default = tuple((s - 1) * st - 2 * p + k for s, k, st, p in zip(size, kernel, stride, padding))
    if output_size is None:
        return default
    wanted = tuple(int(o) for o in output_size)[-2:]
    if len(tuple(output_size)) not in (2, 4) or any(not d - st < o < d + st
                                                    for o, d, st in zip(wanted, default, stride)):
        raise ShapeError(f"{name}: output_size {tuple(output_size)} must be (H, W) (or (N, C, H, W)) within "
                         f"one stride {stride} of the default {default} for input {tuple(size)}")
    return wanted


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of (N, C, H, W) ``x`` at its flat position ``indices`` (same shape, as
    ``max_pool2d(..., return_indices=True)`` gives them) in a zero (N, C, OH, OW) image; the size
    defaults to (H-1)·stride - 2·padding + kernel per axis, ``output_size`` may pick another within
    one stride of it. See the note [repeated indices] in this file.

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> out, where = F.max_pool2d(gf.arange(16.).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> F.max_unpool2d(out, where, 2)[0, 0].tolist()[1]
    [0.0, 5.0, 0.0, 7.0]
    """
    unbatched = x.ndim == 3
    if unbatched:
        x = unsqueeze(x, 0)
    if x.ndim != 4:
        raise ShapeError(f"max_unpool2d expects a (N, C, H, W) or (C, H, W) input, got shape {x.shape}")
    xp = of_array(x.data).xp
    index = indices.data if isinstance(indices, Tensor) else xp.asarray(indices)
    if unbatched:
        index = index[None]
    if index.dtype.kind not in "iu":
        raise DTypeError(f"max_unpool2d: indices must be integers, got dtype {index.dtype}")
    if tuple(index.shape) != x.shape:
        raise ShapeError(f"max_unpool2d: indices of shape {tuple(index.shape)} must match the input {x.shape}")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding")
    n, c, h, w = x.shape
    out_hw = _output_hw("max_unpool2d", (h, w), kernel, stride, padding, output_size)
    cells = out_hw[0] * out_hw[1]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= cells):
        raise IndexError(f"max_unpool2d: indices range over [{int(index.min())}, {int(index.max())}] but the "
                         f"output {out_hw} has {cells} positions per channel")
    zeros = Tensor(xp.zeros((n, c, cells), dtype=x.dtype))
    out = _scatter(zeros, reshape(x, (n, c, h * w)), index=index.reshape(n, c, h * w).astype("int64"), axis=2)
    out = reshape(out, (n, c) + out_hw)
    return squeeze(out, 0) if unbatched else out


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """``max_unpool2d`` over (N, C, L) or (C, L) inputs: ``indices`` are positions along L."""
    if x.ndim not in (2, 3):
        raise ShapeError(f"max_unpool1d expects a (N, C, L) or (C, L) input, got shape {x.shape}")
    kernel = _single(kernel_size, "kernel_size")
    stride = kernel if stride is None else _single(stride, "stride")
    if output_size is not None:
        output_size = (1, tuple(output_size)[-1])
    index = indices.data if isinstance(indices, Tensor) else of_array(x.data).xp.asarray(indices)
    out = max_unpool2d(unsqueeze(x, -2), index[..., None, :], (1, kernel), (1, stride),
                       (0, _single(padding, "padding")), output_size)
    return squeeze(out, -2)
