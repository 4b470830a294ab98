"""The transformer family on device "cuda" over the emulated CuPy: a few training steps of
TransformerClassifier (embedding scatter-add, layer_norm, attention with a padding mask, the
composed cross-entropy) give the CPU's losses and weights, and `gradflow train --model transformer
--device cuda` runs. What the emulation can and cannot show: test_emulated_cuda_backend.py."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.data.synthetic import sequence_task
from gradflow.models import build
from training_steps import train_steps


@pytest.fixture(autouse=True)
def cuda(emulated_cuda):
    return emulated_cuda


def _train(device, steps=3):
    data = sequence_task("majority", 16, 4, length=6, vocab_size=5)
    gf.manual_seed(0)
    model = build("transformer", dataset=data, d_model=8, nhead=2, num_layers=1, dim_feedforward=16,
                  dtype="float64").to(device)
    optimizer = gf.optim.Adam(model.parameters(), lr=1e-2)
    x, y = gf.tensor(data.x_train, device=device), gf.tensor(data.y_train, device=device)
    y_ignored = gf.tensor(np.where(np.arange(16) % 5 == 0, -100, data.y_train), device=device)
    losses = train_steps(model, optimizer, x, y, steps, loss=lambda logits, y: (
        F.cross_entropy(logits, y) + F.cross_entropy(logits, y_ignored, label_smoothing=0.1)))
    assert all(p.device == device for p in model.parameters())
    model.cpu()
    return losses, [p.data for p in model.parameters()]


def test_transformer_training_on_emulated_cuda_matches_cpu():
    losses, weights = _train("cuda")
    want_losses, want_weights = _train("cpu")
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    # atol: the key bias's gradient is zero up to rounding (softmax ignores a shift of all scores),
    # so its entries are rounding noise near 1e-12 on both devices.
    for got, want in zip(weights, want_weights):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_attention_with_masks_on_emulated_cuda_matches_cpu():
    def run(device):
        gf.manual_seed(0)
        attention = gf.nn.MultiheadAttention(8, 2, dtype="float64").to(device)
        x = gf.tensor(np.random.default_rng(0).standard_normal((2, 4, 8)), device=device, requires_grad=True)
        padding = gf.tensor(np.array([[False] * 4, [False, False, True, True]]), device=device)
        out, weights = attention(x, x, x, key_padding_mask=padding, is_causal=True)
        (out.sum() + weights.sum()).backward()
        return out.numpy(), x.grad.numpy()

    for got, want in zip(run("cuda"), run("cpu")):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
