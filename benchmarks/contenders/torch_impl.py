"""PyTorch eager on the CPU (``pip install torch==2.13.0``), the framework users would pick instead.

Run in its own process: its OpenMP pool and NumPy's OpenBLAS pool starve each other on 2 cores.
"""
from __future__ import annotations

from ..workloads import LAMBDA, LR, chain_length
from . import Unsupported

try:
    import torch
    import torch.nn.functional as F
    AVAILABLE, MISSING = True, ""
except ImportError:  # an optional contender
    torch = F = None
    AVAILABLE, MISSING = False, "torch is not installed (pip install torch==2.13.0, the CPU build)"


def _params(case):
    return [(torch.from_numpy(w.copy()).requires_grad_(), torch.from_numpy(b.copy()).requires_grad_())
            for w, b in case.arrays["layers"]]


def mlp_loss(x, labels, layers, lam=LAMBDA):
    h = x
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        h = F.linear(h, w, b)
        if i < last:
            h = F.relu(h)
    penalty = sum((w * w).sum() for w, _ in layers) * (lam / 2)
    return F.cross_entropy(h, labels) + penalty


def chain(x, y, repeats):
    t = x
    for _ in range(repeats):
        t = (((t * y) + x) * y - x).tanh()
    return t.sum()


def build(case):
    a = case.arrays
    if case.workload in ("mlp", "deep", "mlp_step", "hvp"):
        x, labels = torch.from_numpy(a["x"]), torch.from_numpy(a["labels"])
        layers = _params(case)
        flat = [p for layer in layers for p in layer]
    if case.workload in ("mlp", "deep", "mlp_step"):
        update = case.workload == "mlp_step"

        def step():
            for p in flat:
                p.grad = None
            mlp_loss(x, labels, layers).backward()
            if update:
                with torch.no_grad():
                    for p in flat:  # in place, as the floor's ``gw *= lr; w -= gw``
                        p.grad.mul_(LR)
                        p -= p.grad
        return step
    if case.workload == "hvp":
        vs = [torch.from_numpy(v) for pair in a["v"] for v in pair]

        def step():
            grads = torch.autograd.grad(mlp_loss(x, labels, layers), flat, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(grads, vs))
            return torch.autograd.grad(dot, flat)
        return step
    if case.workload.startswith("chain"):
        x = torch.from_numpy(a["x"]).requires_grad_()
        y = torch.from_numpy(a["y"]).requires_grad_()
        repeats = chain_length(case.workload) // 5

        def step():
            x.grad = None
            y.grad = None
            chain(x, y, repeats).backward()
        return step
    raise Unsupported(case.workload)


def retained_bytes(case):
    """Bytes of the unique storages autograd saves for one forward (saved-tensor hooks)."""
    a = case.arrays
    x, labels = torch.from_numpy(a["x"]), torch.from_numpy(a["labels"])
    layers = _params(case)
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = mlp_loss(x, labels, layers)
    loss.backward()
    return sum(storages.values())
