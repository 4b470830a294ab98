"""gradflow.func on the textbook's objective and on small closed forms; composition; misuse."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import func
from gradflow.autograd import forward_ad

LAMBDA = 0.1


def _textbook_problem(seed=0, n=5, d=4, hidden=6, q=3):
    rng = np.random.default_rng(seed)
    x = gf.tensor(rng.standard_normal((n, d)))
    y = gf.tensor(rng.integers(0, q, size=n))
    W1 = gf.tensor(rng.standard_normal((hidden, d)) * 0.5)
    W2 = gf.tensor(rng.standard_normal((q, hidden)) * 0.5)

    def objective(W1, W2):
        # z = W1 x, h = φ(z), o = W2 h, L = l(o, y), s = λ/2 (‖W1‖² + ‖W2‖²), J = L + s
        z = F.linear(x, W1)
        h = gf.tanh(z)
        o = F.linear(h, W2)
        return F.cross_entropy(o, y) + F.l2_penalty([W1, W2], LAMBDA)

    return rng, objective, (W1, W2)


def test_hessian_of_the_l2_penalty_is_lambda_times_identity():
    W = gf.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    H = func.hessian(lambda W: F.l2_penalty([W], LAMBDA))(W)
    assert H.shape == (3, 4, 3, 4)
    np.testing.assert_allclose(H.numpy().reshape(12, 12), LAMBDA * np.eye(12), atol=1e-14)


@pytest.mark.parametrize("method", ["forward-over-reverse", "reverse-over-reverse"])
def test_hvp_of_the_textbook_objective_matches_differences_of_gradients(method):
    rng, objective, primals = _textbook_problem()
    tangents = tuple(gf.tensor(rng.standard_normal(p.shape)) for p in primals)
    value, products = func.hvp(objective, primals, tangents, method=method)
    gradient = func.grad(objective, argnums=(0, 1))
    eps = 1e-5
    plus = gradient(*[p + eps * v for p, v in zip(primals, tangents)])
    minus = gradient(*[p - eps * v for p, v in zip(primals, tangents)])
    assert value.item() == pytest.approx(objective(*primals).item())
    for hv, a, b in zip(products, plus, minus):
        np.testing.assert_allclose(hv.numpy(), (a.numpy() - b.numpy()) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_hessian_is_symmetric_and_agrees_with_hvp():
    rng, objective, (W1, W2) = _textbook_problem(seed=1, n=3, d=2, hidden=3, q=2)
    H = func.hessian(lambda W1: objective(W1, W2))(W1).numpy().reshape(W1.data.size, -1)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    v = gf.tensor(rng.standard_normal(W1.shape))
    _, (hv,) = func.hvp(lambda W1: objective(W1, W2), (W1,), (v,))
    np.testing.assert_allclose(H @ v.numpy().ravel(), hv.numpy().ravel(), atol=1e-12)


@pytest.mark.parametrize("f", [
    lambda x: gf.softmax(x * x, axis=0),
    lambda x: gf.tanh(x.reshape(2, 3)) @ x.reshape(3, 2),
    lambda x: (x[np.array([0, 2, 2])] * x.sum()).exp(),
], ids=["softmax", "matmul", "gather"])
def test_jacrev_equals_jacfwd(f):
    x = gf.tensor(np.random.default_rng(3).uniform(-1, 1, 6))
    np.testing.assert_allclose(func.jacrev(f)(x).numpy(), func.jacfwd(f)(x).numpy(), rtol=1e-12, atol=1e-14)


def test_jacobians_of_several_arguments():
    x, W = gf.tensor(np.ones(3)), gf.tensor(np.arange(6.0).reshape(2, 3))
    jx, jW = func.jacrev(lambda x, W: W @ x, argnums=(0, 1))(x, W)
    fx, fW = func.jacfwd(lambda x, W: W @ x, argnums=(0, 1))(x, W)
    np.testing.assert_allclose(jx.numpy(), W.numpy())
    assert jW.shape == (2, 2, 3) and fW.shape == (2, 2, 3)
    np.testing.assert_allclose(jW.numpy(), fW.numpy())
    np.testing.assert_allclose(jx.numpy(), fx.numpy())


def test_transforms_compose():
    x = gf.tensor([0.5, -1.0, 2.0])
    f = lambda x: (x ** 4).sum()
    third = func.grad(lambda x: func.grad(lambda x: func.grad(f)(x).sum())(x).sum())(x)
    np.testing.assert_allclose(third.numpy(), 24 * x.numpy(), rtol=1e-6)
    # reverse over forward: d/dx <J(x) v, 1> for J = diag(3x²) is 6x v
    v = gf.ones_like(x)
    rof = func.grad(lambda x: func.jvp(lambda x: x ** 3, (x,), (v,))[1].sum())(x)
    np.testing.assert_allclose(rof.numpy(), 6 * x.numpy(), rtol=1e-6)


def test_vjp_returns_one_cotangent_per_primal_and_can_be_reused():
    x, y = gf.tensor([1.0, 2.0]), gf.tensor([3.0, 4.0])
    out, vjp_fn = func.vjp(lambda x, y: x * y, x, y)
    np.testing.assert_allclose(out.numpy(), [3.0, 8.0])
    for _ in range(2):
        gx, gy = vjp_fn(gf.tensor([1.0, 10.0]))
        np.testing.assert_allclose(gx.numpy(), [3.0, 40.0])
        np.testing.assert_allclose(gy.numpy(), [1.0, 20.0])
    assert x.grad is None and not out.requires_grad


def test_grad_has_aux_and_unused_arguments():
    g, aux = func.grad(lambda x, y: ((x * 2).sum(), "aux"), argnums=(0, 1), has_aux=True)(
        gf.tensor([1.0]), gf.tensor([5.0]))
    assert aux == "aux"
    np.testing.assert_allclose(g[0].numpy(), [2.0])
    np.testing.assert_allclose(g[1].numpy(), [0.0])


def test_misuse_is_reported_clearly():
    x = gf.tensor([1.0, 2.0])
    with pytest.raises(gf.ShapeError, match="scalar"):
        func.grad(lambda x: x * 2)(x)
    with pytest.raises(forward_ad.ForwardADError, match="dual_level"):
        forward_ad.make_dual(x, x)
    with forward_ad.dual_level():
        with pytest.raises(gf.ShapeError, match="tangent of shape"):
            forward_ad.make_dual(x, gf.tensor([1.0]))
        with pytest.raises(forward_ad.ForwardADError, match="nested"):
            with forward_ad.dual_level():
                pass
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        func.jvp(lambda a, b: a + b, (x, x), (x,))
    with pytest.raises(ValueError, match="method"):
        func.hvp(lambda x: x.sum(), (x,), (x,), method="sideways")
