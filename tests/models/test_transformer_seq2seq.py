"""Sequence-to-sequence tasks of the transformer family (copy, reverse, sort): targets, the per-position
model, and whole-sequence accuracy as the CLI counts it."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.cli.train import _correct
from gradflow.data.synthetic import TOKEN_TASKS, sequence_task
from gradflow.models import build
from gradflow.models.transformer import TransformerClassifier, TransformerTagger, load_data


@pytest.mark.parametrize("task, target", [("copy", lambda x: x), ("reverse", lambda x: x[::-1]),
                                          ("sort", sorted)])
def test_token_task_targets_are_the_transformed_input(task, target):
    data = sequence_task(task, 30, 10, length=7, vocab_size=5, seed=2)
    assert data.info["per_token"] and data.n_classes == 5
    assert data.y_train.shape == data.x_train.shape == (30, 7) and data.y_train.dtype == np.int64
    for x, y in zip(data.x_test, data.y_test):
        assert list(y) == list(target(list(x)))
    again = sequence_task(task, 30, 10, length=7, vocab_size=5, seed=2)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_train, data.y_train)


def test_classification_tasks_are_not_per_token_and_the_family_defaults_fit_the_brief():
    assert not sequence_task("majority", 4, 2).info["per_token"]
    assert set(TOKEN_TASKS) == {"copy", "reverse", "sort"}
    data = load_data("sort")
    assert data.x_train.shape[1] == 10 and data.info["vocab_size"] == 10


def test_tagger_predicts_every_position_in_cross_entropy_layout():
    data = sequence_task("reverse", 6, 3, length=5, vocab_size=7)
    model = build("transformer", dataset=data, d_model=16, nhead=2, num_layers=1, dim_feedforward=16)
    assert isinstance(model, TransformerTagger)
    assert isinstance(build("transformer", dataset=sequence_task("majority", 6, 3)), TransformerClassifier)
    logits = model(gf.tensor(data.x_train))
    assert logits.shape == (6, 7, 5)
    loss = F.cross_entropy(logits, gf.tensor(data.y_train))   # (N, C, L) against (N, L)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="max_len"):
        model(gf.zeros(1, 6, dtype="int64"))


def test_whole_sequence_accuracy_counts_a_sequence_only_when_every_position_is_right():
    target = np.array([[0, 1, 2], [2, 1, 0], [1, 1, 1]])
    predicted = target.copy()
    predicted[1, 2] = 2                               # one wrong position spoils the second sequence
    logits = gf.tensor(np.moveaxis(np.eye(3)[predicted], -1, 1))   # (N, C, L) one-hot at the prediction
    assert _correct(logits, gf.tensor(target)) == 2
    assert _correct(gf.tensor(np.eye(3)), gf.tensor(np.array([0, 2, 2]))) == 2   # (N, C): per example
