"""The transformer family: builder by name, its synthetic tasks, and a short training run."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.data.synthetic import sequence_task
from gradflow.models import BUILDERS, build


def test_sequence_tasks_are_deterministic_and_labeled_by_their_property():
    a, b = sequence_task("majority", 50, 20, seed=3), sequence_task("majority", 50, 20, seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, sequence_task("majority", 50, 20, seed=4).x_train)
    counts = np.array([np.bincount(row, minlength=8) for row in a.x_test])
    np.testing.assert_array_equal(a.y_test, counts.argmax(axis=1))
    pairs = sequence_task("first_last", 200, 10, length=6, vocab_size=5)
    np.testing.assert_array_equal(pairs.y_train, pairs.x_train[:, 0] == pairs.x_train[:, -1])
    assert pairs.y_train.mean() == 0.5
    with pytest.raises(gf.data.DatasetError, match="first_last, majority"):
        sequence_task("sorting")


def test_builder_is_registered_and_sizes_the_model_from_the_dataset():
    assert "transformer" in BUILDERS
    data = sequence_task("majority", 10, 5, length=7, vocab_size=6)
    model = build("transformer", dataset=data, d_model=16, nhead=2, num_layers=1)
    assert model(gf.tensor(data.x_test)).shape == (5, 6)
    assert "layers.0.self_attn.in_proj_weight" in dict(model.named_parameters())
    with pytest.raises(ValueError, match="max_len"):
        model(gf.zeros(1, 8, dtype="int64"))
    with pytest.raises(ValueError, match="needs a dataset"):
        build("transformer")


@pytest.mark.parametrize("task, n_train, n_test, length, ratio", [
    ("majority", 256, 16, 8, 0.7),   # one label per sequence
    ("copy", 128, 8, 5, 0.5),        # a label per position (the seq2seq tagger)
])
def test_a_few_steps_lower_the_loss(task, n_train, n_test, length, ratio):
    data = sequence_task(task, n_train, n_test, length=length, vocab_size=4)
    gf.manual_seed(0)
    model = build("transformer", dataset=data, d_model=16, nhead=2, num_layers=1, dim_feedforward=32)
    optimizer = gf.optim.Adam(model.parameters(), lr=1e-2)
    x, y = gf.tensor(data.x_train), gf.tensor(data.y_train)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < ratio * losses[0]
