"""matmul and linear. matmul has NumPy's semantics (batched, broadcast batch axes, 1-D operands promoted and dropped).

Its VJPs are ``dX = dY Yᵀ``-style products, never a Jacobian: for ``Z = X W``, ``dX = dZ Wᵀ`` and
``dW = Xᵀ dZ``. X is kept only if W needs a gradient and W only if X does, so the first layer of
a network keeps its input batch but not its weight.
"""
from __future__ import annotations

import numpy as np

from ..autograd.node import ACCUMULATED
from ..backends import dispatch as _dispatch, of_array
from ..errors import ShapeError
from .reduce import _sum, sum
from .registry import primitive
from .shape import jvp_total, reshape, sum_to, swapaxes, unsqueeze

_add_reduce = np.add.reduce  # the sum primitive's NumPy forward (reduce.py), bound once


def _matmul_flops(arrays, out):
    # Each output element is a length-K dot product: K multiplies and K adds.
    return 2 * out.size * arrays[0].shape[-1]


def _linear_flops(arrays, out):
    return _matmul_flops(arrays, out) + (out.size if len(arrays) == 3 else 0)


@primitive("matmul", save=("x", "y"), save_when=("y", "x"), same_dtype=True, flops=_matmul_flops)
def matmul(backend, x, y):
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul needs at least 1-D operands, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    inner_y = y.shape[0] if y.ndim == 1 else y.shape[-2]
    if x.shape[-1] != inner_y:
        raise ShapeError(f"matmul: shapes {tuple(x.shape)} and {tuple(y.shape)} do not align "
                         f"({x.shape[-1]} != {inner_y})")
    try:
        return x @ y
    except ValueError as exc:
        raise ShapeError(f"matmul: cannot broadcast the batch axes of {tuple(x.shape)} and {tuple(y.shape)}: {exc}") from None


@matmul.vjp
def _matmul_vjp(ctx, g):
    x, y = ctx.saved
    x_shape, y_shape = ctx.shapes
    if len(x_shape) == 2 and len(y_shape) == 2:
        return (g @ y.T if y is not None else None,
                x.T @ g if x is not None else None)
    # Promote 1-D operands the way NumPy does, then undo it (and batch broadcasting) at the end.
    if len(x_shape) == 1 and len(y_shape) == 1:
        g = reshape(g, (1, 1))
    elif len(x_shape) == 1:
        g = unsqueeze(g, -2)
    elif len(y_shape) == 1:
        g = unsqueeze(g, -1)
    gx = gy = None
    if y is not None:
        y2 = reshape(y, (y_shape[0], 1)) if len(y_shape) == 1 else y
        x2_shape = (1, x_shape[0]) if len(x_shape) == 1 else x_shape
        gx = reshape(sum_to(g @ swapaxes(y2, -1, -2), x2_shape), x_shape)
    if x is not None:
        x2 = reshape(x, (1, x_shape[0])) if len(x_shape) == 1 else x
        y2_shape = (y_shape[0], 1) if len(y_shape) == 1 else y_shape
        gy = reshape(sum_to(swapaxes(x2, -1, -2) @ g, y2_shape), y_shape)
    return gx, gy


@matmul.jvp
def _matmul_jvp(ctx, tx, ty):
    # Product rule; tangents have their primals' shapes, so NumPy's 1-D and batch rules apply as-is.
    x, y = ctx.inputs
    return jvp_total(ctx.out.shape, None if tx is None else matmul(tx, y), None if ty is None else matmul(x, ty))


# Note: [linear is a primitive]
# x Wᵀ + b could be composed from matmul, transpose and add, but as one op its backward
# computes gW = gᵀx directly in W's (out, in) layout (no transposed copy to add into .grad),
# gb = Σ g without a broadcast-undoing pass, and the graph has one node instead of three.
@primitive("linear", save=("x", "weight"), save_when=("weight", "x"), same_dtype=True, flops=_linear_flops)
def linear(backend, x, weight, *bias):
    out = x @ weight.T
    if bias:
        out += bias[0]
    return out


def as_rows(a, width):
    """``a`` as a matrix of ``width`` columns (batch axes folded into rows)."""
    return a if a.ndim == 2 else reshape(a, (-1, width))


def product_grads(ctx, g):
    """gX = g W and gW = gᵀ X of ``x Wᵀ``, in gradflow ops; ``ctx`` saved (x, weight, ...)."""
    x, weight = ctx.saved[:2]
    out_features, in_features = ctx.shapes[1]
    gx = reshape(g @ weight, ctx.shapes[0]) if weight is not None else None
    gw = as_rows(g, out_features).T @ as_rows(x, in_features) if ctx.needs_input_grad[1] else None
    return gx, gw


@linear.vjp
def _linear_vjp(ctx, g):
    gx, gw = product_grads(ctx, g)
    if len(ctx.shapes) == 2:
        return gx, gw
    gb = sum(as_rows(g, ctx.shapes[1][0]), axis=0) if ctx.needs_input_grad[2] else None
    return gx, gw, gb


@linear.jvp
def linear_tangent(ctx, tx, tw, *tb):
    x, weight = ctx.inputs[0], ctx.inputs[1]
    terms = [None if tx is None else matmul(tx, swapaxes(weight, -1, -2)),
             None if tw is None else matmul(x, swapaxes(tw, -1, -2))]
    if tb:
        terms.append(tb[0])
    return jvp_total(ctx.out.shape, *terms)


# Note: [linear's weight gradient goes into .grad]
# The first-order rule runs both products through the kernel table's gemm (cuBLAS on the GPU,
# BLAS on the CPU), so the dispatch counter sees them. When the engine hands over the weight's
# existing .grad array, gW = gᵀx is added into it by gemm with beta = 1: no gW temporary and no
# new .grad buffer. The differentiable rule above stays the definition; tests compare the two.
def product_grad_arrays(ctx, g_rows, weight_grad, saved=None):
    """gX and gW of ``x Wᵀ`` on arrays, by the kernel table's gemm; ``g_rows`` is the output
    gradient as (rows, out_features). gW is added into ``weight_grad`` when one is given (and
    ACCUMULATED returned in its place). Shared with the fused linear + activation ops, which
    pass the (x, weight) they have already read off ``ctx.saved``."""
    x, weight = ctx.saved[:2] if saved is None else saved
    backend = of_array(g_rows)
    kernels, xp = backend.kernels, backend.xp
    in_features = ctx.shapes[1][1]
    gx = gw = None
    if weight is not None:
        gx = kernels.gemm(g_rows, weight, xp.empty((g_rows.shape[0], in_features), g_rows.dtype))
        if gx.shape != ctx.shapes[0]:
            gx = gx.reshape(ctx.shapes[0])  # a view: kept only where the shape differs
    if ctx.needs_input_grad[1]:
        x_rows = as_rows(x, in_features)
        if weight_grad is not None and weight_grad.dtype == g_rows.dtype:
            kernels.gemm(g_rows, x_rows, weight_grad, trans_a=True, beta=1.0)
            gw = ACCUMULATED
        else:
            gw = kernels.gemm(g_rows, x_rows, xp.empty(ctx.shapes[1], g_rows.dtype), trans_a=True)
    return gx, gw


@linear.fast_vjp_into(1)
def _linear_arrays(ctx, g, weight_grad):
    if g.dtype != ctx.out_dtype or g.dtype.kind != "f":
        return _linear_vjp(ctx, g)  # a rule upstream changed dtype: let @ promote as before
    g_rows = as_rows(g, ctx.shapes[1][0])
    gx, gw = product_grad_arrays(ctx, g_rows, weight_grad)
    if len(ctx.shapes) == 2:
        return gx, gw
    if not ctx.needs_input_grad[2]:
        return gx, gw, None
    if type(g_rows) is np.ndarray and _dispatch.active is None:
        # The sum primitive's forward on a NumPy array, without its call layers (Op.__call__,
        # _apply_raw): the same reduction, bit for bit. While counting, the primitive itself.
        return gx, gw, _add_reduce(g_rows, 0)
    # The sum primitive itself: sum()'s axis normalization is for user input (g_rows is 2-d).
    return gx, gw, _sum(g_rows, axis=(0,), keepdims=False)

