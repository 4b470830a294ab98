"""autocast's op policy beyond linear layers (gradflow/ops/autocast.py, the note [what autocast
changes]): ``@``/matmul and the convolutions in float16 with float32 accumulation, normalization,
softmax and losses in float32, mixed operands promoted; a CNN and a transformer layer under
autocast against float32, and a CNN trained on the digits with a GradScaler."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.errors import DTypeError
from gradflow.models import build
from digits_under_autocast import trained_accuracy


def _half_rounded(*arrays):
    return [a.astype(np.float16).astype(np.float32) for a in arrays]


def test_matmul_operator_runs_in_half_with_float32_accumulation():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 5, 7)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
    for product in (lambda a, b: a @ b, gf.matmul, gf.linalg.matmul):
        with gf.autocast():
            y = product(gf.tensor(x), gf.tensor(w))
        assert y.dtype == np.float16
        hx, hw = _half_rounded(x, w)
        np.testing.assert_array_equal(y.numpy(), (hx @ hw).astype(np.float16))
    # 3000 products of ones: a float16 accumulator would stop at 2048.
    with gf.autocast():
        total = gf.ones(1, 3000) @ gf.ones(3000, 1)
    assert total.dtype == np.float16 and total.item() == 3000
    with gf.autocast():  # integer products are left alone, as in PyTorch
        assert (gf.tensor([[1, 2]]) @ gf.tensor([[3], [4]])).dtype.kind == "i"
    assert (gf.ones(2, 2) @ gf.ones(2, 2)).dtype == np.float32  # outside the block: untouched


@pytest.mark.parametrize("name", ["conv1d", "conv2d", "conv_transpose2d"])
def test_convolutions_run_in_half_on_half_rounded_operands(name):
    rng = np.random.default_rng(1)
    shapes = {"conv1d": ((2, 3, 9), (4, 3, 3)), "conv2d": ((2, 3, 6, 6), (4, 3, 3, 3)),
              "conv_transpose2d": ((2, 3, 5, 5), (3, 4, 3, 3))}[name]
    x, w = (rng.normal(size=s).astype(np.float32) for s in shapes)
    b = rng.normal(size=4).astype(np.float32)
    conv = getattr(F, name)
    weight, bias = nn.Parameter(gf.tensor(w)), nn.Parameter(gf.tensor(b))
    with gf.autocast():
        y = conv(gf.tensor(x), weight, bias, stride=1, padding=1)
    assert y.dtype == np.float16 and weight.dtype == np.float32
    expected = conv(*(gf.tensor(a) for a in _half_rounded(x, w, b)), stride=1, padding=1)
    np.testing.assert_array_equal(y.numpy(), expected.numpy().astype(np.float16))
    y.to(np.float32).sum().backward()
    assert weight.grad.dtype == np.float32 and bias.grad.dtype == np.float32  # master gradients


FLOAT32_OPS = {
    "softmax": lambda h: F.softmax(h, axis=-1),
    "log_softmax": lambda h: F.log_softmax(h, axis=-1),
    "layer_norm": lambda h: F.layer_norm(h, (h.shape[-1],)),
    "batch_norm": lambda h: F.batch_norm(h, gf.zeros(4), gf.ones(4), training=True),
    "group_norm": lambda h: F.group_norm(h, 2),
    "cross_entropy": lambda h: F.cross_entropy(h, [0, 1, 2]),
    "nll_loss": lambda h: F.nll_loss(h, [0, 1, 2]),
    "mse_loss": lambda h: F.mse_loss(h, gf.zeros(3, 4)),
    "l1_loss": lambda h: F.l1_loss(h, gf.zeros(3, 4)),
    "smooth_l1_loss": lambda h: F.smooth_l1_loss(h, gf.zeros(3, 4)),
    "huber_loss": lambda h: F.huber_loss(h, gf.zeros(3, 4)),
    "binary_cross_entropy": lambda h: F.binary_cross_entropy(h, gf.ones(3, 4)),
    "binary_cross_entropy_with_logits": lambda h: F.binary_cross_entropy_with_logits(h, gf.ones(3, 4)),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_OPS))
def test_normalization_softmax_and_losses_run_in_float32(name):
    """A float16 activation is widened (exactly), so the result is the float32 op's on it."""
    probabilities = np.random.default_rng(2).uniform(0.05, 0.95, size=(3, 4))  # valid for every op
    h = gf.tensor(probabilities.astype(np.float16), requires_grad=True)
    with gf.autocast():
        out = FLOAT32_OPS[name](h)
    assert out.dtype == np.float32, (name, out.dtype)
    reference = FLOAT32_OPS[name](h.detach().to(np.float32))
    np.testing.assert_allclose(out.numpy(), reference.numpy(), rtol=1e-6, atol=1e-7)
    out.sum().backward()
    assert h.grad.dtype == np.float16  # the gradient goes back through the cast


def test_mixed_operands_meet_at_float32_only_inside_autocast():
    half, single = gf.ones(2, dtype="float16"), gf.ones(2, requires_grad=True)
    with pytest.raises(DTypeError, match="float16"):
        half + single
    with gf.autocast():
        total = half + single
        chosen = gf.where(gf.tensor([True, False]), half, single)
    assert total.dtype == np.float32 and chosen.dtype == np.float32
    total.sum().backward()
    assert single.grad.tolist() == [1.0, 1.0]


def _gradients(model, x, weights, mixed):
    model.zero_grad()
    with gf.autocast(enabled=mixed):
        out = model(x)
        loss = (out * gf.tensor(weights)).sum()  # a fixed random projection: no cancellation
    loss.backward()
    return [p.grad.numpy().copy() for p in model.parameters() if p.grad is not None]


def _assert_close_to_float32(model, x, weights):
    full, mixed = _gradients(model, x, weights, False), _gradients(model, x, weights, True)
    for g32, g16 in zip(full, mixed):
        assert g16.dtype == np.float32
        # Half has 11 significant bits (unit roundoff 4.9e-4); a few roundings per layer.
        assert np.linalg.norm(g16 - g32) <= 5e-3 * np.linalg.norm(g32), (g32.shape,)  # ~1e-3 seen


def test_cnn_gradients_under_autocast_are_close_to_float32():
    gf.manual_seed(0)
    rng = np.random.default_rng(3)
    # Smooth activations and average pooling: a ReLU or max-pool decision that a half rounding
    # flips moves a gradient by O(1), which says nothing about precision. Convolutions before
    # BatchNorm have no bias (its gradient is exactly 0: no relative error to measure).
    model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1, bias=False),
                          nn.BatchNorm2d(8), nn.Tanh(), nn.AvgPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.GELU(),
                          nn.ConvTranspose2d(8, 4, 2, stride=2), nn.Flatten(), nn.Linear(256, 10))
    x = gf.tensor(rng.normal(size=(16, 64)).astype(np.float32))
    _assert_close_to_float32(model, x, rng.normal(size=(16, 10)).astype(np.float32))


def test_transformer_layer_gradients_under_autocast_are_close_to_float32():
    gf.manual_seed(0)
    rng = np.random.default_rng(4)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, activation="gelu")
    x = gf.tensor(rng.normal(size=(2, 5, 16)).astype(np.float32))
    _assert_close_to_float32(layer, x, rng.normal(size=(2, 5, 16)).astype(np.float32))


def test_a_cnn_trained_under_autocast_reaches_float32_accuracy():
    """The digits, the model zoo's CNN (8 and 16 channels), Adam, two epochs: float16 convolutions
    and linear layer with float32 masters and loss scaling end within 1 point of float32."""
    def train(mixed):
        return trained_accuracy(lambda: build("cnn", channels=(8, 16)), 2, mixed)

    full, mixed = train(False), train(True)
    assert full > 0.9
    assert mixed >= full - 0.01, (mixed, full)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_grad_scaler_skips_a_step_whose_half_gradients_overflow():
    """A scale of 2^24 makes the CNN's float16 activation gradients overflow to inf: the step is
    skipped (the float32 weights do not move), the scale backs off, and a later step goes through."""
    gf.manual_seed(0)
    model = build("cnn", channels=(4, 8))
    opt = gf.optim.SGD(model.parameters(), lr=0.1)
    scaler = gf.optim.GradScaler(init_scale=2.0 ** 24)
    x = gf.tensor(np.random.default_rng(5).normal(size=(8, 64)).astype(np.float32))
    labels = np.arange(8) % 10
    before = [p.numpy().copy() for p in model.parameters()]
    opt.zero_grad()
    with gf.autocast():
        loss = F.cross_entropy(model(x), labels)
    scaler.scale(loss).backward()
    assert not all(np.isfinite(p.grad.numpy()).all() for p in model.parameters())
    scaler.step(opt)
    scaler.update()
    assert scaler.skipped_steps == 1 and scaler.get_scale() == 2.0 ** 23
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(p.numpy(), b)
    scaler = gf.optim.GradScaler(init_scale=2.0 ** 8)
    opt.zero_grad()
    with gf.autocast():
        loss = F.cross_entropy(model(x), labels)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.skipped_steps == 0
    assert any(not np.array_equal(p.numpy(), b) for b, p in zip(before, model.parameters()))
