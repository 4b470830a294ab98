"""Memory-efficient attention: one primitive that keeps q, k, v, the output and one log-sum-exp per
query row — O(L) per row — instead of the L × S probabilities, and recomputes them in backward.

# Note: [attention without keeping P]
The composed attention (``attention.py``) keeps P = softmax(q kᵀ s) for its VJPs: H·L·S numbers
per example, the L² term of a transformer's activation memory. This primitive is the
memory-efficient / FlashAttention scheme in array code. Forward runs over blocks of query rows
(rows are independent, so each block's softmax is exact): scores, row maximum, P, P v, and the
row's log-sum-exp ℓ = max + log Σ exp(scores - max). Only the output O and ℓ leave the block. As
with layer_norm (see the note in normalization.py) the primitive can only save its inputs and its
output, so the output is packed: (..., L, Ev + 1), O and ℓ in the last column;
``scaled_dot_product_attention`` hands out the view ``packed[..., :Ev]``.

Backward recomputes P block by block from ℓ, P = exp(q kᵀ s + mask - ℓ), and with
δ = rowsum(dO ∘ O) (= Σⱼ Pᵢⱼ dPᵢⱼ, because O = P v):
dv += Pᵀ dO,  dP = dO vᵀ,  dS = P ∘ (dP - δ + dℓ),  dq = dS k s,  dk += dSᵀ q s.
(dℓ is the gradient reaching the ℓ column: zero unless someone reads it.) The rule is written in
gradflow ops on the saved values, so it records a graph under create_graph and the op
differentiates twice. The mask is a parameter (boolean "may attend" or additive, not
differentiable; a causal mask is made per block), so a mask that needs a gradient takes the
composed path.
"""
from __future__ import annotations

import numpy as np

from .elementwise import exp, where
from .reduce import sum
from .registry import constant, data_of, primitive
from .shape import broadcast_to, concatenate, sum_to, swapaxes

BLOCK_ROWS = 128  # query rows per block: bounds the recomputed scores at 128 × S per head


def _block_mask(xp, mask, causal, start, stop, source_length):
    """The mask for query rows [start, stop): a slice of ``mask`` or the causal triangle's rows."""
    if causal:
        rows = xp.arange(start, stop)[:, None]
        return rows >= xp.arange(source_length)[None, :]
    if mask is None:
        return None
    return mask if mask.shape[-2] == 1 else mask[..., start:stop, :]


def _masked(scores, mask):
    if mask is None:
        return scores
    data = data_of(scores)
    if mask.dtype == bool:
        from ..backends import of_array

        # -inf as a 0-d array of the scores' dtype: a rule on raw arrays passes arrays only.
        return where(constant(mask), scores, constant(of_array(data).xp.asarray(-np.inf, dtype=data.dtype)))
    return scores + constant(mask.astype(data.dtype, copy=False))


@primitive("efficient_attention", save=("q", "k", "v", "out"), same_dtype=True)
def _efficient_attention(backend, q, k, v, scale, mask, causal, block):
    xp = backend.xp
    length, value_size = q.shape[-2], v.shape[-1]
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    packed = xp.empty(tuple(batch) + (length, value_size + 1), dtype=q.dtype)
    keys_t = xp.swapaxes(k, -1, -2)
    q = q * q.dtype.type(scale)  # scaled once, L × E, instead of every L × S block of scores
    for start in range(0, length, block):
        stop = min(start + block, length)
        scores = q[..., start:stop, :] @ keys_t
        part = _block_mask(xp, mask, causal, start, stop, k.shape[-2])
        if part is not None:
            scores = xp.where(part, scores, -xp.inf) if part.dtype == bool else scores + part.astype(q.dtype)
        top = scores.max(axis=-1, keepdims=True)
        scores = xp.exp(scores - top, out=scores)
        total = scores.sum(axis=-1, keepdims=True)
        packed[..., start:stop, :value_size] = (scores @ v) / total
        packed[..., start:stop, value_size:] = top + xp.log(total)
    return packed


def _probabilities(q_rows, keys_t, log_sum_exp, scale, mask):
    # (q s) kᵀ as in forward, so P is recomputed with the forward's rounding.
    return exp(_masked((q_rows * scale) @ keys_t, mask) - log_sum_exp)


@_efficient_attention.vjp
def _efficient_attention_vjp(ctx, g):
    q, k, v, packed = ctx.saved
    scale, mask, causal, block = (ctx.params[n] for n in ("scale", "mask", "causal", "block"))
    from ..backends import of_array

    xp = of_array(data_of(packed)).xp
    value_size = v.shape[-1]
    out, log_sum_exp = packed[..., :value_size], packed[..., value_size:]
    g_out, g_lse = g[..., :value_size], g[..., value_size:]
    delta = sum(g_out * out, axis=-1, keepdims=True)
    keys_t, values_t = swapaxes(k, -1, -2), swapaxes(v, -1, -2)
    gq_blocks, gk, gv = [], None, None
    length = q.shape[-2]
    for start in range(0, length, block):
        stop = min(start + block, length)
        q_rows, g_rows = q[..., start:stop, :], g_out[..., start:stop, :]
        p = _probabilities(q_rows, keys_t, log_sum_exp[..., start:stop, :], scale,
                           _block_mask(xp, mask, causal, start, stop, k.shape[-2]))
        gv_part = swapaxes(p, -1, -2) @ g_rows
        ds = p * (g_rows @ values_t - delta[..., start:stop, :] + g_lse[..., start:stop, :])
        gq_blocks.append((ds @ k) * scale)
        gk_part = (swapaxes(ds, -1, -2) @ q_rows) * scale
        gk = gk_part if gk is None else gk + gk_part
        gv = gv_part if gv is None else gv + gv_part
    gq = gq_blocks[0] if len(gq_blocks) == 1 else concatenate(gq_blocks, axis=-2)
    return sum_to(gq, ctx.shapes[0]), sum_to(gk, ctx.shapes[1]), sum_to(gv, ctx.shapes[2])


@_efficient_attention.fast_vjp
def _efficient_attention_fast_vjp(ctx, g):
    """The VJP rule above on raw arrays (first-order backward): the same blocks, with each block's
    scores, P and dS formed in one buffer each and written over in place."""
    q, k, v, packed = ctx.saved
    scale, mask, causal, block = (ctx.params[n] for n in ("scale", "mask", "causal", "block"))
    from ..backends import of_array

    xp = of_array(packed).xp
    value_size, length = v.shape[-1], q.shape[-2]
    out, log_sum_exp = packed[..., :value_size], packed[..., value_size:]
    g_out = g[..., :value_size]
    shift = (g_out * out).sum(axis=-1, keepdims=True) - g[..., value_size:]    # δ - dℓ per row
    q_scaled, keys_t, values_t = q * q.dtype.type(scale), xp.swapaxes(k, -1, -2), xp.swapaxes(v, -1, -2)
    gq = xp.empty(g_out.shape[:-1] + (q.shape[-1],), dtype=q.dtype)
    gk = gv = None
    for start in range(0, length, block):
        stop = min(start + block, length)
        q_rows, g_rows = q_scaled[..., start:stop, :], g_out[..., start:stop, :]
        p = q_rows @ keys_t
        part = _block_mask(xp, mask, causal, start, stop, k.shape[-2])
        if part is not None:
            p = xp.where(part, p, -xp.inf) if part.dtype == bool else p + part.astype(p.dtype)
        p -= log_sum_exp[..., start:stop, :]
        p = xp.exp(p, out=p)
        gv_part = xp.swapaxes(p, -1, -2) @ g_rows
        ds = g_rows @ values_t
        ds -= shift[..., start:stop, :]
        ds *= p
        gq[..., start:stop, :] = ds @ k
        gk_part = xp.swapaxes(ds, -1, -2) @ q_rows     # q_rows carries the scale already
        gk = gk_part if gk is None else gk.__iadd__(gk_part)
        gv = gv_part if gv is None else gv.__iadd__(gv_part)
    gq *= q.dtype.type(scale)
    return sum_to(gq, ctx.shapes[0]), sum_to(gk, ctx.shapes[1]), sum_to(gv, ctx.shapes[2])


@_efficient_attention.jvp
def _efficient_attention_jvp(ctx, tq, tk, tv):
    # Forward mode keeps nothing for later, so it may form P whole.
    q, k, v = ctx.inputs
    scale, mask, causal = ctx.params["scale"], ctx.params["mask"], ctx.params["causal"]
    from ..backends import of_array

    xp = of_array(q.data).xp
    packed = ctx.out
    value_size = v.shape[-1]
    p = _probabilities(q, swapaxes(k, -1, -2), packed[..., value_size:], scale,
                       _block_mask(xp, mask, causal, 0, q.shape[-2], k.shape[-2]))
    t_scores = None
    if tq is not None:
        t_scores = (tq @ swapaxes(k, -1, -2)) * scale
    if tk is not None:
        term = (q @ swapaxes(tk, -1, -2)) * scale
        t_scores = term if t_scores is None else t_scores + term
    t_out = None if tv is None else p @ tv
    rows = packed.shape[:-1]
    if t_scores is None:
        t_lse = constant(xp.zeros(rows + (1,), dtype=packed.dtype))
    else:
        t_lse = sum(p * t_scores, axis=-1, keepdims=True)
        term = (p * (t_scores - t_lse)) @ v
        t_out = term if t_out is None else t_out + term
    return concatenate([broadcast_to(t_out, rows + (value_size,)), broadcast_to(t_lse, rows + (1,))], axis=-1)


def efficient_attention(q, k, v, scale, mask=None, causal=False, block=BLOCK_ROWS):
    """Attention output (..., L, Ev) through the primitive above; ``mask`` an array or None."""
    packed = _efficient_attention(q, k, v, scale=float(scale), mask=mask, causal=bool(causal), block=int(block))
    return packed[..., :v.shape[-1]]
