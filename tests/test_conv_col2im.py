"""conv2d's gradients through the batch-last im2col / col2im (ops/conv.py) must be PyTorch's,
NaN and inf from a non-finite weight included: col2im forms exactly the products w·g of the sum,
so NaN appears where PyTorch's has it and nowhere else."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

torch = pytest.importorskip("torch")

SETTINGS = [dict(), dict(padding=(1, 2), dilation=(2, 1), groups=2), dict(padding=2, dilation=2)]


def _grads(x, w, g, settings, lib):
    if lib == "torch":
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        torch.nn.functional.conv2d(tx, tw, **settings).backward(torch.tensor(g))
        return tx.grad.numpy(), tw.grad.numpy()
    gx, gw = gf.tensor(x, requires_grad=True), gf.tensor(w, requires_grad=True)
    F.conv2d(gx, gw, **settings).backward(gf.tensor(g))
    return gx.grad.numpy(), gw.grad.numpy()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf weights make NaN on purpose
@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("poison", [None, np.inf, np.nan])
def test_stride_one_input_gradient_matches_pytorch(settings, poison):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 7, 9)).astype(np.float32)
    w = rng.standard_normal((6, 4 // settings.get("groups", 1), 3, 2)).astype(np.float32)
    if poison is not None:
        w[1, 0, 2, 1] = poison  # 0·inf is NaN only where the sum has that product
    out_shape = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), **settings).shape
    g = rng.standard_normal(tuple(out_shape)).astype(np.float32)
    for ours, theirs in zip(_grads(x, w, g, settings, "gradflow"), _grads(x, w, g, settings, "torch")):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_axis_last_on_a_pitch_equals_the_plain_transpose(dtype):
    """More than 8 rows of a 1 KiB multiple go through the pitched copy (ops/conv.py
    ``_batch_axis_last``): contiguous (12 × 4 KiB), sliced (12 × 1 KiB) and broadcast (10 × 2 KiB)
    inputs, and those that do not (other row lengths, 4 rows, none), all give the plain transpose."""
    from gradflow.backends import of_array
    from gradflow.ops.conv import _batch_axis_last

    backend = of_array(np.zeros(1))
    rng = np.random.default_rng(1)
    full = rng.standard_normal((12, 16, 8, 8)).astype(dtype)
    cases = [full, full[:, :, :4, :4], np.broadcast_to(dtype(2.5), (10, 32, 4, 4)), full[:, :3, :5], full[:0], full[:4]]
    for a in cases:
        moved = _batch_axis_last(backend, a)
        assert moved.flags.c_contiguous and moved.dtype == a.dtype
        np.testing.assert_array_equal(moved, np.moveaxis(a, 0, -1))


def test_gradients_match_pytorch_where_rows_are_pitched():
    """Batch 12 of 16×8×8 maps (4 KiB per example): x and g move batch-last through the pitched copy."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 16, 8, 8)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    g = rng.standard_normal((12, 16, 8, 8)).astype(np.float32)
    for ours, theirs in zip(_grads(x, w, g, dict(padding=1), "gradflow"), _grads(x, w, g, dict(padding=1), "torch")):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)
