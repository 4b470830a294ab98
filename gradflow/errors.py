"""Exceptions gradflow raises: one type per kind of misuse.

Each inherits from the built-in exception a Python user would expect to catch
(ValueError for bad shapes, TypeError for bad dtypes, RuntimeError for graph and
device state), so ``except ValueError`` still works, while ``except
gradflow.ShapeError`` catches exactly ours.
"""
import numpy.exceptions as _numpy_exceptions


class GradflowError(Exception):
    """Base class of every error gradflow raises on purpose."""


class ShapeError(GradflowError, ValueError):
    """Operand shapes do not fit the operation (names the shapes)."""


class AxisError(ShapeError, _numpy_exceptions.AxisError):
    """An axis argument is out of range for the tensor's dimensions. Also NumPy's AxisError, so
    ``except IndexError`` (PyTorch's "Dimension out of range") and ``except ValueError`` catch it."""


class ClassIndexError(GradflowError, IndexError, ValueError):
    """A class-index target lies outside ``[0, classes)``: an ``IndexError`` as PyTorch raises, and a
    ``ValueError`` as it was before it had its own type."""


def check_axis(axis, ndim, shape, what="axis"):
    """``axis`` wrapped into ``range(ndim)``, or AxisError naming the shape. A 0-d tensor accepts
    axis 0 and -1, as PyTorch does (the reduction or squeeze over it is then over no axis)."""
    bound = ndim if ndim else 1
    if not isinstance(axis, int) or isinstance(axis, bool):
        axis = _as_int(axis, what)
    if not -bound <= axis < bound:
        raise AxisError(f"{what} {axis} is out of range for a tensor of shape {tuple(shape)} "
                        f"(expected in [{-bound}, {bound - 1}])")
    return axis % bound


def _as_int(axis, what):
    try:
        return int(axis.__index__())
    except (AttributeError, TypeError):
        raise TypeError(f"{what} must be an integer, got {type(axis).__name__}") from None


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
