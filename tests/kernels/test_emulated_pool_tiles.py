"""Max-pool's tiling fast path (gradflow/ops/pool_tiles.py) on device "cuda" over the emulated
CuPy: forward values, return_indices and the input gradient equal the CPU's bit for bit, with
ties, signed zeros and NaNs in the input."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F


@pytest.fixture(autouse=True)
def cuda(emulated_cuda):
    return emulated_cuda


def test_tiled_max_pool_on_emulated_cuda_is_bit_identical_to_cpu():
    rng = np.random.default_rng(1)
    data = rng.integers(-2, 3, (3, 2, 6, 8)).astype(np.float32)
    data[rng.random(data.shape) < 0.2] = -0.0
    data[rng.random(data.shape) < 0.05] = np.nan
    g = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)

    def run(device):
        x = gf.tensor(data, device=device, requires_grad=True)
        out, indices = F.max_pool2d(x, 2, return_indices=True)
        (out * gf.tensor(g, device=device)).sum().backward()
        return out.numpy(), indices.numpy(), x.grad.numpy()

    for got, want in zip(run("cuda"), run("cpu")):
        np.testing.assert_array_equal(got.view(np.uint32) if got.dtype == np.float32 else got,
                                      want.view(np.uint32) if want.dtype == np.float32 else want)
