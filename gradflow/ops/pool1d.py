"""max_pool1d and avg_pool1d: the 2-D pools over a height-1 image (N, C, 1, L).

A (1, k) kernel on a height-1 image is exactly a 1-D window, so the 1-D pools are the 2-D ones
around an unsqueeze and a squeeze: max_pool1d keeps the 2-D primitive's narrow argmax, and its
``return_indices`` are positions along L (the flat index into a 1 × L image).
"""
from __future__ import annotations

from ..errors import ShapeError
from .pool import avg_pool2d, max_pool2d
from .shape import squeeze, unsqueeze
from .unpool import _single


def _as_image(name, x):
    if x.ndim not in (2, 3):
        raise ShapeError(f"{name} expects a (N, C, L) or (C, L) input, got shape {x.shape}")
    return unsqueeze(x, -2)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum of each window of length ``kernel_size`` along L of (N, C, L) ``x``.

    >>> import gradflow as gf
    >>> gf.nn.functional.max_pool1d(gf.tensor([[[1., 3., 2., 5., 4.]]]), 2, ceil_mode=True).tolist()
    [[[3.0, 5.0, 4.0]]]
    """
    kernel = _single(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == () else _single(stride, "stride")
    out = max_pool2d(_as_image("max_pool1d", x), (1, kernel), (1, stride), (0, _single(padding, "padding")),
                     (1, _single(dilation, "dilation")), ceil_mode, return_indices)
    if return_indices:
        return squeeze(out[0], -2), squeeze(out[1], -2)
    return squeeze(out, -2)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """The mean of each window of length ``kernel_size`` along L of (N, C, L) ``x`` (avg_pool2d's rules).

    >>> import gradflow as gf
    >>> gf.nn.functional.avg_pool1d(gf.tensor([[[1., 3., 2., 6.]]]), 2).tolist()
    [[[2.0, 4.0]]]
    """
    kernel = _single(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == () else _single(stride, "stride")
    out = avg_pool2d(_as_image("avg_pool1d", x), (1, kernel), (1, stride), (0, _single(padding, "padding")),
                     ceil_mode, count_include_pad)
    return squeeze(out, -2)
