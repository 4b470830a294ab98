"""The op table: every primitive with its gradient, and the functions built from them.

Primitives (forward + VJP side by side) live by kind: ``elementwise``, ``activation``,
``reduce``, ``shape``, ``linalg``, ``softmax``. Everything here is also a ``gradflow.<name>``
function and, where natural, a Tensor method.
"""
from .activation import ACTIVATIONS, gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh
from .compare import (eq, equal, ge, greater, greater_equal, gt, isfinite, isnan, le, less, less_equal, lt,
                      ne, not_equal, sign)
from .elementwise import abs, add, clip, div, erf, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where
from .linalg import matmul
from .reduce import all, amax, amin, any, argmax, argmin, max, mean, min, std, sum, sum_of_squares, var
from .registry import Op, primitive
from .shape import (broadcast_to, cast, cat, concatenate, expand, expand_as, expand_dims, flatten, getitem,
                    permute, reshape, squeeze, stack, sum_to, swapaxes, to_device, transpose, unsqueeze, view)
from .softmax import cross_entropy, log_softmax, softmax

clamp = clip
subtract, multiply, divide, negative, power = sub, mul, div, neg, pow


def square(x):
    return mul(x, x)


# ----- reductions and scans, movement, indexing (issue 13, part B) -----
from .einsum import einsum  # noqa: E402
from .indexing import (argwhere, gather, index_select, masked_fill, masked_select, nonzero, one_hot,  # noqa: E402
                       scatter, scatter_add, scatter_reduce, take_along_axis, take_along_dim)
from .movement import (chunk, diag, diagonal, flip, meshgrid, moveaxis, movedim, pad, repeat,  # noqa: E402
                       repeat_interleave, roll, split, tile, trace, tril, triu, unbind, unfold)
from .scan import cummax, cummin, cumprod, cumsum, logcumsumexp, logsumexp, prod  # noqa: E402
from .sorting import argsort, median, sort, topk  # noqa: E402
