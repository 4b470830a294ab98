"""Declaring elementwise primitives in one row each: the array module's ufunc plus its derivative.

``unary("sin", lambda x, out: cos(x))`` makes the primitive ``sin``: forward ``xp.sin`` (so NumPy
and CuPy share it), VJP ``g * φ'`` and JVP ``t * φ'`` with the same φ' written in gradflow ops, so
second derivatives come for free (HIPS autograd's ``defvjp`` rows, with the JVP beside them).
``save`` names what φ' reads — the input, the output, or both — and only that is kept.

``binary`` does the same for two broadcasting inputs: one partial derivative per input, and the
VJP undoes broadcasting with ``sum_to``.
"""
from __future__ import annotations

from ..backends import of_array
from .registry import constant, data_of, primitive
from .shape import jvp_total, sum_to


def _named(saved, save):
    """``(x, out)`` from an op's saved values, None for what it did not save."""
    values = dict(zip(save, saved))
    return values.get("x"), values.get("out")


def unary(name, derivative, save=("x",), numpy_name=None, doc=None, compute=None):
    """An elementwise primitive ``xp.<numpy_name>(x)`` (or ``compute(xp, x)``) whose derivative is
    ``derivative(x, out)``."""
    ufunc = numpy_name or name

    def forward(backend, x):
        if compute is not None:
            return compute(backend.xp, x)
        return getattr(backend.xp, ufunc)(x)

    op = primitive(name, save=save)(forward)
    op.doc = doc or f"Elementwise {name} (NumPy's ``{ufunc}``)."

    @op.vjp
    def vjp(ctx, g):
        return g * derivative(*_named(ctx.saved, save))

    @op.jvp
    def jvp(ctx, t):
        return t * derivative(ctx.inputs[0], ctx.out)

    return op


def binary(name, dx, dy, numpy_name=None, doc=None):
    """An elementwise primitive ``xp.<numpy_name>(x, y)`` (broadcasting) with partial derivatives
    ``dx(x, y, out)`` and ``dy(x, y, out)``; None for a partial derivative that is zero (the
    gradient is then zeros, never ``g * 0``, which would turn an infinite ``g`` into NaN)."""
    ufunc = numpy_name or name

    def forward(backend, x, y):
        return getattr(backend.xp, ufunc)(x, y)

    op = primitive(name, save=("x", "y", "out"), same_dtype=True)(forward)
    op.doc = doc or f"Elementwise {name} of two broadcasting tensors (NumPy's ``{ufunc}``)."

    @op.vjp
    def vjp(ctx, g):
        x, y, out = ctx.saved
        needs = ctx.needs_input_grad
        return (_partial(g, dx, x, y, out, ctx.shapes[0]) if needs[0] else None,
                _partial(g, dy, x, y, out, ctx.shapes[1]) if needs[1] else None)

    @op.jvp
    def jvp(ctx, tx, ty):
        x, y = ctx.inputs
        if (tx is None or dx is None) and (ty is None or dy is None):
            return None if tx is None and ty is None else zero_like(ctx.out)
        return jvp_total(ctx.out.shape, None if tx is None or dx is None else tx * dx(x, y, ctx.out),
                         None if ty is None or dy is None else ty * dy(x, y, ctx.out))

    return op


def _partial(g, derivative, x, y, out, shape):
    if derivative is None:
        array = data_of(g)
        return constant(of_array(array).xp.zeros(shape, dtype=array.dtype))
    return sum_to(g * derivative(x, y, out), shape)


def piecewise_constant(name, numpy_name=None, doc=None):
    """An elementwise primitive with zero derivative almost everywhere (floor, ceil, trunc): its
    gradient is zeros, as in PyTorch, rather than no gradient at all."""
    ufunc = numpy_name or name

    def forward(backend, x):
        return getattr(backend.xp, ufunc)(x)

    op = primitive(name)(forward)
    op.doc = doc or f"Elementwise {name} (NumPy's ``{ufunc}``); its gradient is zero."
    op.vjp(lambda ctx, g: zero_like(g))
    op.jvp(lambda ctx, t: zero_like(t))
    return op


def zero_like(value):
    """Zeros of ``value``'s shape and dtype as a constant: the gradient of a piecewise-constant op."""
    array = data_of(value)
    return constant(of_array(array).xp.zeros_like(array))


def mask_of(condition, like):
    """The boolean array ``condition`` as a constant of ``like``'s dtype (a derivative that is
    piecewise constant, so its own derivative is zero)."""
    return constant(condition.astype(data_of(like).dtype))
