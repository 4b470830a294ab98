"""Under mpirun -n 2 on a machine with two GPUs: NCCL collectives on CUDA tensors equal the host reference."""
import numpy as np

import gradflow as gf
import gradflow.distributed as dist

rank, world = dist.init(backend="nccl", timeout=60)
rng = np.random.default_rng(11)
per_rank = [rng.standard_normal((64, 33)) for _ in range(world)]
t = gf.tensor(per_rank[rank].copy(), dtype="float64", device="cuda")
assert dist.runtime.communicator_for(t.data).name == "nccl"
np.testing.assert_allclose(dist.all_reduce(t, op="mean").numpy(), np.mean(per_rank, axis=0), rtol=1e-14)
t = gf.tensor(per_rank[rank].astype(np.float32), device="cuda")
np.testing.assert_array_equal(dist.broadcast(t, root=1).numpy(), per_rank[1].astype(np.float32))

# Packed gradients of two dtypes: one NCCL all-reduce each.
params = [gf.tensor(np.zeros(5), dtype=d, device="cuda", requires_grad=True) for d in ("float32", "float64")]
for p in params:
    p.grad = gf.tensor(np.full(5, rank + 1.0), dtype=p.dtype, device="cuda")
dist.reduce_gradients(params)
for p in params:
    np.testing.assert_array_equal(p.grad.numpy(), np.full(5, (world + 1) / 2))
print(f"OK rank {rank}", flush=True)
