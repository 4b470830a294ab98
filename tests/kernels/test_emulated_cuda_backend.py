"""The CuPy backend, whole, on the emulated CuPy: test_gpu_op_table.py's checks and a short
training run on ``device="cuda"`` without a GPU.

What this proves: ``gradflow.backends.cupy_backend()`` builds a working Backend from ``cupy``,
``cupyx`` and ``cuda_kernels``; every op-table row, forward and gradients, gives the CPU's
numbers on "cuda" with the device's arrays dispatched by their type (a host array that leaks
into a device op fails, as CuPy refuses it); the kernel table's plumbing holds up under real
graphs (the fused linear + activation rows, cross-entropy, in-place gradient accumulation, the
optimizers' update kernels); and the CUDA sources in kernels/ are the code that runs, compiled
for the host by g++ (emulated_cupy.py).

What it cannot prove: anything CuPy itself does differently from NumPy (dtype promotion,
library functions, error types), cuBLAS (the emulated gemm is NumPy's matmul), the device's
memory behaviour (pool, asynchronous frees, out-of-memory; device memory here is host memory,
and the memory tracker sees it as CPU memory), CUDA's floating-point rounding, and timing.
Code that treats any ``np.ndarray`` instance as host data is caught only where it then calls
``np.asarray``/``np.array`` (the emulation makes those raise as CuPy does): an emulated device
array is an ``np.ndarray`` (see the Note below). test_gpu_op_table.py runs the same checks on a
real device where there is one.
"""
import sys

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import backends
from gradflow.errors import DeviceError
from emulated_arrays import EmulatedArray
from op_table import OP_CASES
from training_steps import train_steps
from test_gpu_op_table import (check_dispatch_counts, check_linear_weight_grad_accumulates,
                               check_op_table_row)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """After each test here, emulated_cuda has put back what it changed: later tests in the
    session see the real machine. Set up before ``cuda``, so it checks after that is undone."""
    from gradflow.backends import cuda_probe

    yield
    assert backends._cupy_backend is None
    assert list(backends._by_array_type) == [np.ndarray]
    assert cuda_probe.why_cuda_unusable.cache_info().currsize == 0
    assert getattr(sys.modules.get("cupy"), "ndarray", None) is not EmulatedArray


@pytest.fixture(autouse=True)
def cuda(nothing_left_behind, emulated_cuda):
    return emulated_cuda


def test_a_cupy_array_made_before_any_cuda_tensor_becomes_one(cuda):
    raw = cuda.cupy.asarray(np.arange(3.0))
    assert backends._cupy_backend is None          # gradflow has not seen CUDA yet
    x = gf.tensor(raw, requires_grad=True)
    assert x.device == "cuda:0" and type(x.data) is cuda.cupy.ndarray
    assert x.data.data.ptr != raw.data.ptr         # a new leaf, never the caller's memory
    assert gf.tensor(raw, device="cpu").tolist() == [0.0, 1.0, 2.0]
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data.get(), [0.0, 2.0, 4.0])


def test_the_backend_is_built_over_the_emulated_cupy(cuda):
    x = gf.tensor(np.ones(3), device="cuda")
    backend = backends.of_array(x.data)
    assert backend is backends.cupy_backend() and backend.xp is cuda.cupy
    assert type(x.data) is cuda.cupy.ndarray and x.device == "cuda:0"
    # cuda_probe asked the emulated runtime; 'auto' picks the device (and is forgotten after).
    assert gf.cuda.is_available() and gf.cuda.why_cuda_unusable() is None
    assert backends.resolve("auto") == "cuda:0"


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_op_table_row_on_emulated_cuda_matches_numpy(case):
    check_op_table_row(case)


def test_linear_weight_grad_accumulates_on_emulated_cuda():
    check_linear_weight_grad_accumulates()


def test_dispatch_counts_emulated_cuda_kernels():
    check_dispatch_counts()


# The operand check tells device arrays by their exact type, so an ndarray subclass (the emulated
# device array) is not mistaken for host data: cuda + cpu raises here as it does with CuPy.
def test_mixing_devices_in_one_op_raises():
    on_cuda, on_cpu = gf.tensor(np.ones(3), device="cuda"), gf.tensor(np.ones(3))
    with pytest.raises(DeviceError, match="cuda.*cpu|cpu.*cuda"):
        on_cuda + on_cpu
    with pytest.raises(DeviceError):
        F.linear(on_cpu.reshape(1, 3), gf.tensor(np.ones((2, 3)), device="cuda"))


# A bare device array operand used to go through np.asarray (constant_like -> _host_array), which
# CuPy refuses: it stays on the device now, and meeting a tensor elsewhere is a device error.
def test_a_bare_device_array_operand_stays_on_the_device():
    raw = sys.modules["cupy"].asarray(np.array([1.0, -2.0, 3.0]))
    x = gf.tensor(np.array([0.5, 1.5, 2.5]), device="cuda", requires_grad=True)
    y = x * raw + raw
    assert y.device == "cuda:0" and type(y.data) is EmulatedArray
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data.get(), [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(gf.isclose(raw, x).numpy(), [False, False, False])
    np.testing.assert_array_equal((x.detach() > raw).numpy(), [False, True, False])
    with pytest.raises(DeviceError, match="cuda.*cpu|cpu.*cuda"):
        gf.tensor(np.ones(3)) * raw


# Found by this emulation: apply used to convert every op's result to the array type of the op's
# input, which for to_device is the source device (cpu -> cuda gave the host array back, and on
# CuPy np.asarray(cupy_array) raises; cuda -> cpu copied the result back to the device).
def test_to_cuda_and_back_round_trips_values_and_gradients():
    x = gf.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    on_cuda = x.to("cuda")
    assert on_cuda.device == "cuda" and type(on_cuda.data) is not np.ndarray
    (on_cuda * 3.0).cpu().sum().backward()
    assert type(x.grad.data) is np.ndarray
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 3.0))


def _train(device, optimizer, steps=4):
    """A few steps of an MLP from the same initial weights on random data: the losses and the
    final parameters, moved back to the host with Module.cpu()."""
    rng = np.random.default_rng(0)
    inputs, labels = rng.standard_normal((32, 64)), rng.integers(0, 10, 32)
    gf.manual_seed(0)
    model = gf.nn.MLP([64, 32, 10], dtype="float64").to(device)
    make = {"sgd": lambda p: gf.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4),
            "adam": lambda p: gf.optim.Adam(p, lr=1e-2, weight_decay=1e-4)}[optimizer]
    opt = make(model.parameters())
    x, y = gf.tensor(inputs, device=device), gf.tensor(labels, device=device)
    losses = train_steps(model, opt, x, y, steps)
    assert all(p.device == device for p in model.parameters())
    model.cpu()
    return losses, [p.data for p in model.parameters()]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mlp_training_on_emulated_cuda_matches_cpu(optimizer):
    """sgd_update/adam_update and the fused linear_relu kernels through the CUDA table, the
    model moved with .to("cuda") and back with .cpu(): the same losses and weights as on the CPU."""
    with gf.profiler.count() as counts:
        losses, weights = _train("cuda", optimizer)
    # One multi-tensor launch per step for the whole group.
    assert counts.rows[("kernel", f"{optimizer}_update_multi")].calls == 4
    assert counts.rows[("kernel", "bias_act_forward")].calls == 4  # linear_relu: one hidden layer
    want_losses, want_weights = _train("cpu", optimizer)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    assert losses[-1] < losses[0]
    for got, want in zip(weights, want_weights):
        assert type(got) is np.ndarray
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_train_cli_on_emulated_cuda(capsys):
    """test_gpu_op_table's CLI run, in this process (a subprocess would import the real CuPy)."""
    from gradflow.cli import main

    assert main(["train", "--device", "cuda", "--epochs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "on cuda" in out
    accuracy = float(out.split("final test accuracy:")[1].split()[0])
    assert accuracy > 0.5, out



def _train_cnn(device, steps=3):
    """The CNN (conv, BatchNorm, ReLU, max-pool, Linear) trained a few steps with Adam: losses,
    parameters and BatchNorm's running statistics, back on the host."""
    from gradflow.models import build

    rng = np.random.default_rng(1)
    inputs, labels = rng.standard_normal((16, 64)), rng.integers(0, 10, 16)
    gf.manual_seed(0)
    model = build("cnn", dtype="float64").to(device)
    opt = gf.optim.Adam(model.parameters(), lr=1e-2)
    x, y = gf.tensor(inputs, device=device), gf.tensor(labels, device=device)
    losses = train_steps(model, opt, x, y, steps)
    model.eval()
    with gf.no_grad():
        evaluated = model(x).cpu().numpy()
    assert all(t.device == device for t in model.state_dict().values())
    model.cpu()
    return losses, {k: v.numpy() for k, v in model.state_dict().items()}, evaluated


def test_cnn_training_on_emulated_cuda_matches_cpu():
    """conv2d (im2col over cupy's as_strided), BatchNorm (with its buffers moved by .to) and
    max-pool forward and backward on the CuPy backend give the CPU's losses, weights and
    running statistics, and eval mode the same outputs."""
    losses, state, evaluated = _train_cnn("cuda")
    want_losses, want_state, want_evaluated = _train_cnn("cpu")
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    assert list(state) == list(want_state)
    for name in state:
        assert type(state[name]) is np.ndarray
        np.testing.assert_allclose(state[name], want_state[name], rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(evaluated, want_evaluated, rtol=1e-9, atol=1e-12)
