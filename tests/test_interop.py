"""DLPack and ``__array__`` (issue 17): zero-copy both ways with NumPy and PyTorch CPU."""
import numpy as np
import pytest

import gradflow as gf


def test_numpy_asarray_shares_a_cpu_tensors_memory():
    t = gf.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)  # exported as its data
    a = np.asarray(t)
    assert a.dtype == np.float32 and np.shares_memory(a, t.data)
    a[0, 1] = -2.0
    assert t.tolist() == [[1.0, -2.0], [3.0, 4.0]]
    assert np.asarray(t, dtype=np.float64).dtype == np.float64  # a converted copy
    assert not np.shares_memory(np.array(t, copy=True), t.data)
    with pytest.raises(ValueError, match="needs a copy"):
        np.asarray(t, dtype=np.float64, copy=False)
    # NumPy's own operators still defer to gradflow's (ndarray * Tensor is a Tensor).
    assert isinstance(np.ones(2, np.float32) * gf.ones(2), gf.Tensor)


def test_numpy_dlpack_round_trip_is_zero_copy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = gf.from_dlpack(a)
    assert t.shape == (2, 3) and t.dtype == gf.float32 and np.shares_memory(t.data, a)
    a[1, 2] = 50.0  # written through NumPy, read through gradflow
    assert t.tolist()[1][2] == 50.0
    back = np.from_dlpack(t)
    t.data[0, 0] = -1.0  # written through gradflow, read through NumPy
    assert back[0, 0] == -1.0 and np.shares_memory(back, a)
    assert t.__dlpack_device__() == (1, 0)
    strided = np.arange(12.0).reshape(3, 4).T  # non-contiguous views keep their strides
    assert np.array_equal(gf.from_dlpack(strided).numpy(), strided)
    labels = gf.from_dlpack(np.array([3, 1], dtype=np.int64))
    assert labels.dtype == gf.int64 and not labels.requires_grad


class _LegacyExporter(np.ndarray):
    """An array whose __dlpack__ predates DLPack 1.0's keywords (as older array libraries do)."""

    def __dlpack__(self, stream=None):
        return np.asarray(self).__dlpack__(stream=stream)


def test_export_falls_back_to_the_legacy_keywords():
    legacy = gf.Tensor(np.arange(3.0, dtype=np.float32).view(_LegacyExporter))
    out = np.from_dlpack(legacy)  # NumPy asks with max_version=...; the legacy export answers
    assert out.tolist() == [0.0, 1.0, 2.0] and np.shares_memory(out, legacy.data)


def test_from_dlpack_refuses_what_it_cannot_hold():
    with pytest.raises(TypeError, match=r"needs an object with __dlpack__.*got list"):
        gf.from_dlpack([1.0, 2.0])
    with pytest.raises(gf.DTypeError, match="complex128 is not supported"):
        gf.from_dlpack(np.zeros(2, dtype=np.complex128))


def test_a_tensor_that_requires_grad_exports_its_data_and_still_trains():
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    view = np.from_dlpack(w)
    (w * w).sum().backward()
    assert np.shares_memory(view, w.data) and w.grad.tolist() == [2.0, 4.0]


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch (CPU) is needed for the PyTorch interop tests")


def test_torch_dlpack_round_trip_is_zero_copy(torch):
    t = gf.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    pt = torch.from_dlpack(t)
    assert pt.dtype == torch.float32 and not pt.requires_grad and pt.shape == (1, 3)
    pt[0, 0] = 10.0  # written through PyTorch, read through gradflow
    assert t.tolist() == [[10.0, 2.0, 3.0]]
    source = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    g = gf.from_dlpack(source)
    assert g.dtype == gf.float64 and g.shape == (2, 3)
    g.data[1, 1] = -4.0  # written through gradflow, read through PyTorch
    source[0, 2] = 7.0  # and the other way
    assert source[1, 1].item() == -4.0 and g.tolist()[0][2] == 7.0
    assert torch.from_dlpack(g).data_ptr() == source.data_ptr()
    # gradflow computes on PyTorch's data and PyTorch on gradflow's, with the same numbers.
    x = torch.randn(4, 3, dtype=torch.float64)
    np.testing.assert_allclose((gf.from_dlpack(x) @ g.T).numpy(), (x @ source.T).numpy(), rtol=1e-12)


def test_from_dlpack_refuses_bfloat16_with_a_gradflow_error(torch):
    with pytest.raises(gf.DTypeError, match="convert it first"):
        gf.from_dlpack(torch.ones(2, dtype=torch.bfloat16))


def test_jax_arrays_come_in_and_go_out():
    # JAX arrays are immutable, so this checks values both ways rather than writes (not run where
    # JAX is not installed, as in CI today).
    jnp = pytest.importorskip("jax.numpy", reason="JAX is not installed")
    x = jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3)
    t = gf.from_dlpack(x)
    assert t.dtype == gf.float32 and t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert np.asarray(jnp.from_dlpack(gf.ones(2, 2) * 3)).tolist() == [[3.0, 3.0], [3.0, 3.0]]


@pytest.mark.gpu
def test_cupy_and_torch_cuda_round_trips_are_zero_copy():
    import cupy

    t = gf.ones(2, 3, device="cuda", requires_grad=True)
    assert t.__dlpack_device__()[0] == 2
    c = cupy.from_dlpack(t)
    c[0, 0] = 9.0  # written through CuPy, read through gradflow
    assert t.tolist()[0][0] == 9.0
    back = gf.from_dlpack(cupy.arange(4, dtype=cupy.float32))
    assert back.device.type == "cuda" and back.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(gf.DeviceError, match=r"call \.cpu\(\) first"):
        np.asarray(t)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    pt = torch.from_dlpack(t)
    pt[1, 2] = -1.0
    assert t.tolist()[1][2] == -1.0 and pt.device.type == "cuda"
    source = torch.zeros(3, device="cuda")
    g = gf.from_dlpack(source)
    g.data[1] = 4.0
    assert source[1].item() == 4.0
