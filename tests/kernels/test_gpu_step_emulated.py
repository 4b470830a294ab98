"""The GPU step on the emulated CuPy: its launch budget, and the defects a real GPU would hit
(issue 15), each as a regression test. The emulation counts what a GPU would run (emulated_arrays:
every kernel, fill and cuBLAS call, every device-to-host copy), models device ids, and applies
cuBLAS's leading-dimension rule."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from benchmarks.gpu_step import count_step, describe_events
from gradflow.backends import cuda_kernels
from gradflow.errors import ShapeError
from test_gpu_op_table import check_autocast_step_matches_cpu


@pytest.fixture
def cuda(emulated_cuda):
    return emulated_cuda


# ---- the launch budget ----

@pytest.mark.parametrize("fused_output", [True, False], ids=["linear_cross_entropy", "textbook"])
def test_adam_step_fits_the_budget(cuda, fused_output):
    """At most 14 launches and no device-to-host copy per Adam step (21 and 3 before issue 15);
    the list is printed on failure, so a regression names the op that added a launch."""
    events = count_step(cuda, "adam", fused_output, batch=16)
    launches, copies = cuda.counts(events)
    listing = "\n".join(describe_events(events))
    assert copies == 0, listing
    assert launches <= (13 if fused_output else 14), listing
    assert sum(e.what.startswith("gradflow::adam_multi_tensor_kernel") for e in events) == 1


def test_sgd_step_fits_the_budget_too(cuda):
    events = count_step(cuda, "sgd", True, batch=16)
    launches, copies = cuda.counts(events)
    assert copies == 0 and launches <= 13, "\n".join(describe_events(events))


def test_the_emulation_counts_kernels_and_copies(cuda):
    cp = cuda.cupy
    x = cp.asarray(np.arange(6.0).reshape(2, 3))  # host to device: no launch
    start = len(cuda.events)
    y = cp.exp(x) + 1          # two kernels
    total = y.mean()           # one reduction kernel (NumPy divides inside: not counted again)
    x[0, 0] = 5.0              # a fill kernel
    _ = x.T, x[1], x.reshape(3, 2)  # views: nothing
    cp.asarray(np.ones(1))     # host to device: an asynchronous copy, no kernel...
    cp.asarray(np.array(1.0))  # ...but CuPy fills a 0-d array from the host with a kernel
    float(total)               # a copy
    assert [(e.kind, e.what) for e in cuda.events[start:]] == [
        ("launch", "exp"), ("launch", "add"), ("launch", "mean"), ("launch", "setitem"),
        ("launch", "fill"), ("copy", "float()")]


# ---- 1. empty batch ----

def test_gemm_refuses_a_zero_leading_dimension_like_cublas(cuda):
    a = cuda.cupy.empty((0, 4), np.float32)  # both C- and F-contiguous: CuPy passes ld = 0
    b = cuda.cupy.asarray(np.ones((4, 3), np.float32))
    with pytest.raises(RuntimeError, match="CUBLAS_STATUS_INVALID_VALUE"):
        cuda.gemm("N", "N", a, b, out=cuda.cupy.empty((0, 3), np.float32))


def test_an_empty_batch_trains(cuda):
    x = gf.tensor(np.zeros((0, 4), np.float32), device="cuda")
    w = gf.tensor(np.ones((3, 4), np.float32), device="cuda", requires_grad=True)
    b = gf.tensor(np.ones(3, np.float32), device="cuda", requires_grad=True)
    F.linear_act(x, w, b, "relu").sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((3, 4)))
    # A sum over an empty inner dimension: out = beta * out, no cuBLAS call.
    out = cuda.cupy.asarray(np.full((3, 2), 7.0, np.float32))
    empty = cuda.cupy.empty((3, 0), np.float32)
    cuda_kernels.gemm(empty, cuda.cupy.empty((0, 2), np.float32), out, beta=0.5)
    np.testing.assert_array_equal(out.get(), np.full((3, 2), 3.5))


# ---- 2. cuda:N ----

def test_cuda_index_is_honoured(cuda):
    x = gf.tensor(np.arange(4.0), device="cuda:1", requires_grad=True)
    assert x.device == "cuda:1" and x.data.device.id == 1
    assert gf.zeros(2, device="cuda:1").data.device.id == 1
    moved = x.to("cuda:0")
    assert moved.data.device.id == 0 and moved.data.data.ptr != x.data.data.ptr
    np.testing.assert_array_equal(moved.numpy(), x.numpy())
    (moved * moved).sum().backward()  # the copy's gradient goes back to cuda:1
    assert x.grad.data.device.id == 1
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.arange(4.0))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_training_step_runs_on_cuda_1(cuda, optimizer):
    """Every allocation and launch of a step on cuda:1 runs under cupy.cuda.Device(1): the
    emulation raises for an operand on another device than the current one."""
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.normal(size=(8, 5)).astype(np.float32), device="cuda:1")
    y = gf.tensor(rng.integers(0, 3, 8), device="cuda:1")
    w1, b1 = (gf.nn.Parameter(gf.tensor(a, device="cuda:1"))
              for a in (rng.normal(size=(6, 5)).astype(np.float32), np.zeros(6, np.float32)))
    w2, b2 = (gf.nn.Parameter(gf.tensor(a, device="cuda:1"))
              for a in (rng.normal(size=(3, 6)).astype(np.float32), np.zeros(3, np.float32)))
    params = [w1, b1, w2, b2]
    opt = gf.optim.Adam(params, lr=1e-2) if optimizer == "adam" else gf.optim.SGD(params, lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        loss = F.linear_cross_entropy(F.linear_act(x, w1, b1, "relu"), w2, b2, y)
        loss.backward()
        opt.step()
    assert all(p.data.device.id == 1 for p in params)
    assert all(a.device.id == 1 for s in opt.state.values() for a in s.values() if hasattr(a, "device"))
    assert np.isfinite(loss.item())


# ---- 3. labels checked on the device, read with the loss ----

@pytest.mark.parametrize("fused", [False, True])
def test_bad_labels_raise_when_the_loss_is_read(cuda, fused):
    logits = gf.tensor(np.zeros((4, 3), np.float32), device="cuda", requires_grad=True)
    labels = gf.tensor(np.array([0, 3, 1, -1]), device="cuda")
    start = len(cuda.events)
    if fused:
        w = gf.tensor(np.eye(3, dtype=np.float32), device="cuda")
        loss = F.linear_cross_entropy(logits, w, gf.zeros(3, device="cuda"), labels)
    else:
        loss = F.cross_entropy(logits, labels)
    loss.backward()
    assert cuda.counts(cuda.events[start:])[1] == 0  # no copy until the loss is read
    assert np.isnan(logits.grad.numpy()[[1, 3]]).all()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*2 of 4"):
        loss.item()


def test_good_labels_read_cleanly_and_per_row_losses_are_checked_too(cuda):
    logits = gf.tensor(np.zeros((2, 4), np.float32), device="cuda")
    assert F.cross_entropy(logits, gf.tensor([1, 2], device="cuda")).item() == pytest.approx(np.log(4))
    per_row = F.cross_entropy(logits, gf.tensor([1, 9], device="cuda"), reduction="none")
    with pytest.raises(ValueError, match="1 of 2"):
        per_row.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ignore_index_is_skipped_on_the_device_as_on_the_cpu(cuda, reduction):
    """PyTorch's padding convention on a device: a label equal to ignore_index adds nothing and
    leaves the mean's count, without a device-to-host copy (it was reported as out of range)."""
    rng = np.random.default_rng(3)
    host_logits = rng.normal(size=(6, 4))
    labels = np.array([1, -100, 3, 0, -100, 2])
    results = {}
    for device in ("cpu", "cuda"):
        logits = gf.tensor(host_logits, device=device, requires_grad=True)
        start = len(cuda.events)
        loss = F.cross_entropy(logits, gf.tensor(labels, device=device), reduction=reduction)
        (loss.sum() if reduction == "none" else loss).backward()
        if device == "cuda":
            assert cuda.counts(cuda.events[start:])[1] == 0
        results[device] = loss.numpy(), logits.grad.numpy()
    np.testing.assert_allclose(results["cuda"][0], results["cpu"][0], rtol=1e-12)
    np.testing.assert_allclose(results["cuda"][1], results["cpu"][1], rtol=1e-12, atol=1e-15)
    assert (results["cuda"][1][[1, 4]] == 0).all()


def test_every_label_ignored_gives_nan_and_a_class_can_be_ignored(cuda):
    logits = gf.tensor(np.zeros((2, 3), np.float32), device="cuda", requires_grad=True)
    assert np.isnan(F.cross_entropy(logits, gf.tensor([-100, -100], device="cuda")).item())
    # ignore_index inside [0, C): that class's rows are skipped, as in PyTorch.
    loss = F.cross_entropy(logits, gf.tensor([0, 2], device="cuda"), ignore_index=0)
    assert loss.item() == pytest.approx(np.log(3))
    loss.backward()
    np.testing.assert_allclose(logits.grad.numpy(), [[0, 0, 0], [1 / 3, 1 / 3, -2 / 3]], rtol=1e-6)


def test_the_kept_label_count_is_counted_by_the_memory_tracker(cuda):
    """The device loss keeps its logits (an input, not counted), its labels (an input) and the
    count of labels not ignored: 4 bytes for float32 logits, which the tracker must see."""
    logits = gf.tensor(np.zeros((5, 3), np.float32), device="cuda", requires_grad=True)
    labels = gf.tensor([0, -100, 2, 1, 1], device="cuda")
    with gf.memory.track() as tracker:
        loss = F.cross_entropy(logits, labels)
    assert tracker.retained_bytes == 4
    loss.backward()
    assert tracker.retained_bytes == 0


# ---- 4. one RawKernel per (kernel, dtype, activation, device) ----

def test_kernel_functions_are_built_once(cuda):
    x = cuda.cupy.asarray(np.linspace(-1, 1, 10).astype(np.float32))
    for _ in range(3):
        cuda_kernels.act_forward("relu", x)
        cuda_kernels.act_forward("tanh", x)
    assert cuda.get_function_calls == 2


# ---- 6. zero classes ----

def test_zero_classes_are_refused_before_the_kernel_reads_row_0(cuda):
    cp = cuda.cupy
    with pytest.raises(ShapeError, match="at least one column"):
        cuda_kernels.softmax_xent_forward(cp.empty((2, 0), np.float32), cp.asarray(np.zeros(2, np.int64)))
    empty = cuda_kernels.softmax_xent_forward(cp.empty((0, 0), np.float32), cp.asarray(np.zeros(0, np.int64)))
    assert empty.shape == (0,)


# ---- 7. float16 Adam ----

@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_float16_adam_follows_float32_adam(cuda, device):
    """With gradients of 1e-3 the half-precision second moment (1e-6 * 0.001) underflows to 0 and
    the step divides by eps; float32 masters and moments keep the float32 trajectory."""
    start = np.linspace(-1, 1, 12).astype(np.float16).astype(np.float32)  # exact in both
    runs = {}
    for dtype in ("float16", "float32"):
        p = gf.nn.Parameter(gf.tensor(start.astype(dtype), device=device))
        opt = gf.optim.Adam([p], lr=1e-3)
        for _ in range(10):
            opt.zero_grad()
            p.grad = gf.tensor(np.full(12, 1e-3, dtype), device=device)
            opt.step()
        runs[dtype] = (p, opt)
    half, half_opt = runs["float16"]
    state = half_opt.state[half]
    assert state["exp_avg_sq"].dtype == np.float32 and state["master_param"].dtype == np.float32
    np.testing.assert_allclose(gf.tensor(state["master_param"]).numpy(), runs["float32"][0].numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(half.numpy(), runs["float32"][0].numpy().astype(np.float16))


# ---- 9. nested device meters ----

def test_device_meters_nest(cuda):
    from gradflow.memory.allocator import DeviceMeter

    with DeviceMeter() as outer:
        a = cuda.cupy.empty(1000, np.float32)
        with DeviceMeter() as inner:
            b = cuda.cupy.empty(256, np.float32)
        del a, b
    assert inner.peak == 1024 and outer.peak == 4096 + 1024


# ---- mixed precision on the device ----

def test_autocast_step_on_the_device(cuda):
    check_autocast_step_matches_cpu()  # also run on a real GPU by test_gpu_op_table.py


def test_optimizer_state_loads_onto_the_parameters_device(cuda):
    p = gf.nn.Parameter(gf.tensor(np.ones(3, np.float16), device="cuda:1"))
    opt = gf.optim.Adam([p])
    p.grad = gf.tensor(np.full(3, 0.5, np.float16), device="cuda:1")
    opt.step()
    fresh = gf.optim.Adam([p])
    fresh.load_state_dict(opt.state_dict())
    state = fresh.state[p]
    assert all(state[k].device.id == 1 and state[k].dtype == np.float32
               for k in ("exp_avg", "exp_avg_sq", "master_param"))
