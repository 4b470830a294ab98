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


ROW_SHIFT_SETTINGS = [dict(), dict(padding=(1, 2), dilation=(2, 1)), dict(stride=(1, 2), padding=(0, 3), groups=2),
                      dict(padding=2, dilation=2, groups=3)]


@pytest.mark.parametrize("settings", ROW_SHIFT_SETTINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_shifts_forward_equals_the_columns(settings, dtype):
    """The forward by kw column shifts and kh strided GEMMs (ops/conv.py, the note [row shifts])
    equals the one GEMM on the im2col columns, for any padding, dilation, column stride and groups."""
    from gradflow.backends import of_array
    from gradflow.ops import conv
    from gradflow.ops.windows import output_shape

    rng = np.random.default_rng(3)
    groups = settings.get("groups", 1)
    x = rng.standard_normal((5, 6, 9, 11)).astype(dtype)
    w = rng.standard_normal((groups * 4, 6 // groups, 3, 4)).astype(dtype)
    spatial = conv._spatial(settings.get("stride", 1), settings.get("padding", 0), settings.get("dilation", 1))
    out_hw = output_shape("conv2d", x.shape[2:], w.shape[2:], spatial["stride"], spatial["padding"], spatial["dilation"])
    backend = of_array(x)
    ours = conv._by_row_shifts(backend, x, w, groups=groups, out_hw=out_hw, **spatial)
    cols = conv._im2col(backend, x, w.shape[2:], spatial["stride"], spatial["padding"], spatial["dilation"], groups, out_hw)
    np.testing.assert_allclose(ours, w.reshape(groups, w.shape[0] // groups, -1) @ cols, rtol=1e-5, atol=1e-5)


def test_lenet_conv2_takes_the_row_shifts_and_matches_pytorch():
    """At LeNet's conv2 (batch 64) the forward goes through the row shifts; value and gradients
    against PyTorch."""
    from gradflow.backends import of_array
    from gradflow.ops import conv

    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    assert conv._row_shifts_pay(of_array(x), x, (5, 5), (1, 1), 1, (10, 10))
    g = rng.standard_normal((64, 16, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(F.conv2d(gf.tensor(x), gf.tensor(w)).numpy(),
                               torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w)).numpy(), rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(_grads(x, w, g, {}, "gradflow"), _grads(x, w, g, {}, "torch")):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(16, 10, 10, 64), (6, 14, 14, 64), (3, 5, 7, 64), (2, 3, 3, 16), (4, 9, 9, 3),
                                   (1, 2, 3, 9000)])
def test_batch_first_in_blocks_equals_the_plain_transpose(shape):
    """``_batch_first`` copies (C·H·W, N) in blocks of rows when they outgrow one block: the
    result is the plain transpose, contiguous, for whole and partial blocks, and for a cropped input."""
    from gradflow.backends import of_array
    from gradflow.ops.conv import _batch_first

    a = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    for src in (a, a[:, 1:, 1:]):
        moved = _batch_first(of_array(a), src)
        assert moved.flags.c_contiguous
        np.testing.assert_array_equal(moved, np.moveaxis(src, -1, 0))
