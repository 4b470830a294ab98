"""Distributed tests skip, with the install command, where mpi4py or mpirun is missing."""
import pytest

from mpi_launch import why_unavailable


def pytest_configure(config):
    config.addinivalue_line("markers", "mpirun: launches scripts under mpirun -n N (needs the distributed extra)")


def pytest_collection_modifyitems(config, items):
    reason = why_unavailable()
    if reason is None:
        return
    for item in items:
        if "mpirun" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
