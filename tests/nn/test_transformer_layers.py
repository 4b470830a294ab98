"""Transformer layers and losses against PyTorch: a PyTorch state_dict written to .npz loads by name,
and outputs and every gradient (inputs and parameters) match in float64, dropout off (eval mode)."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

torch = pytest.importorskip("torch")

TOLERANCE = dict(rtol=1e-9, atol=1e-10)


def _load_torch_weights(torch_module, module, tmp_path):
    """The PyTorch module's state_dict, through a .npz file, into ``module``; both perturbed first
    so that norm weights/biases are not their trivial 1 / 0."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in torch_module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    path = tmp_path / "state.npz"
    np.savez(path, **{k: v.detach().numpy() for k, v in torch_module.state_dict().items()})
    with np.load(path) as state:
        result = module.load_state_dict(dict(state))
    assert result.missing_keys == [] and result.unexpected_keys == []


def _compare(torch_module, module, torch_inputs, inputs, call=None, torch_call=None):
    """Forward on both, backward of the same random weighting of the outputs, compare everything."""
    call = call or (lambda m, *xs: m(*xs))
    torch_call = torch_call or call
    out, torch_out = call(module, *inputs), torch_call(torch_module, *torch_inputs)
    outs = out if isinstance(out, tuple) else (out,)
    torch_outs = torch_out if isinstance(torch_out, tuple) else (torch_out,)
    rng = np.random.default_rng(7)
    total, torch_total = 0, 0
    for o, t in zip(outs, torch_outs):
        if t is None:
            assert o is None
            continue
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), **TOLERANCE)
        u = rng.standard_normal(o.shape)
        total = total + (o * gf.tensor(u)).sum()
        torch_total = torch_total + (t * torch.from_numpy(u)).sum()
    total.backward()
    torch_total.backward()
    for x, t in zip(inputs, torch_inputs):
        if isinstance(x, gf.Tensor) and x.requires_grad:
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), **TOLERANCE)
    torch_params = dict(torch_module.named_parameters())
    for name, p in module.named_parameters():
        expected = torch_params[name].grad
        got = p.grad.numpy() if p.grad is not None else np.zeros(p.shape)
        np.testing.assert_allclose(got, expected.numpy(), err_msg=name, **TOLERANCE)


def _pair(*shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return gf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_layer_norm_matches_torch(shape, tmp_path):
    torch_module = torch.nn.LayerNorm(shape, eps=1e-3).double()
    module = gf.nn.LayerNorm(shape, eps=1e-3, dtype="float64")
    _load_torch_weights(torch_module, module, tmp_path)
    x, tx = _pair(2, 5, *shape)
    _compare(torch_module, module, [tx], [x])


def test_embedding_with_padding_idx_matches_torch(tmp_path):
    torch_module = torch.nn.Embedding(6, 4, padding_idx=1).double()
    module = gf.nn.Embedding(6, 4, padding_idx=1, dtype="float64")
    assert not module.weight.numpy()[1].any()
    _load_torch_weights(torch_module, module, tmp_path)
    tokens = np.array([[0, 1, 5, 5], [2, 1, 0, 3]])
    _compare(torch_module, module, [torch.from_numpy(tokens)], [gf.tensor(tokens)])
    assert not module.weight.grad.numpy()[1].any()   # the padding row gets no gradient
    np.testing.assert_allclose(module.weight.grad.numpy()[4], 0)  # an unused row neither


def _mha_pair(tmp_path, embed_dim=8, heads=2, bias=True):
    torch_module = torch.nn.MultiheadAttention(embed_dim, heads, bias=bias, batch_first=True).double()
    module = gf.nn.MultiheadAttention(embed_dim, heads, bias=bias, dtype="float64")
    _load_torch_weights(torch_module, module, tmp_path)
    return torch_module, module


def test_multihead_self_attention_with_masks_and_weights_matches_torch(tmp_path):
    torch_module, module = _mha_pair(tmp_path)
    x, tx = _pair(2, 5, 8)
    attn_mask = np.triu(np.ones((5, 5), dtype=bool), 1)            # True: may not attend (causal)
    padding = np.array([[False] * 5, [False, False, False, True, True]])

    def call(m, x, attn_mask, padding):
        return m(x, x, x, key_padding_mask=padding, attn_mask=attn_mask)

    _compare(torch_module, module, [tx, torch.from_numpy(attn_mask), torch.from_numpy(padding)],
             [x, attn_mask, padding], call)


def test_multihead_cross_attention_per_head_weights_float_mask_matches_torch(tmp_path):
    torch_module, module = _mha_pair(tmp_path, 12, 3, bias=False)
    q, tq = _pair(2, 3, 12, seed=1)
    kv, tkv = _pair(2, 4, 12, seed=2)
    mask = np.random.default_rng(3).standard_normal((2 * 3, 3, 4))     # additive, one per (batch, head)

    def call(m, q, kv, mask):
        return m(q, kv, kv, attn_mask=mask, average_attn_weights=False)

    _compare(torch_module, module, [tq, tkv, torch.from_numpy(mask)], [q, kv, mask], call)


def test_multihead_attention_unbatched_without_weights_matches_torch(tmp_path):
    torch_module, module = _mha_pair(tmp_path)
    x, tx = _pair(5, 8)

    def call(m, x):
        return m(x, x, x, need_weights=False)

    _compare(torch_module, module, [tx], [x], call)


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_layer_matches_torch(norm_first, activation, tmp_path):
    options = dict(dim_feedforward=16, dropout=0.1, activation=activation, norm_first=norm_first,
                   batch_first=True)
    torch_module = torch.nn.TransformerEncoderLayer(8, 2, **options).double().eval()
    module = gf.nn.TransformerEncoderLayer(8, 2, **options, dtype="float64").eval()
    _load_torch_weights(torch_module, module, tmp_path)
    x, tx = _pair(3, 5, 8)
    padding = np.zeros((3, 5), dtype=bool)
    padding[1, 3:] = True

    def call(m, x, padding):
        return m(x, src_key_padding_mask=padding)

    _compare(torch_module, module, [tx, torch.from_numpy(padding)], [x, padding], call)


def test_transformer_encoder_layer_causal_mask_matches_torch(tmp_path):
    torch_module = torch.nn.TransformerEncoderLayer(8, 4, 12, dropout=0.0, batch_first=True).double()
    module = gf.nn.TransformerEncoderLayer(8, 4, 12, dropout=0.0, dtype="float64")
    _load_torch_weights(torch_module, module, tmp_path)
    x, tx = _pair(2, 6, 8)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.float64)  # 0 / -inf

    def call(m, x, mask):
        return m(x, src_mask=mask)

    _compare(torch_module, module, [tx, mask], [x, mask.numpy()], call)


def test_encoder_layer_dropout_is_active_only_in_training():
    layer = gf.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = gf.randn(2, 4, 8)
    gf.manual_seed(0)
    a = layer(x).numpy()
    gf.manual_seed(1)
    assert not np.allclose(a, layer(x).numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())


# ----- losses against torch.nn.functional --------------------------------------------------------
def _logits_and_targets():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 3, 2))
    labels = np.array([[0, 2], [1, -100], [2, 2], [-100, 0]])
    probabilities = np.exp(rng.standard_normal((4, 3, 2)))
    return logits, labels, probabilities / probabilities.sum(axis=1, keepdims=True)


LOSS_CASES = [
    ("cross_entropy", dict(), "labels"),
    ("cross_entropy", dict(label_smoothing=0.25, reduction="sum"), "labels"),
    ("cross_entropy", dict(ignore_index=2, reduction="none"), "labels_no_ignore"),
    ("cross_entropy", dict(label_smoothing=0.1), "probabilities"),
    ("cross_entropy", dict(reduction="none"), "probabilities"),
    ("nll_loss", dict(), "labels"),
    ("nll_loss", dict(reduction="none"), "labels"),
]


@pytest.mark.parametrize("name,options,target", LOSS_CASES, ids=lambda v: str(v))
def test_class_losses_match_torch(name, options, target):
    logits, labels, probabilities = _logits_and_targets()
    targets = {"labels": labels, "labels_no_ignore": np.where(labels < 0, 1, labels), "probabilities": probabilities}
    y = targets[target]
    x, tx = gf.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    out = getattr(F, name)(x, gf.tensor(y), **options)
    expected = getattr(torch.nn.functional, name)(tx, torch.from_numpy(y), **options)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **TOLERANCE)


def test_fused_cross_entropy_path_is_kept_for_plain_labels():
    x = gf.randn(4, 3, requires_grad=True)
    assert F.cross_entropy(x, gf.tensor([0, 1, 2, 0])).grad_fn.name == "cross_entropy"
    assert F.cross_entropy(x, gf.tensor([0, -100, 2, 0])).grad_fn.name != "cross_entropy"


@pytest.mark.parametrize("name,options", [
    ("binary_cross_entropy", dict()), ("binary_cross_entropy_with_logits", dict(reduction="sum")),
    ("binary_cross_entropy_with_logits", dict(pos_weight=np.array([0.5, 2.0, 3.0]))),
    ("mse_loss", dict(reduction="none")), ("l1_loss", dict()), ("smooth_l1_loss", dict(beta=0.7)),
    ("smooth_l1_loss", dict(beta=0.0, reduction="sum")), ("huber_loss", dict(delta=0.6, reduction="none")),
], ids=lambda v: str(v))
def test_elementwise_losses_match_torch(name, options):
    rng = np.random.default_rng(1)
    low = 0.05 if name == "binary_cross_entropy" else -2
    x0, t0 = rng.uniform(low, 1 - low if low > 0 else 2, (4, 3)), rng.uniform(0, 1, (4, 3))
    x, tx = gf.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    t, tt = gf.tensor(t0, requires_grad=True), torch.tensor(t0, requires_grad=True)
    torch_options = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    ours = {k: gf.tensor(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    out = getattr(F, name)(x, t, **ours)
    expected = getattr(torch.nn.functional, name)(tx, tt, **torch_options)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **TOLERANCE)
    if name != "binary_cross_entropy":   # torch has no gradient for bce's target
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), **TOLERANCE)


def test_loss_errors_name_the_shapes():
    with pytest.raises(gf.errors.ShapeError, match=r"\(4, 3\)"):
        F.cross_entropy(gf.randn(4, 3), gf.tensor([0, 1]))
    with pytest.raises(ValueError, match="ignore_index"):
        F.cross_entropy(gf.randn(2, 3), gf.tensor([0, 7]), label_smoothing=0.1)
    with pytest.raises(ValueError, match="reduction"):
        F.l1_loss(gf.randn(2), gf.randn(2), reduction="avg")
    with pytest.raises(gf.errors.ShapeError, match="normalized_shape"):
        F.layer_norm(gf.randn(2, 3), (4,))
    with pytest.raises(IndexError, match="out of range for 3 embeddings"):
        F.embedding(gf.tensor([3]), gf.randn(3, 2))
    with pytest.raises(gf.errors.ShapeError, match="attn_mask"):
        F.scaled_dot_product_attention(gf.randn(3, 4), gf.randn(5, 4), gf.randn(5, 4), attn_mask=gf.ones(2, 2))


def test_sdpa_matches_torch_with_dropout_off_and_boolean_mask():
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal(s) for s in ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 6)))
    mask = rng.uniform(size=(3, 5)) > 0.3
    mask[:, 0] = True
    ours = F.scaled_dot_product_attention(gf.tensor(q), gf.tensor(k), gf.tensor(v), gf.tensor(mask), scale=0.7)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(torch.from_numpy(a) for a in (q, k, v)), attn_mask=torch.from_numpy(mask), scale=0.7)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TOLERANCE)


def test_sdpa_kernel_switch_is_per_thread_and_falls_back_when_it_must():
    import threading

    q = gf.randn(2, 3, 4, requires_grad=True)
    with F.sdpa_kernel("efficient"):
        assert F.scaled_dot_product_attention(q, q, q).grad_fn.next[0].name == "efficient_attention"
        seen = []
        thread = threading.Thread(target=lambda: seen.append(F.scaled_dot_product_attention(q, q, q).grad_fn.name))
        thread.start()
        thread.join()
        assert seen == ["matmul"]                       # another thread keeps the default, "math"
        gf.manual_seed(0)
        dropped = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)  # dropout needs P: the composition
        assert dropped.grad_fn.name == "matmul"
        mask = gf.zeros(3, 3, requires_grad=True)       # a mask that needs a gradient: the composition
        assert F.scaled_dot_product_attention(q, q, q, mask).grad_fn.name == "matmul"
    assert F.scaled_dot_product_attention(q, q, q).grad_fn.name == "matmul"
    with pytest.raises(ValueError, match="math, efficient"):
        with F.sdpa_kernel("flash"):
            pass


def test_encoder_layer_with_the_efficient_kernel_matches_torch(tmp_path):
    torch_module = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, batch_first=True).double()
    module = gf.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, dtype="float64")
    _load_torch_weights(torch_module, module, tmp_path)
    x, tx = _pair(2, 6, 8)
    padding = np.zeros((2, 6), dtype=bool)
    padding[0, 4:] = True

    def call(m, x, padding):
        return m(x, src_key_padding_mask=padding)

    with F.sdpa_kernel("efficient"):
        _compare(torch_module, module, [tx, torch.from_numpy(padding)], [x, padding], call)
