"""Backends: an array module plus a named table of fused kernels, one per device type.

Every op computes with ``backend.xp`` (NumPy or CuPy, which share NumPy's semantics) and calls
``backend.kernels.<name>`` where a fused kernel pays. The NumPy kernel table is the reference
("twin") each CUDA kernel in ``kernels/`` is tested against. CuPy is imported only when a CUDA
tensor is first made.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..errors import DeviceError
from . import dispatch
from .device import CPU, Device, forced_cpu, resolve
from .cuda_probe import is_available
from .index_add import numpy_index_add, selects_each_once


class Backend:
    """What an op needs from a device: the array module, special functions and fused kernels."""

    def __init__(self, name, device_type, xp, kernels, special):
        self.name = name
        self.device_type = device_type
        self.xp = xp
        self.array_type = xp.ndarray
        self.kernels = kernels
        self.erf = special.erf
        self.expit = special.expit
        self.before_host_read = None  # called with a device array about to be copied to the host

    def __repr__(self):
        return f"<gradflow backend {self.name} ({self.device_type})>"

    def asarray(self, data, dtype=None):
        return self.xp.asarray(data, dtype=dtype)

    def device_scope(self, array):
        """A context in which new arrays and launches go to ``array``'s device: CuPy makes them on
        its *current* device, so work on cuda:1 must run under ``cupy.cuda.Device(1)``."""
        if self.xp is np:
            return contextlib.nullcontext()
        return self.xp.cuda.Device(array.device.id)

    def on(self, device):
        """The same for a Device (``cuda:N``; ``cuda`` means the current device)."""
        if self.xp is np or device.index is None:
            return contextlib.nullcontext()
        return self.xp.cuda.Device(device.index)

    def ones_like(self, array):
        """Ones shaped like ``array`` on its device. NumPy: empty + fill (NumPy's ones_like goes
        through Python-level wrappers, ~5 µs on a scalar). CuPy: an asynchronous copy from the
        host (through CuPy's pinned staging buffer) rather than a fill kernel, so the backward
        seed costs the step no launch. Copied as shape (size,) and viewed back: CuPy fills a
        0-d array from the host with a kernel instead of copying it."""
        if self.xp is np:
            ones = np.empty(array.shape, array.dtype)
            ones.fill(1)
            return ones
        with self.device_scope(array):
            return self.xp.asarray(np.ones(array.size, array.dtype)).reshape(array.shape)

    def index_add(self, out, index, values):
        """``out[index] += values`` with repeated indices accumulating (scatter-add)."""
        if self.xp is np:
            numpy_index_add(out, index, values)
        elif selects_each_once(index):
            out[index] += values  # no element twice: a plain fancy add (backends/index_add.py)
        else:
            import cupyx

            cupyx.scatter_add(out, index, values)

    def to_numpy(self, array):
        if self.xp is np:
            return array
        if self.before_host_read is not None:
            self.before_host_read(array)  # errors a kernel flagged on the device (cuda_kernels)
        return self.xp.asnumpy(array)


def _make_numpy_backend():
    # Not scipy.special: loading it starts SciPy's own BLAS thread pool (the note [one BLAS pool]).
    from . import heap, numpy_kernels, numpy_special

    heap.tune()  # the note [heap trimming]: no page faults for every step's temporaries
    return Backend("numpy", "cpu", np, numpy_kernels, numpy_special)


NUMPY = _make_numpy_backend()
_by_array_type = {np.ndarray: NUMPY}
_cupy_backend = None


def cupy_backend() -> Backend:
    """The CuPy backend, built (and CuPy imported) on first use; the caller checked CUDA is usable."""
    global _cupy_backend
    if _cupy_backend is None:
        from .cupy_setup import make_backend

        _cupy_backend = make_backend(Backend)
        _by_array_type[_cupy_backend.xp.ndarray] = _cupy_backend
        dispatch.instrument(_cupy_backend)  # built inside a counting() block: count it too
    return _cupy_backend


def for_device(device: Device) -> Backend:
    return NUMPY if device.type == "cpu" else cupy_backend()


def as_array(value):
    """``value`` unless it is a NumPy scalar (0-d NumPy arithmetic returns those), then a 0-d array."""
    return value if type(value) in _by_array_type else np.asarray(value)


def of_array(array) -> Backend:
    backend = _by_array_type.get(type(array))
    if backend is None:
        if isinstance(array, np.generic):
            return NUMPY
        backend = device_backend_of(array)
        if backend is None:
            raise DeviceError(f"gradflow cannot hold arrays of type {type(array).__module__}.{type(array).__name__}")
    return backend


def device_backend_of(data):
    """The backend of a device array (a CuPy array, even one made before gradflow built its CuPy
    backend), or None for anything else — host arrays, lists, scalars."""
    backend = _by_array_type.get(type(data))
    if backend is not None:
        return None if backend is NUMPY else backend
    if type(data).__module__.partition(".")[0] == "cupy":
        backend = cupy_backend()
        if type(data) in _by_array_type:
            return backend
    return None


def device_of_array(array) -> Device:
    backend = of_array(array)
    if backend is NUMPY:
        return CPU
    return Device("cuda", int(array.device.id))


__all__ = ["as_array", "Backend", "Device", "NUMPY", "cupy_backend", "for_device", "of_array", "device_of_array",
           "device_backend_of",
           "resolve", "forced_cpu", "is_available", "CPU"]
