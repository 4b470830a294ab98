"""Mixed precision: ``autocast(dtype="float16")`` runs products (linear layers, ``@``, convolutions)
in half precision with float32 accumulation while the parameters stay float32 (the master
weights), and normalization, softmax and the losses in float32.

# Note: [what autocast changes]
PyTorch's autocast policy, in two lists:

- run in float16 (``half_under_autocast``): ``F.linear``, ``F.linear_act``, the products of
  ``F.linear_cross_entropy``, ``gf.matmul`` / the ``@`` operator, ``F.conv1d``, ``F.conv2d``,
  ``F.conv_transpose2d``. Their floating inputs (weights and biases included) are rounded to
  float16 and they return float16.
- run in float32 (``float32_under_autocast``): ``softmax``, ``log_softmax``, ``layer_norm``,
  ``batch_norm``, ``group_norm`` and every loss (``cross_entropy``, ``nll_loss``, ``mse_loss``,
  ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, ``binary_cross_entropy``(``_with_logits``),
  ``linear_cross_entropy``'s softmax). Float16 inputs are widened (exactly) and the result is
  float32: in half a softmax overflows and loses small probabilities, and a variance or a mean
  over many elements loses digits.

Everything else runs in the dtype of its inputs. Everything is composed of the differentiable
``cast`` op, so the float32 parameters receive float32 gradients (the half gradient cast back
up), and double backward works. Call ``backward()`` outside the block, as PyTorch advises: the
first-order backward runs on raw arrays and never autocasts, but a ``create_graph`` backward
inside the block would send its products through the float16 policy too.

float32 accumulation: on CuPy a float16 GEMM is one cuBLAS call that accumulates in float32.
NumPy's float16 matmul also accumulates in float32 but has no BLAS behind it (a Python-speed
loop nest by comparison), so on the CPU the half-rounded operands are widened back to float32
(exactly), multiplied by BLAS, and the result rounded to half: the numbers of a GPU's
float32-accumulating half GEMM, up to summation order. Convolutions and ``@`` follow the same
CPU emulation: float16-rounded operands, float32 arithmetic, a float16 result. On CuPy they run
on the float16 arrays themselves (cuBLAS/CuPy's float16 matmul accumulates in float32 by default;
only a real GPU run can confirm the numbers of a given CuPy/cuBLAS build). Pair it with ``optim.GradScaler`` so small
half gradients do not flush to zero.
"""
from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

class _AutocastState(threading.local):
    # Per thread, like grad mode: a block in one thread leaves others alone. The class attribute
    # is every thread's default; reading it costs a tenth of getattr(local, "dtype", None) on a
    # thread that never set it (the miss raises and catches AttributeError inside getattr), and
    # every linear layer and loss reads it.
    dtype = None


_state = _AutocastState()


def autocast_dtype():
    """The dtype linear layers run in right now (np.float16 inside ``autocast``), or None."""
    return _state.dtype


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
    from ..autograd import node

    node.promote_under_autocast = promote_mixed_floats  # see the note there: free until first used
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
    if _state.dtype is not None and _floating(t) and t.dtype == np.float16:
        from .shape import cast  # only here: an import statement costs every loss a microsecond

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


def _tensor_type():
    from ..autograd import node

    return node._Tensor


def _map_tensors(convert, args, kwargs):
    tensor = _tensor_type()
    args = tuple(convert(a) if isinstance(a, tensor) else a for a in args)
    kwargs = {k: convert(v) if isinstance(v, tensor) else v for k, v in kwargs.items()}
    return args, kwargs


def _widen(t):
    from .shape import cast

    return cast(t, np.float32) if _floating(t) and t.dtype != np.float32 else t


def half_under_autocast(function):
    """Decorator: inside ``autocast``, ``function`` runs on its floating Tensor arguments rounded
    to float16 and returns float16 (float32 accumulation, see the Note above); outside, untouched.
    Raw arrays (a first-order backward's rules) pass straight through."""
    @functools.wraps(function)
    def autocasting(*args, **kwargs):
        if autocast_dtype() is None or not any(isinstance(a, _tensor_type()) for a in args):
            return function(*args, **kwargs)
        if not all(_floating(a) for a in args[:2] if isinstance(a, _tensor_type())):
            return function(*args, **kwargs)  # integer products are not autocast (PyTorch neither)
        from ..backends import NUMPY, of_array
        from .shape import cast

        args, kwargs = _map_tensors(to_half, args, kwargs)
        first = next(a for a in args if isinstance(a, _tensor_type()))
        if of_array(first.data) is not NUMPY:
            return function(*args, **kwargs)  # the device's half GEMM accumulates in float32
        # The CPU emulation: half-rounded operands widened back (exactly), float32 BLAS, rounded.
        args, kwargs = _map_tensors(_widen, args, kwargs)
        out = function(*args, **kwargs)
        return cast(out, np.float16) if _floating(out) and out.dtype != np.float16 else out
    autocasting.autocast_policy = "float16"
    return autocasting


def float32_under_autocast(function):
    """Decorator: inside ``autocast``, ``function`` runs on its float16 Tensor arguments widened
    to float32 and so returns float32 (normalization, softmax, losses); outside, untouched."""
    @functools.wraps(function)
    def autocasting(*args, **kwargs):
        if _state.dtype is None:  # autocast_dtype() written out: every loss passes here
            return function(*args, **kwargs)
        args, kwargs = _map_tensors(to_float32, args, kwargs)
        return function(*args, **kwargs)
    autocasting.autocast_policy = "float32"
    return autocasting


def promote_mixed_floats(inputs):
    """Inside autocast, ``inputs`` with their floating Tensors of different dtypes cast to the
    widest of them (float16 + float32 -> float32, PyTorch's promotion); None when nothing is to
    be done (outside autocast, one floating dtype), so the engine's strict dtype check runs."""
    if autocast_dtype() is None:
        return None
    tensor = _tensor_type()
    dtypes = {t.dtype for t in inputs if isinstance(t, tensor) and t.dtype.kind == "f"}
    if len(dtypes) < 2:
        return None
    from .shape import cast

    widest = np.result_type(*dtypes)
    return tuple(cast(t, widest) if isinstance(t, tensor) and t.dtype.kind == "f" and t.dtype != widest
                 else t for t in inputs)
