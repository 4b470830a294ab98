"""The workloads every contender runs, as plain NumPy data, so all contenders start from equal arrays.

Each contender module (``contenders/*.py``) turns a ``Case`` into a zero-argument ``step`` that runs
one iteration; the harness only times calls to it.

- ``mlp``: the textbook network 784-256-10 (ReLU, softmax cross-entropy, the L2 penalty
  ``λ/2 (‖W1‖² + ‖W2‖²)``, biases; the input needs no gradient), forward + backward.
- ``mlp_step``: the same plus a plain SGD update (issue 12's full-step figure).
- ``deep``: 784 → 6 hidden layers of 1024 → 10, same loss, forward + backward.
- ``chain5`` / ``chain10``: per-op overhead — 5 or 10 elementwise ops on (4, 4) tensors, a sum,
  backward.
- ``hvp``: double backward of ``mlp`` — the Hessian-vector product ``∇(∇J · v)`` w.r.t. the weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LAMBDA = 1e-4   # the L2 penalty's λ
LR = 0.01       # SGD learning rate of mlp_step
IN, HIDDEN, OUT = 784, 256, 10
DEEP_WIDTH, DEEP_LAYERS = 1024, 6


@dataclass
class Case:
    workload: str
    batch: int
    dtype: str = "float32"
    arrays: dict = field(default_factory=dict)

    @property
    def name(self):
        return f"{self.workload}/B={self.batch}" if self.batch else self.workload


def layer_sizes(workload):
    if workload == "deep":
        return [IN] + [DEEP_WIDTH] * DEEP_LAYERS + [OUT]
    return [IN, HIDDEN, OUT]


def make_case(workload, batch, seed=0):
    """The input data and initial parameters of one workload, seeded so every process agrees."""
    rng = np.random.default_rng(seed)
    case = Case(workload, batch)
    if workload.startswith("chain"):
        case.arrays["x"] = rng.uniform(0.5, 1.5, (4, 4)).astype(np.float32)
        case.arrays["y"] = rng.uniform(0.5, 1.5, (4, 4)).astype(np.float32)
        return case
    sizes = layer_sizes(workload)
    case.arrays["x"] = rng.standard_normal((batch, IN)).astype(np.float32)
    case.arrays["labels"] = rng.integers(0, OUT, batch).astype(np.int64)
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = np.zeros(fan_out, np.float32)
        weights.append((w, b))
    case.arrays["layers"] = weights
    if workload == "hvp":
        case.arrays["v"] = [(rng.standard_normal(w.shape).astype(np.float32),
                             rng.standard_normal(b.shape).astype(np.float32)) for w, b in weights]
    return case


def chain_length(workload):
    return int(workload[len("chain"):])


# The chain every contender runs for chain5 / chain10 (the same five ops, repeated):
#   t = x * y;  t = t + x;  t = t * y;  t = t - x;  t = tanh(t)
CHAIN_OPS = ("mul", "add", "mul", "sub", "tanh")


# What each run of the suite measures: (workload, batch). ``--quick`` takes the starred subset.
DEFAULT_CASES = [
    ("mlp", 64), ("mlp", 256), ("mlp", 1024), ("mlp", 4096),
    ("mlp_step", 64), ("mlp_step", 256), ("mlp_step", 1024), ("mlp_step", 4096),
    ("deep", 256),
    ("chain5", 0), ("chain10", 0),
    ("hvp", 256),
]
QUICK_CASES = [("mlp", 64), ("mlp", 256), ("mlp_step", 1024), ("chain5", 0)]
