import pytest

from emulated_cupy import EmulatedCuPy, ModuleBuilder, cuda_device_state
from host_kernels import HostKernels, build, find_cxx


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a usable CUDA device (skipped without one)")


@pytest.fixture(scope="session")
def host_kernels(tmp_path_factory):
    """kernels/ compiled for the CPU once per session (a few seconds with g++)."""
    cxx = find_cxx()
    if cxx is None:
        pytest.skip("no host C++ compiler (g++ or $CXX) to build kernels/ for the CPU")
    return HostKernels(build(cxx, tmp_path_factory.mktemp("kernels_host")))


@pytest.fixture(scope="session")
def emulated_module_builder(tmp_path_factory):
    """Compiles what cuda_kernels hands to the emulated cupy.RawModule, once per session."""
    if find_cxx() is None:
        pytest.skip("no host C++ compiler (g++ or $CXX) to build the emulated CuPy modules")
    return ModuleBuilder(tmp_path_factory.mktemp("emulated_cupy"))


@pytest.fixture
def emulated_cupy(emulated_module_builder, monkeypatch):
    """``import cupy`` gives emulated_cupy's modules for one test. cuda_kernels caches modules and
    the multiprocessor count per process: emptied before and after, so nothing emulated outlives
    the test and a test may set ``multiprocessors`` before its first launch."""
    from gradflow.backends import cuda_kernels

    emulation = EmulatedCuPy(emulated_module_builder)
    emulation.install(monkeypatch)
    cuda_kernels.clear_caches()
    yield emulation
    cuda_kernels.clear_caches()


@pytest.fixture
def emulated_cuda(emulated_cupy, monkeypatch):
    """Device "cuda" usable for one test, on the emulated CuPy: gradflow builds its real CuPy
    backend over it, and what it caches about CUDA is put back afterwards (cuda_device_state)."""
    with cuda_device_state(monkeypatch):
        yield emulated_cupy
