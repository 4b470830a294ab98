"""Layer normalization as one primitive, and embedding lookup as an indexing composition.

# Note: [layer_norm's output carries 1/σ]
Normalizing the last axis, ``x̂ = (x - μ) / σ`` with ``σ = sqrt(var(x) + eps)``, has the VJP
``gx = (1/σ) (g - mean(g) - x̂ mean(g x̂))``: it needs only x̂ and 1/σ, not x. A composition of
mean, sub, var, sqrt and div would keep x, the centered x and σ (three row-sized values and
more). A primitive can only save its inputs and its output, so this one returns both values in
one array: ``(..., D + 1)``, the D normalized values and 1/σ in the last column. ``layer_norm``
hands out the view ``packed[..., :D]``; the node saves the packed array, so what backward keeps
is exactly (D + 1) numbers per row, the same buffer the affine ``x̂ * weight`` saves again.
Because 1/σ is part of the output it is differentiable too: the VJP also takes the gradient
reaching the 1/σ column (zero unless someone reads it), and the rule, written in gradflow ops on
the saved output, differentiates again for double backward.
"""
from __future__ import annotations

import math

from ..backends import of_array
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .reduce import sum
from .registry import primitive
from .shape import concatenate, getitem, reshape
from .autocast import float32_under_autocast


@primitive("layer_norm", save=("out",))
def _layer_norm(backend, x, eps):
    xp = backend.xp
    packed = xp.empty(x.shape[:-1] + (x.shape[-1] + 1,), dtype=x.dtype)
    centered = x - x.mean(axis=-1, keepdims=True)
    inv_std = packed[..., -1:]
    xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + x.dtype.type(eps), out=inv_std)
    xp.reciprocal(inv_std, out=inv_std)
    xp.multiply(centered, inv_std, out=packed[..., :-1])
    return packed


def _row_mean(x, width):
    return sum(x, axis=-1, keepdims=True) * (1.0 / width)


@_layer_norm.vjp
def _layer_norm_vjp(ctx, g):
    (packed,) = ctx.saved
    width = packed.shape[-1] - 1
    x_hat, inv_std = packed[..., :width], packed[..., width:]
    g_hat, g_inv_std = g[..., :width], g[..., width:]
    gx = inv_std * (g_hat - _row_mean(g_hat, width) - x_hat * _row_mean(g_hat * x_hat, width))
    # d(1/σ)/dx = -(1/σ)² x̂ / D
    return gx - g_inv_std * inv_std * inv_std * x_hat * (1.0 / width)


@_layer_norm.jvp
def _layer_norm_jvp(ctx, t):
    if t is None:
        return None
    packed = ctx.out
    width = packed.shape[-1] - 1
    x_hat, inv_std = packed[..., :width], packed[..., width:]
    along_x_hat = _row_mean(x_hat * t, width)
    t_hat = inv_std * (t - _row_mean(t, width) - x_hat * along_x_hat)
    t_inv_std = -inv_std * inv_std * along_x_hat
    return concatenate([t_hat, t_inv_std], axis=-1)


@float32_under_autocast
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the trailing ``normalized_shape`` axes, then ``* weight + bias`` (PyTorch's).

    Backward keeps x̂ and 1/σ per normalized row, nothing else (see the note above).

    >>> import gradflow as gf
    >>> y = gf.nn.functional.layer_norm(gf.tensor([[1.0, 2.0, 3.0]]), (3,))
    >>> [round(v, 4) for v in y.tolist()[0]]
    [-1.2247, 0.0, 1.2247]
    """
    normalized_shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or tuple(x.shape[x.ndim - k:]) != normalized_shape or x.ndim < k:
        raise ShapeError(f"layer_norm: input of shape {x.shape} does not end with normalized_shape "
                         f"{normalized_shape}")
    if x.dtype.kind != "f":
        raise DTypeError(f"layer_norm needs a floating input, got dtype {x.dtype}")
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != normalized_shape:
            raise ShapeError(f"layer_norm: {name} of shape {value.shape} differs from normalized_shape "
                             f"{normalized_shape}")
    width = math.prod(normalized_shape)
    rows = reshape(x, tuple(x.shape[:x.ndim - k]) + (width,))
    x_hat = getitem(_layer_norm(rows, eps=float(eps)), (Ellipsis, slice(0, width)))
    out = reshape(x_hat, x.shape)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(indices, weight, padding_idx=None):
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` of any shape.

    Backward scatter-adds each output row's gradient into its weight row (``xp.add.at``, repeated
    indices accumulate); nothing but the indices is kept. Rows at ``padding_idx`` get no gradient,
    as in PyTorch.

    >>> import gradflow as gf
    >>> gf.nn.functional.embedding(gf.tensor([[0, 2]]), gf.ones(3, 4)).shape
    (1, 2, 4)
    """
    if weight.ndim != 2:
        raise ShapeError(f"embedding expects a 2-D weight (num_embeddings, dim), got shape {weight.shape}")
    xp = of_array(weight.data).xp
    index = xp.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if index.dtype.kind not in "iu":
        raise DTypeError(f"embedding expects integer indices, got dtype {index.dtype}")
    count = weight.shape[0]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= count):
        raise IndexError(f"embedding: indices range from {int(index.min())} to {int(index.max())}, out of range "
                         f"for {count} embeddings (weight {weight.shape})")
    rows = getitem(weight, index)
    if padding_idx is None:
        return rows
    from .elementwise import where

    padding = (index == (padding_idx % count))[..., None]
    return where(Tensor(padding), rows.detach(), rows)
