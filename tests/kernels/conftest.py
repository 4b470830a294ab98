import pytest

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
