"""gradflow, written the way a user would: ``gradflow.nn.functional`` and ``backward()``.

The SGD update of ``mlp_step`` is the plain ``g *= lr; p -= g`` under ``no_grad`` (in place, the
hand floor's own update) so the figure measures autograd, not a particular optimizer class.
``gradflow-fused`` runs each hidden layer as one ``linear_relu`` op (what ``nn.MLP`` does by
default); ``gradflow`` as ``linear`` then ``relu``.
"""
from __future__ import annotations

import gradflow as gf
import gradflow.nn.functional as F

from ..workloads import LAMBDA, LR, chain_length
from . import Unsupported

AVAILABLE, MISSING = True, ""


def _params(case):
    return [(gf.tensor(w, requires_grad=True), gf.tensor(b, requires_grad=True))
            for w, b in case.arrays["layers"]]


def mlp_loss(x, labels, layers, lam=LAMBDA, fused=False):
    h = x
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        if i < last and fused:
            h = F.linear_act(h, w, b, "relu")
        elif i < last:
            h = F.relu(F.linear(h, w, b))
        else:
            h = F.linear(h, w, b)
    return F.cross_entropy(h, labels) + F.l2_penalty([w for w, _ in layers], lam)


def chain(x, y, repeats):
    t = x
    for _ in range(repeats):
        t = (((t * y) + x) * y - x).tanh()
    return t.sum()


def build(case, fused=False):
    a = case.arrays
    if case.workload in ("mlp", "deep", "mlp_step"):
        x, labels = gf.tensor(a["x"]), gf.tensor(a["labels"])
        layers = _params(case)
        flat = [p for layer in layers for p in layer]
        update = case.workload == "mlp_step"

        def step():
            for p in flat:
                p.grad = None
            mlp_loss(x, labels, layers, fused=fused).backward()
            if update:
                with gf.no_grad():
                    for p in flat:  # in place, as the floor's ``gw *= lr; w -= gw``
                        g = p.grad.data
                        g *= LR
                        p.data -= g
        return step
    if case.workload == "hvp":
        x, labels = gf.tensor(a["x"]), gf.tensor(a["labels"])
        layers = _params(case)
        flat = [p for layer in layers for p in layer]
        vs = [gf.tensor(v) for pair in a["v"] for v in pair]

        def step():
            grads = gf.autograd.grad(mlp_loss(x, labels, layers, fused=fused), flat, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(grads, vs))
            return gf.autograd.grad(dot, flat)
        return step
    if case.workload.startswith("chain") and not fused:  # no linear layer to fuse
        x = gf.tensor(a["x"], requires_grad=True)
        y = gf.tensor(a["y"], requires_grad=True)
        repeats = chain_length(case.workload) // 5

        def step():
            x.grad = None
            y.grad = None
            chain(x, y, repeats).backward()
        return step
    raise Unsupported(case.workload)
