"""Issue 16 item 14: misuse raises gradflow's error types (which also subclass the built-ins)."""
import pytest

import gradflow as gf
import gradflow.nn.functional as F


@pytest.mark.parametrize("loss, targets, low, high", [
    (F.cross_entropy, [0, 3], 0, 3),                      # one past the last class
    (F.cross_entropy, [0, -1], -1, 0),                    # negative
    (lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), [7, 0], 0, 7),
    (F.nll_loss, [0, 5], 0, 5),
])
def test_out_of_range_class_targets_raise_class_index_error(loss, targets, low, high):
    logits = gf.randn(2, 3, requires_grad=True)
    with pytest.raises(gf.ClassIndexError, match=rf"in \[0, 3\).*got values from {low} to {high}") as caught:
        loss(logits, gf.tensor(targets))
    # PyTorch raises IndexError; code written before the type existed caught ValueError.
    assert isinstance(caught.value, IndexError) and isinstance(caught.value, ValueError)
    assert isinstance(caught.value, gf.GradflowError)


def test_ignored_targets_are_not_out_of_range():
    loss = F.cross_entropy(gf.randn(2, 3), gf.tensor([1, -100]), ignore_index=-100)
    assert loss.shape == ()


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b, gf.maximum])
def test_broadcast_mismatch_raises_shape_error(op):
    with pytest.raises(gf.ShapeError, match=r"\(2, 3\).*\(4,\)"):
        op(gf.randn(2, 3, requires_grad=True), gf.randn(4))
