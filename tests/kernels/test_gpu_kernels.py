"""The CUDA kernel table on a real device against the NumPy twins (run with -m gpu on a GPU).

Device libm functions are within 2 ulp and nvcc contracts a*b + c into FMAs, so the bounds are
a little wider than the host tests' (see test_host_kernels.py for how they are built).
"""
import numpy as np
import pytest

from gradflow import backends
from gradflow.backends import numpy_kernels as twin  # the step's twins included (numpy_twins)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not backends.is_available(),
                       reason=f"no usable CUDA device: {backends.cuda_probe.why_cuda_unusable()}"),
]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cp():
    return backends.cupy_backend().xp


@pytest.fixture(scope="module")
def table():
    return backends.cupy_backend().kernels


def close(got, want, dtype):
    np.testing.assert_allclose(got.get() if hasattr(got, "get") else got, want,
                               equal_nan=True, **TOLERANCE[dtype])


def test_backend_uses_the_cuda_table(table):
    assert table.__name__ == "gradflow.backends.cuda_kernels"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(twin.ACTIVATION_SAVES))
def test_activations(cp, table, name, dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (129, 65)).astype(dtype)
    saved = x if twin.ACTIVATION_SAVES[name] == "x" else twin.act_forward(name, x)
    g = rng.normal(size=x.shape).astype(dtype)
    b = rng.normal(size=x.shape[1]).astype(dtype)
    close(table.act_forward(name, cp.asarray(x), 0.1), twin.act_forward(name, x, 0.1), dtype)
    close(table.act_derivative(name, cp.asarray(saved)), twin.act_derivative(name, saved), dtype)
    close(table.act_backward(name, cp.asarray(g), cp.asarray(saved)),
          twin.act_backward(name, g, saved), dtype)
    close(table.bias_act_forward(name, cp.asarray(x), cp.asarray(b)),
          twin.bias_act_forward(name, x, b), dtype)
    gz, gb = table.bias_act_backward(name, cp.asarray(g), cp.asarray(saved))
    want_gz, want_gb = twin.bias_act_backward(name, g, saved)
    close(gz, want_gz, dtype)
    np.testing.assert_allclose(gb.get(), want_gb, rtol=TOLERANCE[dtype]["rtol"] * 100,
                               atol=TOLERANCE[dtype]["atol"] * 100)


def test_half_activation_rounds_a_float_result(cp, table):
    x = np.linspace(-6, 6, 1001).astype(np.float16)
    want = twin.act_forward("gelu", x.astype(np.float32)).astype(np.float16)
    got = table.act_forward("gelu", cp.asarray(x)).get()
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy(cp, table, dtype):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (300, 10)).astype(dtype)
    logits[0] += 1e4
    labels = rng.integers(0, 10, 300)
    close(table.softmax_xent_forward(cp.asarray(logits), cp.asarray(labels)),
          twin.softmax_xent_forward(logits, labels), dtype)
    for scale in (1 / 300, np.linspace(0.5, 1, 300).astype(dtype)):
        got = table.softmax_xent_backward(cp.asarray(logits), cp.asarray(labels),
                                          cp.asarray(scale) if np.ndim(scale) else scale)
        close(got, twin.softmax_xent_backward(logits, labels, scale), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd(cp, table, dtype, nesterov):
    rng = np.random.default_rng(2)
    param, buf = rng.normal(size=1000).astype(dtype), np.zeros(1000, dtype)
    param_gpu, buf_gpu = cp.asarray(param), cp.asarray(buf)
    for step in range(3):
        grad = rng.normal(size=1000).astype(dtype)
        kwargs = dict(momentum=0.9, weight_decay=1e-2, nesterov=nesterov, first_step=step == 0)
        twin.sgd_update(param, grad, buf, 0.1, **kwargs)
        table.sgd_update(param_gpu, cp.asarray(grad), buf_gpu, 0.1, **kwargs)
    close(param_gpu, param, dtype)
    close(buf_gpu, buf, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam(cp, table, dtype, decoupled):
    rng = np.random.default_rng(3)
    state = [rng.normal(size=1000).astype(dtype), np.zeros(1000, dtype), np.zeros(1000, dtype)]
    state_gpu = [cp.asarray(a) for a in state]
    for step in range(1, 4):
        grad = rng.normal(size=1000).astype(dtype)
        kwargs = dict(step=step, lr=1e-2, weight_decay=1e-2, decoupled=decoupled)
        twin.adam_update(state[0], grad, *state[1:], **kwargs)
        table.adam_update(state_gpu[0], cp.asarray(grad), *state_gpu[1:], **kwargs)
    for got, want in zip(state_gpu, state):
        close(got, want, dtype)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
def test_gemm_accumulates_into_out(cp, table, trans_a, trans_b):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(7, 5) if trans_a else (5, 7))
    b = rng.normal(size=(3, 7) if trans_b else (7, 3))
    out = rng.normal(size=(5, 3))
    want = twin.gemm(a, b, out.copy(), trans_a, trans_b, 1.0, 1.0)
    out_gpu = cp.asarray(out)
    result = table.gemm(cp.asarray(a), cp.asarray(b), out_gpu, trans_a, trans_b, 1.0, 1.0)
    assert result is out_gpu or result.data.ptr == out_gpu.data.ptr
    close(out_gpu, want, np.float64)


SHAPES = [(7, 5), (0,), (5,), (1,), (333,)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_tensor_optimizers(cp, table, dtype):
    """adam_update_multi / sgd_update_multi: one launch per group, the twins' numbers."""
    rng = np.random.default_rng(5)
    params = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    adam = [[p.copy() for p in params], [np.zeros(s, dtype) for s in SHAPES], [np.zeros(s, dtype) for s in SHAPES]]
    sgd = [[p.copy() for p in params], [np.zeros(s, dtype) for s in SHAPES]]
    adam_gpu = [[cp.asarray(a) for a in group] for group in adam]
    sgd_gpu = [[cp.asarray(a) for a in group] for group in sgd]
    for step in range(1, 4):
        grads = [rng.normal(size=s).astype(dtype) for s in SHAPES]
        grads_gpu = [cp.asarray(g) for g in grads]
        twin.adam_update_multi(adam[0], grads, *adam[1:], step, 1e-2, weight_decay=1e-2)
        table.adam_update_multi(adam_gpu[0], grads_gpu, *adam_gpu[1:], step, 1e-2, weight_decay=1e-2)
        kwargs = dict(momentum=0.9, nesterov=True, first_step=step == 1)
        twin.sgd_update_multi(sgd[0], grads, sgd[1], 0.05, **kwargs)
        table.sgd_update_multi(sgd_gpu[0], grads_gpu, sgd_gpu[1], 0.05, **kwargs)
    for groups, groups_gpu in ((adam, adam_gpu), (sgd, sgd_gpu)):
        for group, group_gpu in zip(groups, groups_gpu):
            for want, got in zip(group, group_gpu):
                close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_with_bias_and_device_scale(cp, table, dtype):
    rng = np.random.default_rng(6)
    logits, labels = rng.normal(0, 3, (300, 10)).astype(dtype), rng.integers(0, 10, 300)
    bias, g = rng.normal(size=10).astype(dtype), np.array(2.0, dtype)
    args = (cp.asarray(logits), cp.asarray(labels))
    close(table.softmax_xent_forward(*args, bias=cp.asarray(bias), reduction="mean"),
          twin.softmax_xent_forward(logits, labels, bias=bias, reduction="mean"), dtype)
    gz = table.softmax_xent_backward(*args, cp.asarray(g), 1 / 300, bias=cp.asarray(bias))
    close(gz, twin.softmax_xent_backward(logits, labels, g, 1 / 300, bias=bias), dtype)
    close(table.column_sum(gz), twin.column_sum(gz.get()), dtype)
