"""Scaled dot-product attention, composed from matmul, where/add, softmax and matmul ("math"),
or as one memory-efficient primitive ("efficient", ``efficient_attention.py``).

The composition is what backward keeps, op by op (gradflow/memory/README.md derives it): the
``q kᵀ`` product saves q and k, softmax saves its output P (L × S per head), and ``P v`` saves P
again (the same buffer, counted once) and v. So one attention call retains q, k, v and the
probabilities: the L² term of a transformer's activation memory. Inside
``sdpa_kernel("efficient")`` the primitive keeps q, k, v, the output and one log-sum-exp per
query row instead, and recomputes P in backward; it needs no dropout and a mask that needs no
gradient, and otherwise the composition runs.
"""
from __future__ import annotations

import contextlib
import math
import threading

from ..backends import of_array
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .elementwise import where
from .shape import swapaxes
from .softmax import softmax


def _check(q, k, v, attn_mask):
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ShapeError(f"scaled_dot_product_attention expects (..., L, E) tensors, got q {q.shape}, "
                         f"k {k.shape}, v {v.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: q {q.shape} and k {k.shape} need one embedding size, "
                         f"k and v {v.shape} one source length S")
    if attn_mask is not None:
        mask_shape = tuple(attn_mask.shape)
        if len(mask_shape) < 2 or mask_shape[-2] not in (1, q.shape[-2]) or mask_shape[-1] not in (1, k.shape[-2]):
            raise ShapeError(f"scaled_dot_product_attention: attn_mask of shape {mask_shape} does not broadcast "
                             f"to the (L, S) = ({q.shape[-2]}, {k.shape[-2]}) scores")


KERNELS = ("math", "efficient")
_selected = threading.local()  # per thread, like grad mode: one thread's choice is not another's


def selected_kernel():
    """The attention kernel this thread uses now: "math" (the default) or "efficient"."""
    return getattr(_selected, "name", "math")


@contextlib.contextmanager
def sdpa_kernel(name):
    """Within the block, ``scaled_dot_product_attention`` (and so the attention modules) uses
    ``name``: "math", the composition that keeps P, or "efficient", which keeps O(L) per row.

    >>> import gradflow as gf
    >>> q = gf.randn(1, 4, 8, requires_grad=True)
    >>> with gf.nn.functional.sdpa_kernel("efficient"):
    ...     out = gf.nn.functional.scaled_dot_product_attention(q, q, q)
    >>> out.grad_fn.name   # the view of the packed output; its input is the efficient_attention node
    'getitem'
    """
    if name not in KERNELS:
        raise ValueError(f"unknown attention kernel {name!r}; choose one of {', '.join(KERNELS)}")
    previous = selected_kernel()
    _selected.name = name
    try:
        yield
    finally:
        _selected.name = previous


def causal_mask(xp, target_length, source_length):
    """True where query i may attend key j (j <= i): the lower triangle, top-left aligned."""
    return xp.tril(xp.ones((target_length, source_length), dtype=bool))


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """``softmax(q kᵀ · scale + mask) v`` over (..., L, E) queries and (..., S, E) keys/values.

    As PyTorch: ``scale`` defaults to 1/√E; a boolean ``attn_mask`` is True where a query may
    attend, a floating one is added to the scores; ``is_causal`` masks keys after each query.
    A row whose keys are all masked is NaN, as in PyTorch. ``dropout_p`` > 0 drops probabilities
    (a module passes 0 in eval mode).

    >>> import gradflow as gf
    >>> q = gf.ones(2, 4, 8)
    >>> gf.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).shape
    (2, 4, 8)
    """
    needs_grad = isinstance(attn_mask, Tensor) and attn_mask.requires_grad
    if selected_kernel() == "efficient" and dropout_p == 0 and not needs_grad:
        _check(q, k, v, attn_mask)
        if is_causal and attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal=True, not both")
        from .efficient_attention import efficient_attention

        mask = None
        if attn_mask is not None:
            mask = attn_mask.data if isinstance(attn_mask, Tensor) else of_array(q.data).xp.asarray(attn_mask)
            if mask.dtype != bool and mask.dtype.kind != "f":
                raise DTypeError(f"attn_mask must be boolean or floating, got dtype {mask.dtype}")
        return efficient_attention(q, k, v, 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale, mask, is_causal)
    return attention_with_weights(q, k, v, attn_mask, dropout_p, is_causal, scale)[0]


def attention_with_weights(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """``scaled_dot_product_attention`` and its probabilities (after dropout): (output, P)."""
    _check(q, k, v, attn_mask)
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal=True, not both")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = (q @ swapaxes(k, -1, -2)) * scale
    xp = of_array(q.data).xp
    if is_causal:
        attn_mask = causal_mask(xp, q.shape[-2], k.shape[-2])
    if attn_mask is not None:
        mask = attn_mask.data if isinstance(attn_mask, Tensor) else xp.asarray(attn_mask)
        if mask.dtype == bool:
            scores = where(Tensor(mask), scores, -math.inf)
        elif mask.dtype.kind == "f":
            scores = scores + (attn_mask if isinstance(attn_mask, Tensor) else Tensor(mask.astype(q.dtype)))
        else:
            raise DTypeError(f"attn_mask must be boolean or floating, got dtype {mask.dtype}")
    probabilities = softmax(scores, axis=-1)
    if dropout_p > 0:
        from ..nn.functional import dropout  # late binding: dropout lives a layer above ops

        probabilities = dropout(probabilities, dropout_p)
    return probabilities @ v, probabilities
