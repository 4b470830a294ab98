"""The dispatch counter: launches, bytes and flops per op and kernel, and nothing when off."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
import gradflow.optim
from gradflow.backends import NUMPY, dispatch, numpy_kernels

N, IN, OUT = 8, 3, 4
F64 = 8  # bytes


def _layer(requires_x=False):
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((N, IN)), requires_grad=requires_x)
    w = gf.tensor(rng.standard_normal((OUT, IN)), requires_grad=True)
    b = gf.tensor(rng.standard_normal(OUT), requires_grad=True)
    return x, w, b


def test_linear_forward_and_backward_counts():
    x, w, b = _layer(requires_x=True)
    u = gf.tensor(np.ones((N, OUT)))
    with gf.profiler.count() as c:
        F.linear(x, w, b).backward(u)
    linear = c.rows[("op", "linear")]
    assert (linear.calls, linear.bytes_read, linear.bytes_written) == (
        1, (N * IN + OUT * IN + OUT) * F64, N * OUT * F64)
    assert linear.flops == 2 * N * OUT * IN + N * OUT
    # Backward: gx = g W and gW = gᵀx by gemm, gb = Σ g by the sum primitive; nothing else.
    gemm = c.rows[("kernel", "gemm")]
    assert gemm.calls == 2
    assert gemm.flops == 2 * (2 * N * OUT * IN)
    assert gemm.bytes_read == (N * OUT + OUT * IN) * F64 + (N * OUT + N * IN) * F64  # g, W; g, x
    assert gemm.bytes_written == (N * IN + OUT * IN) * F64
    total = c.rows[("op", "sum")]
    assert (total.calls, total.bytes_read, total.bytes_written, total.flops) == (1, N * OUT * F64, OUT * F64, N * OUT)
    assert set(c.rows) == {("op", "linear"), ("op", "sum"), ("kernel", "gemm")}
    assert c.total("op").calls == 2 and c.total("kernel").calls == 2


def test_matmul_declares_its_flops():
    a, b = gf.ones(2, 5, 3), gf.ones(3, 7)
    with gf.profiler.count() as c:
        a @ b
    assert c.rows[("op", "matmul")].flops == 2 * (2 * 5 * 7) * 3


def test_nothing_is_counted_or_wrapped_when_off():
    assert dispatch.active is None
    assert NUMPY.kernels is numpy_kernels
    with gf.profiler.count() as c:
        pass
    x, w, b = _layer()
    F.relu(F.linear(x, w, b)).sum().backward()
    assert c.rows == {}
    assert dispatch.active is None and NUMPY.kernels is numpy_kernels


def test_the_table_is_restored_after_an_error():
    with pytest.raises(ZeroDivisionError):
        with gf.profiler.count():
            assert isinstance(NUMPY.kernels, dispatch.CountingKernels)
            1 / 0
    assert dispatch.active is None and NUMPY.kernels is numpy_kernels


def test_kernel_calls_of_activations_loss_and_optimizers():
    x, w, b = _layer()
    labels = gf.tensor(np.arange(N) % OUT)
    sgd = gradflow.optim.SGD([w], lr=0.1, momentum=0.9)
    adam = gradflow.optim.Adam([b])
    with gf.profiler.count() as c:
        loss = F.cross_entropy(F.tanh(F.linear(x, w, b)), labels)
        loss.backward()
        sgd.step()
        adam.step()
    rows = {name: row for (kind, name), row in c.rows.items() if kind == "kernel"}
    assert {name: row.calls for name, row in rows.items()} == {
        "act_forward": 1, "act_backward": 1, "softmax_xent_forward": 1, "softmax_xent_backward": 1,
        "gemm": 1, "sgd_update_multi": 1, "adam_update_multi": 1}
    assert rows["act_forward"].bytes_read == rows["act_forward"].bytes_written == N * OUT * F64
    assert rows["act_backward"].bytes_read == 2 * N * OUT * F64
    # Cross-entropy reads the logits and the int64 labels once.
    assert rows["softmax_xent_forward"].bytes_read == (N * OUT + N) * F64
    # SGD with momentum reads param, grad and buffer and writes param and buffer.
    assert rows["sgd_update_multi"].bytes_read == 3 * OUT * IN * F64
    assert rows["sgd_update_multi"].bytes_written == 2 * OUT * IN * F64
    assert rows["adam_update_multi"].bytes_written == 3 * OUT * F64
    assert "act_forward" in c.table() and "(total)" in c.table()


def test_counters_nest_and_report_as_dict():
    with gf.profiler.count() as outer:
        gf.ones(3) * 2.0
        with gf.profiler.count() as inner:
            gf.ones(3) + 1.0
    assert outer.rows[("op", "mul")].calls == 1 and outer.rows[("op", "add")].calls == 1
    assert ("op", "mul") not in inner.rows and inner.rows[("op", "add")].calls == 1
    assert outer.as_dict()["op:add"] == {"calls": 1, "bytes_read": 3 * 4 + 4, "bytes_written": 3 * 4, "flops": 3}
