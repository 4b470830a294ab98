"""Elementwise ops the op table cannot hold: forward-only (bitwise, logical, predicates), integer and
unsigned dtypes, operators, aliases, and gradients at the values the table keeps away from (NaN,
inf, the jumps of rounding), compared with PyTorch where it is installed.
"""
import warnings

import numpy as np
import pytest

import gradflow as gf

INTS = np.array([[0, 1, 5, 12], [255, 7, 3, 128]])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int8", "int32", "int64"])
def test_bitwise_ops_and_operators_match_numpy(dtype):
    a = INTS.astype(dtype)
    b = np.array([3, 6, 1, 2], dtype=dtype)
    x, y = gf.tensor(a), gf.tensor(b)
    assert x.dtype == np.dtype(dtype)
    pairs = [(x & y, a & b), (x | y, a | b), (x ^ y, a ^ b), (~x, ~a), (x << y, a << b), (x >> y, a >> b),
             (x & 6, a & 6), (9 | y, 9 | b), (x % y, a % b), (x // y, a // b),
             (gf.bitwise_and(x, y), np.bitwise_and(a, b)), (x.bitwise_not(), np.invert(a)),
             (gf.bitwise_left_shift(x, 1), np.left_shift(a, 1)), (x.bitwise_right_shift(y), np.right_shift(a, b))]
    for got, want in pairs:
        assert got.dtype == want.dtype and not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), want)


def test_bitwise_on_bool_and_errors_on_floats():
    p, q = gf.tensor([True, False, True]), gf.tensor([True, True, False])
    np.testing.assert_array_equal((p & q).numpy(), [True, False, False])
    np.testing.assert_array_equal((p ^ q).numpy(), [False, True, True])
    np.testing.assert_array_equal((~p).numpy(), [False, True, False])
    with pytest.raises(gf.DTypeError, match="bitwise_or needs integer or boolean tensors, got float32"):
        gf.ones(2) | 1
    with pytest.raises(gf.DTypeError, match="left_shift needs integer tensors, got bool"):
        p << q
    with pytest.raises(TypeError):
        ~gf.ones(2)


def test_logical_ops_treat_nonzero_as_true():
    a, b = np.array([0.0, 2.0, -1.0, 0.0]), np.array([0, 0, 3, 1])
    x, y = gf.tensor(a), gf.tensor(b)
    for name in ("logical_and", "logical_or", "logical_xor"):
        np.testing.assert_array_equal(getattr(gf, name)(x, y).numpy(), getattr(np, name)(a, b))
        np.testing.assert_array_equal(getattr(x, name)(y).numpy(), getattr(np, name)(a, b))
    np.testing.assert_array_equal(gf.logical_not(x).numpy(), [True, False, False, True])


def test_predicates():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1.0 + 1e-9])
    x = gf.tensor(a)
    np.testing.assert_array_equal(gf.isinf(x).numpy(), np.isinf(a))
    np.testing.assert_array_equal(x.isposinf().numpy(), np.isposinf(a))
    np.testing.assert_array_equal(gf.isneginf(x).numpy(), np.isneginf(a))
    np.testing.assert_array_equal(x.isnan().numpy(), np.isnan(a))
    np.testing.assert_array_equal(gf.isfinite(x).numpy(), np.isfinite(a))
    np.testing.assert_array_equal(gf.isclose(x, 1.0).numpy(), [True, False, False, False, True])
    np.testing.assert_array_equal(x.isclose(x, equal_nan=True).numpy(), [True, True, True, True, True])
    np.testing.assert_array_equal(gf.isclose(x, 1.1, rtol=0, atol=0.2).numpy(), np.isclose(a, 1.1, rtol=0, atol=0.2))


def test_unsigned_dtypes_are_supported_by_name_and_factories():
    for name in ("uint8", "uint16", "uint32", "uint64"):
        assert getattr(gf, name) == np.dtype(name)
        assert gf.zeros(2, dtype=name).dtype == np.dtype(name)
        assert gf.tensor([1, 2], dtype=getattr(gf, name)).dtype == np.dtype(name)
        assert gf.tensor(np.arange(3, dtype=name)).dtype == np.dtype(name)
    with pytest.raises(gf.DTypeError):
        gf.tensor([1, 2], dtype="uint16", requires_grad=True)


def test_aliases_are_the_same_functions():
    assert gf.asin is gf.arcsin and gf.acos is gf.arccos and gf.atan is gf.arctan and gf.atan2 is gf.arctan2
    assert gf.asinh is gf.arcsinh and gf.acosh is gf.arccosh and gf.atanh is gf.arctanh
    assert gf.mod is gf.remainder and gf.fix is gf.trunc and gf.invert is gf.bitwise_not
    x = gf.tensor([0.25, -0.5], dtype="float64")
    for name in ("sin", "cos", "tan", "arcsin", "asin", "arctan", "sinh", "cosh", "arcsinh", "arctanh", "exp2",
                 "expm1", "log1p", "floor", "ceil", "round", "trunc", "nan_to_num", "reciprocal"):
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(gf, name)(x).numpy())


def test_round_decimals_and_half_to_even():
    a = np.array([0.5, 1.5, 2.5, -0.5, 1.2345, -2.675])
    np.testing.assert_array_equal(gf.round(gf.tensor(a)).numpy(), [0.0, 2.0, 2.0, -0.0, 1.0, -3.0])
    np.testing.assert_array_equal(gf.round(gf.tensor(a), decimals=2).numpy(), np.round(a, 2))
    x = gf.tensor(a, requires_grad=True)
    gf.round(x, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(6))


def test_rounding_gradients_are_zero_even_for_an_infinite_upstream():
    x = gf.tensor([0.4, -1.7], dtype="float64", requires_grad=True)
    for fn in (gf.floor, gf.ceil, gf.trunc, gf.round, lambda t: t // 0.3):
        x.grad = None
        fn(x).backward(gf.tensor([np.inf, 1.0], dtype="float64"))
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


def test_integer_remainder_and_floor_divide_follow_python():
    a, b = np.array([7, -7, 7, -7]), np.array([3, 3, -3, -3])
    x, y = gf.tensor(a), gf.tensor(b)
    np.testing.assert_array_equal((x % y).numpy(), [7 % 3, -7 % 3, 7 % -3, -7 % -3])
    np.testing.assert_array_equal((x // y).numpy(), [7 // 3, -7 // 3, 7 // -3, -7 // -3])
    np.testing.assert_array_equal(gf.fmod(x, y).numpy(), np.fmod(a, b))
    np.testing.assert_array_equal((10 % x).numpy(), 10 % a)
    np.testing.assert_array_equal((10 // y).numpy(), 10 // b)


def test_nan_to_num_forward_and_gradient():
    a = np.array([np.nan, np.inf, -np.inf, 2.0], dtype=np.float32)
    x = gf.tensor(a, requires_grad=True)
    out = gf.nan_to_num(x)
    np.testing.assert_array_equal(out.numpy(), np.nan_to_num(a))
    np.testing.assert_array_equal(gf.nan_to_num(x, nan=1.0, posinf=5.0, neginf=-5.0).numpy(), [1, 5, -5, 2])
    out.backward(gf.ones(4))
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 1.0])


torch = pytest.importorskip("torch")


def _torch_grads(fn, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*ts).sum().backward()
    return [t.grad.numpy() for t in ts]


def _gradflow_grads(fn, *arrays):
    xs = [gf.tensor(a, requires_grad=True) for a in arrays]
    fn(*xs).sum().backward()
    return [x.grad.numpy() for x in xs]


@pytest.mark.parametrize("name", ["copysign", "fmod", "remainder", "arctan2", "hypot", "logaddexp", "lerp"])
def test_binary_gradients_match_pytorch_including_signs_and_zeros(name):
    a = np.array([2.5, -2.5, 0.0, -0.7, 3.0, -3.1])
    b = np.array([-2.0, 2.0, -1.0, 1.5, 0.0, -0.4])
    if name == "lerp":
        g = _gradflow_grads(lambda x, y: gf.lerp(x, y, 0.3), a, b)
        t = _torch_grads(lambda x, y: torch.lerp(x, y, 0.3), a, b)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            g = _gradflow_grads(getattr(gf, name), a, b)
        torch_name = {"arctan2": "atan2"}.get(name, name)
        t = _torch_grads(getattr(torch, torch_name), a, b)
    if name in ("fmod", "remainder"):
        keep = b != 0  # the gradient at a zero divisor is whatever x / 0 rounds to; PyTorch's too
        g, t = [v[keep] for v in g], [v[keep] for v in t]
    for got, want in zip(g, t):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "atanh",
                                  "exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "reciprocal", "square",
                                  "floor", "ceil", "round", "trunc"])
def test_unary_forward_and_gradient_match_pytorch(name):
    a = np.array([0.1, 0.45, 0.8, 0.3])
    fn = getattr(gf, name)
    out = fn(gf.tensor(a)).numpy()
    np.testing.assert_allclose(out, getattr(torch, name)(torch.tensor(a)).numpy(), rtol=1e-13)
    np.testing.assert_allclose(_gradflow_grads(fn, a)[0], _torch_grads(getattr(torch, name), a)[0], rtol=1e-12)
