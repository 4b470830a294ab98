"""The op table: every primitive with its gradient, and the functions built from them.

Primitives (forward + VJP side by side) live by kind: ``elementwise``, ``activation``,
``reduce``, ``shape``, ``linalg``, ``softmax``, ``trig``, ``explog``, ``rounding`` (declared one row
each with ``ufunc``); ``compare`` and ``bitwise`` are forward only. README.md lists them.
Everything here is also a ``gradflow.<name>`` function and, where natural, a Tensor method.
"""
from .activation import ACTIVATIONS, gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh
from .compare import (eq, equal, ge, greater, greater_equal, gt, isclose, isfinite, isinf, isnan, isneginf,
                      isposinf, le, less, less_equal, lt, ne, not_equal, sign)
from .elementwise import abs, add, clip, div, erf, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where
from .linalg import matmul
from .autocast import half_under_autocast as _half_under_autocast

matmul = _half_under_autocast(matmul)  # gf.matmul and ``@`` run in float16 under autocast
from .reduce import all, amax, amin, any, argmax, argmin, max, mean, min, std, sum, sum_of_squares, var
from .registry import Op, primitive
from .shape import (broadcast_to, cast, cat, concatenate, expand, expand_as, expand_dims, flatten, getitem,
                    permute, reshape, squeeze, stack, sum_to, swapaxes, to_device, transpose, unsqueeze, view)
from .softmax import cross_entropy, log_softmax, softmax

from .bitwise import (bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or, bitwise_right_shift, bitwise_xor,
                      invert, left_shift, logical_and, logical_not, logical_or, logical_xor, right_shift)
from .explog import exp2, expm1, log10, log1p, log2, logaddexp, reciprocal, rsqrt
from .rounding import ceil, copysign, fix, floor, floor_divide, fmod, mod, nan_to_num, remainder, round, trunc
from .trig import (acos, acosh, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, asin, asinh, atan, atan2,
                   atanh, cos, cosh, hypot, sin, sinh, tan)

clamp = clip
subtract, multiply, divide, negative, power = sub, mul, div, neg, pow


def square(x):
    return mul(x, x)


def lerp(start, end, weight):
    """``start + weight * (end - start)`` (PyTorch's lerp); ``weight`` is a number or a tensor, and
    all three broadcast. A composition, so its gradients need no rule of their own."""
    return start + weight * (end - start)


# ----- reductions and scans, movement, indexing (issue 13, part B) -----
from .einsum import einsum  # noqa: E402
from .indexing import (argwhere, gather, index_select, masked_fill, masked_select, nonzero, one_hot,  # noqa: E402
                       scatter, scatter_add, scatter_reduce, take_along_axis, take_along_dim)
from .movement import (chunk, diag, diagonal, flip, meshgrid, moveaxis, movedim, pad, repeat,  # noqa: E402
                       repeat_interleave, roll, split, tile, trace, tril, triu, unbind, unfold)
from .sections import array_split, dsplit, hsplit, tensor_split, vsplit  # noqa: E402
from .scan import cummax, cummin, cumprod, cumsum, logcumsumexp, logsumexp, prod  # noqa: E402
from .sorting import argsort, median, sort, topk  # noqa: E402
