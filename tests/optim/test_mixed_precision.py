"""Mixed precision on the CPU: ``autocast(dtype="float16")`` (gradflow/ops/autocast.py) and the
dynamic loss scaler ``optim.GradScaler``."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from digits_under_autocast import trained_accuracy


def test_linear_runs_in_half_with_float32_accumulation():
    """3000 products of ones: float32 accumulation gives 3000 (exact in half); a float16
    accumulator stops at 2048, where adding 1 no longer changes it (a running half sum shows it)."""
    x = gf.tensor(np.ones((1, 3000), np.float32))
    w = gf.nn.Parameter(gf.tensor(np.ones((2, 3000), np.float32)))
    with gf.autocast():
        y = F.linear(x, w)
    assert y.dtype == np.float16 and w.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [[3000, 3000]])
    ones = np.ones((1, 3000), np.float16)
    assert np.cumsum(ones * ones, dtype=np.float16)[-1] == 2048  # a half accumulator


def test_values_and_gradients_are_the_half_rounded_float32_ones():
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.normal(size=(5, 7)).astype(np.float32))
    w = gf.nn.Parameter(gf.tensor(rng.normal(size=(3, 7)).astype(np.float32)))
    b = gf.nn.Parameter(gf.tensor(rng.normal(size=3).astype(np.float32)))
    with gf.autocast():
        y = F.linear_act(x, w, b, "tanh")
        loss = F.cross_entropy(y, [0, 1, 2, 1, 0])
    assert y.dtype == np.float16 and loss.dtype == np.float32  # the loss runs in float32
    half = [a.astype(np.float16).astype(np.float32) for a in (x.numpy(), w.numpy(), b.numpy())]
    z = (half[0] @ half[1].T + half[2]).astype(np.float16)
    np.testing.assert_array_equal(y.numpy(), np.tanh(z))
    loss.backward()
    assert w.grad.dtype == np.float32 and b.grad.dtype == np.float32
    # The same loss in float32 on the half-rounded operands: gradients agree to half precision.
    x32, w32, b32 = (gf.tensor(a, requires_grad=True) for a in half)
    F.cross_entropy(F.tanh(F.linear(x32, w32, b32)), [0, 1, 2, 1, 0]).backward()
    np.testing.assert_allclose(w.grad.numpy(), w32.grad.numpy(), rtol=2e-2, atol=2e-3)
    np.testing.assert_allclose(b.grad.numpy(), b32.grad.numpy(), rtol=2e-2, atol=2e-3)


def test_autocast_nests_and_restores():
    assert gf.ops.autocast.autocast_dtype() is None
    with gf.autocast():
        with gf.autocast(enabled=False):
            assert F.linear(gf.ones(1, 2), gf.ones(3, 2)).dtype == np.float32
        assert F.linear(gf.ones(1, 2), gf.ones(3, 2)).dtype == np.float16
    assert gf.ops.autocast.autocast_dtype() is None
    with pytest.raises(ValueError, match="float16"):
        with gf.autocast(dtype="bfloat16" if hasattr(np, "bfloat16") else "float64"):
            pass


def _sgd_with_scaler(grad_value, init_scale=8.0, growth_interval=2):
    w = gf.nn.Parameter(gf.ones(3))
    opt = gf.optim.SGD([w], lr=0.1)
    scaler = gf.optim.GradScaler(init_scale=init_scale, growth_interval=growth_interval)
    return w, opt, scaler


def test_grad_scaler_unscales_steps_and_grows():
    w, opt, scaler = _sgd_with_scaler(1.0)
    for step in range(2):
        opt.zero_grad()
        scaler.scale((w * 2.0).sum()).backward()
        assert w.grad.tolist() == [16.0] * 3  # 2 * scale 8, before unscaling
        scaler.step(opt)
        scaler.update()
    np.testing.assert_allclose(w.numpy(), 1 - 2 * 0.1 * 2.0)  # two steps on the true gradient 2
    assert scaler.get_scale() == 16.0 and scaler.skipped_steps == 0  # grown after 2 clean steps


def test_grad_scaler_skips_a_step_with_inf_and_backs_off():
    w, opt, scaler = _sgd_with_scaler(1.0)
    opt.zero_grad()
    scaler.scale((w * gf.tensor([1.0, np.inf, 1.0])).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert w.tolist() == [1.0] * 3 and scaler.skipped_steps == 1 and scaler.get_scale() == 4.0


def test_grad_scaler_unscales_a_shared_gradient_buffer_once():
    a, b = gf.nn.Parameter(gf.ones(3)), gf.nn.Parameter(gf.ones(3))
    opt, scaler = gf.optim.SGD([a, b], lr=0.1), gf.optim.GradScaler(init_scale=4.0)
    scaler.scale((a + b).sum()).backward()  # the engine may hand both leaves one array
    scaler.unscale_(opt)
    assert a.grad.tolist() == b.grad.tolist() == [1.0] * 3


def test_an_mlp_trained_under_autocast_reaches_float32_accuracy():
    """The digits, a 64-64-10 MLP, Adam: float16 linear layers with float32 masters and loss
    scaling end within 2 points of the float32 run's test accuracy."""
    def train(mixed):
        return trained_accuracy(lambda: gf.nn.MLP([64, 64, 10]), 8, mixed)

    full, mixed = train(False), train(True)
    assert full > 0.9
    assert mixed >= full - 0.02, (mixed, full)
