"""Distributed tests need mpi4py and mpirun: skipped with the install command where they are missing,
except under CI (``CI`` set), where a missing distributed extra fails them instead of silently
skipping the only tests of gradflow.distributed."""
import os

import pytest

from mpi_launch import why_unavailable


def pytest_configure(config):
    config.addinivalue_line("markers", "mpirun: launches scripts under mpirun -n N (needs the distributed extra)")


@pytest.fixture(autouse=True)
def _needs_mpirun(request):
    if request.node.get_closest_marker("mpirun") is None:
        return
    reason = why_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the distributed tests: {reason}", pytrace=False)
    pytest.skip(reason)
