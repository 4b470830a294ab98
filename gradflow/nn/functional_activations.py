"""More activations, as compositions of primitives (PyTorch's names, arguments and defaults).

None of these is a primitive: each is a few ops of the table, so its gradient, JVP and second
derivative come from theirs (STYLE: a small primitive set). Re-exported by ``nn.functional``.

Note: [kinks follow PyTorch] Piecewise activations route the gradient through ``where`` with a
mask computed from the data, never through a branch that can overflow: elu's negative branch sees
``clip(x, max=0)``, so a large positive x gives no ``inf * 0 = NaN`` in backward. At the kinks the
derivative is PyTorch's: hardtanh (and relu6, hardsigmoid) pass the gradient strictly inside the
interval only; elu/celu/selu use the negative branch's slope at 0.
"""
from __future__ import annotations

from ..ops import clip, expm1, softmax, tanh, where
from ..ops import softplus as _softplus
from ..tensor import Tensor

__all__ = ["elu", "selu", "celu", "mish", "hardswish", "hardsigmoid", "logsigmoid", "softsign", "relu6",
           "hardtanh", "softmin", "softplus"]

# SELU's constants (Klambauer et al. 2017), as PyTorch writes them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _mask(condition):
    # A Tensor, not the bare array: where() would coerce a device array through the host.
    return Tensor(condition)


def _positive(x):
    return _mask(x.data > 0)


def elu(x, alpha=1.0):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise.

    >>> gf.nn.functional.elu(gf.tensor([-1.0, 0.0, 2.0])).tolist()
    [-0.6321205496788025, 0.0, 2.0]
    """
    return where(_positive(x), x, expm1(clip(x, max=0.0)) * alpha)


def selu(x):
    """``scale * elu(x, alpha)`` with the self-normalizing constants (alpha ≈ 1.6733, scale ≈ 1.0507)."""
    return elu(x, SELU_ALPHA) * SELU_SCALE


def celu(x, alpha=1.0):
    """``x`` for x > 0, ``alpha * (exp(x / alpha) - 1)`` otherwise (continuously differentiable in alpha)."""
    if alpha == 0:
        raise ValueError("celu alpha must be nonzero")
    return where(_positive(x), x, expm1(clip(x, max=0.0) * (1.0 / alpha)) * alpha)


def mish(x):
    """``x * tanh(softplus(x))``."""
    return x * tanh(_softplus(x))


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """``clip(x, min_val, max_val)``, whose gradient is 1 strictly inside the interval (PyTorch's rule)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh min_val {min_val} is above max_val {max_val}")
    inside = (x.data > min_val) & (x.data < max_val)
    return where(_mask(inside), x, clip(x.detach(), min_val, max_val))


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x):
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear between."""
    return relu6(x + 3.0) / 6.0


def hardswish(x):
    """``x * relu6(x + 3) / 6``."""
    return x * hardsigmoid(x)


def logsigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large |x|."""
    return -_softplus(-x)


def softsign(x):
    """``x / (1 + |x|)``."""
    return x / (abs(x) + 1.0)


def softmin(x, dim=-1):
    """``softmax(-x)`` along ``dim`` (the last axis by default, like gradflow's softmax)."""
    return softmax(-x, dim=dim)


def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold`` (PyTorch's
    softplus with its arguments; ``threshold=None`` never switches). beta = 1 is the primitive."""
    if beta <= 0:
        raise ValueError(f"softplus beta must be positive, got {beta}")
    scaled = x if beta == 1 else x * float(beta)
    out = _softplus(scaled) if beta == 1 else _softplus(scaled) * (1.0 / beta)
    if threshold is None:
        return out
    return where(_mask(scaled.data > threshold), x, out)
