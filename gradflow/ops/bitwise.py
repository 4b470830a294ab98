"""Bitwise and logical functions: integer or boolean results that never require grad (forward only).

Bitwise ops and shifts take integer or boolean tensors (shifts: integers only) and raise a
DTypeError naming the dtypes otherwise, where NumPy would raise a bare TypeError from its ufunc.
Logical ops take any dtype and treat nonzero as True. Operators: ``& | ^ ~ << >>``.
"""
from __future__ import annotations

from ..backends import of_array
from ..errors import DeviceError, DTypeError
from ..tensor import Tensor, constant_like


def _operands(name, x, y):
    x = x if isinstance(x, Tensor) else constant_like(x, y)
    y = y if isinstance(y, Tensor) else constant_like(y, x)
    if type(x.data) is not type(y.data):
        raise DeviceError(f"{name}: operands are on different devices ({x.device}, {y.device})")
    return x, y


def _check_integer(name, kinds, *tensors):
    if any(t.dtype.kind not in kinds for t in tensors):
        dtypes = ", ".join(str(t.dtype) for t in tensors)
        wanted = "integer" if kinds == "iu" else "integer or boolean"
        raise DTypeError(f"{name} needs {wanted} tensors, got {dtypes}")


def _binary(name, kinds):
    def function(x, y):
        x, y = _operands(name, x, y)
        if kinds:
            _check_integer(name, kinds, x, y)
        return Tensor(getattr(of_array(x.data).xp, name)(x.data, y.data))
    function.__name__ = name
    function.__doc__ = f"Elementwise ``{name}`` (NumPy's ufunc; a tensor without gradient)."
    return function


def _unary(name, kinds):
    def function(x):
        if kinds:
            _check_integer(name, kinds, x)
        return Tensor(getattr(of_array(x.data).xp, name)(x.data))
    function.__name__ = name
    function.__doc__ = f"Elementwise ``{name}`` (NumPy's ufunc; a tensor without gradient)."
    return function


bitwise_and = _binary("bitwise_and", "iub")
bitwise_or = _binary("bitwise_or", "iub")
bitwise_xor = _binary("bitwise_xor", "iub")
bitwise_not = _unary("invert", "iub")
bitwise_not.__name__ = "bitwise_not"
invert = bitwise_not
left_shift = _binary("left_shift", "iu")
right_shift = _binary("right_shift", "iu")
bitwise_left_shift, bitwise_right_shift = left_shift, right_shift  # PyTorch's names

logical_and = _binary("logical_and", "")
logical_or = _binary("logical_or", "")
logical_xor = _binary("logical_xor", "")
logical_not = _unary("logical_not", "")
