"""The L2 penalty as one variadic primitive, and apply's inline coercion of Python scalars."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.tensor import constant_like


def test_l2_penalty_is_one_node_saving_each_weight_and_returning_lambda_w():
    rng = np.random.default_rng(0)
    w1 = gf.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w2 = gf.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    lam = 0.3
    penalty = F.l2_penalty([w1, w2], lam)
    assert penalty.grad_fn.name == "l2_penalty"
    assert penalty.grad_fn.next == (w1, w2)  # straight to the leaves: no sum_of_squares, add or mul nodes
    want = lam / 2 * ((w1.data ** 2).sum() + (w2.data ** 2).sum())
    np.testing.assert_allclose(penalty.item(), want, rtol=1e-12)
    penalty.backward()
    np.testing.assert_allclose(w1.grad.data, lam * w1.data, rtol=1e-12)
    np.testing.assert_allclose(w2.grad.data, lam * w2.data, rtol=1e-12)


def test_l2_penalty_skips_weights_without_grad_and_refuses_an_empty_list():
    a = gf.tensor(np.ones((2, 2)), requires_grad=True)
    b = gf.tensor(np.full((2,), 3.0))
    F.l2_penalty([a, b], 2.0).backward()
    np.testing.assert_allclose(a.grad.data, 2.0 * np.ones((2, 2)))
    assert b.grad is None
    with pytest.raises(ValueError, match="at least one parameter"):
        F.l2_penalty([], 1.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("value", [0.5, 3, -0.0, 2 ** 40, 1e-30])
def test_a_python_scalar_operand_gets_what_constant_like_gives(dtype, value):
    t = gf.tensor(np.array([1.0, 2.0], dtype), requires_grad=True)
    with np.errstate(over="ignore"):  # 2**40 is inf in float16, by either path
        want = constant_like(value, t).data
        for result, expected in ((t * value, t.data * want), (value * t, want * t.data),
                                 (t - value, t.data - want), (value - t, want - t.data)):
            assert result.dtype == t.dtype
            np.testing.assert_array_equal(result.data, expected)
        (t * value).sum().backward()
    assert t.grad.dtype == t.dtype
