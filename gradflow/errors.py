"""Exceptions gradflow raises: one type per kind of misuse.

Each inherits from the built-in exception a Python user would expect to catch
(ValueError for bad shapes, TypeError for bad dtypes, RuntimeError for graph and
device state), so ``except ValueError`` still works, while ``except
gradflow.ShapeError`` catches exactly ours.
"""


class GradflowError(Exception):
    """Base class of every error gradflow raises on purpose."""


class ShapeError(GradflowError, ValueError):
    """Operand shapes do not fit the operation (names the shapes)."""


class DTypeError(GradflowError, TypeError):
    """Operand dtypes do not fit the operation (names the dtypes)."""


class DeviceError(GradflowError, RuntimeError):
    """Tensors on different devices were mixed, or a device string is invalid."""


class CUDAUnavailableError(DeviceError):
    """CUDA was asked for, but this machine cannot provide it (says which part is missing)."""


class GraphFreedError(GradflowError, RuntimeError):
    """Backward reached a node whose saved tensors were already freed."""


class BackwardError(GradflowError, RuntimeError):
    """backward()/grad() was called in a way that has no defined meaning."""


class AnomalyError(GradflowError, FloatingPointError):
    """detect_anomaly() found a NaN or infinity (names the op that made it)."""
