"""Forward mode over the whole op table, in float64.

For every row of ``tests/op_table.py``: the JVP agrees with central differences and with the VJP
through ``<u, J v> = <Jᵀ u, v>``, and forward-over-reverse Hessian-vector products (tangents
flowing through every op's VJP graph) agree with reverse-over-reverse ones.
"""
import inspect

import numpy as np
import pytest

import gradflow as gf
import gradflow.ops
from gradflow import func
from gradflow.autograd import forward_ad
from gradflow.ops.registry import Op
from tests.op_table import OP_CASES, sample_inputs

EPS = 1e-6


def _case_data(case, seed):
    rng = np.random.default_rng(seed)
    primals = [gf.tensor(a) for a in sample_inputs(case, rng, np.float64)]
    tangents = [gf.tensor(rng.standard_normal(p.shape)) for p in primals]
    return rng, primals, tangents


def _evaluate(case, arrays):
    with gf.no_grad():
        return case.fn(*[gf.tensor(a) for a in arrays]).numpy()


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_jvp_matches_central_differences(case):
    _, primals, tangents = _case_data(case, 0)
    out, tangent = func.jvp(case.fn, primals, tangents)
    xs, vs = [p.numpy() for p in primals], [t.numpy() for t in tangents]
    plus = _evaluate(case, [x + EPS * v for x, v in zip(xs, vs)])
    minus = _evaluate(case, [x - EPS * v for x, v in zip(xs, vs)])
    np.testing.assert_allclose(out.numpy(), _evaluate(case, xs), rtol=1e-12)
    assert tangent.shape == out.shape and tangent.dtype == np.float64
    np.testing.assert_allclose(tangent.numpy(), (plus - minus) / (2 * EPS), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_jvp_is_the_transpose_of_vjp(case):
    rng, primals, tangents = _case_data(case, 1)
    _, jv = func.jvp(case.fn, primals, tangents)
    out, vjp_fn = func.vjp(case.fn, *primals)
    u = gf.tensor(rng.standard_normal(out.shape))
    lhs = float((u.numpy() * jv.numpy()).sum())
    rhs = sum(float((g.numpy() * v.numpy()).sum()) for g, v in zip(vjp_fn(u), tangents))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_forward_over_reverse_matches_reverse_over_reverse(case):
    # Tangents flow through the ops each VJP is written in (sum_to, index_add, ...): second order.
    rng, primals, tangents = _case_data(case, 2)
    with gf.no_grad():
        weights = gf.tensor(rng.standard_normal(case.fn(*primals).shape))

    def scalar(*xs):
        return (case.fn(*xs) * weights).sum()

    value, forward = func.hvp(scalar, primals, tangents, method="forward-over-reverse")
    value2, reverse = func.hvp(scalar, primals, tangents, method="reverse-over-reverse")
    assert value.item() == pytest.approx(value2.item())
    for a, b in zip(forward, reverse):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11)


def _primitives():
    for module in (gradflow.ops.elementwise, gradflow.ops.activation, gradflow.ops.reduce, gradflow.ops.shape,
                   gradflow.ops.linalg, gradflow.ops.softmax, gradflow.ops.trig, gradflow.ops.explog,
                   gradflow.ops.rounding, gradflow.ops.normalization,
                   gradflow.ops.efficient_attention):
        for name, value in inspect.getmembers(module):
            if isinstance(value, Op):
                yield value
    yield from gradflow.ops.ACTIVATIONS.values()


def test_every_primitive_declares_a_jvp():
    missing = sorted({op.name for op in _primitives() if op.jvp_rule is None})
    assert not missing, f"primitives without a jvp rule: {missing}"


def test_cast_carries_the_tangent_into_the_new_dtype():
    x = gf.tensor([1.0, -2.0], dtype="float64")
    out, tangent = func.jvp(lambda x: x.to(gf.float32) * 2, (x,), (gf.tensor([0.5, 1.0], dtype="float64"),))
    assert out.dtype == tangent.dtype == np.float32
    np.testing.assert_allclose(tangent.numpy(), [1.0, 2.0])


def test_to_device_and_index_add_have_jvps():
    x = gf.tensor([1.0, 2.0, 3.0], dtype="float64")
    v = gf.tensor([1.0, 10.0, 100.0], dtype="float64")
    _, t = func.jvp(lambda x: gf.ops.to_device(x, x.device) * 1.0, (x,), (v,))
    np.testing.assert_allclose(t.numpy(), v.numpy())
    index = (np.array([0, 0, 2]),)
    _, t = func.jvp(lambda g: gf.ops.shape._index_add(g, shape=(4,), index=index, basic=False), (x,), (v,))
    np.testing.assert_allclose(t.numpy(), [11.0, 0.0, 100.0, 0.0])


def test_inputs_without_a_tangent_contribute_nothing():
    x, y = gf.tensor([1.0, 2.0], dtype="float64"), gf.tensor([3.0, 4.0], dtype="float64")
    with forward_ad.dual_level():
        out = forward_ad.make_dual(x, gf.ones_like(x)) * y + y
        np.testing.assert_allclose(forward_ad.unpack_dual(out).tangent.numpy(), [3.0, 4.0])
        assert forward_ad.unpack_dual(y).tangent is None
