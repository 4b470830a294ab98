"""erf and expit for the NumPy backend, without starting a second BLAS thread pool at import.

Note: [one BLAS pool]
SciPy's compiled modules (``scipy.special`` among them) link SciPy's own OpenBLAS, which starts
a thread per core the moment it is loaded, beside the one NumPy's BLAS already runs. Two pools
on the same cores slow every matmul down, the user's own NumPy included. So gradflow never
calls SciPy's BLAS (its gemm goes through NumPy, see ``numpy_kernels.gemm``) and loads SciPy
only when a function NumPy lacks is first called: ``erf`` (``gf.erf``, exact GELU). ``expit`` is
written in NumPy. After ``erf`` has loaded SciPy its pool exists but gets no work from gradflow.
"""
from __future__ import annotations

import numpy as np

_scipy_erf = None


def erf(x, out=None):
    """The error function, SciPy's ``erf`` (imported on first call; see the note above)."""
    global _scipy_erf
    if _scipy_erf is None:
        from scipy.special import erf as scipy_erf

        _scipy_erf = scipy_erf
    return _scipy_erf(x, out=out) if out is not None else _scipy_erf(x)


def expit(x, out=None):
    """The logistic sigmoid ``1 / (1 + e^-x)`` in ``x``'s dtype; ``out`` may be ``x`` itself.

    Written from ``e = exp(-|x|)`` so it never overflows: ``1 / (1 + e)`` for x ≥ 0 and
    ``e / (1 + e)`` for x < 0, each accurate to a few ulps (tiny values keep their relative
    precision, as SciPy's ``expit`` does). NaN stays NaN.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    negative = x < 0
    e = np.abs(x, out=np.empty_like(x))  # an array also for 0-d x (a bare ufunc gives a scalar)
    np.negative(e, out=e)
    np.exp(e, out=e)
    numerator = np.where(negative, e, x.dtype.type(1))
    e += 1
    if out is None:
        out = numerator
    return np.divide(numerator, e, out=out)
