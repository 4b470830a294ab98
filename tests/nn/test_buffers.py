"""Module buffers: registration, state_dict, to(), and train()/eval() switching BatchNorm and Dropout."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.errors import ShapeError


class WithBuffers(gf.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = gf.nn.Linear(2, 2)
        self.register_buffer("steps", gf.zeros((), dtype="int64"))
        self.register_buffer("scratch", gf.zeros(3), persistent=False)


def test_buffers_are_attributes_in_state_dict_unless_not_persistent():
    model = WithBuffers()
    assert list(model.state_dict()) == ["steps", "linear.weight", "linear.bias"]  # own state first, as PyTorch
    assert [name for name, _ in model.named_buffers()] == ["steps", "scratch"]
    assert [name for name, _ in model.named_parameters()] == ["linear.weight", "linear.bias"]
    model.steps.data += 5
    copy = WithBuffers()
    copy.load_state_dict(model.state_dict())
    assert int(copy.steps.item()) == 5
    with pytest.raises(KeyError, match="missing keys \\['steps'\\]"):
        copy.load_state_dict({k: v for k, v in model.state_dict().items() if k != "steps"})


def test_register_buffer_refuses_parameters_and_non_tensors():
    model = WithBuffers()
    with pytest.raises(TypeError, match="use register_parameter"):
        model.register_buffer("w", gf.nn.Parameter(gf.zeros(2)))
    with pytest.raises(TypeError, match="needs a Tensor or None"):
        model.register_buffer("w", np.zeros(2))
    with pytest.raises(KeyError, match="already a parameter"):
        model.linear.register_buffer("weight", gf.zeros(2))


def test_to_casts_floating_buffers_and_keeps_counters():
    bn = gf.nn.BatchNorm2d(3).to(gf.float64)
    assert bn.running_mean.dtype == np.float64 and bn.running_var.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64


def test_batchnorm_train_updates_running_stats_and_eval_uses_them():
    bn = gf.nn.BatchNorm2d(2, momentum=0.5).to(gf.float64)
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)) * 3 + 1
    bn(gf.tensor(x))
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.5 + 0.5 * var, rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    y = bn(gf.tensor(x)).numpy()
    expected = (x - 0.5 * mean[:, None, None]) / np.sqrt(0.5 + 0.5 * var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-10)
    assert int(bn.num_batches_tracked.item()) == 1  # eval leaves the statistics alone


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = gf.nn.BatchNorm1d(3, momentum=None).to(gf.float64)
    batches = [np.random.default_rng(i).standard_normal((5, 3)) for i in range(3)]
    for b in batches:
        bn(gf.tensor(b))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(axis=0) for b in batches], axis=0),
                               rtol=1e-12)


def test_batchnorm_without_running_stats_uses_the_batch_in_eval():
    bn = gf.nn.BatchNorm1d(3, track_running_stats=False, affine=False).eval()
    assert list(bn.state_dict()) == []
    y = bn(gf.randn(8, 3)).numpy()
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-6)


def test_dropout_switches_with_train_and_eval():
    model = gf.nn.Sequential(gf.nn.Linear(4, 4), gf.nn.Dropout(0.5))
    x = gf.ones(64, 4)
    model.eval()
    assert np.array_equal(model(x).numpy(), model[0](x).numpy())
    model.train()
    assert (model(x).numpy() == 0).any()


def test_shape_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3\).*\(2, 4, 5, 5\)"):
        gf.nn.BatchNorm2d(3)(gf.randn(2, 4, 5, 5))
    with pytest.raises(ShapeError, match=r"input \(1, 3, 5, 5\) has 3 channels but weight \(4, 2, 3, 3\)"):
        gf.nn.functional.conv2d(gf.randn(1, 3, 5, 5), gf.randn(4, 2, 3, 3))
    with pytest.raises(ShapeError, match="does not fit input"):
        gf.nn.functional.conv2d(gf.randn(1, 2, 2, 2), gf.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match="at most half the kernel"):
        gf.nn.functional.max_pool2d(gf.randn(1, 1, 4, 4), 2, padding=2)
