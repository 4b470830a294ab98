"""Activation primitives, one per function, all alike: forward and first-order backward run the
backend's fused kernels (``act_forward`` / ``act_backward``), and the differentiable rule
``g * φ'(saved)`` is written in gradflow ops for double backward.

Each saves its output where φ' can be written from it (relu, sigmoid, tanh, softplus), so the
input can be freed, and its input otherwise — ``ACTIVATION_SAVES`` in the kernel table says which.
"""
from __future__ import annotations

import math

from ..backends import of_array
from ..backends.numpy_kernels import ACTIVATION_SAVES
from .elementwise import erf, exp
from .registry import Op, constant, data_of, primitive

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


def _mask(condition, dtype):
    return constant(condition.astype(dtype))


def _leaky_slope(x, alpha):
    # A constant: the slope is piecewise constant, so its own derivative is zero.
    return constant((data_of(x) > 0) * x.dtype.type(1 - alpha) + x.dtype.type(alpha))


# φ'(saved) in gradflow ops, so that it can be differentiated again.
DERIVATIVES = {
    "relu": lambda out, alpha: _mask(data_of(out) > 0, out.dtype),
    "leaky_relu": _leaky_slope,
    "sigmoid": lambda out, alpha: out * (1 - out),
    "tanh": lambda out, alpha: 1 - out * out,
    "gelu": lambda x, alpha: (1 + erf(x * _SQRT_HALF)) * 0.5 + x * exp(x * x * -0.5) * _INV_SQRT_2PI,
    "gelu_tanh": lambda x, alpha: _gelu_tanh_derivative(x),
    "softplus": lambda out, alpha: 1 - exp(-out),
    "silu": lambda x, alpha: _silu_derivative(x),
}


def _gelu_tanh_derivative(x):
    t = ACTIVATIONS["tanh"](_GELU_C * (x + _GELU_K * x * x * x))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (_GELU_C * (1 + 3 * _GELU_K * x * x))


def _silu_derivative(x):
    s = ACTIVATIONS["sigmoid"](x)
    return s * (1 + x * (1 - s))


def _make(name) -> Op:
    saves = ACTIVATION_SAVES[name]

    def forward(backend, x, alpha=0.01):
        return backend.kernels.act_forward(name, x, alpha)

    op = primitive(name, save=(saves,))(forward)
    op.doc = f"Elementwise {name}; backward reads only the saved {'output' if saves == 'out' else 'input'}."
    derivative = DERIVATIVES[name]

    @op.vjp
    def vjp(ctx, g):
        (saved,) = ctx.saved
        return g * derivative(saved, ctx.params.get("alpha", 0.01))

    @op.fast_vjp
    def fast_vjp(ctx, g):
        # The saved array read off the node unless saved_tensors_hooks must unpack it (as mul's).
        (saved,) = ctx.saved if ctx.unpackers is not None else (ctx.saved_raw[0]._data,)
        return of_array(g).kernels.act_backward(name, g, saved, ctx.params.get("alpha", 0.01) if ctx.params else 0.01)

    @op.jvp
    def jvp(ctx, t):
        # The Jacobian is diagonal: the tangent is scaled by the same φ' the VJP uses.
        saved = ctx.out if saves == "out" else ctx.inputs[0]
        return t * derivative(saved, ctx.params.get("alpha", 0.01))

    return op


ACTIVATIONS = {name: _make(name) for name in ACTIVATION_SAVES}
relu = ACTIVATIONS["relu"]
sigmoid = ACTIVATIONS["sigmoid"]
tanh = ACTIVATIONS["tanh"]
softplus = ACTIVATIONS["softplus"]
silu = ACTIVATIONS["silu"]


def leaky_relu(x, negative_slope=0.01):
    return ACTIVATIONS["leaky_relu"](x, alpha=float(negative_slope))


def gelu(x, approximate="none"):
    """GELU, exact (``approximate="none"``, with erf) or the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return ACTIVATIONS["gelu" if approximate == "none" else "gelu_tanh"](x)
