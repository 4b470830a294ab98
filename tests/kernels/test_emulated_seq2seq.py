"""The per-position transformer (TransformerTagger) on device "cuda" over the emulated CuPy: training
steps on a reverse task give the CPU's losses, and whole-sequence accuracy counts the same."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.cli.train import _accuracy
from gradflow.data.synthetic import sequence_task
from gradflow.models import build
from training_steps import train_steps


@pytest.fixture(autouse=True)
def cuda(emulated_cuda):
    return emulated_cuda


def _train(device, steps=3):
    data = sequence_task("reverse", 16, 8, length=5, vocab_size=6)
    gf.manual_seed(0)
    model = build("transformer", dataset=data, d_model=8, nhead=2, num_layers=1, dim_feedforward=16,
                  dtype="float64").to(device)
    optimizer = gf.optim.Adam(model.parameters(), lr=1e-2)
    x, y = gf.tensor(data.x_train, device=device), gf.tensor(data.y_train, device=device)
    losses = train_steps(model, optimizer, x, y, steps)
    accuracy = _accuracy(model, data.x_test, data.y_test, device)
    return losses, accuracy


def test_tagger_training_on_emulated_cuda_matches_cpu():
    losses, accuracy = _train("cuda")
    want_losses, want_accuracy = _train("cpu")
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    assert accuracy == want_accuracy
