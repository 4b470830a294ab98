"""Transformer layers: LayerNorm, Embedding, MultiheadAttention, TransformerEncoderLayer.

Names, signatures, parameter names and layouts are PyTorch's, so a PyTorch ``state_dict``
converted to NumPy loads by name (``load_state_dict``) and reproduces PyTorch's outputs. Both
layouts work — ``batch_first=True`` (N, L, E), gradflow's default, and PyTorch's default
``batch_first=False`` (L, N, E) — and unbatched (L, E) inputs too. The stacks
(TransformerEncoder, TransformerDecoderLayer, TransformerDecoder) are in ``transformer_stack.py``.
"""
from __future__ import annotations

import math

from .. import creation, dtypes as _dtypes, ops
from ..backends import of_array
from ..errors import ShapeError
from ..ops.attention import attention_with_weights
from ..tensor import Tensor
from . import functional as F, init
from .layers import Dropout, Linear
from .module import Module
from .parameter import Parameter


def _float_dtype(dtype):
    return _dtypes.resolve(dtype) or _dtypes.default_float()


class LayerNorm(Module):
    """Normalizes the trailing ``normalized_shape`` axes; ``weight`` starts at 1, ``bias`` at 0.

    >>> import gradflow as gf
    >>> gf.nn.LayerNorm(4)(gf.randn(2, 3, 4)).shape
    (2, 3, 4)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None, device=None):
        super().__init__()
        self.normalized_shape = ((int(normalized_shape),) if isinstance(normalized_shape, int)
                                 else tuple(int(s) for s in normalized_shape))
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dtype = _float_dtype(dtype)
        self.weight = (Parameter(creation.ones(*self.normalized_shape, dtype=dtype, device=device))
                       if elementwise_affine else None)
        self.bias = (Parameter(creation.zeros(*self.normalized_shape, dtype=dtype, device=device))
                     if elementwise_affine and bias else None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim`` (initialized N(0, 1)).

    ``padding_idx``: that row starts at zero and gets no gradient, as in PyTorch.

    >>> import gradflow as gf
    >>> gf.nn.Embedding(10, 4)(gf.tensor([[1, 2, 3]])).shape
    (1, 3, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None, device=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is out of range for {num_embeddings} embeddings")
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(creation.empty(self.num_embeddings, self.embedding_dim, dtype=_float_dtype(dtype),
                                               device=device))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


def _mask_array(mask, xp):
    return mask.data if isinstance(mask, Tensor) else xp.asarray(mask)


def _merged_mask(attn_mask, key_padding_mask, batch, heads, xp, dtype):
    """PyTorch's masks — True means *not allowed* — as one mask for ``attention_with_weights``:
    a boolean "may attend" array when every mask is boolean, else one additive float Tensor."""
    parts = []
    if attn_mask is not None:
        mask = _mask_array(attn_mask, xp)
        if mask.ndim == 3:  # (N·H, L, S) -> (N, H, L, S)
            mask = mask.reshape(batch, heads, mask.shape[1], mask.shape[2])
        parts.append((attn_mask, mask))
    if key_padding_mask is not None:
        mask = _mask_array(key_padding_mask, xp)
        parts.append((key_padding_mask, mask.reshape(batch, 1, 1, mask.shape[-1])))
    if not parts:
        return None
    if all(mask.dtype == bool for _, mask in parts):
        allowed = ~parts[0][1]
        for _, mask in parts[1:]:
            allowed = allowed & ~mask
        return allowed
    total = None
    for original, mask in parts:
        if mask.dtype == bool:
            term = Tensor(xp.where(mask, -math.inf, 0.0).astype(dtype))
        elif isinstance(original, Tensor):
            term = ops.reshape(original, mask.shape)
        else:
            term = Tensor(mask.astype(dtype))
        total = term if total is None else total + term
    return total


def _with_extra_key(mask, xp):
    """``mask`` with one more key column, which every query may attend (False / 0): the key that
    ``add_bias_kv`` or ``add_zero_attn`` appends."""
    if mask is None:
        return None
    if isinstance(mask, Tensor):
        zeros = Tensor(xp.zeros(mask.shape[:-1] + (1,), dtype=mask.dtype))
        return ops.concatenate([mask, zeros], axis=-1)
    array = xp.asarray(mask)
    return xp.concatenate([array, xp.zeros(array.shape[:-1] + (1,), dtype=array.dtype)], axis=-1)


class MultiheadAttention(Module):
    """PyTorch's multi-head attention: packed ``in_proj_weight`` (3E, E) and ``in_proj_bias``,
    ``out_proj`` a Linear; ``forward(query, key, value)`` returns (output, weights or None).

    Inputs are (N, L, E) with ``batch_first=True`` (gradflow's default) or (L, N, E) with
    ``batch_first=False`` (PyTorch's default), or unbatched (L, E). Keys and values of other widths
    (``kdim``, ``vdim``) get separate ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim) and
    ``v_proj_weight`` (E, vdim), as in PyTorch. ``add_bias_kv`` appends the learned ``bias_k`` /
    ``bias_v`` (1, 1, E) to the keys and values, ``add_zero_attn`` a zero key and value per head.

    Masks follow PyTorch: in ``attn_mask`` ((L, S) or (N·H, L, S)) and ``key_padding_mask``
    ((N, S)) True means *may not attend*; float masks are added to the scores.
    ``need_weights`` returns the probabilities averaged over heads (per head with
    ``average_attn_weights=False``), (N, L, S) in either layout.

    >>> import gradflow as gf
    >>> attention = gf.nn.MultiheadAttention(8, 2)
    >>> x = gf.randn(3, 5, 8)
    >>> out, weights = attention(x, x, x)
    >>> out.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=True, dtype=None, device=None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = int(embed_dim), int(num_heads), float(dropout)
        self.kdim = int(kdim) if kdim is not None else self.embed_dim
        self.vdim = int(vdim) if vdim is not None else self.embed_dim
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.head_dim, self.batch_first = self.embed_dim // self.num_heads, bool(batch_first)
        self.add_zero_attn = bool(add_zero_attn)
        options = dict(dtype=_float_dtype(dtype), device=device)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, **options))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(creation.empty(embed_dim, embed_dim, **options))
            self.k_proj_weight = Parameter(creation.empty(embed_dim, self.kdim, **options))
            self.v_proj_weight = Parameter(creation.empty(embed_dim, self.vdim, **options))
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(creation.zeros(3 * embed_dim, **options)) if bias else None
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty(1, 1, embed_dim, **options))
            self.bias_v = Parameter(creation.empty(1, 1, embed_dim, **options))
        else:
            self.bias_k = self.bias_v = None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **options)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's: Xavier-uniform projections, zero biases (out_proj's weight keeps Linear's init),
        # Xavier-normal bias_k / bias_v.
        for weight in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if weight is not None:
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                init.xavier_normal_(extra)

    def _project(self, x, index):
        size = self.embed_dim
        if self._qkv_same_embed_dim:
            weight = self.in_proj_weight[index * size:(index + 1) * size]
        else:
            weight = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[index]
        bias = None if self.in_proj_bias is None else self.in_proj_bias[index * size:(index + 1) * size]
        return F.linear(x, weight, bias)

    def _heads(self, x):
        batch, length = x.shape[0], x.shape[1]
        return ops.transpose(ops.reshape(x, (batch, length, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def _check_shapes(self, query, key, value, given):
        if (query.ndim != 3 or key.ndim != 3 or value.ndim != 3 or query.shape[-1] != self.embed_dim
                or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim or key.shape[:2] != value.shape[:2]
                or key.shape[0] != query.shape[0]):
            layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
            raise ShapeError(f"MultiheadAttention({self.embed_dim}, {self.num_heads}, kdim={self.kdim}, "
                             f"vdim={self.vdim}, batch_first={self.batch_first}): expects {layout} query, key and "
                             f"value with E = {self.embed_dim}, {self.kdim}, {self.vdim} and one batch and source "
                             f"length for key and value (or unbatched (L, E)); got {', '.join(map(str, given))}")

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        self_attention = query is key and key is value
        given = (query.shape, key.shape, value.shape)
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = ops.unsqueeze(query, 0), ops.unsqueeze(key, 0), ops.unsqueeze(value, 0)
            if key_padding_mask is not None:
                key_padding_mask = _mask_array(key_padding_mask, of_array(query.data).xp)[None]
        elif not self.batch_first and query.ndim == 3:
            # (L, N, E) -> (N, L, E): the heads below are views of the batch-first projections.
            query, key, value = (ops.transpose(x, (1, 0, 2)) for x in (query, key, value))
        self._check_shapes(query, key, value, given)
        batch, length = query.shape[0], query.shape[1]
        if self_attention and self._qkv_same_embed_dim:
            # Self-attention: one GEMM makes q, k and v side by side; the heads are views of it.
            packed = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            size = self.embed_dim
            q, k, v = (packed[..., i * size:(i + 1) * size] for i in range(3))
        else:
            q, k, v = (self._project(x, i) for i, x in enumerate((query, key, value)))
        xp = of_array(q.data).xp
        if self.bias_k is not None:
            k = ops.concatenate([k, ops.broadcast_to(self.bias_k, (batch, 1, self.embed_dim))], axis=1)
            v = ops.concatenate([v, ops.broadcast_to(self.bias_v, (batch, 1, self.embed_dim))], axis=1)
            attn_mask, key_padding_mask = _with_extra_key(attn_mask, xp), _with_extra_key(key_padding_mask, xp)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if self.add_zero_attn:
            zeros = Tensor(xp.zeros(k.shape[:2] + (1, self.head_dim), dtype=k.dtype))
            k, v = ops.concatenate([k, zeros], axis=2), ops.concatenate([v, zeros], axis=2)
            attn_mask, key_padding_mask = _with_extra_key(attn_mask, xp), _with_extra_key(key_padding_mask, xp)
        mask = _merged_mask(attn_mask, key_padding_mask, batch, self.num_heads, xp, q.dtype)
        causal = is_causal and mask is None
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = attention_with_weights(q, k, v, mask, dropout_p, causal)
        else:  # the selected kernel (F.sdpa_kernel) may keep less than the probabilities
            out, weights = F.scaled_dot_product_attention(q, k, v, mask, dropout_p, causal), None
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (batch, length, self.embed_dim))
        out = self.out_proj(out)
        if need_weights:
            weights = ops.mean(weights, axis=1) if average_attn_weights else weights
        if unbatched:
            out = ops.squeeze(out, 0)
            weights = None if weights is None else ops.squeeze(weights, 0)
        elif not self.batch_first:
            out = ops.transpose(out, (1, 0, 2))
        return out, weights

    def extra_repr(self):
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            text += f", kdim={self.kdim}, vdim={self.vdim}"
        return text + ("" if self.batch_first else ", batch_first=False")


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def resolve_activation(activation):
    """A transformer layer's ``activation``: 'relu', 'gelu' or a callable, as PyTorch takes it."""
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")
        return _ACTIVATIONS[activation]
    return activation


def add_feed_forward_and_norms(layer, d_model, dim_feedforward, dropout, norm_first, norms, eps, bias, options):
    """Give a transformer layer linear1, dropout, linear2, norm_first and norm1 … norm<norms>, in
    PyTorch's order, so its state_dict keys come out in PyTorch's order too."""
    layer.linear1 = Linear(d_model, dim_feedforward, bias=bias, **options)
    layer.dropout = Dropout(dropout)
    layer.linear2 = Linear(dim_feedforward, d_model, bias=bias, **options)
    layer.norm_first = bool(norm_first)
    for i in range(1, norms + 1):
        setattr(layer, f"norm{i}", LayerNorm(d_model, eps=eps, bias=bias, **options))


def self_attention_block(layer, x, mask, key_padding_mask, is_causal):
    """The self-attention sublayer of the encoder and decoder layers, before its residual add:
    ``dropout1(self_attn(x, x, x))``."""
    out = layer.self_attn(x, x, x, attn_mask=mask, key_padding_mask=key_padding_mask, need_weights=False,
                          is_causal=is_causal)[0]
    return layer.dropout1(out)


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual and LayerNorm (PyTorch's).

    ``norm_first=False`` (post-norm): ``x = norm1(x + sa(x)); x = norm2(x + ff(x))``;
    ``norm_first=True``: ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``. Submodules are named as
    PyTorch's (self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2). Inputs are
    (N, L, E) with ``batch_first=True`` (gradflow's default), (L, N, E) with ``batch_first=False``.

    >>> import gradflow as gf
    >>> gf.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)(gf.randn(3, 5, 8)).shape
    (3, 5, 8)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=True, norm_first=False, bias=True, dtype=None, device=None):
        super().__init__()
        options = dict(dtype=dtype, device=device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            **options)
        add_feed_forward_and_norms(self, d_model, dim_feedforward, dropout, norm_first, 2, layer_norm_eps, bias,
                                   options)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = resolve_activation(activation)

    _self_attention = self_attention_block

    def _feed_forward(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._self_attention(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward(x))
