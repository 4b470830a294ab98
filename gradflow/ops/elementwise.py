"""Elementwise primitives: arithmetic, transcendental functions, selection.

Binary rules undo broadcasting with ``sum_to`` (HIPS autograd's ``unbroadcast``), never by hand.
Masks used in gradients (abs, maximum, clip) are constants: their derivative is zero almost
everywhere, so treating them as constants is exact for the second derivative too.
"""
from __future__ import annotations

import math

from ..backends import of_array
from .registry import constant, data_of, primitive
from .shape import jvp_total, sum_to


# ----- binary arithmetic ---------------------------------------------------------------------
@primitive("add", same_dtype=True)
def add(backend, x, y):
    return x + y


@add.vjp
def _add_vjp(ctx, g):
    needs = ctx.needs_input_grad
    return (sum_to(g, ctx.shapes[0]) if needs[0] else None,
            sum_to(g, ctx.shapes[1]) if needs[1] else None)


@add.fast_vjp
def _add_arrays(ctx, g):
    # The rule above on raw arrays, sum_to called only where an axis was broadcast (a chain of
    # small ops spends as long in those calls as in the arithmetic).
    needs, shapes = ctx.needs_input_grad, ctx.shapes
    return ((g if g.shape == shapes[0] else sum_to(g, shapes[0])) if needs[0] else None,
            (g if g.shape == shapes[1] else sum_to(g, shapes[1])) if needs[1] else None)


@add.jvp
def _add_jvp(ctx, tx, ty):
    return jvp_total(ctx.out.shape, tx, ty)


@primitive("sub", same_dtype=True)
def sub(backend, x, y):
    return x - y


@sub.vjp
def _sub_vjp(ctx, g):
    needs = ctx.needs_input_grad
    return (sum_to(g, ctx.shapes[0]) if needs[0] else None,
            sum_to(-g, ctx.shapes[1]) if needs[1] else None)


@sub.fast_vjp
def _sub_arrays(ctx, g):
    # As _add_arrays: the rule above without the sum_to calls where nothing was broadcast.
    needs, shapes = ctx.needs_input_grad, ctx.shapes
    gy = None
    if needs[1]:
        gy = -g
        if gy.shape != shapes[1]:
            gy = sum_to(gy, shapes[1])
    return (g if g.shape == shapes[0] else sum_to(g, shapes[0])) if needs[0] else None, gy


@sub.jvp
def _sub_jvp(ctx, tx, ty):
    return jvp_total(ctx.out.shape, tx, None if ty is None else -ty)


@primitive("mul", save=("x", "y"), save_when=("y", "x"), same_dtype=True)
def mul(backend, x, y):
    return x * y


@mul.vjp
def _mul_vjp(ctx, g):
    # The mul gate swaps its inputs: d(xy)/dx = y, d(xy)/dy = x.
    x, y = ctx.saved
    return (sum_to(g * y, ctx.shapes[0]) if y is not None else None,
            sum_to(g * x, ctx.shapes[1]) if x is not None else None)


@mul.fast_vjp
def _mul_arrays(ctx, g):
    # The rule above on raw arrays with its calls written out (the saved arrays read off the node,
    # sum_to only where an axis was broadcast): mul is the commonest node of a backward.
    if ctx.unpackers is not None:  # saved_tensors_hooks: the rule unpacks through ctx.saved
        return _mul_vjp(ctx, g)
    x, y = ctx.saved_raw
    shapes = ctx.shapes
    gx = gy = None
    if y is not None:
        gx = g * y._data
        if gx.shape != shapes[0]:
            gx = sum_to(gx, shapes[0])
    if x is not None:
        gy = g * x._data
        if gy.shape != shapes[1]:
            gy = sum_to(gy, shapes[1])
    return gx, gy


@mul.jvp
def _mul_jvp(ctx, tx, ty):
    x, y = ctx.inputs
    return jvp_total(ctx.out.shape, None if tx is None else tx * y, None if ty is None else x * ty)


@primitive("div", save=("y", "out"), save_when=(None, "y"), same_dtype=True)
def div(backend, x, y):
    return x / y


@div.vjp
def _div_vjp(ctx, g):
    y, out = ctx.saved
    needs = ctx.needs_input_grad
    gx = g / y if needs[0] or needs[1] else None
    return (sum_to(gx, ctx.shapes[0]) if needs[0] else None,
            sum_to(-gx * out, ctx.shapes[1]) if needs[1] else None)


@div.jvp
def _div_jvp(ctx, tx, ty):
    # d(x/y) = dx/y - (x/y) dy/y
    _, y = ctx.inputs
    return jvp_total(ctx.out.shape, None if tx is None else tx / y,
                     None if ty is None else -(ty * ctx.out) / y)


@primitive("pow", save=("x", "y", "out"), save_when=(None, None, "y"), same_dtype=True)
def pow(backend, x, y):
    return x ** y


@pow.vjp
def _pow_vjp(ctx, g):
    x, y, out = ctx.saved
    needs = ctx.needs_input_grad
    gx = sum_to(g * _pow_dx(x, y), ctx.shapes[0]) if needs[0] else None
    gy = sum_to(g * _pow_dy(x, y, out), ctx.shapes[1]) if needs[1] else None
    return gx, gy


# Note: [pow's edge cases follow PyTorch]
# d(x^y)/dx = y x^(y-1) is 0 where y = 0, also at x = 0 (where 0 * 0^-1 would be NaN): ReLU outputs
# hold exact zeros, so h ** c meets this. d(x^y)/dy = x^y log x is NaN for a negative base (log is
# undefined there even when x^y is not), 0 at x = 0 for y >= 0, and -inf at x = 0 for y < 0.
def _pow_dx(x, y):
    # Where y == 0 the exponent y - 1 becomes 0, so the factor is y * 1 = 0 instead of 0 * inf.
    y_data = data_of(y)
    return y * x ** (y - 1 + constant((y_data == 0).astype(y_data.dtype)))


def _pow_dy(x, y, out):
    x_data, y_data = data_of(x), data_of(y)
    xp = of_array(x_data).xp
    positive = x_data > 0
    edge = xp.where(x_data < 0, xp.nan, xp.where(y_data < 0, -xp.inf, 0.0)).astype(data_of(out).dtype)
    return where(constant(positive), out * _safe_log(x), constant(edge))


def _safe_log(x):
    """log x where x > 0, and 0 elsewhere (the caller chooses the value there)."""
    x_data = data_of(x)
    # The condition is a constant too: a bare device array would be coerced through the host.
    return log(where(constant(x_data > 0), x, constant(x_data * 0 + 1)))


@pow.jvp
def _pow_jvp(ctx, tx, ty):
    x, y = ctx.inputs
    return jvp_total(ctx.out.shape, None if tx is None else tx * _pow_dx(x, y),
                     None if ty is None else ty * _pow_dy(x, y, ctx.out))


@primitive("neg")
def neg(backend, x):
    return -x


@neg.vjp
def _neg_vjp(ctx, g):
    return -g


@neg.jvp
def _neg_jvp(ctx, t):
    return -t


# ----- unary functions ----------------------------------------------------------------------
@primitive("exp", save=("out",))
def exp(backend, x):
    return backend.xp.exp(x)


@exp.vjp
def _exp_vjp(ctx, g):
    (out,) = ctx.saved
    return g * out


@exp.jvp
def _exp_jvp(ctx, t):
    return t * ctx.out


@primitive("log", save=("x",))
def log(backend, x):
    return backend.xp.log(x)


@log.vjp
def _log_vjp(ctx, g):
    (x,) = ctx.saved
    return g / x


@log.jvp
def _log_jvp(ctx, t):
    return t / ctx.inputs[0]


@primitive("sqrt", save=("out",))
def sqrt(backend, x):
    return backend.xp.sqrt(x)


@sqrt.vjp
def _sqrt_vjp(ctx, g):
    (out,) = ctx.saved
    return g / (out * 2)


@sqrt.jvp
def _sqrt_jvp(ctx, t):
    return t / (ctx.out * 2)


@primitive("abs", save=("x",))
def abs(backend, x):
    return backend.xp.abs(x)


@abs.vjp
def _abs_vjp(ctx, g):
    (x,) = ctx.saved
    return g * constant(_sign(data_of(x)))


@abs.jvp
def _abs_jvp(ctx, t):
    return t * constant(_sign(ctx.inputs[0].data))


def _sign(array):
    # A constant: the derivative of |x| is sign(x), whose own derivative is zero almost everywhere.
    return of_array(array).xp.sign(array)


@primitive("erf", save=("x",))
def erf(backend, x):
    return backend.erf(x)


@erf.vjp
def _erf_vjp(ctx, g):
    (x,) = ctx.saved
    return g * exp(-(x * x)) * (2 / math.sqrt(math.pi))


@erf.jvp
def _erf_jvp(ctx, t):
    x = ctx.inputs[0]
    return t * exp(-(x * x)) * (2 / math.sqrt(math.pi))


# ----- selection ----------------------------------------------------------------------------
def _tie_split(winner, tie, dtype):
    # Ties share the gradient equally, so maximum(x, x) has gradient 1 in total, as d(x)/dx.
    return (winner.astype(dtype) + tie.astype(dtype) * dtype.type(0.5))


@primitive("maximum", save=("x", "y"), same_dtype=True)
def maximum(backend, x, y):
    return backend.xp.maximum(x, y)


@maximum.vjp
def _maximum_vjp(ctx, g):
    # The max gate routes the gradient to the larger input.
    x, y = map(data_of, ctx.saved)
    return _select_vjp(ctx, g, x > y, x == y)


@maximum.jvp
def _maximum_jvp(ctx, tx, ty):
    x, y = ctx.inputs
    return _select_jvp(ctx, tx, ty, x.data > y.data, x.data == y.data)


@primitive("minimum", save=("x", "y"), same_dtype=True)
def minimum(backend, x, y):
    return backend.xp.minimum(x, y)


@minimum.vjp
def _minimum_vjp(ctx, g):
    x, y = map(data_of, ctx.saved)
    return _select_vjp(ctx, g, x < y, x == y)


@minimum.jvp
def _minimum_jvp(ctx, tx, ty):
    x, y = ctx.inputs
    return _select_jvp(ctx, tx, ty, x.data < y.data, x.data == y.data)


def _select_vjp(ctx, g, x_wins, tie):
    to_x = _tie_split(x_wins, tie, g.dtype)
    needs = ctx.needs_input_grad
    return (sum_to(g * constant(to_x), ctx.shapes[0]) if needs[0] else None,
            sum_to(g * constant(1 - to_x), ctx.shapes[1]) if needs[1] else None)


def _select_jvp(ctx, tx, ty, x_wins, tie):
    to_x = _tie_split(x_wins, tie, ctx.out.dtype)
    return jvp_total(ctx.out.shape, None if tx is None else tx * constant(to_x),
                     None if ty is None else ty * constant(1 - to_x))


@primitive("clip", save=("x",))
def _clip(backend, x, min, max):
    return backend.xp.clip(x, min, max)


def clip(x, min=None, max=None):
    """Limit values to [min, max] (either bound may be None); gradient 1 inside, 0 outside."""
    if min is None and max is None:
        raise ValueError("clip needs at least one of min and max")
    return _clip(x, min=min, max=max)


@_clip.vjp
def _clip_vjp(ctx, g):
    return g * constant(_inside_clip(data_of(ctx.saved[0]), ctx.params, g.dtype))


def _inside_clip(x, params, dtype):
    """1 where min <= x <= max (inclusive, as PyTorch's clamp), 0 outside or at NaN."""
    lo, hi = params.get("min"), params.get("max")
    inside = x == x
    if lo is not None:
        inside = inside & (x >= lo)
    if hi is not None:
        inside = inside & (x <= hi)
    return inside.astype(dtype)


@_clip.jvp
def _clip_jvp(ctx, t):
    return t * constant(_inside_clip(ctx.inputs[0].data, ctx.params, t.data.dtype))


def where(condition, x, y):
    """Elementwise ``x if condition else y`` (NumPy broadcasting); the condition gets no gradient."""
    return where_op(condition, x, y)


@primitive("where", save=("condition",), same_dtype=True)
def where_op(backend, condition, x, y):
    return backend.xp.where(condition, x, y)


@where_op.vjp
def _where_op_vjp(ctx, g):
    (condition,) = ctx.saved
    zero = constant(of_array(data_of(g)).xp.zeros((), dtype=g.dtype))
    needs = ctx.needs_input_grad
    return (None,
            sum_to(where_op(condition, g, zero), ctx.shapes[1]) if needs[1] else None,
            sum_to(where_op(condition, zero, g), ctx.shapes[2]) if needs[2] else None)


@where_op.jvp
def _where_op_jvp(ctx, t_condition, tx, ty):
    if tx is None and ty is None:
        return None
    like = tx if tx is not None else ty
    zero = constant(of_array(like.data).xp.zeros((), dtype=like.data.dtype))
    return where_op(ctx.inputs[0], zero if tx is None else tx, zero if ty is None else ty)
