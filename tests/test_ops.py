"""Every row of the op table: forward vs NumPy, float64 gradcheck and gradgradcheck, float32 run.

Also checks that each op's fast (kernel) VJP agrees with its differentiable VJP.
"""
import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from op_table import OP_CASES, sample_inputs


def _inputs(case, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [gf.tensor(a, requires_grad=True) for a in sample_inputs(case, rng, dtype)]


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_forward_matches_numpy(case):
    xs = _inputs(case)
    out = case.fn(*xs)
    np.testing.assert_allclose(out.numpy(), case.reference(*[x.numpy() for x in xs]), rtol=1e-10, atol=1e-12)
    assert out.dtype == np.float64


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_gradcheck_float64(case):
    assert gradcheck(case.fn, _inputs(case))


@pytest.mark.parametrize("case", [c for c in OP_CASES if c.smooth], ids=str)
def test_gradgradcheck_float64(case):
    assert gradgradcheck(case.fn, _inputs(case, seed=1))


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_float32_matches_float64(case):
    """The float32 path keeps float32 end to end and agrees with float64 to float32 accuracy."""
    xs64 = _inputs(case, seed=2)
    xs32 = [gf.tensor(x.numpy().astype(np.float32), requires_grad=True) for x in xs64]
    out64, out32 = case.fn(*xs64), case.fn(*xs32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), out64.numpy(), rtol=1e-4, atol=case.atol32)
    u = np.random.default_rng(3).standard_normal(out64.shape)
    out64.backward(gf.tensor(u))
    out32.backward(gf.tensor(u.astype(np.float32)))
    for a, b in zip(xs32, xs64):
        assert a.grad.dtype == np.float32
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3, atol=case.atol32 * 10)


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_fast_vjp_agrees_with_differentiable_vjp(case):
    """backward() (kernel VJPs) and grad(create_graph=True) (gradflow-op VJPs) give the same gradient."""
    xs = _inputs(case, seed=4)
    out = case.fn(*xs)
    u = gf.tensor(np.random.default_rng(5).standard_normal(out.shape))
    slow = gf.autograd.grad(out, xs, u, create_graph=True, allow_unused=True)
    out.backward(u)
    for x, g in zip(xs, slow):
        expected = np.zeros(x.shape) if g is None else g.numpy()
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_non_contiguous_inputs():
    base = gf.tensor(np.random.default_rng(0).standard_normal((4, 6)), requires_grad=True)
    x = base.T[::2]          # a strided, transposed view
    assert not x.data.flags.c_contiguous
    assert gradcheck(lambda b: (gf.tanh(b.T[::2]) * b.T[1::2]).sum(), [base])
