"""Emulated CuPy device arrays and array module: NumPy computes, under CuPy's rules for what
may meet what, so ``gradflow.backends.cupy_backend()`` builds a real Backend on a machine
without a GPU (emulated_cupy.py assembles the ``cupy`` modules from this and its RawModule).

The rules kept are the ones gradflow's backend code depends on, or could get wrong silently:

- ``EmulatedArray`` is a type of its own, as ``cupy.ndarray`` is not ``np.ndarray``: the
  backend is chosen by ``type(array)``, so a host array that leaks into a device op is caught.
- Host NumPy arrays (0-d included) are refused wherever CuPy refuses them: as ufunc operands
  and as arguments of array-module functions (CuPy raises TypeError "Unsupported type"). Only
  ``array``/``asarray`` copy host data over, and ``asnumpy``/``.get()`` copy it back.
- Results are device arrays, never NumPy scalars: CuPy returns 0-d arrays from reductions and
  integer indexing.
- A fresh result owns its memory (``base is None``) and a view does not, as in CuPy; the
  engine adds gradients in place only into arrays that own their memory.
- ``.device.id`` and ``.data.ptr`` exist, ``cupyx.scipy.special`` has erf and expit, and
  ``cupyx.scatter_add`` accumulates repeated indices.

- ``np.asarray``/``np.array``/``np.asanyarray`` of a device array raise TypeError, as CuPy
  forbids implicit device-to-host copies. NumPy gives an ndarray subclass no hook to refuse them,
  so ``refuse_implicit_host_copies`` wraps the three NumPy functions while the emulation is
  installed (a call through an alias bound earlier, ``from numpy import asarray``, escapes it).

Device memory is host memory. Dtype rules, rounding and library functions are NumPy's and SciPy's,
not CuPy's.
"""
from __future__ import annotations

import ctypes
import types

import numpy as np
import scipy.special


class _Device:
    id = 0  # the emulation has one device


class _Pointer:
    """``cupy.ndarray.data``: a MemoryPointer whose ``ptr`` is the first element's address."""

    def __init__(self, ptr):
        self.ptr = ptr


class EmulatedArray(np.ndarray):
    """A 'device' array: NumPy memory under a type of its own, as cupy.ndarray is not np.ndarray."""

    # cupy.ndarray's module: gradflow recognises a CuPy array it has not seen yet by it.
    __module__ = "cupy"

    def get(self):
        """A host copy, as ``cupy.ndarray.get()``."""
        return np.array(self.view(np.ndarray))

    @property
    def device(self):
        return _Device()

    @property
    def data(self):
        return _Pointer(self.ctypes.data)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"{ufunc.__name__}.{method}"
        inputs = [to_host(x, where) for x in inputs]
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(to_host(o, where) for o in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return to_device(result)

    def __array_function__(self, func, types_, args, kwargs):
        # CuPy implements NumPy's functions for its arrays (np.sum(cupy_array) runs cupy.sum).
        name = func.__name__
        return to_device(func(*to_host(args, name), **to_host(kwargs, name)))

    def __getitem__(self, key):
        # CuPy copies host index arrays to the device; an integer index gives a 0-d array.
        return to_device(np.ndarray.__getitem__(self.view(np.ndarray), _host_index(key)))

    def __setitem__(self, key, value):
        np.ndarray.__setitem__(self.view(np.ndarray), _host_index(key), _host_index(value))


def to_host(value, where):
    """The NumPy memory under device arrays, in containers too; a host array is refused."""
    if isinstance(value, EmulatedArray):
        return value.view(np.ndarray)
    if isinstance(value, np.ndarray):
        raise TypeError(f"{where}: Unsupported type {type(value)} (a host NumPy array of shape "
                        f"{value.shape}); CuPy refuses host arrays here: copy with cupy.asarray")
    if isinstance(value, (list, tuple)):
        return type(value)(to_host(v, where) for v in value)
    if isinstance(value, dict):
        return {k: to_host(v, where) for k, v in value.items()}
    return value


def to_device(result):
    """A NumPy result as CuPy would return it: a device array owning fresh memory, or a view."""
    if isinstance(result, EmulatedArray):
        return result
    if isinstance(result, np.generic):
        result = np.asarray(result)
    if isinstance(result, np.ndarray):
        if result.base is not None:
            return result.view(EmulatedArray)  # a view of device memory stays a view
        # A view would make the fresh result look like someone else's memory (base set): copy it
        # into an array of its own, as CuPy's result owns its allocation.
        owned = EmulatedArray(result.shape, result.dtype, order=_order(result))
        np.copyto(owned.view(np.ndarray), result)
        return owned
    if isinstance(result, tuple) and hasattr(result, "_fields"):  # np.linalg.svd's SVDResult
        return type(result)(*(to_device(v) for v in result))
    if isinstance(result, (list, tuple)):
        return type(result)(to_device(v) for v in result)
    return result


def refuse_implicit_host_copies(monkeypatch):
    """``np.asarray(device_array)`` (and np.array, np.asanyarray) raise TypeError, as with CuPy,
    whose arrays refuse ``__array__``; host data passes through unchanged."""
    for name in ("asarray", "array", "asanyarray"):
        monkeypatch.setattr(np, name, _host_only(getattr(np, name)))


def _host_only(function):
    def host_only(a, *args, **kwargs):
        if isinstance(a, EmulatedArray):
            raise TypeError(f"np.{function.__name__}: implicit conversion of a cupy.ndarray (shape "
                            f"{a.shape}) to a NumPy array is not allowed; use .get() or cupy.asnumpy")
        return function(a, *args, **kwargs)

    host_only.__name__ = function.__name__
    return host_only


def _host_index(key):
    if isinstance(key, tuple):
        return tuple(_host_index(k) for k in key)
    return key.view(np.ndarray) if isinstance(key, np.ndarray) else key


def _order(array):
    return "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"


# ---- the array module ----

def empty(shape, dtype=float, order="C"):
    """Fresh device memory with every byte 0xFF (NaN for floats), so an element a kernel fails
    to write shows up in a comparison instead of passing as a stale zero."""
    array = EmulatedArray(shape, dtype, order=order)
    ctypes.memset(array.ctypes.data, 0xFF, array.nbytes)
    return array


def empty_like(a, dtype=None, order="K", shape=None):
    like = np.empty_like(a.view(np.ndarray) if isinstance(a, EmulatedArray) else a,
                         dtype=dtype, order=order, shape=shape)
    return empty(like.shape, like.dtype, _order(like))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, EmulatedArray):
        raise TypeError(f"cupy.ascontiguousarray takes a cupy.ndarray, got {type(a).__name__}")
    return to_device(np.ascontiguousarray(a.view(np.ndarray), dtype=dtype))


def asarray(a, dtype=None):
    if isinstance(a, EmulatedArray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return to_device(np.array(a, dtype=dtype))  # host data is copied to the device


def array(a, dtype=None, copy=True):
    return to_device(np.array(a.view(np.ndarray) if isinstance(a, EmulatedArray) else a,
                              dtype=dtype, copy=copy))


def asnumpy(a):
    return a.get() if isinstance(a, EmulatedArray) else np.asarray(a)


def _device_function(name, function):
    def on_device(*args, **kwargs):
        return to_device(function(*to_host(args, f"cupy.{name}"), **to_host(kwargs, f"cupy.{name}")))

    on_device.__name__ = name
    return on_device


def numpy_fallback(name):
    """``cupy.<name>`` for what the module does not define: NumPy's function on device arrays,
    or NumPy's type or constant (cupy.float32 is numpy.float32)."""
    value = getattr(np, name)
    if callable(value) and not isinstance(value, type):
        return _device_function(name, value)
    return value


def scatter_add(out, index, values):
    """``cupyx.scatter_add``: ``out[index] += values`` with repeated indices accumulating."""
    np.add.at(to_host(out, "cupyx.scatter_add"), _host_index(index), to_host(values, "cupyx.scatter_add"))


def as_strided(x, shape=None, strides=None):
    """``cupy.lib.stride_tricks.as_strided``: a device view (the im2col windows of convolution)."""
    view = np.lib.stride_tricks.as_strided(to_host(x, "cupy.lib.stride_tricks.as_strided"), shape, strides)
    return view.view(EmulatedArray)


def lib_modules():
    lib = types.ModuleType("cupy.lib")
    lib.stride_tricks = types.ModuleType("cupy.lib.stride_tricks")
    lib.stride_tricks.as_strided = as_strided
    return {"cupy.lib": lib, "cupy.lib.stride_tricks": lib.stride_tricks}


def cupyx_modules():
    special = types.ModuleType("cupyx.scipy.special")
    special.erf = _device_function("erf", scipy.special.erf)
    special.expit = _device_function("expit", scipy.special.expit)
    cupyx = types.ModuleType("cupyx", "gradflow's emulated cupyx (tests/kernels/emulated_arrays.py)")
    cupyx.scipy = types.ModuleType("cupyx.scipy")
    cupyx.scipy.special = special
    cupyx.scatter_add = scatter_add
    return {"cupyx": cupyx, "cupyx.scipy": cupyx.scipy, "cupyx.scipy.special": special}
