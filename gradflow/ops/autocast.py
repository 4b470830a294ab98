"""Mixed precision: ``autocast(dtype="float16")`` runs linear layers in half precision with
float32 accumulation while the parameters stay float32 (the master weights), and the loss in
float32.

# Note: [what autocast changes]
Inside the block, ``F.linear``, ``F.linear_act`` and ``F.linear_cross_entropy`` round their
floating inputs (x, weight, bias) to float16 and return float16 activations; losses
(``cross_entropy``, ``linear_cross_entropy``) upcast their logits to float32 first, as PyTorch's
autocast does, since a softmax in half overflows and loses the small probabilities. Everything
is composed of the differentiable ``cast`` op, so the float32 parameters receive float32
gradients (the half gradient cast back up), and double backward works.

float32 accumulation: on CuPy a float16 GEMM is one cuBLAS call that accumulates in float32.
NumPy's float16 matmul also accumulates in float32 but has no BLAS behind it (a Python-speed
loop nest by comparison), so on the CPU the half-rounded operands are widened back to float32
(exactly), multiplied by BLAS, and the result rounded to half: the numbers of a GPU's
float32-accumulating half GEMM, up to summation order. Pair it with ``optim.GradScaler`` so small
half gradients do not flush to zero.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

_state = threading.local()  # per thread, like grad mode: a block in one thread leaves others alone


def autocast_dtype():
    """The dtype linear layers run in right now (np.float16 inside ``autocast``), or None."""
    return getattr(_state, "dtype", None)


@contextlib.contextmanager
def autocast(dtype="float16", enabled=True):
    """Run linear layers in ``dtype`` (float16) with float32 accumulation inside the block.

    >>> import gradflow as gf
    >>> w = gf.nn.Parameter(gf.ones(2, 3))
    >>> with gf.autocast():
    ...     y = gf.nn.functional.linear(gf.ones(4, 3), w)
    >>> y.dtype, w.dtype
    (dtype('float16'), dtype('float32'))
    """
    dtype = np.dtype(dtype)
    if dtype != np.float16:
        raise ValueError(f"autocast supports dtype='float16', got {dtype}")
    previous = autocast_dtype()
    _state.dtype = dtype if enabled else None
    try:
        yield
    finally:
        _state.dtype = previous


def _floating(t):
    return t is not None and t.dtype.kind == "f"


def to_half(t):
    """``t`` rounded to the autocast dtype (a differentiable cast), when it is floating."""
    from .shape import cast

    dtype = autocast_dtype()
    return cast(t, dtype) if _floating(t) and t.dtype != dtype else t


def to_float32(t):
    """Inside autocast, a half tensor widened to float32 (losses run in float32)."""
    from .shape import cast

    if autocast_dtype() is not None and _floating(t) and t.dtype == np.float16:
        return cast(t, np.float32)
    return t


def half_linear(x, weight, bias=None):
    """``linear`` with float16 operands and float32 accumulation, returning float16."""
    from ..backends import NUMPY, of_array
    from .linalg import linear
    from .shape import cast

    x, weight, bias = to_half(x), to_half(weight), to_half(bias)
    if of_array(x.data) is not NUMPY:
        # cuBLAS multiplies float16 operands with float32 accumulation itself.
        return linear(x, weight) if bias is None else linear(x, weight, bias)
    wide = [cast(t, np.float32) for t in (x, weight) + ((bias,) if bias is not None else ())]
    return cast(linear(*wide), np.float16)
