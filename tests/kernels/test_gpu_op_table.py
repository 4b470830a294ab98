"""The whole op table on the CuPy backend against the NumPy backend, and `gradflow train --device cuda`.

Every row of tests/op_table.py runs forward and backward on ``device="cuda"`` with the same float64
inputs and upstream gradient as on the CPU; results must agree to a few ulp (cuBLAS and CUDA's libm
are not bit-identical to OpenBLAS and glibc). Skipped, with the reason, where no GPU is usable.
Written and checked for collection without a GPU: the device runs have not been seen to pass.
Without one, test_emulated_cuda_backend.py runs the same checks (the ``check_*`` functions) on
an emulated CuPy.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import backends
from op_table import LABELS, OP_CASES, sample_inputs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not backends.is_available(),
                       reason=f"no usable CUDA device: {backends.cuda_probe.why_cuda_unusable()}"),
]
TOLERANCE = dict(rtol=1e-9, atol=1e-11)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _labels_on(device):
    return gf.tensor(LABELS, device=device)


# Rows whose function builds a CPU tensor inside (the class labels): the same function with the
# labels made on the device of the logits, since mixing devices in one op is an error by design.
ON_DEVICE = {
    "cross_entropy": lambda x: F.cross_entropy(x, _labels_on(x.device)),
    "cross_entropy_sum": lambda x: F.cross_entropy(x, _labels_on(x.device), reduction="sum"),
    "cross_entropy_none": lambda x: F.cross_entropy(x, _labels_on(x.device), reduction="none"),
    "linear_cross_entropy": lambda x, w, b: F.linear_cross_entropy(x, w, b, _labels_on(x.device)),
    "linear_cross_entropy_none":
        lambda x, w, b: F.linear_cross_entropy(x, w, b, _labels_on(x.device), reduction="none"),
}


def _run(case, arrays, upstream, device):
    fn = ON_DEVICE.get(case.name, case.fn)
    xs = [gf.tensor(a, device=device, requires_grad=True) for a in arrays]
    out = fn(*xs)
    assert out.device == device
    out.backward(gf.tensor(upstream, device=device))
    return out.numpy(), [None if x.grad is None else x.grad.numpy() for x in xs]


# ---- the checks, plain functions: test_emulated_cuda_backend.py runs them on the emulated device ----

def check_op_table_row(case):
    """Forward and every input's gradient on cuda equal the CPU's."""
    rng = np.random.default_rng(0)
    arrays = sample_inputs(case, rng)
    # The upstream gradient needs the output's shape: take it from the CPU forward.
    shape = np.shape(ON_DEVICE.get(case.name, case.fn)(*[gf.tensor(a) for a in arrays]).numpy())
    upstream = rng.standard_normal(shape)
    out_cpu, grads_cpu = _run(case, arrays, upstream, "cpu")
    out_gpu, grads_gpu = _run(case, arrays, upstream, "cuda")
    np.testing.assert_allclose(out_gpu, out_cpu, **TOLERANCE, err_msg=f"{case.name} forward")
    for i, (got, want) in enumerate(zip(grads_gpu, grads_cpu)):
        assert (got is None) == (want is None), f"{case.name}: gradient {i} present on one device only"
        if want is not None:
            np.testing.assert_allclose(got, want, **TOLERANCE, err_msg=f"{case.name} gradient {i}")


def check_linear_weight_grad_accumulates():
    """The cuBLAS beta = 1 path: from the third backward the .grad buffer stays where it is."""
    rng = np.random.default_rng(1)
    x = gf.tensor(rng.standard_normal((16, 32)), device="cuda")
    w = gf.tensor(rng.standard_normal((24, 32)), device="cuda", requires_grad=True)
    pointers = []
    for _ in range(4):
        F.linear(x, w).sum().backward()
        pointers.append(w._grad.data.data.ptr)  # ._grad: reading .grad would hand the buffer out
    assert pointers[2] == pointers[3] == pointers[1]
    want = 4 * np.ones((16, 24)).T @ x.numpy()
    np.testing.assert_allclose(w.grad.numpy(), want, **TOLERANCE)


def check_dispatch_counts():
    x = gf.tensor(np.ones((8, 3), np.float32), device="cuda")
    with gf.profiler.count() as c:
        gf.relu(x * 2.0)
    assert c.rows[("kernel", "act_forward")].calls == 1
    assert c.rows[("op", "mul")].bytes_written == 8 * 3 * 4


def check_autocast_step_matches_cpu():
    """Under autocast the products run as float16 GEMMs on the device (cuBLAS accumulates in
    float32), the loss in float32, and float32 parameters get float32 gradients matching the CPU's."""
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s).astype(np.float32) for s in ((6, 5), (4, 5), (4,), (3, 4), (3,))]
    results = {}
    for device in ("cpu", "cuda"):
        x, w1, b1, w2, b2 = (gf.tensor(a, device=device, requires_grad=i > 0)
                             for i, a in enumerate(arrays))
        with gf.autocast():
            h = F.linear_act(x, w1, b1, "relu")
            loss = F.linear_cross_entropy(h, w2, b2, gf.tensor([0, 1, 2, 0, 1, 2], device=device))
        assert h.dtype == np.float16 and loss.dtype == np.float32
        loss.backward()
        results[device] = (loss.item(), w1.grad.numpy(), b2.grad.numpy())
    assert results["cuda"][1].dtype == np.float32
    for got, want in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-3)


# ---- on a real device ----

@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_op_table_row_on_cuda_matches_numpy(case):
    check_op_table_row(case)


def test_linear_weight_grad_accumulates_on_cuda():
    check_linear_weight_grad_accumulates()


def test_dispatch_counts_cuda_kernels():
    check_dispatch_counts()


def test_autocast_step_on_cuda():
    check_autocast_step_matches_cpu()


def test_train_cli_on_cuda():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GRADFLOW_DEVICE", None)
    result = subprocess.run([sys.executable, "-m", "gradflow", "train", "--device", "cuda", "--epochs", "2",
                             "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "on cuda" in result.stdout
    assert "final test accuracy" in result.stdout
