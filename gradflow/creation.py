"""Tensor factories (``zeros``, ``randn``, ...) and the global random generator.

Random numbers come from one NumPy generator seeded by ``manual_seed`` and are drawn on the host,
so a seed gives the same values on every device.
"""
from __future__ import annotations

import numpy as np

from . import dtypes as _dtypes
from .backends import for_device, resolve as resolve_device
from .tensor import Tensor, _shape_args_of

_generator = np.random.default_rng(0)


def manual_seed(seed: int):
    """Seed gradflow's random generator (randn, rand, init, dropout, shuffling)."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    return _generator


def _finish(array, device, requires_grad):
    device = resolve_device(device)
    if device.type != "cpu":
        with for_device(device).on(device):  # cuda:N: on device N, not CuPy's current one
            array = for_device(device).xp.asarray(array)
    out = Tensor(array)
    if requires_grad:
        out.requires_grad_(True)
    return out


def _float_dtype(dtype):
    return _dtypes.resolve(dtype) or _dtypes.default_float()


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    return _finish(np.zeros(_shape_args_of(shape), _float_dtype(dtype)), device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    return _finish(np.ones(_shape_args_of(shape), _float_dtype(dtype)), device, requires_grad)


def empty(*shape, dtype=None, device=None, requires_grad=False):
    return _finish(np.empty(_shape_args_of(shape), _float_dtype(dtype)), device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None and isinstance(fill_value, (bool, int)) and not isinstance(fill_value, float):
        dtype = _dtypes.bool_ if isinstance(fill_value, bool) else _dtypes.int64
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _finish(np.full(shape, fill_value, _float_dtype(dtype) if dtype is None else _dtypes.resolve(dtype)),
                   device, requires_grad)


def zeros_like(other, dtype=None, device=None, requires_grad=False):
    return zeros(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                 requires_grad=requires_grad)


def ones_like(other, dtype=None, device=None, requires_grad=False):
    return ones(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                requires_grad=requires_grad)


def full_like(other, fill_value, dtype=None, device=None, requires_grad=False):
    return full(other.shape, fill_value, dtype=dtype or other.dtype, device=device or other.device,
                requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like NumPy's arange: integers stay int64, floats become the default float dtype."""
    array = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and array.dtype == np.float64:
        dtype = _dtypes.default_float()
    return _finish(array.astype(_dtypes.resolve(dtype) or array.dtype, copy=False), device, requires_grad)


def linspace(start, stop, num, dtype=None, device=None, requires_grad=False):
    return _finish(np.linspace(start, stop, num, dtype=_float_dtype(dtype)), device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    """Standard normal samples from gradflow's seeded generator."""
    dtype = _float_dtype(dtype)
    return _finish(_generator.standard_normal(_shape_args_of(shape)).astype(dtype), device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1) from gradflow's seeded generator."""
    dtype = _float_dtype(dtype)
    return _finish(_generator.random(_shape_args_of(shape)).astype(dtype), device, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    if high is None:
        low, high = 0, low
    size = (size,) if isinstance(size, int) else tuple(size)
    return _finish(_generator.integers(low, high, size).astype(_dtypes.resolve(dtype) or np.int64), device, False)


def randn_like(other, dtype=None, device=None, requires_grad=False):
    return randn(other.shape, dtype=dtype or other.dtype, device=device or other.device, requires_grad=requires_grad)


def rand_like(other, dtype=None, device=None, requires_grad=False):
    return rand(other.shape, dtype=dtype or other.dtype, device=device or other.device, requires_grad=requires_grad)
