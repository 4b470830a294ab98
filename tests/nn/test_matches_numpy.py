"""The framework adds no error: nn + optim training equals a hand-written NumPy loop in float64.

The NumPy side is the textbook's backward for ``o = W2 relu(W1 x + b1) + b2`` with softmax
cross-entropy — ``∂J/∂o = (softmax(o) - onehot)/N``, ``∂J/∂W2 = (∂J/∂o)ᵀ h``,
``∂J/∂h = (∂J/∂o) W2``, ``∂J/∂z = ∂J/∂h ⊙ [z > 0]`` — and PyTorch's optimizer formulas.
"""
import numpy as np
import pytest

import gradflow as gf
import gradflow.optim as optim
from gradflow import nn
from gradflow.data import BatchIterator
from gradflow.nn.functional import cross_entropy


def numpy_grads(params, x, y):
    w1, b1, w2, b2 = params
    z = x @ w1.T + b1
    h = np.maximum(z, 0)
    o = h @ w2.T + b2
    p = np.exp(o - o.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).mean()
    do = p.copy()
    do[np.arange(len(y)), y] -= 1
    do /= len(y)
    dh = do @ w2
    dz = dh * (z > 0)
    return loss, [dz.T @ x, dz.sum(0), do.T @ h, do.sum(0)]


def numpy_sgd(params, grads, state, lr=0.1, momentum=0.9, weight_decay=1e-3):
    for i, (p, g) in enumerate(zip(params, grads)):
        d = g + weight_decay * p
        state[i] = d.copy() if i not in state else momentum * state[i] + d
        p -= lr * state[i]


def numpy_adam(params, grads, state, lr=0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-2):
    state["t"] = state.get("t", 0) + 1
    t = state["t"]
    for i, (p, g) in enumerate(zip(params, grads)):
        p *= 1 - lr * weight_decay  # AdamW: decoupled decay
        m, v = state.setdefault(i, (np.zeros_like(p), np.zeros_like(p)))
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g * g
        p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


@pytest.mark.parametrize("which", ["sgd", "adamw"])
def test_twenty_steps_match_numpy(which):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 6))
    y = rng.integers(0, 4, 50)
    gf.manual_seed(0)
    model = nn.MLP([6, 16, 4]).to(gf.float64)
    reference = [p.data.copy() for p in model.parameters()]  # same init for the NumPy loop
    if which == "sgd":
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        numpy_step = numpy_sgd
    else:
        opt = optim.AdamW(model.parameters(), lr=0.01, weight_decay=1e-2)
        numpy_step = numpy_adam
    batches = BatchIterator(x, y, batch_size=16, shuffle=True, seed=5)
    order_rng = np.random.default_rng(5)  # BatchIterator's documented order: one permutation per pass
    state, steps = {}, 0
    while steps < 20:
        order = order_rng.permutation(50)
        for b, (xb, yb) in enumerate(batches):
            index = order[b * 16:(b + 1) * 16]
            assert np.array_equal(xb.data, x[index])
            loss = cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            expected_loss, grads = numpy_grads(reference, x[index], y[index])
            numpy_step(reference, grads, state)
            assert loss.item() == pytest.approx(expected_loss, abs=1e-12)
            steps += 1
            if steps == 20:
                break
    for p, q in zip(model.parameters(), reference):
        np.testing.assert_allclose(p.data, q, atol=1e-5, rtol=0)
        assert np.abs(p.data - q).max() < 1e-10  # in fact equal to rounding
