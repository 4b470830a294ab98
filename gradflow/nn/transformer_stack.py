"""PyTorch's transformer stacks: TransformerEncoder, TransformerDecoderLayer, TransformerDecoder and
the encoder-decoder Transformer.

As in PyTorch, a stack deep-copies the layer it is given ``num_layers`` times into a ModuleList
named ``layers``, so a PyTorch state_dict (``layers.0.self_attn.in_proj_weight``, ...,
``norm.weight``) loads by name. They are compositions of the modules in ``transformer.py``.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import creation, ops
from ..errors import ShapeError
from . import init
from .layers import Dropout, ModuleList
from .module import Module
from .transformer import (LayerNorm, MultiheadAttention, TransformerEncoderLayer, add_feed_forward_and_norms,
                          resolve_activation, self_attention_block)


def _clones(layer, num_layers, name):
    if not isinstance(layer, Module):
        raise TypeError(f"{name} needs a layer Module to copy, got {type(layer).__name__}")
    if int(num_layers) < 1:
        raise ValueError(f"{name}: num_layers must be at least 1, got {num_layers}")
    return ModuleList([copy.deepcopy(layer) for _ in range(int(num_layers))])


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` applied in turn, then ``norm`` if given.

    >>> import gradflow as gf
    >>> layer = gf.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    >>> encoder = gf.nn.TransformerEncoder(layer, num_layers=2, norm=gf.nn.LayerNorm(8))
    >>> encoder(gf.randn(3, 5, 8)).shape, list(encoder.state_dict())[0]
    ((3, 5, 8), 'layers.0.self_attn.in_proj_weight')
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        # enable_nested_tensor and mask_check steer PyTorch's inference fast path; gradflow has none.
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)


class TransformerDecoderLayer(Module):
    """Self-attention over the target, attention to the encoder's ``memory``, then a feed-forward
    block, each with a residual and LayerNorm (PyTorch's layer, its submodule names and options).

    ``norm_first=False``: ``x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x))``;
    ``norm_first=True``: ``x = x + sa(norm1(x)); x = x + mha(norm2(x), memory); x = x + ff(norm3(x))``.

    >>> import gradflow as gf
    >>> layer = gf.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16)
    >>> layer(gf.randn(3, 4, 8), gf.randn(3, 6, 8)).shape
    (3, 4, 8)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=True, norm_first=False, bias=True, dtype=None, device=None):
        super().__init__()
        options = dict(dtype=dtype, device=device)
        attention = dict(dropout=dropout, bias=bias, batch_first=batch_first, **options)
        self.self_attn = MultiheadAttention(d_model, nhead, **attention)
        self.multihead_attn = MultiheadAttention(d_model, nhead, **attention)
        add_feed_forward_and_norms(self, d_model, dim_feedforward, dropout, norm_first, 3, layer_norm_eps, bias,
                                   options)
        self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)
        self.activation = resolve_activation(activation)

    _self_attention = self_attention_block

    def _cross_attention(self, x, memory, mask, key_padding_mask, is_causal):
        out = self.multihead_attn(x, memory, memory, attn_mask=mask, key_padding_mask=key_padding_mask,
                                  need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(out)

    def _feed_forward(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._cross_attention(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                          memory_is_causal)
            return x + self._feed_forward(self.norm3(x))
        x = self.norm1(x + self._self_attention(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._cross_attention(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + self._feed_forward(x))


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer``, each attending to the same ``memory``, then ``norm``.

    >>> import gradflow as gf
    >>> decoder = gf.nn.TransformerDecoder(gf.nn.TransformerDecoderLayer(8, 2, 16), num_layers=2)
    >>> decoder(gf.randn(3, 4, 8), gf.randn(3, 6, 8)).shape
    (3, 4, 8)
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal),
                      memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """PyTorch's encoder-decoder model: ``encoder`` (a TransformerEncoder with a final LayerNorm) reads
    ``src``, ``decoder`` (a TransformerDecoder with one) reads ``tgt`` and the encoder's output.
    Every weight matrix starts Xavier-uniform, as PyTorch's ``_reset_parameters`` makes them.

    >>> import gradflow as gf
    >>> model = gf.nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    >>> tgt_mask = gf.nn.Transformer.generate_square_subsequent_mask(4)
    >>> model(gf.randn(3, 6, 8), gf.randn(3, 4, 8), tgt_mask=tgt_mask).shape
    (3, 4, 8)
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=True, norm_first=False, bias=True, dtype=None, device=None):
        super().__init__()
        options = dict(dtype=dtype, device=device)
        layer = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                     layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias,
                     **options)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **layer), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **layer), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **options))
        self.d_model, self.nhead, self.batch_first = int(d_model), int(nhead), bool(batch_first)
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        batch_axis = 0 if self.batch_first else 1
        batched = src.ndim == 3
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model or (
                batched and src.shape[batch_axis] != tgt.shape[batch_axis]):
            layout = "(N, S, E) and (N, T, E)" if self.batch_first else "(S, N, E) and (T, N, E)"
            raise ShapeError(f"Transformer(d_model={self.d_model}, batch_first={self.batch_first}): src and tgt must "
                             f"be {layout} with E = {self.d_model} and one batch size; got {src.shape} and "
                             f"{tgt.shape}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """(sz, sz) float mask: -inf above the diagonal (a query may not see later keys), 0 elsewhere."""
        return ops.triu(creation.full((int(sz), int(sz)), -np.inf, dtype=dtype, device=device), 1)
