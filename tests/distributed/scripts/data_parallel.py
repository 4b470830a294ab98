"""Under mpirun -n N: 50 data-parallel SGD steps equal 50 single-process steps on the same global batches.

argv[1] is the dtype. The data (397 samples, global batch 8) ends in an uneven batch of 5, so the
shard weights of ``shard_batches`` are exercised too. Each rank starts from different random
parameters: DataParallel's broadcast from rank 0 must make them equal.
"""
import sys

import numpy as np

import gradflow as gf
import gradflow.distributed as dist
from gradflow.nn.functional import cross_entropy, linear, tanh

DTYPE = sys.argv[1]
STEPS, N, GLOBAL_BATCH, LR = 50, 397, 8, 0.1


class MLP:
    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        shapes = [(16, 10), (16,), (3, 16), (3,)]
        self.params = [gf.tensor(rng.standard_normal(s) * 0.5, dtype=DTYPE, requires_grad=True) for s in shapes]

    def parameters(self):
        return iter(self.params)

    def __call__(self, x):
        w1, b1, w2, b2 = self.params
        return linear(tanh(linear(x, w1, b1)), w2, b2)


class SGD:
    def __init__(self, params):
        self.params = list(params)

    def step(self):
        for p in self.params:
            p.data = p.data - p.data.dtype.type(LR) * p.grad.data

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def train(model, optimizer, rank, world):
    batches = dist.shard_batches(N, GLOBAL_BATCH, rank, world, seed=3)
    assert len(batches) == STEPS
    for index, weight in batches:
        optimizer.zero_grad()
        cross_entropy(model(gf.tensor(X[index], dtype=DTYPE)), gf.tensor(Y[index])).backward()
        if world == 1:
            optimizer.step()
        else:
            optimizer.step(scale=weight)


rank, world = dist.init(timeout=30)
data_rng = np.random.default_rng(0)
X, Y = data_rng.standard_normal((N, 10)), data_rng.integers(0, 3, N)

reference = MLP(seed=100)  # rank 0's initial parameters
train(reference, SGD(reference.params), 0, 1)

local = MLP(seed=100 + rank)
model, optimizer = dist.wrap_training(local, SGD(local.params))
train(model, optimizer, rank, world)

tolerance = dict(rtol=1e-11, atol=1e-13) if DTYPE == "float64" else dict(rtol=2e-5, atol=2e-6)
for p, q in zip(model.parameters(), reference.params):
    np.testing.assert_allclose(p.numpy(), q.numpy(), **tolerance)
assert dist.check_in_sync(list(model.parameters())), "ranks' parameters are not bit-identical"
print(f"OK rank {rank}", flush=True)
