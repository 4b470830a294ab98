"""Under mpirun -n N: all_reduce / broadcast / barrier against a single-process NumPy reference.

Every rank draws every rank's data from one seed, so each can compute the reference itself.
"""
import numpy as np

import gradflow as gf
import gradflow.distributed as dist

rank, world = dist.init(timeout=30)
rng = np.random.default_rng(7)
shapes = [(), (5,), (3, 4), (2, 3, 5), (1000,)]
data = {s: [rng.standard_normal(s) for _ in range(world)] for s in shapes}

for shape, per_rank in data.items():
    reference = {"sum": np.sum(per_rank, axis=0), "mean": np.mean(per_rank, axis=0),
                 "max": np.max(per_rank, axis=0), "min": np.min(per_rank, axis=0)}
    for op, expected in reference.items():
        t = gf.tensor(per_rank[rank].copy(), dtype="float64")
        assert dist.all_reduce(t, op=op) is t
        np.testing.assert_allclose(t.numpy(), expected, rtol=1e-14, atol=1e-14, err_msg=f"{op} {shape}")

# float32 and integer sums; a non-contiguous (transposed) tensor keeps its values and shape.
t = gf.tensor(np.full(6, rank + 1, dtype=np.int64))
np.testing.assert_array_equal(dist.all_reduce(t).numpy(), np.full(6, world * (world + 1) // 2))
base = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(world)]
t = gf.tensor(base[rank].copy()).transpose()
np.testing.assert_allclose(dist.all_reduce(t).numpy(), np.sum(base, axis=0).T, rtol=1e-6)
assert t.shape == (3, 4)

# broadcast from every root.
for root in range(world):
    t = gf.tensor(data[(3, 4)][rank].copy(), dtype="float64")
    np.testing.assert_array_equal(dist.broadcast(t, root=root).numpy(), data[(3, 4)][root])

dist.barrier()
print(f"OK rank {rank}", flush=True)
