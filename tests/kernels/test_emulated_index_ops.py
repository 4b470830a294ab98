"""The integer-output rows of the op table (argsort, cummax indices, nonzero, one_hot, ...) on the
emulated CuPy: same answers as on the CPU, computed on device arrays (a host array leaking into a
device op raises there, as CuPy does). The float rows run in test_emulated_cuda_backend.py."""
import numpy as np
import pytest

import gradflow as gf
from op_table import INDEX_CASES


@pytest.mark.parametrize("case", INDEX_CASES, ids=str)
def test_index_row_on_emulated_cuda_matches_cpu(case, emulated_cuda):
    data = np.random.default_rng(0).uniform(-2, 2, case.shape)
    expected = case.fn(gf.tensor(data)).numpy()
    out = case.fn(gf.tensor(data, device="cuda"))
    assert out.device == "cuda"
    np.testing.assert_array_equal(out.numpy(), expected)


def test_scatter_and_gather_with_host_indices_on_emulated_cuda(emulated_cuda):
    index = np.array([[2, 0, 1, 2]])  # host data: the ops copy it to the device

    def f(x):
        return gf.scatter_reduce(x, 0, index, gf.gather(x, 0, index) * 2.0, "amax") + gf.scatter(x, 0, index, 0.0)

    results = []
    for device in ("cpu", "cuda"):
        x = gf.tensor(np.arange(12.0).reshape(3, 4), device=device, requires_grad=True)
        out = f(x)
        assert out.device == device
        out.sum().backward()
        results.append((out.numpy(), x.grad.numpy()))
    for cpu, cuda in zip(*results):
        np.testing.assert_array_equal(cuda, cpu)
