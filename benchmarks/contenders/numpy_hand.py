"""The floor: the textbook's formulas written by hand in NumPy, as a careful person would.

It uses the tricks any hand-written version would (ReLU in place, the softmax of the forward
reused in the backward, ``gW += λW`` in place, no gradient for the input batch) and no others:
the point is an honest lower bound for a NumPy-backed framework, not a tuned kernel.

Backward of the textbook MLP (``z = W1 x + b1``, ``h = relu(z)``, ``o = W2 h + b2``):
``∂J/∂o = (softmax(o) - onehot) / B``, ``∂J/∂W2 = (∂J/∂o)ᵀ h + λW2``, ``∂J/∂h = (∂J/∂o) W2``,
``∂J/∂z = ∂J/∂h ⊙ [h > 0]``, ``∂J/∂W1 = (∂J/∂z)ᵀ x + λW1`` (rows are samples, so the products
are transposed relative to the column-vector formulas).
"""
from __future__ import annotations

import numpy as np

from ..workloads import LAMBDA, LR, chain_length
from . import Unsupported

AVAILABLE, MISSING = True, ""


def mlp_forward_backward(x, labels, layers, lam=LAMBDA):
    """Loss J and [(gW, gb) per layer] of the ReLU MLP with softmax cross-entropy + λ/2 Σ‖W‖²."""
    activations = [x]
    h = x
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        z = h @ w.T
        z += b
        if i < last:
            np.maximum(z, 0, out=z)
        activations.append(z)
        h = z
    logits = h
    batch = logits.shape[0]
    rows = np.arange(batch)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, labels]))
    penalty = sum(float((w * w).sum()) for w, _ in layers) * (lam / 2)
    j = loss + penalty

    g = exp
    g /= total
    g[rows, labels] -= 1
    g *= np.float32(1.0 / batch)
    grads = [None] * len(layers)
    for i in range(last, -1, -1):
        w, _ = layers[i]
        h_in = activations[i]
        gw = g.T @ h_in
        gw += np.float32(lam) * w
        grads[i] = (gw, g.sum(axis=0))
        if i > 0:
            g = g @ w
            np.multiply(g, h_in > 0, out=g)
    return j, grads


def chain_forward_backward(x, y, repeats):
    """((x*y + x)*y - x) -> tanh, ``repeats`` times, then sum; returns (s, gx, gy)."""
    tape = []
    t = x
    for _ in range(repeats):
        t1 = t * y
        t2 = t1 + x
        t3 = t2 * y
        t4 = t3 - x
        t5 = np.tanh(t4)
        tape.append((t, t2, t5))
        t = t5
    s = t.sum()
    g = np.ones_like(t)
    gx = np.zeros_like(x)
    gy = np.zeros_like(y)
    for t, t2, t5 in reversed(tape):
        g4 = g * (1 - t5 * t5)
        gx -= g4
        gy += g4 * t2
        g2 = g4 * y
        gx += g2
        gy += g2 * t
        g = g2 * y
    gx += g  # the first link's t is x itself
    return s, gx, gy


def build(case):
    a = case.arrays
    if case.workload in ("mlp", "deep"):
        x, labels, layers = a["x"], a["labels"], a["layers"]
        return lambda: mlp_forward_backward(x, labels, layers)
    if case.workload == "mlp_step":
        x, labels, layers = a["x"], a["labels"], [(w.copy(), b.copy()) for w, b in a["layers"]]

        def step():
            _, grads = mlp_forward_backward(x, labels, layers)
            for (w, b), (gw, gb) in zip(layers, grads):
                gw *= np.float32(LR)
                w -= gw
                gb *= np.float32(LR)
                b -= gb
        return step
    if case.workload.startswith("chain"):
        x, y, repeats = a["x"], a["y"], chain_length(case.workload) // 5
        return lambda: chain_forward_backward(x, y, repeats)
    raise Unsupported(case.workload)
