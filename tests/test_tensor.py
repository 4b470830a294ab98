"""Tensor creation, dtypes, devices and conversions."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import device as device_module


def test_creation_functions_and_default_dtype():
    assert gf.zeros(2, 3).shape == (2, 3) and gf.zeros(2, 3).dtype == gf.float32
    assert gf.ones((4,)).numpy().tolist() == [1.0] * 4
    assert gf.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    assert gf.empty(3).shape == (3,)
    assert gf.arange(5).dtype == gf.int64 and gf.arange(0.0, 1.0, 0.5).dtype == gf.float32
    x = gf.randn(3, 2, dtype="float64")
    assert x.dtype == gf.float64
    assert gf.zeros_like(x).dtype == gf.float64 and gf.ones_like(x).shape == (3, 2)
    assert gf.rand(100).numpy().min() >= 0 and gf.rand(100).numpy().max() < 1


def test_dtype_spellings_are_equivalent():
    for spec in (np.float64, "float64", gf.float64, np.dtype("float64")):
        assert gf.tensor([1.0], dtype=spec).dtype == np.float64
    with pytest.raises(gf.DTypeError, match="not a dtype|not supported"):
        gf.tensor([1.0], dtype="complex128")


def test_manual_seed_makes_random_tensors_repeat():
    gf.manual_seed(123)
    a = gf.randn(5).numpy()
    gf.manual_seed(123)
    assert np.array_equal(a, gf.randn(5).numpy())


def test_tensor_copies_numpy_input():
    source = np.zeros(3)
    t = gf.tensor(source)
    source[0] = 5
    assert t.numpy()[0] == 0


def test_properties_and_conversions():
    x = gf.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.is_leaf and x.grad_fn is None
    assert x.device == "cpu" and str(x.device) == "cpu"
    assert x.T.numpy().tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert x.sum().item() == 10.0
    y = x.to(gf.float64)
    assert y.dtype == gf.float64 and y.grad_fn is not None
    y.sum().backward()
    assert x.grad.dtype == gf.float32
    assert "requires_grad=True" in repr(x)
    assert x.cpu() is x


def test_item_on_many_elements_raises():
    with pytest.raises(gf.ShapeError, match=r"\(3,\)"):
        gf.ones(3).item()


def test_comparisons_return_tensors_without_grad():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == np.bool_ and not mask.requires_grad
    assert (x == 2.0).numpy().tolist() == [False, True, False]


def test_dim_and_keepdim_spellings():
    x = gf.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(dim=1, keepdim=True).shape == (2, 1)
    assert x.mean(axis=0).shape == (3,)
    assert gf.max(x, dim=1).numpy().tolist() == [2.0, 5.0]
    with pytest.raises(TypeError, match="dim="):
        x.sum(axis=0, dim=1)


def test_numpy_transpose_semantics():
    x = gf.ones(2, 3, 4)
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.permute(2, 0, 1).shape == (4, 2, 3)


def test_cuda_request_without_gpu_raises_a_clear_error(monkeypatch):
    monkeypatch.delenv("GRADFLOW_DEVICE", raising=False)
    if gf.cuda.is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(gf.CUDAUnavailableError, match="CuPy|CUDA|driver|device"):
        gf.tensor([1.0], device="cuda")
    with pytest.raises(gf.CUDAUnavailableError):
        gf.ones(2).to("cuda")


def test_gradflow_device_cpu_forces_cpu(monkeypatch):
    monkeypatch.setenv("GRADFLOW_DEVICE", "cpu")
    monkeypatch.setattr(device_module, "_auto_choice", None)
    assert not gf.cuda.is_available()
    assert gf.tensor([1.0], device="auto").device == "cpu"
    with pytest.raises(gf.CUDAUnavailableError, match="GRADFLOW_DEVICE=cpu"):
        gf.zeros(1, device="cuda")


def test_unknown_device_string():
    with pytest.raises(gf.DeviceError, match="unknown device 'tpu'"):
        gf.zeros(1, device="tpu")


def test_integer_operands_take_the_floating_dtype():
    # One rule (PyTorch's): an integer tensor meeting a float32 one gives float32, where NumPy 2
    # gives float64; the gradient of the float operand keeps its dtype on both backward paths.
    ints = gf.tensor(np.array([1, 2, 3], dtype=np.int64))
    for dtype in (gf.float32, gf.float64):
        x = gf.tensor([0.5, 1.5, 2.5], dtype=dtype, requires_grad=True)
        results = [x * ints, ints * x, x + ints, ints - x, x / ints, ints / x, x ** ints, gf.maximum(x, ints),
                   gf.where(ints > 1, x, ints), gf.concatenate([x, ints]), x @ ints]
        for y in results:
            assert y.dtype == dtype, y
        loss = sum(y.sum() for y in results)
        (g,) = gf.autograd.grad(loss, [x], create_graph=True)
        loss.backward()
        assert g.dtype == x.grad.dtype == dtype
        np.testing.assert_allclose(g.numpy(), x.grad.numpy(), rtol=1e-6)
    xs = np.array([0.5, 1.5, 2.5])
    np.testing.assert_allclose((gf.tensor(xs, requires_grad=True) * ints).numpy(), xs * [1, 2, 3])
    assert (ints * 1.5).dtype == gf.float32 and (ints * 1.5).tolist() == [1.5, 3.0, 4.5]
    assert (gf.tensor(np.array([1, 2], np.int8)) * gf.ones(2, dtype="float16")).dtype == gf.float16
    assert (ints / ints).dtype == np.float64  # integer ÷ integer follows NumPy (README)
    with pytest.raises(gf.DTypeError, match="float32, float64"):
        gf.ones(3) * gf.ones(3, dtype="float64")  # two floating dtypes still refuse to mix


def test_python_round_and_math_rounding():
    import math

    x = gf.tensor([[0.5, 1.5, -2.5], [2.675, -0.45, 3.0]], dtype="float64", requires_grad=True)
    r = round(x)
    assert isinstance(r, gf.Tensor) and r.shape == (2, 3)
    np.testing.assert_array_equal(r.numpy(), np.round(x.numpy()))  # half to even: 0, 2, -2
    np.testing.assert_array_equal(round(x, 1).numpy(), np.round(x.numpy(), 1))
    r.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))  # rounding's gradient is zero
    for value in (-1.7, -0.2, 0.0, 2.5, 3.9):
        s = gf.tensor(value)
        for f in (math.trunc, math.floor, math.ceil):
            assert f(s) == f(value) and type(f(s)) is int
    big = gf.tensor(2 ** 62 + 1, dtype="int64")   # exact, not through float
    assert math.floor(big) == math.ceil(big) == math.trunc(big) == 2 ** 62 + 1
    assert math.floor(gf.tensor([2.5])) == 2      # one element, any shape, as int() takes
    with pytest.raises(gf.ShapeError, match=r"\(2,\)"):
        math.trunc(gf.tensor([1.0, 2.0]))
