"""The one-line reason CUDA is unusable, for each missing piece, with CuPy faked in sys.modules
so these run (and mean the same) whether or not CuPy is installed."""
import sys
import types

import pytest

from gradflow.backends import cuda_probe
from gradflow.backends.device import resolve
from gradflow.errors import CUDAUnavailableError


def fake_cupy(monkeypatch, *, libraries=True, driver=12040, devices=1, nvrtc=True, headers=True):
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.runtimeGetVersion = lambda: 12040
    runtime.driverGetVersion = lambda: driver
    runtime.getDeviceCount = lambda: devices
    cuda = types.ModuleType("cupy.cuda")
    cuda.runtime = runtime
    cupy = types.ModuleType("cupy")
    cupy.cuda = cuda
    modules = {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime}
    if nvrtc:
        compiler = types.ModuleType("cupy.cuda.nvrtc")
        compiler.getVersion = lambda: (12, 4)
        cuda.nvrtc = modules["cupy.cuda.nvrtc"] = compiler
    else:
        modules["cupy.cuda.nvrtc"] = None
    monkeypatch.setattr(cuda_probe, "find_cuda_headers",
                        lambda: "/fake/cuda/include" if headers else None)
    if libraries:
        modules["cupy.cublas"] = types.ModuleType("cupy.cublas")
    else:
        # None in sys.modules makes `import cupy.cublas` raise ImportError, like a missing .so.
        modules["cupy.cublas"] = None
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    cuda_probe.why_cuda_unusable.cache_clear()


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    monkeypatch.delenv("GRADFLOW_DEVICE", raising=False)
    cuda_probe.why_cuda_unusable.cache_clear()
    yield
    cuda_probe.why_cuda_unusable.cache_clear()


def test_no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert cuda_probe.why_cuda_unusable().startswith("CuPy is not installed (pip install")
    assert not cuda_probe.is_available()


def test_all_present(monkeypatch):
    fake_cupy(monkeypatch)
    assert cuda_probe.why_cuda_unusable() is None and cuda_probe.is_available()


def test_gradflow_device_cpu_wins_over_a_usable_gpu(monkeypatch):
    fake_cupy(monkeypatch)
    monkeypatch.setenv("GRADFLOW_DEVICE", "cpu")
    assert not cuda_probe.is_available()
    with pytest.raises(CUDAUnavailableError, match="GRADFLOW_DEVICE=cpu"):
        resolve("cuda")


@pytest.mark.parametrize("pieces, expected", [
    (dict(libraries=False), ["CUDA libraries were not found", "cupy-cuda12x[ctk]"]),
    (dict(driver=0), ["no NVIDIA driver"]),
    (dict(libraries=False, driver=0), ["CUDA libraries were not found", "no NVIDIA driver"]),
    (dict(devices=0), ["no CUDA device is visible"]),
    (dict(nvrtc=False), ["NVRTC", "cupy-cuda12x[ctk]"]),
    (dict(headers=False), ["CUDA headers (cuda_fp16.h)", "CUDA_PATH"]),
    (dict(nvrtc=False, headers=False, driver=0), ["NVRTC", "cuda_fp16.h", "no NVIDIA driver"]),
])
def test_each_missing_piece_is_named(monkeypatch, pieces, expected):
    fake_cupy(monkeypatch, **pieces)
    reason = cuda_probe.why_cuda_unusable()
    positions = [reason.index(part) for part in expected]
    assert positions == sorted(positions), "pieces are listed in the order to fix them"
    with pytest.raises(CUDAUnavailableError) as error:
        resolve("cuda:0")
    assert "device 'cuda:0' requested but CUDA is not usable" in str(error.value)
    assert all(part in str(error.value) for part in expected)


def test_a_broken_cupy_install_is_reported_not_raised(monkeypatch):
    import builtins

    monkeypatch.delitem(sys.modules, "cupy", raising=False)

    real_import = builtins.__import__

    def broken_import(name, *args, **kwargs):
        if name == "cupy":
            raise OSError("libcuda.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken_import)
    assert cuda_probe.why_cuda_unusable() == \
        "CuPy failed to import (OSError: libcuda.so: cannot open shared object file)"


def test_headers_are_found_where_cupy_says_the_toolkit_is(monkeypatch, tmp_path):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "cuda_fp16.h").write_text("// stub")
    fake = types.ModuleType("cupy")
    fake.cuda = types.ModuleType("cupy.cuda")
    fake.cuda.get_cuda_path = lambda: str(tmp_path)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupy.cuda", fake.cuda)
    assert cuda_probe.find_cuda_headers() == tmp_path / "include"
