"""Regression tests for edge cases where gradflow once differed from PyTorch/NumPy (issue 13, "Fix").

Each expectation is PyTorch's (gradients, 0-d axes) or NumPy's (empty reductions) documented
behaviour, written out here as the closed form it follows.
"""
import warnings

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck


def _f64(values, requires_grad=False):
    return gf.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ----- pow ------------------------------------------------------------------------------------
def test_pow_zero_exponent_has_zero_gradient_at_zero():
    # d/dx x**0 = 0 everywhere, x = 0 included (ReLU outputs hold exact zeros).
    x = _f64([0.0, 0.0, 1.5], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    y = _f64([0.0, 2.0, 0.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        (_f64([0.0, 0.0, 3.0]) ** y).sum().backward()
    # d/dy 0**0 and 0**2: 0; d/dy 3**0 = log 3.
    np.testing.assert_allclose(y.grad.numpy(), [0.0, 0.0, np.log(3.0)])


def test_pow_exponent_gradient_edge_values():
    base = _f64([-2.0, -2.0, 0.0, 0.0, 0.0, 2.0, -1.0])
    y = _f64([1.5, 2.0, -1.0, 2.0, 0.5, 1.0, 0.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        (base ** y).sum().backward()
    # negative base: NaN (log of a negative number); 0**y: -inf for y < 0, 0 for y > 0.
    np.testing.assert_array_equal(y.grad.numpy(), [np.nan, np.nan, -np.inf, 0.0, 0.0, 2 * np.log(2.0), np.nan])


def test_pow_base_gradient_edge_values():
    x = _f64([0.0, 0.0, -2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        (x ** _f64([0.5, -1.0, 2.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [np.inf, -np.inf, -4.0])


def test_pow_edge_rules_agree_in_forward_mode_and_second_order():
    x = _f64([0.0, 1.5], requires_grad=True)
    _, tangent = gf.func.jvp(lambda x: x ** 0, (x.detach(),), (_f64([1.0, 1.0]),))
    np.testing.assert_array_equal(tangent.numpy(), [0.0, 0.0])
    (g,) = gf.autograd.grad((x ** 2).sum(), [x], create_graph=True)
    (gg,) = gf.autograd.grad(g.sum(), [x])
    np.testing.assert_array_equal(gg.numpy(), [2.0, 2.0])
    assert gradcheck(lambda b, e: b ** e, [_f64([0.5, 1.5], True), _f64([0.0, 2.5], True)])


# ----- 0-d tensors and axes -------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("reduce, value, grad", [
    (lambda s, a: s.sum(a), 2.5, 1.0),
    (lambda s, a: s.mean(a), 2.5, 1.0),
    (lambda s, a: s.max(a), 2.5, 1.0),
    (lambda s, a: gf.min(s, dim=a, keepdim=True), 2.5, 1.0),
    (lambda s, a: F.softmax(s, a), 1.0, 0.0),
    (lambda s, a: F.log_softmax(s, dim=a), 0.0, 0.0),
], ids=["sum", "mean", "max", "min_keepdim", "softmax", "log_softmax"])
def test_reductions_accept_axis_0_and_minus_1_on_0d(reduce, value, grad, axis):
    s = _f64(2.5, requires_grad=True)
    out = reduce(s, axis)
    assert out.shape == ()
    assert out.item() == value
    out.backward()
    assert s.grad.item() == grad


@pytest.mark.parametrize("axis", [0, -1])
def test_index_reductions_accept_axis_0_and_minus_1_on_0d(axis):
    s = _f64(2.5)
    assert gf.argmax(s, axis).item() == 0 and s.argmin(dim=axis).item() == 0
    assert gf.any(s, axis).item() and s.all(axis).item()
    with pytest.raises(gf.AxisError):
        s.argmax(1)


@pytest.mark.parametrize("axis", [0, -1])
def test_squeeze_0d_is_the_identity(axis):
    s = _f64(3.0)
    assert gf.squeeze(s, axis).shape == ()
    assert s.squeeze(dim=axis).item() == 3.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_of_a_0d_tensor(dtype):
    # The NumPy expit once returned a scalar for 0-d input and then failed writing into it.
    for value in (-3.0, 0.0, 2.0):
        x = gf.tensor(value, dtype=dtype, requires_grad=True)
        y = gf.sigmoid(x)
        y.backward()
        s = 1 / (1 + np.exp(-value))
        assert y.shape == () and y.dtype == np.dtype(dtype)
        np.testing.assert_allclose(y.item(), s, rtol=1e-6)
        np.testing.assert_allclose(x.grad.item(), s * (1 - s), rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda t: t.squeeze(50), lambda t: t.squeeze(-4), lambda t: gf.permute(t, (0, 5, 1)),
    lambda t: t.transpose(0, 1, 3), lambda t: t.flatten(4), lambda t: t.flatten(0, -5),
    lambda t: t.unsqueeze(5), lambda t: t.sum(3), lambda t: F.softmax(t, 3), lambda t: gf.swapaxes(t, 0, 3),
    lambda t: gf.squeeze(gf.tensor(1.0), 1),
], ids=["squeeze", "squeeze_negative", "permute", "transpose", "flatten_start", "flatten_end", "unsqueeze",
        "sum", "softmax", "swapaxes", "squeeze_0d"])
def test_out_of_range_axes_raise(call):
    t = gf.ones(2, 1, 3)
    with pytest.raises(gf.AxisError, match=r"out of range for a tensor of shape"):
        call(t)


def test_axis_errors_are_index_and_value_errors():
    # AxisError is NumPy's AxisError: both ``except IndexError`` (PyTorch) and ``except ValueError`` work.
    with pytest.raises(IndexError):
        gf.ones(2).sum(1)
    with pytest.raises(ValueError):
        gf.ones(2).squeeze(3)
    with pytest.raises(np.exceptions.AxisError):
        gf.ones(2).mean(-2)
    assert issubclass(gf.AxisError, gf.ShapeError)


def test_errors_subclass_the_builtins_they_stand_for():
    assert issubclass(gf.ShapeError, ValueError)
    assert issubclass(gf.DTypeError, TypeError)
    assert issubclass(gf.DeviceError, RuntimeError)
    assert issubclass(gf.BackwardError, RuntimeError)
    with pytest.raises(ValueError):
        gf.ones(2, 3).reshape(4)


# ----- empty reductions and ddof follow NumPy ---------------------------------------------------
@pytest.mark.parametrize("name, kwargs, shape, axis", [
    ("mean", {}, (0, 3), 0), ("mean", {}, (0,), None), ("var", {}, (0, 3), 0), ("std", {}, (2, 0), 1),
    ("var", {"ddof": 3}, (3,), None), ("var", {"ddof": 5}, (2, 3), 1), ("std", {"ddof": 2}, (2,), 0),
    ("var", {"ddof": 1}, (1, 4), 0),
])
def test_empty_and_overcorrected_reductions_follow_numpy(name, kwargs, shape, axis):
    data = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = getattr(np, name)(data, axis=axis, **kwargs)
    with pytest.warns(RuntimeWarning):
        got = getattr(gf, name)(_f64(data), axis=axis, **kwargs)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_arange_with_an_absurd_length_fails_before_allocating():
    with pytest.raises(gf.ShapeError, match=r"10000000000000 elements .* GiB"):
        gf.arange(0, 1e13)
    with pytest.raises(ValueError, match="step must be nonzero"):
        gf.arange(0, 3, 0)
    np.testing.assert_array_equal(gf.arange(5, 0, -2).numpy(), [5, 3, 1])
    assert gf.arange(3, 1).shape == (0,)
