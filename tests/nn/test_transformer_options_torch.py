"""PyTorch's remaining transformer options against PyTorch 2.x, in float64 from a state_dict file:
MultiheadAttention in the (L, N, E) layout, with kdim/vdim, add_bias_kv, add_zero_attn and float
key padding masks; TransformerEncoder; TransformerDecoderLayer and TransformerDecoder. Outputs, input
gradients and every parameter gradient match."""
import numpy as np
import pytest

import gradflow as gf

from .test_transformer_layers import _compare, _load_torch_weights, _pair

torch = pytest.importorskip("torch")


def _same_keys(torch_module, module):
    assert list(module.state_dict()) == list(torch_module.state_dict())


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_both_layouts_with_masks_and_per_head_weights(batch_first, tmp_path):
    torch_module = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
    module = gf.nn.MultiheadAttention(8, 2, batch_first=batch_first, dtype="float64")
    _same_keys(torch_module, module)
    _load_torch_weights(torch_module, module, tmp_path)
    x, tx = _pair(*((5, 3, 8) if not batch_first else (3, 5, 8)))
    attn_mask = np.triu(np.ones((5, 5), dtype=bool), 1)
    padding = np.zeros((3, 5))
    padding[1, 3:] = -1e9                       # a float key padding mask is added to the scores
    padding[2, 0] = 0.5

    def call(m, x, mask, padding):
        return m(x, x, x, attn_mask=mask, key_padding_mask=padding, average_attn_weights=False)

    _compare(torch_module, module, [tx, torch.from_numpy(attn_mask).double().masked_fill(
        torch.from_numpy(attn_mask), float("-inf")), torch.from_numpy(padding)],
        [x, np.where(attn_mask, -np.inf, 0.0), padding], call)


@pytest.mark.parametrize("add_bias_kv, add_zero_attn", [(True, False), (False, True), (True, True)])
def test_mha_kdim_vdim_bias_kv_zero_attn(add_bias_kv, add_zero_attn, tmp_path):
    options = dict(kdim=6, vdim=4, add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn)
    torch_module = torch.nn.MultiheadAttention(8, 2, **options).double()             # (L, N, E)
    module = gf.nn.MultiheadAttention(8, 2, **options, batch_first=False, dtype="float64")
    _same_keys(torch_module, module)
    assert module.in_proj_weight is None and module.k_proj_weight.shape == (8, 6)
    _load_torch_weights(torch_module, module, tmp_path)
    q, tq = _pair(3, 2, 8, seed=1)
    k, tk = _pair(5, 2, 6, seed=2)
    v, tv = _pair(5, 2, 4, seed=3)
    padding = np.array([[False] * 5, [False, False, True, True, False]])
    attn_mask = np.random.default_rng(4).uniform(size=(3, 5)) > 0.7

    def call(m, q, k, v, padding, mask):
        return m(q, k, v, key_padding_mask=padding, attn_mask=mask)

    _compare(torch_module, module, [tq, tk, tv, torch.from_numpy(padding), torch.from_numpy(attn_mask)],
             [q, k, v, padding, attn_mask], call)


def test_mha_unbatched_and_self_attention_with_bias_kv_in_the_sequence_first_layout(tmp_path):
    torch_module = torch.nn.MultiheadAttention(6, 3, add_bias_kv=True, bias=False).double()
    module = gf.nn.MultiheadAttention(6, 3, add_bias_kv=True, bias=False, batch_first=False, dtype="float64")
    _load_torch_weights(torch_module, module, tmp_path)
    x, tx = _pair(4, 6)

    def call(m, x):
        return m(x, x, x)

    _compare(torch_module, module, [tx], [x], call)


def test_mha_shape_errors_name_the_dims():
    module = gf.nn.MultiheadAttention(8, 2, kdim=6, vdim=4, batch_first=False)
    with pytest.raises(gf.errors.ShapeError, match=r"kdim=6, vdim=4, batch_first=False.*\(L, N, E\).*\(5, 2, 8\)"):
        module(gf.randn(3, 2, 8), gf.randn(5, 2, 8), gf.randn(5, 2, 4))


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_encoder_stack_matches_torch(batch_first, tmp_path):
    layer_options = dict(dim_feedforward=16, dropout=0.0, batch_first=batch_first)
    torch_module = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, **layer_options), 2,
                                               norm=torch.nn.LayerNorm(8), enable_nested_tensor=False).double()
    module = gf.nn.TransformerEncoder(gf.nn.TransformerEncoderLayer(8, 2, **layer_options, dtype="float64"), 2,
                                      norm=gf.nn.LayerNorm(8, dtype="float64"))
    _same_keys(torch_module, module)
    _load_torch_weights(torch_module, module, tmp_path)
    x, tx = _pair(*((3, 5, 8) if batch_first else (5, 3, 8)))
    mask = np.triu(np.ones((5, 5), dtype=bool), 1)
    padding = np.zeros((3, 5), dtype=bool)
    padding[2, 4] = True

    def call(m, x, mask, padding):
        return m(x, mask=mask, src_key_padding_mask=padding)

    _compare(torch_module, module, [tx, torch.from_numpy(mask), torch.from_numpy(padding)], [x, mask, padding], call)


def test_transformer_encoder_copies_are_independent():
    layer = gf.nn.TransformerEncoderLayer(8, 2, 16)
    encoder = gf.nn.TransformerEncoder(layer, 3)
    weights = [m.linear1.weight for m in encoder.layers]
    assert len({id(w) for w in weights} | {id(layer.linear1.weight)}) == 4
    np.testing.assert_array_equal(weights[0].numpy(), weights[2].numpy())   # copies start equal
    weights[0].data[...] = 0
    assert weights[1].numpy().any() and layer.linear1.weight.numpy().any()
    with pytest.raises(ValueError, match="num_layers"):
        gf.nn.TransformerEncoder(layer, 0)


@pytest.mark.parametrize("norm_first, activation, batch_first", [(False, "relu", True), (True, "gelu", False)])
def test_transformer_decoder_layer_matches_torch(norm_first, activation, batch_first, tmp_path):
    options = dict(dim_feedforward=16, dropout=0.1, activation=activation, norm_first=norm_first,
                   batch_first=batch_first)
    torch_module = torch.nn.TransformerDecoderLayer(8, 2, **options).double().eval()
    module = gf.nn.TransformerDecoderLayer(8, 2, **options, dtype="float64").eval()
    _same_keys(torch_module, module)
    _load_torch_weights(torch_module, module, tmp_path)
    shape = (lambda n, length: (n, length, 8)) if batch_first else (lambda n, length: (length, n, 8))
    tgt, ttgt = _pair(*shape(2, 4), seed=1)
    memory, tmemory = _pair(*shape(2, 6), seed=2)
    tgt_mask = np.triu(np.ones((4, 4), dtype=bool), 1)
    memory_padding = np.zeros((2, 6), dtype=bool)
    memory_padding[1, 4:] = True

    def call(m, tgt, memory, tgt_mask, memory_padding):
        return m(tgt, memory, tgt_mask=tgt_mask, memory_key_padding_mask=memory_padding)

    _compare(torch_module, module, [ttgt, tmemory, torch.from_numpy(tgt_mask), torch.from_numpy(memory_padding)],
             [tgt, memory, tgt_mask, memory_padding], call)


def test_transformer_decoder_stack_matches_torch(tmp_path):
    layer_options = dict(dim_feedforward=12, dropout=0.0)
    torch_module = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(8, 4, **layer_options), 2,
                                               norm=torch.nn.LayerNorm(8)).double()
    module = gf.nn.TransformerDecoder(gf.nn.TransformerDecoderLayer(8, 4, **layer_options, batch_first=False,
                                                                    dtype="float64"), 2,
                                      norm=gf.nn.LayerNorm(8, dtype="float64"))
    _same_keys(torch_module, module)
    _load_torch_weights(torch_module, module, tmp_path)
    tgt, ttgt = _pair(5, 2, 8, seed=1)
    memory, tmemory = _pair(3, 2, 8, seed=2)
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    tgt_padding = np.where([[False] * 5, [False, False, False, False, True]], -np.inf, 0.0)  # float, as the mask

    def call(m, tgt, memory, tgt_mask, tgt_padding):
        return m(tgt, memory, tgt_mask=tgt_mask, tgt_key_padding_mask=tgt_padding)

    _compare(torch_module, module, [ttgt, tmemory, tgt_mask, torch.from_numpy(tgt_padding)],
             [tgt, memory, tgt_mask.numpy(), tgt_padding], call)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")   # PyTorch's note on its fast path
@pytest.mark.parametrize("batch_first, norm_first", [(True, False), (False, True)])
def test_transformer_model_matches_torch(batch_first, norm_first, tmp_path):
    options = dict(num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=12, dropout=0.0,
                   batch_first=batch_first, norm_first=norm_first)
    torch_module = torch.nn.Transformer(8, 2, **options).double()
    module = gf.nn.Transformer(8, 2, **options, dtype="float64")
    _same_keys(torch_module, module)
    _load_torch_weights(torch_module, module, tmp_path)
    shape = (lambda n, length: (n, length, 8)) if batch_first else (lambda n, length: (length, n, 8))
    src, tsrc = _pair(*shape(2, 6), seed=1)
    tgt, ttgt = _pair(*shape(2, 4), seed=2)
    tgt_mask = gf.nn.Transformer.generate_square_subsequent_mask(4, dtype="float64")
    torch_tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    np.testing.assert_array_equal(tgt_mask.numpy(), torch_tgt_mask.numpy())
    src_padding = np.zeros((2, 6), dtype=bool)
    src_padding[0, 5] = True

    def call(m, src, tgt, tgt_mask, src_padding):
        return m(src, tgt, tgt_mask=tgt_mask, src_key_padding_mask=src_padding, memory_key_padding_mask=src_padding)

    _compare(torch_module, module, [tsrc, ttgt, torch_tgt_mask, torch.from_numpy(src_padding)],
             [src, tgt, tgt_mask, src_padding], call)


def test_transformer_initializes_matrices_xavier_uniform_and_checks_shapes():
    gf.manual_seed(0)
    model = gf.nn.Transformer(16, 2, 1, 1, dim_feedforward=32)
    weight = model.encoder.layers[0].linear1.weight.numpy()            # (32, 16): bound √(6 / 48)
    assert np.abs(weight).max() <= np.sqrt(6 / 48) and np.abs(weight).max() > 0.8 * np.sqrt(6 / 48)
    with pytest.raises(gf.errors.ShapeError, match=r"one batch size; got \(2, 5, 16\) and \(3, 4, 16\)"):
        model(gf.randn(2, 5, 16), gf.randn(3, 4, 16))
