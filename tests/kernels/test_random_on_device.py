"""Samplers on device "cuda" (the emulated CuPy here; a real device where there is one, through the
same code): values are drawn on the host, so a seed gives the CPU's numbers, on the device."""
import numpy as np
import pytest

import gradflow as gf

SAMPLERS = {
    "randn": lambda g, device: gf.randn(2, 3, generator=g, device=device),
    "normal_tensor_mean": lambda g, device: gf.normal(gf.zeros(2, 3, device=device) + 1.0, 2.0, generator=g),
    "uniform": lambda g, device: gf.uniform(-1.0, 1.0, (2, 3), generator=g, device=device),
    "bernoulli": lambda g, device: gf.bernoulli(gf.full((2, 3), 0.5, device=device), generator=g),
    "rand_like": lambda g, device: gf.rand_like(gf.zeros(2, 3, device=device), generator=g),
    "normal_": lambda g, device: gf.zeros(2, 3, device=device).normal_(1.0, 2.0, generator=g),
    "uniform_": lambda g, device: gf.zeros(2, 3, device=device).uniform_(-1.0, 1.0, generator=g),
    "bernoulli_": lambda g, device: gf.zeros(2, 3, device=device).bernoulli_(0.5, generator=g),
    "bernoulli_tensor_p": lambda g, device: gf.zeros(2, 3, dtype="int64", device=device).bernoulli_(
        gf.tensor([0.2, 0.5, 0.9], device=device), generator=g),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_a_seed_gives_the_cpu_numbers_on_the_device(emulated_cuda, name):
    on_device = SAMPLERS[name](gf.Generator().manual_seed(4), "cuda")
    on_cpu = SAMPLERS[name](gf.Generator().manual_seed(4), "cpu")
    assert on_device.device == "cuda:0" and on_cpu.device == "cpu"
    assert type(on_device.data) is emulated_cuda.cupy.ndarray
    np.testing.assert_array_equal(on_device.numpy(), on_cpu.numpy())
