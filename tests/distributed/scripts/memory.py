"""Under mpirun -n 2: each rank's activation memory for one global batch is what a one-process plan predicts.

Every array this MLP's graph saves scales with the batch, so each of two ranks keeps exactly
half of what one process keeps for the whole global batch.
"""
import numpy as np

import gradflow as gf
import gradflow.distributed as dist
from gradflow.nn.functional import cross_entropy, linear, relu

rank, world = dist.init(timeout=30)
rng = np.random.default_rng(0)
w1, b1 = gf.tensor(rng.standard_normal((32, 20)), requires_grad=True), gf.tensor(np.zeros(32), requires_grad=True)
w2 = gf.tensor(rng.standard_normal((4, 32)), requires_grad=True)
model = lambda x: linear(relu(linear(x, w1, b1)), w2)  # noqa: E731
x, y = gf.tensor(rng.standard_normal((64, 20))), gf.tensor(rng.integers(0, 4, 64))

measured = dist.activation_memory_per_rank(model, cross_entropy, x, y)
planned = dist.activation_memory_per_rank(model, cross_entropy, x, y, world=world)
whole = dist.activation_memory_per_rank(model, cross_entropy, x, y, world=1)[0]
assert measured == planned, (measured, planned)
assert [m["batch"] for m in measured] == [32, 32], measured
for m in measured:  # every array this graph saves scales with the batch: each rank keeps exactly half
    assert m["activation_bytes"] * world == whole["activation_bytes"] > 0, (measured, whole)
    assert m["saved_input_bytes"] * world == whole["saved_input_bytes"], (measured, whole)
print(f"OK rank {rank}", flush=True)
