"""Why CUDA cannot be used here, as one human-readable reason (or None when it can).

Checked in the order a user fixes them: CuPy installed, CUDA libraries found, a driver, a device.
CuPy is imported here only, and only when someone asks about CUDA.
"""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def why_cuda_unusable() -> str | None:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install 'gradflow[cuda12]' or 'gradflow[cuda13]')"
    except Exception as exc:  # a broken CuPy install raises all sorts of errors on import
        return f"CuPy failed to import ({type(exc).__name__}: {exc})"
    try:
        import cupy.cuda.runtime as runtime

        runtime.runtimeGetVersion()
    except Exception as exc:
        return f"the CUDA runtime libraries were not found ({exc}); install the [ctk] extra of CuPy"
    try:
        driver_version = runtime.driverGetVersion()
    except Exception as exc:
        return f"no NVIDIA driver is loaded ({exc})"
    if driver_version == 0:
        return "no NVIDIA driver is loaded"
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:
        return f"no CUDA device is visible ({exc})"
    if count == 0:
        return "no CUDA device is visible"
    return None


def is_available() -> bool:
    """True when CuPy, the CUDA libraries, a driver and at least one device are all present."""
    from .device import forced_cpu

    return not forced_cpu() and why_cuda_unusable() is None
