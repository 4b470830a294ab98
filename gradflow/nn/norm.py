"""Normalization layers: BatchNorm1d/2d (running statistics as buffers) and GroupNorm.

BatchNorm keeps ``running_mean``, ``running_var`` and ``num_batches_tracked`` as buffers, so
``state_dict`` carries them under PyTorch's names; ``train()`` normalizes with the batch's
statistics and updates them, ``eval()`` normalizes with them.
"""
from __future__ import annotations

from .. import creation, dtypes as _dtypes
from ..errors import ShapeError
from . import functional as F, init
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    _dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None,
                 device=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = _dtypes.resolve(dtype) or _dtypes.default_float()
        if affine:
            self.weight = Parameter(init.ones_(creation.empty(num_features, dtype=dtype, device=device)))
            self.bias = Parameter(init.zeros_(creation.empty(num_features, dtype=dtype, device=device)))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", creation.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", creation.zeros((), dtype="int64", device=device))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x):
        if x.ndim not in self._dims or x.shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}({self.num_features}) expects an input of {self._dims[0]} "
                             f"or {self._dims[-1]} dimensions with {self.num_features} channels, got {x.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # a cumulative moving average
                momentum = 1.0 / int(self.num_batches_tracked.item())
        # Batch statistics while training, and in eval mode when no running statistics are kept.
        use_batch = self.training or not self.track_running_stats
        running = self.running_mean, self.running_var
        if use_batch and not self.training:
            running = None, None
        return F.batch_norm(x, *running, self.weight, self.bias, use_batch, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per channel."""
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, per channel.

    >>> import gradflow as gf
    >>> bn = gf.nn.BatchNorm2d(4)
    >>> list(bn.state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """
    _dims = (4,)


class GroupNorm(Module):
    """Normalize each of ``num_groups`` channel groups per example; per-channel ``weight``/``bias``."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None, device=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}")
        self.num_groups, self.num_channels, self.eps, self.affine = int(num_groups), int(num_channels), float(eps), affine
        dtype = _dtypes.resolve(dtype) or _dtypes.default_float()
        if affine:
            self.weight = Parameter(init.ones_(creation.empty(num_channels, dtype=dtype, device=device)))
            self.bias = Parameter(init.zeros_(creation.empty(num_channels, dtype=dtype, device=device)))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
