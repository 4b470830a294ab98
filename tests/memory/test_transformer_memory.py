"""One transformer encoder layer's retained activations equal the hand derivation in README.md,
and ``profile`` sweeps sequence length (the L² attention term) through its make_batch callback."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.memory as M

D, HEADS, FF = 16, 4, 24      # d_model, heads, feed-forward width; float32 (4 bytes)


def per_example(length, d=D, heads=HEADS, ff=FF):
    """README.md, "One transformer encoder layer": 4·L·(8d + F + 2 + H·L) bytes per example."""
    return 4 * length * (8 * d + ff + 2 + heads * length)


def _layer(norm_first=False):
    gf.manual_seed(0)
    return gf.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, norm_first=norm_first)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch,length", [(2, 10), (3, 7)])
def test_encoder_layer_retained_bytes_equal_the_hand_derivation(norm_first, batch, length):
    layer = _layer(norm_first)
    x = gf.randn(batch, length, D, requires_grad=True) * 1.0    # the previous layer's output: an activation
    with M.track(layer) as t:
        out = layer(x)
    n, rows = batch, batch * length
    assert t.retained_bytes == n * per_example(length)
    by_op = {op: entry["bytes"] for op, entry in t.by_op().items()}
    assert by_op["softmax"] == 4 * n * HEADS * length * length             # P, kept once for P @ v too
    assert by_op["matmul"] == 4 * rows * 3 * D                             # q, k, v: one packed in-proj output
    assert by_op["layer_norm"] == 2 * 4 * rows * (D + 1)                   # x̂ and 1/σ, two norms
    assert by_op["linear"] == 3 * 4 * rows * D                             # in_proj, out_proj, linear1 inputs
    assert by_op["relu"] == 4 * rows * FF
    out.sum().backward()
    assert t.retained_bytes == 0


def test_profile_sweeps_sequence_length_and_the_quadratic_fit_is_exact():
    layer, batch, lengths = _layer(), 2, [4, 8, 12, 16]
    profile = M.profile(layer, lambda length: gf.randn(batch, length, D), lengths)
    retained = [row["retained"] for row in profile.rows]
    # The batch itself is a saved input, not an activation: 7d instead of 8d per position.
    assert retained == [batch * (per_example(length) - 4 * length * D) for length in lengths]
    fit = M.QuadraticFit(lengths, retained)
    assert fit.quadratic == pytest.approx(4 * batch * HEADS)
    assert fit.linear == pytest.approx(4 * batch * (7 * D + FF + 2))
    assert fit.fixed == pytest.approx(0, abs=1e-6)
    budget = fit.predict(64)
    assert fit.max_size(budget) == 64 and fit.max_size(budget - 1) == 63
    with pytest.raises(ValueError, match="three distinct sizes"):
        M.QuadraticFit([1, 2], [1, 2])
    assert np.isfinite(profile.predict(32))


@pytest.mark.parametrize("batch,length", [(2, 10), (3, 7)])
def test_efficient_attention_keeps_output_and_log_sum_exp_instead_of_probabilities(batch, length):
    # README.md: P (H·L² floats) is replaced by the packed output and row log-sum-exp (L·(d + H)).
    layer = _layer()
    x = gf.randn(batch, length, D, requires_grad=True) * 1.0
    with gf.nn.functional.sdpa_kernel("efficient"), M.track(layer) as t:
        out = layer(x)
    rows = batch * length
    assert t.retained_bytes == batch * (per_example(length) - 4 * length * HEADS * length + 4 * length * (D + HEADS))
    assert t.by_op()["efficient_attention"]["bytes"] == 4 * rows * (3 * D + D + HEADS)   # q, k, v + out, ℓ
    assert "softmax" not in t.by_op()
    out.sum().backward()
    assert t.retained_bytes == 0


def test_both_kernels_give_the_same_layer_gradients():
    x = gf.tensor(np.random.default_rng(0).standard_normal((2, 9, D)), requires_grad=True)
    results = []
    for kernel in ("math", "efficient"):
        gf.manual_seed(0)
        layer = gf.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, dtype="float64")
        x.grad = None
        with gf.nn.functional.sdpa_kernel(kernel):
            out = layer(x, is_causal=True)
        (out * out).sum().backward()
        results.append([out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
