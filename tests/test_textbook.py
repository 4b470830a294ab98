"""The seed material's worked examples: the lecture's gates and the textbook MLP's closed forms."""
import numpy as np

import gradflow as gf
import gradflow.nn.functional as F


def leaf(value):
    return gf.tensor(value, dtype="float64", requires_grad=True)


def test_add_mul_circuit_from_the_lecture():
    # f = (x + y) z at x=-2, y=5, z=-4: df/dx = df/dy = z = -4, df/dz = x + y = 3.
    x, y, z = leaf(-2.0), leaf(5.0), leaf(-4.0)
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


def test_sigmoid_circuit_matches_its_closed_form():
    # f(w, x) = σ(w0 x0 + w1 x1 + w2): the lecture's circuit, local gradient σ(1 - σ).
    w = leaf([2.0, -3.0, -3.0])
    x = leaf([-1.0, -2.0])
    f = 1 / (1 + gf.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    f.backward()
    s = f.item()
    assert abs(s - 0.7310585786300049) < 1e-12
    local = s * (1 - s)
    np.testing.assert_allclose(w.grad.numpy(), [local * -1.0, local * -2.0, local], rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), [local * 2.0, local * -3.0], rtol=1e-12)


def test_add_gate_copies_the_upstream_gradient():
    x, y = leaf(3.0), leaf(4.0)
    ((x + y) * 7.0).backward()
    assert x.grad.item() == y.grad.item() == 7.0


def test_copy_gate_sums_gradients():
    x = leaf(3.0)
    (x * 2.0 + x * 5.0 + x).backward()   # x fans out three ways
    assert x.grad.item() == 8.0


def test_mul_gate_swaps_inputs():
    x, y = leaf(3.0), leaf(-4.0)
    (x * y).backward()
    assert (x.grad.item(), y.grad.item()) == (-4.0, 3.0)


def test_max_gate_routes_to_the_larger_input():
    x, y = leaf(3.0), leaf(-4.0)
    gf.maximum(x, y).backward()
    assert (x.grad.item(), y.grad.item()) == (1.0, 0.0)


def _textbook(batch, lam, phi=gf.relu, dphi=lambda z: (z > 0).astype(float), seed=0):
    """z = W1 x, h = φ(z), o = W2 h, J = l(o, y) + λ/2(‖W1‖² + ‖W2‖²), columns are examples."""
    rng = np.random.default_rng(seed)
    d, hidden, q = 5, 4, 3
    x = rng.standard_normal((d, batch))
    labels = rng.integers(0, q, batch)
    W1, W2 = leaf(rng.standard_normal((hidden, d))), leaf(rng.standard_normal((q, hidden)))
    z = W1 @ gf.tensor(x)
    h = phi(z)
    o = W2 @ h
    L = F.cross_entropy(o.T, gf.tensor(labels))
    J = L + F.l2_penalty([W1, W2], lam)
    J.backward()
    # The closed forms, by hand in NumPy.
    zn = W1.numpy() @ x
    hn = np.maximum(zn, 0) if phi is gf.relu else np.tanh(zn)
    on = W2.numpy() @ hn
    p = np.exp(on - on.max(0)) / np.exp(on - on.max(0)).sum(0)
    dJ_do = (p - np.eye(q)[:, labels]) / batch
    dJ_dW2 = dJ_do @ hn.T + lam * W2.numpy()
    dJ_dh = W2.numpy().T @ dJ_do
    dJ_dz = dJ_dh * dphi(zn)
    dJ_dW1 = dJ_dz @ x.T + lam * W1.numpy()
    return W1, W2, dJ_dW1, dJ_dW2


def test_textbook_mlp_gradients_equal_the_closed_forms_single_example():
    W1, W2, dW1, dW2 = _textbook(batch=1, lam=0.1)
    np.testing.assert_allclose(W2.grad.numpy(), dW2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(W1.grad.numpy(), dW1, rtol=1e-12, atol=1e-14)


def test_textbook_mlp_gradients_equal_the_closed_forms_minibatch_tanh():
    W1, W2, dW1, dW2 = _textbook(batch=16, lam=0.01, phi=gf.tanh, dphi=lambda z: 1 - np.tanh(z) ** 2)
    np.testing.assert_allclose(W2.grad.numpy(), dW2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(W1.grad.numpy(), dW1, rtol=1e-12, atol=1e-14)


def test_hessian_vector_product_by_differentiating_grad_dot_v():
    # f(x) = Σ x³ has Hessian diag(6x): H v = 6 x ⊙ v, computed without forming H.
    x = leaf([1.0, -2.0, 0.5])
    v = gf.tensor([0.3, 1.0, -2.0], dtype="float64")
    (g,) = gf.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (hv,) = gf.autograd.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.numpy(), 6 * x.numpy() * v.numpy())
