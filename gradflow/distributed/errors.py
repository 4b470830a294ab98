"""Exceptions of ``gradflow.distributed``: one per kind of failure, each saying how to fix it."""
from ..errors import GradflowError


class DistributedError(GradflowError, RuntimeError):
    """The distributed runtime is missing, not initialised, or was used inconsistently across ranks."""


class DistributedTimeoutError(DistributedError):
    """A collective did not finish in time: another rank died, hangs, or called a different collective."""
