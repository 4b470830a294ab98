"""Comparisons and predicates: results are boolean tensors that never require grad."""
from __future__ import annotations

from ..backends import of_array
from ..tensor import Tensor, constant_like


def _compare(name):
    def compare(x, y):
        x = x if isinstance(x, Tensor) else constant_like(x, y)
        y = y if isinstance(y, Tensor) else constant_like(y, x)
        if type(x.data) is not type(y.data):
            from ..errors import DeviceError

            raise DeviceError(f"{name}: operands are on different devices ({x.device}, {y.device})")
        return Tensor(getattr(of_array(x.data).xp, name)(x.data, y.data))
    compare.__name__ = name
    compare.__doc__ = f"Elementwise ``{name}`` (a boolean tensor without gradient)."
    return compare


less, less_equal = _compare("less"), _compare("less_equal")
greater, greater_equal = _compare("greater"), _compare("greater_equal")
equal, not_equal = _compare("equal"), _compare("not_equal")
lt, le, gt, ge, eq, ne = less, less_equal, greater, greater_equal, equal, not_equal


def _elementwise(name, doc):
    def apply(x):
        return Tensor(getattr(of_array(x.data).xp, name)(x.data))
    apply.__name__, apply.__doc__ = name, doc
    return apply


isfinite, isnan, isinf, isposinf, isneginf = (
    _elementwise(name, f"Elementwise ``{name}`` (a boolean tensor without gradient).")
    for name in ("isfinite", "isnan", "isinf", "isposinf", "isneginf"))
sign = _elementwise("sign", "Elementwise sign (no gradient: its derivative is zero almost everywhere).")


def isclose(x, y, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|x - y| <= atol + rtol * |y|`` (NumPy's and PyTorch's defaults; no gradient)."""
    x = x if isinstance(x, Tensor) else constant_like(x, y)
    y = y if isinstance(y, Tensor) else constant_like(y, x)
    return Tensor(of_array(x.data).xp.isclose(x.data, y.data, rtol=rtol, atol=atol, equal_nan=equal_nan))
