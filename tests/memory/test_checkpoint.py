"""Checkpointing: identical gradients, fewer retained bytes, and hooks that shrink what is saved."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.memory as M
import gradflow.nn.functional as F
from gradflow.autograd import graph

from memory_models import make_batch


def _run(model, params, x, y):
    for p in params:
        p.grad = None
    with M.track() as t:
        loss = F.cross_entropy(model(x), y)
    retained = t.retained_bytes
    loss.backward()
    assert t.retained_bytes == 0
    return retained, [p.grad.numpy().copy() for p in params]


def test_checkpointing_all_layers_of_a_six_layer_mlp_cuts_retained_bytes(six_layer):
    x, y = make_batch(256)
    params = list(six_layer.parameters())
    plain, grads = _run(six_layer, params, x, y)
    # Every layer inside a checkpointed segment (2 segments ≈ √6): only the boundaries are kept.
    kept, ck_grads = _run(gf.checkpoint_sequential(six_layer, 2), params, x, y)
    assert 1 - kept / plain >= 0.60, (plain, kept)
    assert all(np.array_equal(a, b) for a, b in zip(grads, ck_grads))
    # One segment per Linear+ReLU pair keeps exactly what the plain graph keeps (README.md says why).
    per_layer, _ = _run(gf.checkpoint_sequential(six_layer, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 11)]),
                        params, x, y)
    assert per_layer == plain


def test_checkpoint_replays_dropout_and_reaches_inputs():
    gf.manual_seed(3)
    w = gf.randn(16, 16, requires_grad=True)
    x = gf.randn(4, 16, requires_grad=True)

    def block(h):
        return F.dropout(gf.tanh(h @ w), 0.5)

    gf.manual_seed(7)
    block(x).sum().backward()
    expected = (x.grad.numpy().copy(), w.grad.numpy().copy())
    x.grad = w.grad = None
    gf.manual_seed(7)
    gf.checkpoint(block, x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), expected[0])
    np.testing.assert_array_equal(w.grad.numpy(), expected[1])


def test_checkpoint_errors_name_the_problem():
    with pytest.raises(ValueError, match="between 1 and 3"):
        gf.checkpoint_sequential([gf.relu] * 3, 5)
    with pytest.raises(TypeError, match="one Tensor"):
        gf.checkpoint(lambda h: (h, h), gf.randn(2, requires_grad=True))


@pytest.mark.parametrize("dtype, rtol", [("float16", 2e-3), ("bfloat16", 2e-2)])
def test_save_in_dtype_halves_retained_bytes(six_layer, dtype, rtol):
    x, y = make_batch(128)
    params = list(six_layer.parameters())
    plain, grads = _run(six_layer, params, x, y)
    with graph.save_in_dtype(dtype):
        packed, packed_grads = _run(six_layer, params, x, y)
    assert packed == plain // 2
    for a, b in zip(grads, packed_grads):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max())


def test_bfloat16_bits_round_to_nearest_even():
    values = np.array([1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5e-3, np.inf, np.nan], dtype=np.float32)
    back = graph.from_bfloat16_bits(graph.to_bfloat16_bits(values), np.float32)
    np.testing.assert_array_equal(back[:3], [1.0, 1.0, 1 + 2 ** -6])
    assert abs(back[3] / values[3] - 1) < 2 ** -8 and np.isinf(back[4]) and np.isnan(back[5])


def test_custom_hooks_see_every_saved_tensor_and_save_on_cpu_is_a_noop_on_cpu():
    seen = []
    w = gf.randn(8, 8, requires_grad=True)
    with graph.saved_tensors_hooks(lambda t: seen.append(t.shape) or t, lambda t: t):
        with graph.save_on_cpu():
            loss = gf.sigmoid(gf.randn(2, 8) @ w).sum()
    loss.backward()
    assert w.grad.shape == (8, 8) and not seen  # the innermost hooks win
    with graph.saved_tensors_hooks(lambda t: seen.append(t.shape) or t, lambda t: t):
        gf.sigmoid(gf.randn(2, 8) @ w).sum().backward()
    assert (2, 8) in seen


@pytest.mark.gpu
def test_save_on_cpu_moves_cuda_activations_to_the_host():
    w = gf.randn(64, 64, requires_grad=True, device="cuda")
    with graph.save_on_cpu(), M.track() as t:
        loss = gf.tanh(gf.randn(32, 64, device="cuda") @ w).sum()
    assert {b.device for b in t.live_buffers() if b.kind == "activation"} == {"cpu"}
    loss.backward()
    assert w.grad.device.type == "cuda"
