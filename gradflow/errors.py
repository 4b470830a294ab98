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


class InplaceModificationError(GradflowError, RuntimeError):
    """A tensor the graph saved for backward was written in place afterwards (names the op, the
    tensor's shape and dtype, and its version)."""


class AnomalyError(GradflowError, FloatingPointError):
    """detect_anomaly() found a NaN or infinity (names the op that made it)."""


def check_like(value, target, what, of):
    """Raise the specific error when tensor ``value`` (a gradient, say) differs from ``target`` in
    shape, dtype or device; ``what`` and ``of`` name them in the message ("gradient", "output 0")."""
    if value.shape != target.shape:
        raise ShapeError(f"{what} of shape {value.shape} given for {of} of shape {target.shape}")
    if value.dtype != target.dtype:
        raise DTypeError(f"{what} of dtype {value.dtype} given for {of} of dtype {target.dtype}")
    if type(value.data) is not type(target.data):
        raise DeviceError(f"{what} on {value.device} given for {of} on {target.device}")
