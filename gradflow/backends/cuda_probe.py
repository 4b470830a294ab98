"""Why CUDA cannot be used here, as one human-readable reason (or None when it can).

Checked in the order a user fixes them: CuPy installed, CUDA libraries found (cuBLAS, and NVRTC with
the CUDA headers, which compile gradflow's kernels at first use), a driver, a device.
Every missing piece is named, not just the first, so one message is enough to fix the machine.
CuPy is imported here only, and only when someone asks about CUDA.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

INSTALL_CUPY = "pip install 'gradflow[cuda12]' or 'gradflow[cuda13]'"
INSTALL_LIBRARIES = "pip install 'cupy-cuda12x[ctk]', or install a CUDA toolkit"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


INSTALL_HEADERS = ("pip install 'cupy-cuda12x[ctk]' (it brings the headers), or set CUDA_PATH to a CUDA "
                   "toolkit")


def find_cuda_headers() -> Path | None:
    """The include directory holding cuda_fp16.h that NVRTC will be pointed at, or None: CuPy's
    CUDA path, $CUDA_PATH/$CUDA_HOME, /usr/local/cuda, or the pip package nvidia-cuda-runtime."""
    candidates = []
    try:
        import cupy.cuda

        get_path = getattr(cupy.cuda, "get_cuda_path", None)
        if get_path is not None and get_path():
            candidates.append(Path(get_path()) / "include")
    except Exception:
        pass
    candidates += [Path(os.environ[k]) / "include" for k in ("CUDA_PATH", "CUDA_HOME") if os.environ.get(k)]
    candidates.append(Path("/usr/local/cuda/include"))
    try:
        spec = importlib.util.find_spec("nvidia.cuda_runtime")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "include" for p in spec.submodule_search_locations]
    for directory in candidates:
        if (directory / "cuda_fp16.h").is_file():
            return directory
    return None


def missing_pieces() -> list[str]:
    """What stands between this machine and a usable CUDA device, in the order to fix it."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return [f"CuPy is not installed ({INSTALL_CUPY})"]
    except Exception as exc:  # a broken CuPy install raises all sorts of errors on import
        return [f"CuPy failed to import ({_first_line(exc)})"]
    missing = []
    import cupy.cuda.runtime as runtime

    try:
        runtime.runtimeGetVersion()
        # CuPy imports without its CUDA libraries and loads them on first use; cuBLAS is the one
        # every training step needs (gemm), so load it now rather than fail mid-step.
        import cupy.cublas  # noqa: F401
    except Exception as exc:
        missing.append(f"the CUDA libraries were not found ({_first_line(exc)}; {INSTALL_LIBRARIES})")
    # gradflow's kernels are compiled by NVRTC at first use: without it, or without the headers it
    # includes, is_available() would say yes and the first kernel would fail to build.
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except Exception as exc:
        missing.append(f"NVRTC, the CUDA runtime compiler gradflow builds its kernels with, was not "
                       f"found ({_first_line(exc)}; {INSTALL_LIBRARIES})")
    if find_cuda_headers() is None:
        missing.append(f"the CUDA headers (cuda_fp16.h) NVRTC needs for gradflow's kernels were not "
                       f"found ({INSTALL_HEADERS})")
    try:
        driver_version = runtime.driverGetVersion()
    except Exception:
        driver_version = 0
    if not driver_version:
        # Without a driver no device can be counted: stop here rather than add a second symptom.
        missing.append("no NVIDIA driver is loaded (is this a machine with an NVIDIA GPU?)")
        return missing
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:
        missing.append(f"no CUDA device is visible ({_first_line(exc)})")
        return missing
    if count == 0:
        missing.append("no CUDA device is visible (check CUDA_VISIBLE_DEVICES)")
    return missing


@functools.lru_cache(maxsize=1)
def why_cuda_unusable() -> str | None:
    missing = missing_pieces()
    return "; ".join(missing) if missing else None


def is_available() -> bool:
    """True when CuPy, the CUDA libraries (cuBLAS, NVRTC and the headers), a driver and at least
    one device are all present."""
    from .device import forced_cpu

    return not forced_cpu() and why_cuda_unusable() is None
