"""Tensor factories (``zeros``, ``randn``, ...) and the global random generator.

Random numbers come from one NumPy generator seeded by ``manual_seed`` and are drawn on the host,
so a seed gives the same values on every device.
"""
from __future__ import annotations

import math
import os

import numpy as np

from . import dtypes as _dtypes
from . import random as _random
from .errors import ShapeError
from .backends import for_device, resolve as resolve_device
from .tensor import Tensor, _shape_args_of

manual_seed = _random.manual_seed


def generator() -> np.random.Generator:
    """The NumPy generator behind the global ``gradflow.random.default_generator``."""
    return _random.default_generator.numpy


def _finish(array, device, requires_grad):
    device = resolve_device(device)
    if device.type != "cpu":
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
    if stop is None:
        start, stop = 0, start
    _check_arange_length(start, stop, step, dtype)
    array = np.arange(start, stop, step)
    if dtype is None and array.dtype == np.float64:
        dtype = _dtypes.default_float()
    return _finish(array.astype(_dtypes.resolve(dtype) or array.dtype, copy=False), device, requires_grad)


def _check_arange_length(start, stop, step, dtype):
    # Checked before allocating: NumPy would try to allocate (or die trying) first.
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    length = max(math.ceil((stop - start) / step), 0)
    itemsize = (_dtypes.resolve(dtype) or np.dtype(np.float64)).itemsize
    if length * itemsize > _MAX_BYTES:
        raise ShapeError(f"arange({start}, {stop}, {step}) would have {length} elements "
                         f"({length * itemsize / 2 ** 30:.1f} GiB), more than the {_MAX_BYTES / 2 ** 30:.0f} GiB "
                         "this machine has; check the bounds and the step")


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 ** 40  # no sysconf (Windows): a terabyte, only absurd lengths are caught


_MAX_BYTES = _physical_memory()


def linspace(start, stop, num, dtype=None, device=None, requires_grad=False):
    return _finish(np.linspace(start, stop, num, dtype=_float_dtype(dtype)), device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal samples from gradflow's seeded generator (or ``generator``)."""
    dtype = _float_dtype(dtype)
    samples = _random.numpy_generator(generator).standard_normal(_shape_args_of(shape))
    return _finish(samples.astype(dtype), device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform samples in [0, 1) from gradflow's seeded generator (or ``generator``)."""
    dtype = _float_dtype(dtype)
    return _finish(_random.numpy_generator(generator).random(_shape_args_of(shape)).astype(dtype), device,
                   requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None, generator=None):
    if high is None:
        low, high = 0, low
    size = (size,) if isinstance(size, int) else tuple(size)
    samples = _random.numpy_generator(generator).integers(low, high, size)
    return _finish(samples.astype(_dtypes.resolve(dtype) or np.int64), device, False)


def randn_like(other, dtype=None, device=None, requires_grad=False, generator=None):
    return randn(other.shape, dtype=dtype or other.dtype, device=device or other.device, requires_grad=requires_grad,
                 generator=generator)


def rand_like(other, dtype=None, device=None, requires_grad=False, generator=None):
    return rand(other.shape, dtype=dtype or other.dtype, device=device or other.device, requires_grad=requires_grad,
                generator=generator)


def _parameters(name, size, dtype, device, **values):
    """The output shape, dtype and device of a sampler whose parameters may be numbers or tensors
    (which broadcast, and fix the dtype and device unless given), plus the parameters as arrays on
    that device."""
    tensors = [v for v in values.values() if isinstance(v, Tensor)]
    shape = np.broadcast_shapes(*(t.shape for t in tensors)) if tensors else ()
    if size is not None:
        size = _shape_args_of(size if isinstance(size, (tuple, list)) else (size,))
        try:
            np.broadcast_shapes(shape, size)
        except ValueError:
            raise ShapeError(f"{name}: size {size} does not fit parameters of shape {shape}") from None
        shape = size
    if tensors:
        dtype = _dtypes.resolve(dtype) or tensors[0].dtype
        device = device or tensors[0].device
    dtype = _float_dtype(dtype)
    xp = for_device(resolve_device(device)).xp
    arrays = {k: v.data if isinstance(v, Tensor) else v for k, v in values.items()}
    return shape, dtype, device, xp, arrays


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples of N(mean, std²); ``mean`` and ``std`` are numbers or tensors (broadcast together).

    As in PyTorch, no gradient flows to ``mean`` or ``std``; for a reparameterized sample write
    ``mean + std * gradflow.randn_like(mean)``.

    >>> gf.normal(2.0, 0.5, size=(3,), generator=gf.Generator().manual_seed(0)).shape
    (3,)
    """
    shape, dtype, device, xp, p = _parameters("normal", size, dtype, device, mean=mean, std=std)
    z = xp.asarray(_random.numpy_generator(generator).standard_normal(shape))
    return _finish((p["mean"] + p["std"] * z).astype(dtype), device, requires_grad)


def uniform(low=0.0, high=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples uniform on [low, high) (NumPy's ``uniform``); bounds are numbers or tensors."""
    shape, dtype, device, xp, p = _parameters("uniform", size, dtype, device, low=low, high=high)
    u = xp.asarray(_random.numpy_generator(generator).random(shape))
    return _finish((p["low"] + (p["high"] - p["low"]) * u).astype(dtype), device, requires_grad)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples, 1 with probability ``input`` (a tensor of probabilities), or with probability
    ``p`` everywhere when it is given; same shape, dtype and device as ``input``."""
    probability = input.data if p is None else p
    xp = for_device(input.device).xp
    if p is not None and not 0 <= p <= 1:
        raise ValueError(f"bernoulli probability must be in [0, 1], got {p}")
    u = xp.asarray(_random.numpy_generator(generator).random(input.shape))
    return _finish((u < probability).astype(input.dtype), input.device, False)
