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
from .autograd import grad_mode as _grad_mode, node as _node
from .errors import BackwardError, DeviceError, DTypeError, ShapeError
from .backends import for_device, resolve as resolve_device
from .tensor import Tensor, _shape_args_of

manual_seed = _random.manual_seed


def generator() -> np.random.Generator:
    """The NumPy generator behind the global ``gradflow.random.default_generator``."""
    return _random.default_generator.numpy


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


# ---- in-place samplers (PyTorch's Tensor.normal_, uniform_, bernoulli_) ----
# Drawn on the host in float64 and cast, as nn.init does, so a seed fills a tensor with the same
# numbers on every device; written into the tensor's array, so views of it see the samples.

def normal_(tensor, mean=0.0, std=1.0, *, generator=None):
    """Fill ``tensor`` with samples of N(mean, std²) in place; returns it."""
    _check_fillable(tensor, "normal_", floating=True)
    if not std >= 0:
        raise ValueError(f"normal_ expects std >= 0, got {std}")
    samples = _random.numpy_generator(generator).normal(mean, std, tensor.shape)
    return _write_in_place(tensor, samples)


def uniform_(tensor, a=0.0, b=1.0, *, generator=None):
    """Fill ``tensor`` with samples uniform on [a, b) in place (PyTorch's ``from``/``to``)."""
    _check_fillable(tensor, "uniform_", floating=True)
    if not a <= b:
        raise ValueError(f"uniform_ expects a <= b, got a={a} > b={b}")
    samples = _random.numpy_generator(generator).uniform(a, b, tensor.shape)
    return _write_in_place(tensor, samples)


def bernoulli_(tensor, p=0.5, *, generator=None):
    """Fill ``tensor`` with 0/1, 1 with probability ``p`` (a number, or a tensor of probabilities
    that broadcasts to ``tensor``'s shape); any dtype, as in PyTorch."""
    _check_fillable(tensor, "bernoulli_", floating=False)
    u = _random.numpy_generator(generator).random(tensor.shape)
    if isinstance(p, Tensor):
        if p.device != tensor.device:
            raise DeviceError(f"bernoulli_: probabilities on {p.device}, tensor on {tensor.device}")
        try:
            np.broadcast_shapes(p.shape, tensor.shape)
        except ValueError:
            raise ShapeError(f"bernoulli_: probabilities of shape {p.shape} do not broadcast to the "
                             f"tensor's shape {tensor.shape}") from None
        xp = for_device(tensor.device).xp
        return _write_in_place(tensor, xp.asarray(u) < p.data)  # compared where p lives
    if not 0 <= p <= 1:
        raise ValueError(f"bernoulli_ probability must be in [0, 1], got {p}")
    return _write_in_place(tensor, u < p)


def _check_fillable(tensor, name, floating):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} fills a gradflow Tensor, got {type(tensor).__name__}")
    if floating and tensor.dtype.kind != "f":
        raise DTypeError(f"{name} needs a floating tensor, got dtype {tensor.dtype}")
    if tensor.requires_grad and _grad_mode.is_grad_enabled():
        # PyTorch refuses it too: the samples would replace values a graph may have used.
        raise BackwardError(f"{name} writes in place into a tensor that requires grad (shape {tensor.shape}); "
                            "do it under gradflow.no_grad(), as nn.init does")


def _write_in_place(tensor, values):
    """Write ``values`` (a host array, or an array on the tensor's device) into ``tensor.data``
    and count the write on the tensor's version counter where autograd keeps one."""
    xp = for_device(tensor.device).xp
    tensor.data[...] = xp.asarray(values).astype(tensor.dtype, copy=False)
    increment_version = getattr(_node, "increment_version", None)
    if increment_version is not None:
        increment_version(tensor)
    return tensor


# Tensor methods here rather than in tensor.py, which creation imports from.
Tensor.normal_, Tensor.uniform_, Tensor.bernoulli_ = normal_, uniform_, bernoulli_
