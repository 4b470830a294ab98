"""The output layer fused into its loss: ``cross_entropy(x Wᵀ + b, labels)`` as ``linear`` without
its bias, then ``cross_entropy_bias``, whose kernels add the bias as they read each logit.

# Note: [the output bias lives in the loss kernels]
``linear`` adds its bias in a separate pass over the (N, C) logits, and its backward sums the
logits' gradient over rows in another. Here the softmax cross-entropy kernels read ``z = logits +
b`` on the fly (kernels/softmax_xent.cu), so forward has no bias pass, and backward writes
``gz = softmax(z) - onehot`` once and takes the bias gradient as its column sum (the same
``column_sum`` pass the fused hidden layers use). The N×C product saved for backward is the
one ``cross_entropy`` of a ``linear`` saves anyway. The differentiable rules below are written in
gradflow ops, so the loss can be differentiated twice like ``cross_entropy``.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor
from .autocast import autocast_dtype, half_linear, to_float32
from .linalg import linear
from .reduce import sum
from .registry import primitive
from .shape import cast, unsqueeze
from .softmax import check_class_labels, softmax


@primitive("cross_entropy_bias", save=("logits", "labels", "bias"))
def _cross_entropy_bias(backend, logits, labels, bias, reduction):
    return backend.kernels.softmax_xent_forward(logits, labels, bias=bias, reduction=reduction)


def _onehot(logits, labels):
    from ..backends import of_array

    xp = of_array(logits.data).xp
    onehot = xp.zeros_like(logits.data)
    onehot[xp.arange(onehot.shape[0]), labels.data] = 1
    return Tensor(onehot)


@_cross_entropy_bias.fast_vjp
def _cross_entropy_bias_fast_vjp(ctx, g):
    from ..backends import of_array

    logits, labels, bias = ctx.saved
    kernels = of_array(g).kernels
    rows = logits.shape[0]
    factor = 1.0 / rows if ctx.params["reduction"] == "mean" and rows else 1.0
    gz = kernels.softmax_xent_backward(logits, labels, g, factor, bias=bias)
    gb = kernels.column_sum(gz) if ctx.needs_input_grad[2] else None
    return (gz if ctx.needs_input_grad[0] else None), None, gb


@_cross_entropy_bias.vjp
def _cross_entropy_bias_vjp(ctx, g):
    logits, labels, bias = ctx.saved
    reduction = ctx.params["reduction"]
    scale = g * (1.0 / logits.shape[0]) if reduction == "mean" else g
    if reduction == "none":
        scale = unsqueeze(scale, 1)
    gz = (softmax(logits + bias, axis=1) - _onehot(logits, labels)) * scale
    return gz, None, sum(gz, axis=0)


@_cross_entropy_bias.jvp
def _cross_entropy_bias_jvp(ctx, t_logits, t_labels, t_bias):
    logits, labels, bias = ctx.inputs
    terms = [t for t in (t_logits, None if t_bias is None else unsqueeze(t_bias, 0)) if t is not None]
    if not terms:
        return None
    t = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    per_row = sum((softmax(logits + bias, axis=1) - _onehot(logits, labels)) * t, axis=1)
    reduction = ctx.params["reduction"]
    if reduction == "none":
        return per_row
    total = sum(per_row)
    return total * (1.0 / logits.shape[0]) if reduction == "mean" else total


def linear_cross_entropy(x, weight, bias, labels, reduction="mean"):
    """``cross_entropy(linear(x, weight, bias), labels)`` with the bias added inside the loss
    kernels: one pass fewer forward (and on the GPU one launch fewer), same values and gradients.

    >>> import gradflow as gf
    >>> x, w, b = gf.ones(2, 3), gf.zeros(4, 3, requires_grad=True), gf.zeros(4)
    >>> round(gf.nn.functional.linear_cross_entropy(x, w, b, [0, 3]).item(), 4)  # log 4
    1.3863
    """
    if not isinstance(labels, Tensor):
        from ..tensor import tensor

        labels = tensor(labels, device=x.device)
    if weight.ndim != 2 or x.ndim != 2:
        raise ShapeError(f"linear_cross_entropy expects x (N, in) and weight (C, in), got "
                         f"{x.shape} and {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ShapeError(f"linear_cross_entropy: input has {x.shape[1]} features (shape {x.shape}) "
                         f"but the weight {weight.shape} expects {weight.shape[1]}")
    if bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear_cross_entropy: bias of shape {bias.shape} does not match "
                         f"{weight.shape[0]} classes")
    check_class_labels("linear_cross_entropy", labels, x.shape[0], weight.shape[0], reduction, f"x {x.shape}")
    if autocast_dtype() is not None:
        # Mixed precision: the product in half (float32 accumulation), the loss in float32.
        logits = to_float32(half_linear(x, weight))
        return _cross_entropy_bias(logits, labels, cast(bias, np.float32), reduction=reduction)
    return _cross_entropy_bias(linear(x, weight), labels, bias, reduction=reduction)
