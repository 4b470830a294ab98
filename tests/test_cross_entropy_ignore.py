"""cross_entropy's ignore_index on the CPU, against the closed form: a label equal to ignore_index
adds nothing and leaves the mean's count, also when ignore_index names a class (the fused path
once skipped nothing there, a silently wrong loss and gradient)."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

LOGITS = np.random.default_rng(11).normal(size=(6, 4))


def closed_form(labels, ignore_index, reduction):
    """(loss, gradient) of softmax cross-entropy skipping ``ignore_index``, written out."""
    kept = labels != ignore_index
    shifted = LOGITS - LOGITS.max(axis=1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    onehot = np.zeros_like(LOGITS)
    onehot[np.flatnonzero(kept), labels[kept]] = 1
    per_row = np.where(kept, -np.log((softmax * onehot).sum(axis=1) + ~kept), 0.0)
    row_grad = (softmax - onehot) * kept[:, None]
    if reduction == "none":
        return per_row, row_grad
    if reduction == "sum":
        return per_row.sum(), row_grad
    return per_row.sum() / kept.sum(), row_grad / kept.sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index, labels", [
    (-100, [1, -100, 3, 0, -100, 2]),
    (0, [1, 0, 3, 0, 2, 2]),       # a class ignored: every label still in range
    (3, [3, 3, 1, 0, 2, 3]),
    (7, [1, 2, 3, 0, 1, 2]),       # out of range and absent: nothing skipped
])
def test_cross_entropy_skips_ignore_index(ignore_index, labels, reduction):
    labels = np.array(labels)
    logits = gf.tensor(LOGITS, requires_grad=True)
    loss = F.cross_entropy(logits, gf.tensor(labels), reduction=reduction, ignore_index=ignore_index)
    want_loss, want_grad = closed_form(labels, ignore_index, reduction)
    np.testing.assert_allclose(loss.numpy(), want_loss, rtol=1e-12)
    (loss.sum() if reduction == "none" else loss).backward()
    np.testing.assert_allclose(logits.grad.numpy(), want_grad, rtol=1e-12, atol=1e-15)


def test_a_label_outside_the_classes_that_is_not_ignored_is_still_refused():
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        F.cross_entropy(gf.tensor(LOGITS), gf.tensor([1, 4, 0, 0, 0, 0]), ignore_index=0)
