"""Trigonometric and hyperbolic primitives, one row each: NumPy's ufunc and its derivative.

The derivative sits beside the forward (see ``ufunc.py``) and is written in gradflow ops, so it can
be differentiated again. NumPy names first; PyTorch's short names (``asin``, ``atan2``) are aliases.
"""
from __future__ import annotations

from .elementwise import sqrt
from .ufunc import binary, unary

sin = unary("sin", lambda x, out: cos(x))
cos = unary("cos", lambda x, out: -sin(x))
tan = unary("tan", lambda x, out: 1 + out * out, save=("out",))
arcsin = unary("arcsin", lambda x, out: 1 / sqrt(1 - x * x))
arccos = unary("arccos", lambda x, out: -1 / sqrt(1 - x * x))
arctan = unary("arctan", lambda x, out: 1 / (1 + x * x))

sinh = unary("sinh", lambda x, out: cosh(x))
cosh = unary("cosh", lambda x, out: sinh(x))
arcsinh = unary("arcsinh", lambda x, out: 1 / sqrt(x * x + 1))
arccosh = unary("arccosh", lambda x, out: 1 / sqrt(x * x - 1))
arctanh = unary("arctanh", lambda x, out: 1 / (1 - x * x))

# arctan2(y, x) is the angle of the point (x, y): d/dy = x / r², d/dx = -y / r².
arctan2 = binary("arctan2", lambda y, x, out: x / (x * x + y * y), lambda y, x, out: -y / (x * x + y * y),
                 doc="Elementwise angle of the point (x, y) for ``arctan2(y, x)``, in (-π, π].")
# hypot(x, y) = sqrt(x² + y²) without overflow in the squares; its partials are x / out, y / out.
hypot = binary("hypot", lambda x, y, out: x / out, lambda x, y, out: y / out)

asin, acos, atan, atan2 = arcsin, arccos, arctan, arctan2
asinh, acosh, atanh = arcsinh, arccosh, arctanh
