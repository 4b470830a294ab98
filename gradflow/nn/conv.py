"""Convolution layers with PyTorch's names, arguments, parameter names and layouts.

Conv weights are (out_channels, in_channels/groups, *kernel) — ConvTranspose2d's are
(in_channels, out_channels/groups, kh, kw) — and are initialized as PyTorch does (kaiming
uniform with a=√5, bias U(±1/√fan_in)), so a PyTorch state_dict's arrays load by name.
"""
from __future__ import annotations

import math

from .. import creation, dtypes as _dtypes
from ..ops.windows import pair
from . import functional as F, init
from .module import Module
from .parameter import Parameter


class _ConvNd(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dims,
                 transposed=False, output_padding=0, padding_mode="zeros", dtype=None, device=None):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        as_tuple = (lambda v, name: (int(v),) if isinstance(v, int) else tuple(int(x) for x in v)) if dims == 1 else pair
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = as_tuple(kernel_size, "kernel_size")
        self.stride = as_tuple(stride, "stride")
        self.padding = padding if isinstance(padding, str) else as_tuple(padding, "padding")  # or "same"/"valid"
        self.dilation = as_tuple(dilation, "dilation")
        self.output_padding = as_tuple(output_padding, "output_padding")
        dtype = _dtypes.resolve(dtype) or _dtypes.default_float()
        shape = ((in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups))
        self.weight = Parameter(creation.empty(*shape, *self.kernel_size, dtype=dtype, device=device))
        self.bias = Parameter(creation.empty(out_channels, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default, as for Linear: fan_in is weight.shape[1] × kernel cells.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            text += f", padding={self.padding!r}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) inputs; weight (out_channels, in_channels/groups, k)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", dtype=None, device=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, 1,
                         padding_mode=padding_mode, dtype=dtype, device=device)

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) inputs; weight (out_channels, in_channels/groups, kh, kw).

    >>> import gradflow as gf
    >>> conv = gf.nn.Conv2d(1, 4, 3, padding=1)
    >>> conv(gf.ones(2, 1, 8, 8)).shape, conv.weight.shape
    ((2, 4, 8, 8), (4, 1, 3, 3))
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", dtype=None, device=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, 2,
                         padding_mode=padding_mode, dtype=dtype, device=device)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution; weight (in_channels, out_channels/groups, kh, kw) as in PyTorch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=None, device=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, 2,
                         transposed=True, output_padding=output_padding, padding_mode=padding_mode, dtype=dtype,
                         device=device)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)
