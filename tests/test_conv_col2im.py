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
