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
- Devices have ids (``DEVICES.count`` of them): an array lives on the device that was current
  when it was made, and an operation whose operand lives on another device than the current one
  raises, as CuPy does between devices without peer access (with peer access CuPy would run it
  on the current device and leave the result there: wrong either way for gradflow).
- What a GPU would run is counted (``DEVICES.recorder``): one *launch* per top-level device
  operation (a ufunc call or reduction, an array method that computes, an advanced index read,
  any index write, a fill, a matmul, an array-module function that returns fresh memory other
  than ``empty``), and one *device-to-host copy* per ``.get()``, ``asnumpy``, ``.item()``,
  ``.tolist()`` and ``float()``/``int()``/``bool()`` of a device array. Work NumPy does inside
  one of those (``mean`` is a sum then a divide) is not counted again: CuPy runs it as one
  kernel. Host-to-device copies (``asarray`` of host data) are not launches and are not counted.

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
import weakref

import numpy as np
import scipy.special


class _Devices:
    """The emulated machine: how many devices, which is current, who records what they run."""

    def __init__(self):
        self.count = 1
        self.current = 0
        self.recorder = None  # callable(kind, what) while counting: kind "launch" or "copy"
        self.depth = 0  # > 0 inside a counted operation: what NumPy does inside is not counted
        # While a stream captures (emulated_cupy's Stream.begin_capture): the list of
        # (what, run, result) that Graph.launch re-executes; None otherwise.
        self.capture = None

    def record(self, kind, what):
        if self.recorder is not None and self.depth == 0:
            self.recorder(kind, what)


DEVICES = _Devices()


class _Device:
    def __init__(self, id):
        self.id = id


class _counted:
    """``with _counted("launch", "exp", arrays):`` checks the operands' devices, records one
    event, and hides whatever NumPy runs inside from the count."""

    def __init__(self, kind, what, operands=()):
        self.kind, self.what = kind, what
        if DEVICES.depth == 0:
            _check_devices(what, operands)

    def __enter__(self):
        if self.kind == "copy" and DEVICES.capture is not None and DEVICES.depth == 0:
            raise RuntimeError(f"cudaErrorStreamCaptureUnsupported: a device-to-host copy "
                               f"({self.what}) while a stream is being captured; a CUDA graph "
                               "cannot wait for the host")
        DEVICES.record(self.kind, self.what)
        DEVICES.depth += 1

    def __exit__(self, *exc):
        DEVICES.depth -= 1
        return False


def captured(what, run, result=None):
    """During a stream capture, remember a top-level device operation for ``Graph.launch``:
    ``run()`` re-executes it on the same memory; a new array it returns is copied into
    ``result`` (the array the capture handed out), as a graph's kernel writes the same address."""
    if DEVICES.capture is not None and DEVICES.depth == 0:
        DEVICES.capture.append((what, run, result))


# Every fresh allocation, by id, while it lives: a capture snapshots them (a captured stream runs
# nothing, so begin/end_capture put back what the emulation computed meanwhile).
_LIVE = weakref.WeakValueDictionary()


def _check_devices(what, operands):
    for value in operands:
        if isinstance(value, (list, tuple)):
            _check_devices(what, value)
        elif isinstance(value, EmulatedArray) and value.device_id != DEVICES.current:
            raise ValueError(f"{what}: the device where the array resides ({value.device_id}) is "
                             f"different from the current device ({DEVICES.current}); run it under "
                             f"cupy.cuda.Device({value.device_id})")


class _Pointer:
    """``cupy.ndarray.data``: a MemoryPointer whose ``ptr`` is the first element's address."""

    def __init__(self, ptr):
        self.ptr = ptr


class EmulatedArray(np.ndarray):
    """A 'device' array: NumPy memory under a type of its own, as cupy.ndarray is not np.ndarray."""

    # cupy.ndarray's module: gradflow recognises a CuPy array it has not seen yet by it.
    __module__ = "cupy"

    def __array_finalize__(self, obj):
        # A view keeps its base's device; fresh memory is on the current device.
        self.device_id = _device_of_memory(obj)
        if obj is None:
            _LIVE[id(self)] = self
        if obj is None and _HOOKS:  # a fresh allocation: the pool's memory hooks hear of it
            _report_allocation(self)

    def get(self):
        """A host copy, as ``cupy.ndarray.get()``."""
        with _counted("copy", "get"):
            return np.array(self.view(np.ndarray))

    def item(self):
        with _counted("copy", "item"):
            return self.view(np.ndarray).item()

    def tolist(self):
        with _counted("copy", "tolist"):
            return self.view(np.ndarray).tolist()

    def __float__(self):
        with _counted("copy", "float()"):
            return float(self.view(np.ndarray))

    def __int__(self):
        with _counted("copy", "int()"):
            return int(self.view(np.ndarray))

    def __index__(self):
        with _counted("copy", "index"):
            return self.view(np.ndarray).__index__()

    def __bool__(self):
        with _counted("copy", "bool()"):
            return bool(self.view(np.ndarray))

    def fill(self, value):
        def run():
            self.view(np.ndarray).fill(value)

        with _counted("launch", "fill", (self,)):
            run()
        captured("fill", run)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self

        def run():
            return to_device(self.view(np.ndarray).astype(dtype, order=order, casting=casting))

        with _counted("launch", "astype", (self,)):
            result = run()
        captured("astype", run, result)
        return result

    def copy(self, order="C"):
        def run():
            return to_device(self.view(np.ndarray).copy(order=order))

        with _counted("launch", "copy", (self,)):
            result = run()
        captured("copy", run, result)
        return result

    @property
    def device(self):
        return _Device(self.device_id)

    @property
    def data(self):
        return _Pointer(self.ctypes.data)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        with _counted("launch", where, (inputs, kwargs.get("out", ()))):
            inputs = [to_host(x, where) for x in inputs]
            out = kwargs.get("out")
            if out is not None:
                kwargs["out"] = tuple(to_host(o, where) for o in out)

            def run():
                return getattr(ufunc, method)(*inputs, **kwargs)

            result = run()
            result = (out[0] if len(out) == 1 else out) if out is not None else to_device(result)
        captured(where, run, None if out is not None else result)
        return result

    def __array_function__(self, func, types_, args, kwargs):
        # CuPy implements NumPy's functions for its arrays (np.sum(cupy_array) runs cupy.sum).
        return _run_function(func.__name__, func, args, kwargs)

    def __getitem__(self, key):
        # CuPy copies host index arrays to the device; an integer index gives a 0-d array. Basic
        # indexing is a view; an array index gathers in a kernel.
        key = _host_index(key)
        if not _is_advanced(key):
            return to_device(np.ndarray.__getitem__(self.view(np.ndarray), key))
        def run():
            return to_device(np.ndarray.__getitem__(self.view(np.ndarray), key))

        with _counted("launch", "take", (self,)):
            result = run()
        captured("take", run, result)
        return result

    def __setitem__(self, key, value):
        key, value = _host_index(key), _host_index(value)

        def run():
            np.ndarray.__setitem__(self.view(np.ndarray), key, value)

        with _counted("launch", "setitem", (self, value)):
            run()
        captured("setitem", run)


# ---- cupy.cuda.MemoryHook: the pool's malloc/free callbacks ----

_HOOKS: dict = {}  # name -> hook, as CuPy keeps them (per thread there; one thread here)
_ALLOCATION_UNIT = 512  # CuPy's pool rounds every allocation up to 512 bytes


class MemoryHook:
    """``cupy.cuda.MemoryHook``: entering registers the hook under its ``name``, and a second hook
    of the same name raises KeyError, as CuPy does."""

    name = "MemoryHook"

    def __enter__(self):
        if self.name in _HOOKS:
            raise KeyError(f"Hook {self.name} already exists")
        _HOOKS[self.name] = self
        return self

    def __exit__(self, *exc):
        del _HOOKS[self.name]

    def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
        pass

    def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
        pass


def _report_allocation(array):
    size = array.nbytes
    mem_size = -(-size // _ALLOCATION_UNIT) * _ALLOCATION_UNIT
    ptr = array.ctypes.data
    for hook in list(_HOOKS.values()):
        hook.malloc_postprocess(array.device_id, size, mem_size, ptr, 0)
    weakref.finalize(array, _report_free, array.device_id, mem_size, ptr)


def _report_free(device_id, mem_size, ptr):
    for hook in list(_HOOKS.values()):
        hook.free_postprocess(device_id, mem_size, ptr, 0)


def _device_of_memory(obj):
    """The device of the memory ``obj`` views (a host view of a device array included), or the
    current device for fresh memory."""
    while obj is not None:
        device_id = getattr(obj, "device_id", None)
        if device_id is not None:
            return device_id
        obj = getattr(obj, "base", None)
    return DEVICES.current


def _reduction_method(name):
    method = getattr(np.ndarray, name)

    def reduce(self, *args, **kwargs):
        # One CuPy reduction kernel, whatever NumPy runs inside (mean: a sum, then a divide).
        def run():
            return to_device(method(self, *args, **kwargs))

        with _counted("launch", name, (self, kwargs.get("out"))):
            result = run()
        captured(name, run, result)
        return result

    reduce.__name__ = name
    return reduce


for _name in ("sum", "mean", "max", "min", "prod", "argmax", "argmin", "any", "all", "var", "std"):
    setattr(EmulatedArray, _name, _reduction_method(_name))


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


def _is_advanced(key):
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (np.ndarray, list)) for k in keys)


# Array-module functions that only describe or reshape (CuPy runs no kernel for a view).
_NO_KERNEL = {"empty", "empty_like", "result_type", "shape", "ndim", "size", "may_share_memory",
              "shares_memory", "can_cast", "iscomplexobj", "isrealobj", "isscalar"}
# Reductions CuPy runs as one kernel; NumPy's versions call ufuncs inside (counted once here).
_ALWAYS_KERNEL = {"sum", "mean", "max", "min", "amax", "amin", "prod", "argmax", "argmin", "any",
                  "all", "var", "std", "copyto", "zeros", "zeros_like", "ones", "ones_like", "full",
                  "full_like", "arange", "where", "matmul", "dot", "einsum", "clip"}


def _run_function(name, func, args, kwargs):
    """An array-module function on device arrays: one launch when it ran a kernel (it returns
    fresh memory, or is a reduction or fill), none for a view or a shape query."""
    if DEVICES.depth or name in _NO_KERNEL:
        return to_device(func(*to_host(args, name), **to_host(kwargs, name)))
    _check_devices(name, (args, list(kwargs.values())))
    host_args, host_kwargs = to_host(args, name), to_host(kwargs, name)

    def run():
        return func(*host_args, **host_kwargs)

    DEVICES.depth += 1
    try:
        result = run()
    finally:
        DEVICES.depth -= 1
    kernel = name in _ALWAYS_KERNEL or _fresh(result, args)
    if kernel:
        DEVICES.record("launch", name)
    result = to_device(result)
    if kernel:
        captured(name, run, result)
    return result


def _fresh(result, args):
    if not isinstance(result, np.ndarray):
        return result is not None
    sources = [a for a in _flatten(args) if isinstance(a, np.ndarray)]
    return not any(np.shares_memory(result, s.view(np.ndarray)) for s in sources if s.size)


def _flatten(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        else:
            yield v


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
    if a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return to_device(np.ascontiguousarray(a.view(np.ndarray)))  # the array itself, or a view
    def run():
        return to_device(np.ascontiguousarray(a.view(np.ndarray), dtype=dtype))

    with _counted("launch", "ascontiguousarray", (a,)):
        result = run()
    captured("ascontiguousarray", run, result)
    return result


def asarray(a, dtype=None):
    if isinstance(a, EmulatedArray):
        if a.device_id != DEVICES.current:
            return array(a, dtype=dtype)  # CuPy copies an array of another device over
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return _from_host(a, dtype)


def array(a, dtype=None, copy=True):
    if isinstance(a, EmulatedArray):
        # A copy (between devices too: a peer copy, not a kernel), or a cast (a kernel).
        if dtype is not None and np.dtype(dtype) != a.dtype:
            DEVICES.record("launch", "astype")
        return to_device(np.array(a.view(np.ndarray), dtype=dtype, copy=True))
    return _from_host(a, dtype)


def _from_host(a, dtype):
    """Host data copied to the device: an asynchronous copy through a pinned buffer, no kernel;
    but CuPy makes a 0-d array with a fill kernel (core.pyx: ``if a_cpu.ndim == 0: a.fill``)."""
    host = np.array(a, dtype=dtype)
    if host.ndim == 0:
        DEVICES.record("launch", "fill")
    result = to_device(host)
    # Captured, the copy reads the host buffer again at each replay (the values of capture time
    # here; on a GPU whatever the staging buffer then holds: see gradflow/cuda.py's Note).
    captured("host-to-device", lambda: host, result)
    return result


def asnumpy(a):
    return a.get() if isinstance(a, EmulatedArray) else np.asarray(a)


def _device_function(name, function):
    def on_device(*args, **kwargs):
        return _run_function(name, function, args, kwargs)

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
    target, where, added = (to_host(out, "cupyx.scatter_add"), _host_index(index),
                            to_host(values, "cupyx.scatter_add"))

    def run():
        np.add.at(target, where, added)

    with _counted("launch", "scatter_add", (out, index, values)):
        run()
    captured("scatter_add", run)


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
