"""Shared pytest setup: ``gpu``-marked tests are skipped, with the reason, where CUDA is unusable."""
import pytest


def pytest_collection_modifyitems(config, items):
    from gradflow.backends import is_available
    from gradflow.backends.cuda_probe import why_cuda_unusable

    if is_available():
        return
    reason = why_cuda_unusable() or "GRADFLOW_DEVICE=cpu forces the CPU"
    skip = pytest.mark.skip(reason=f"needs a usable CUDA device: {reason}")
    for item in items:
        # The marker, not ``item.keywords``: keywords hold every parent node's name, so a checkout
        # in a directory named "gpu" would skip the whole suite.
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
