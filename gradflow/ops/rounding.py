"""Rounding, remainders and sign manipulation: piecewise functions whose derivative is a constant
between the jumps (0 for floor/ceil/round/trunc, 1 or a quotient for the remainders), as in PyTorch.

Their derivative masks are constants, which is exact for second derivatives too (zero almost
everywhere).
"""
from __future__ import annotations

from ..backends import of_array
from .registry import constant, data_of, primitive
from .ufunc import binary, mask_of, piecewise_constant, zero_like

floor = piecewise_constant("floor")
ceil = piecewise_constant("ceil")
trunc = piecewise_constant("trunc")
fix = trunc


@primitive("round")
def _round(backend, x, decimals):
    # NumPy and PyTorch both round half to even.
    return backend.xp.round(x, decimals)


_round.vjp(lambda ctx, g: zero_like(g))
_round.jvp(lambda ctx, t: zero_like(t))


def round(x, decimals=0):
    """Round half to even to ``decimals`` places (NumPy's round); its gradient is zero."""
    return _round(x, decimals=int(decimals))


def _quotient(rounding):
    # d/dy of x - y * q(x / y) is -q(x / y): a constant between the jumps of q.
    def dy(x, y, out):
        x_data, y_data = data_of(x), data_of(y)
        return constant(-getattr(of_array(x_data).xp, rounding)(x_data / y_data))
    return dy


# fmod takes the sign of the dividend (C's fmod, PyTorch's fmod); remainder takes the divisor's
# (Python's %, PyTorch's remainder).
fmod = binary("fmod", lambda x, y, out: 1, _quotient("trunc"))
remainder = binary("remainder", lambda x, y, out: 1, _quotient("floor"))
floor_divide = binary("floor_divide", None, None,
                      doc="Elementwise floor(x / y) (Python's //); its gradient is zero.")
mod = remainder


def _copysign_dx(x, y, out):
    # |x| with the sign of y: the derivative is sign(x) * (±1 by y's sign bit), 0 at x = 0.
    x_data, y_data = data_of(x), data_of(y)
    xp = of_array(x_data).xp
    return mask_of(xp.sign(x_data) * xp.copysign(1, y_data), out)


copysign = binary("copysign", _copysign_dx, None)


@primitive("nan_to_num", save=("x",))
def _nan_to_num(backend, x, nan, posinf, neginf):
    return backend.xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def _finite(ctx_x, like):
    x_data = data_of(ctx_x)
    return mask_of(of_array(x_data).xp.isfinite(x_data), like)


# Replaced values are constants: the gradient flows only where x was finite (PyTorch's rule).
_nan_to_num.vjp(lambda ctx, g: g * _finite(ctx.saved[0], g))
_nan_to_num.jvp(lambda ctx, t: t * _finite(ctx.inputs[0], t))


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """Replace NaN by ``nan`` and ±inf by ``posinf``/``neginf`` (the dtype's largest finite values by
    default), as NumPy and PyTorch do."""
    return _nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)
