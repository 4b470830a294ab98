"""Pooling, unpooling and resizing (Upsample) layers with PyTorch's names, arguments and defaults.

They hold no parameters: each stores its arguments and calls its ``gradflow.nn.functional``
function (the 1-D ones are the 2-D ones over a height-1 image, ``gradflow/ops/pool1d.py``).
"""
from __future__ import annotations

from . import functional as F
from .module import Module


class _Pool(Module):
    def __init__(self, **arguments):
        super().__init__()
        for name, value in arguments.items():
            setattr(self, name, value)
        self._arguments = tuple(arguments)

    def extra_repr(self):
        return ", ".join(f"{name}={getattr(self, name)}" for name in self._arguments)


class MaxPool2d(_Pool):
    """Max over (kh, kw) windows; backward keeps only each window's argmax (uint8 up to 16×16).

    ``return_indices=True``: forward returns (output, indices) for ``MaxUnpool2d``.

    >>> import gradflow as gf
    >>> gf.nn.MaxPool2d(3, stride=2, ceil_mode=True)(gf.ones(1, 2, 6, 6)).shape
    (1, 2, 3, 3)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size=kernel_size, stride=stride if stride is not None else kernel_size,
                         padding=padding, dilation=dilation, ceil_mode=ceil_mode, return_indices=return_indices)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class MaxPool1d(MaxPool2d):
    """Max over windows along L of (N, C, L) inputs."""

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class AvgPool2d(_Pool):
    """Mean over (kh, kw) windows; zero padding counted unless ``count_include_pad=False``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size=kernel_size, stride=stride if stride is not None else kernel_size,
                         padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                         divisor_override=divisor_override)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)


class AvgPool1d(_Pool):
    """Mean over windows along L of (N, C, L) inputs."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size=kernel_size, stride=stride if stride is not None else kernel_size,
                         padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class MaxUnpool2d(_Pool):
    """Max-pool's partial inverse: ``forward(x, indices, output_size=None)`` puts each value at
    its index in a zero image (``F.max_unpool2d``).

    >>> import gradflow as gf
    >>> pool, unpool = gf.nn.MaxPool2d(2, return_indices=True), gf.nn.MaxUnpool2d(2)
    >>> unpool(*pool(gf.randn(1, 1, 4, 4))).shape
    (1, 1, 4, 4)
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size=kernel_size, stride=stride if stride is not None else kernel_size,
                         padding=padding)

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool1d(MaxUnpool2d):
    """``MaxUnpool2d`` for (N, C, L) inputs and ``MaxPool1d``'s indices."""

    def forward(self, x, indices, output_size=None):
        return F.max_unpool1d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


class AdaptiveAvgPool2d(_Pool):
    """Average-pool to a fixed ``output_size`` whatever the input's height and width."""

    def __init__(self, output_size):
        super().__init__(output_size=output_size)

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)


class Upsample(_Pool):
    """Resize (N, C, L) or (N, C, H, W) inputs to ``size`` or by ``scale_factor`` (``F.interpolate``).

    >>> import gradflow as gf
    >>> gf.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(gf.ones(1, 1, 2, 3)).shape
    (1, 1, 4, 6)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__(size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                         recompute_scale_factor=recompute_scale_factor)

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)


class UpsamplingNearest2d(Upsample):
    """``Upsample(mode="nearest")`` for (N, C, H, W) inputs."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(mode="bilinear", align_corners=True)``, as PyTorch defines this class."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
