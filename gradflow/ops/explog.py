"""Exponentials, logarithms and powers beyond exp/log/sqrt: one row each, NumPy's ufunc and its
derivative (see ``ufunc.py``).

These are primitives rather than compositions (``exp2(x) = exp(x ln 2)``) because NumPy's ufuncs
are more accurate where it matters: ``expm1``/``log1p`` near 0, ``logaddexp`` for large inputs.
"""
from __future__ import annotations

import math

from .elementwise import exp
from .ufunc import binary, unary

_LN2, _LN10 = math.log(2.0), math.log(10.0)

exp2 = unary("exp2", lambda x, out: out * _LN2, save=("out",))
expm1 = unary("expm1", lambda x, out: out + 1, save=("out",))
log2 = unary("log2", lambda x, out: 1 / (x * _LN2))
log10 = unary("log10", lambda x, out: 1 / (x * _LN10))
log1p = unary("log1p", lambda x, out: 1 / (x + 1))
reciprocal = unary("reciprocal", lambda x, out: -(out * out), save=("out",),
                   compute=lambda xp, x: 1 / x, doc="Elementwise 1 / x (floating for integer input, as PyTorch).")
rsqrt = unary("rsqrt", lambda x, out: out * out * out * -0.5, save=("out",),
              compute=lambda xp, x: 1 / xp.sqrt(x), doc="Elementwise 1 / sqrt(x) (PyTorch's rsqrt).")

# logaddexp(x, y) = log(e^x + e^y); its partials are the softmax weights e^(x - out), e^(y - out).
logaddexp = binary("logaddexp", lambda x, y, out: exp(x - out), lambda x, y, out: exp(y - out))
