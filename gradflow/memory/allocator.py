"""What the allocator itself says: bytes held and peak during a block, on NumPy or CuPy.

NumPy reports every array allocation to ``tracemalloc``; CuPy's memory pool calls a
``MemoryHook`` on each malloc/free from the pool, which gives used bytes and their peak.
Numbers are relative to the start of the block.

# Note: [array bytes only]
``tracemalloc`` also counts Python's own allocations: node records, tuples, bound methods, a
dict that happens to resize. Which of those allocate inside a step depends on the interpreter's
history (free lists, caches, what was imported first), not on the step, and moved a lap's peak by
100-300 bytes from one process to another: enough to change the slope of a fitted lap and so the
largest batch a budget allows. NumPy reports its array data itself, through
``PyTraceMalloc_Track`` (its own tracemalloc domain), not through Python's allocators. So when the
meter starts tracing, it puts Python's allocators back as they were before ``tracemalloc.start()``
hooked them: only array data is counted, and the peaks are a function of the arrays the step makes.
Where that is not possible (no ``ctypes.pythonapi``) or someone else is already tracing, the meter
counts whatever tracemalloc counts.
"""
from __future__ import annotations

import tracemalloc


def _python_allocators():
    """A function that puts back Python's current allocators (raw, mem, object), or None."""
    try:
        import ctypes

        api = ctypes.pythonapi
        get, set_ = api.PyMem_GetAllocator, api.PyMem_SetAllocator
    except (ImportError, AttributeError):
        return None

    class _Allocator(ctypes.Structure):  # PyMemAllocatorEx
        _fields_ = [(name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc", "free")]

    get.argtypes = set_.argtypes = [ctypes.c_int, ctypes.POINTER(_Allocator)]
    get.restype = set_.restype = None
    saved = [_Allocator() for _ in range(3)]  # PYMEM_DOMAIN_RAW, _MEM, _OBJ
    for domain, allocator in enumerate(saved):
        get(domain, ctypes.byref(allocator))

    def restore():
        for domain, allocator in enumerate(saved):
            set_(domain, ctypes.byref(allocator))

    return restore


class HostMeter:
    """``with HostMeter() as m: ...`` then ``m.current`` / ``m.peak`` (bytes since the start)."""

    def __enter__(self):
        self._started = not tracemalloc.is_tracing()
        if self._started:
            unhook = _python_allocators()
            tracemalloc.start()
            if unhook is not None:
                unhook()  # the note [array bytes only]; tracemalloc.stop() restores the same ones
        self._base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        self._final = None
        return self

    @property
    def current(self):
        if self._final is not None:
            return self._final[0]
        return tracemalloc.get_traced_memory()[0] - self._base

    @property
    def peak(self):
        if self._final is not None:
            return self._final[1]
        return tracemalloc.get_traced_memory()[1] - self._base

    def lap(self):
        """The peak since the previous lap (or the start), then start a new lap."""
        peak = self.peak
        tracemalloc.reset_peak()
        return peak

    def __exit__(self, *exc):
        self._final = (self.current, self.peak)
        if self._started:
            tracemalloc.stop()
        return False


class DeviceMeter:
    """The same on a CUDA device, from CuPy's default memory pool (used bytes, not reserved)."""

    def __enter__(self):
        import cupy

        meter = self

        class _Hook(cupy.cuda.MemoryHook):
            # CuPy keys hooks by name and refuses a second of the same name: one per meter, so
            # meters nest (a per-op meter inside a per-step one).
            name = f"gradflow-meter-{id(self)}"

            def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
                meter._used += mem_size
                meter._peak = max(meter._peak, meter._used)

            def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
                meter._used -= mem_size

        cupy.cuda.Device().synchronize()
        self._used = self._peak = 0
        self._hook = _Hook()
        self._hook.__enter__()
        return self

    @property
    def current(self):
        return self._used

    @property
    def peak(self):
        return self._peak

    def lap(self):
        peak, self._peak = self._peak, self._used
        return peak

    def __exit__(self, *exc):
        import cupy

        cupy.cuda.Device().synchronize()
        self._hook.__exit__(*exc)
        return False


def meter(device="cpu"):
    """The allocator meter for ``device`` ("cpu" or "cuda[:i]")."""
    return DeviceMeter() if str(device).startswith("cuda") else HostMeter()
