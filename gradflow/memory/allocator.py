"""What the allocator itself says: bytes held and peak during a block, on NumPy or CuPy.

NumPy reports every array allocation to ``tracemalloc``; CuPy's memory pool calls a
``MemoryHook`` on each malloc/free from the pool, which gives used bytes and their peak.
Numbers are relative to the start of the block.
"""
from __future__ import annotations

import tracemalloc


class HostMeter:
    """``with HostMeter() as m: ...`` then ``m.current`` / ``m.peak`` (bytes since the start)."""

    def __enter__(self):
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start()
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
