"""Neural-network functions built from the op table (PyTorch's ``torch.nn.functional`` names).

``linear`` takes weights shaped (out, in) like PyTorch, so ``linear(x, W) = x Wᵀ``; activations,
softmax and cross-entropy are the fused primitives in ``gradflow.ops``.
"""
from __future__ import annotations

from .. import creation
from ..autograd.grad_mode import is_grad_enabled  # noqa: F401  (re-exported for layers)
from ..errors import ShapeError
from ..ops import gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, sum_of_squares, tanh
from ..ops.reduce import l2_penalty as _l2_penalty
from ..ops.activation import ACTIVATIONS
from ..ops.fused import FUSED_ACTIVATIONS, LINEAR_ACTIVATIONS
from ..ops.autocast import autocast_dtype, half_linear
from ..ops.linalg import linear as _linear
from ..ops.output_layer import linear_cross_entropy
from ..autograd.node import apply as _apply
from ..tensor import Tensor

_NO_PARAMS = {}  # the ops called with apply below take no parameters; never mutated
from .functional_activations import (celu, elu, hardsigmoid, hardswish, hardtanh, logsigmoid, mish, relu6, selu,
                                     softmin, softplus, softsign)

__all__ = ["linear", "linear_act", "relu", "leaky_relu", "gelu", "sigmoid", "tanh", "softplus", "silu", "softmax",
           "log_softmax", "cross_entropy", "linear_cross_entropy", "mse_loss", "dropout", "l2_penalty", "FUSED_ACTIVATIONS",
           "elu", "selu", "celu", "mish", "hardswish", "hardsigmoid", "logsigmoid", "softsign", "relu6", "hardtanh",
           "softmin"]

# Convolution, pooling, normalization and resizing (the CNN layers' functions; see gradflow/ops/).
from ..ops.conv import conv1d, conv2d, conv_transpose2d
from ..ops.norm import batch_norm, group_norm
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..ops.resample import interpolate

__all__ += ["conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
            "batch_norm", "group_norm", "interpolate"]
from ..ops.pool1d import avg_pool1d, max_pool1d
from ..ops.unpool import max_unpool1d, max_unpool2d

__all__ += ["max_pool1d", "avg_pool1d", "max_unpool1d", "max_unpool2d"]

# Transformer layers and PyTorch's losses (gradflow/ops/normalization.py, attention.py, losses.py).
from ..ops.attention import scaled_dot_product_attention, sdpa_kernel
from ..ops.losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss,
                          l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from ..ops.normalization import embedding, layer_norm

__all__ += ["layer_norm", "embedding", "scaled_dot_product_attention", "sdpa_kernel", "nll_loss",
            "binary_cross_entropy", "binary_cross_entropy_with_logits", "l1_loss", "smooth_l1_loss", "huber_loss"]


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` with ``weight`` shaped (out_features, in_features)."""
    tensors = _check_linear(x, weight, bias)
    if autocast_dtype() is not None:
        return half_linear(x, weight, bias)  # mixed precision (gradflow/ops/autocast.py)
    if tensors:  # apply itself: calling the op would pack its arguments once more
        return _apply(_linear, (x, weight) if bias is None else (x, weight, bias), _NO_PARAMS)
    return _linear(x, weight) if bias is None else _linear(x, weight, bias)


def _check_linear(x, weight, bias):
    """Raise ShapeError for operands linear cannot take; True for the usual call, all Tensors."""
    if isinstance(x, Tensor) and isinstance(weight, Tensor) and (bias is None or isinstance(bias, Tensor)):
        w = weight._data.shape  # the usual call, read off the arrays (Tensor.shape is a Python property)
        if len(w) == 2 and x._data.shape[-1:] == w[1:] and (bias is None or bias._data.shape == w[:1]):
            return True
    if weight.ndim != 2:
        raise ShapeError(f"linear expects a 2-D weight (out, in), got shape {weight.shape}")
    if x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the weight "
                         f"{weight.shape} expects {weight.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias of shape {bias.shape} does not match {weight.shape[0]} outputs")


def linear_act(x, weight, bias, activation):
    """``activation(linear(x, weight, bias))``, as one fused op when it pays.

    With a bias and an activation whose derivative is written from its output (relu, sigmoid,
    tanh, softplus) this is the primitive ``linear_<activation>``: z = x Wᵀ + b is never stored,
    and backward gets ``g ⊙ φ'`` and the bias gradient from one kernel pass (see the note in
    ``gradflow/ops/fused.py``). Otherwise it is ``linear`` followed by the activation.

    >>> import gradflow as gf
    >>> x, w, b = gf.ones(2, 3), gf.ones(4, 3, requires_grad=True), gf.zeros(4)
    >>> gf.nn.functional.linear_act(x, w, b, "relu").grad_fn.name
    'linear_relu'
    """
    fused = LINEAR_ACTIVATIONS.get(activation)  # one lookup for the usual call (every fused one is known)
    if fused is None or bias is None or autocast_dtype() is not None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        return ACTIVATIONS[activation](linear(x, weight, bias))
    if _check_linear(x, weight, bias):
        return _apply(fused, (x, weight, bias), _NO_PARAMS)
    return fused(x, weight, bias)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout)."""
    if not 0 <= p < 1:
        if p == 1 and training:
            return x * 0
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    keep = creation.generator().random(x.shape) >= p
    from ..backends import of_array

    mask = of_array(x.data).xp.asarray(keep.astype(x.dtype) / x.dtype.type(1 - p))
    return x * Tensor(mask)


def l2_penalty(params, weight_decay=1.0):
    """The textbook's ``λ/2 Σ‖W‖²_F`` over ``params`` (``weight_decay`` is λ): one primitive
    (ops/reduce.py's note [the L2 penalty is one primitive])."""
    return _l2_penalty(params, weight_decay)


# PyTorch's torch.nn.functional names for ops in gradflow/ops (issue 13, part B).
from ..ops.indexing import one_hot  # noqa: E402,F401
from ..ops.movement import pad  # noqa: E402,F401
