"""getitem's backward: x[idx] (256 random rows, repeats) and x[mask] forward+backward on a
(256, 1024) float32 tensor, NumPy's ``add.at`` (the old route) against gradflow/backends/index_add.py,
alternating per step so machine load hits both alike. ``python -m benchmarks.index_backward``."""
import time
import numpy as np
import gradflow as gf
from gradflow.backends import Backend

IMPLS = {"add.at": lambda self, out, index, values: np.add.at(out, index, values), "new": Backend.index_add}
rng = np.random.default_rng(0)
x = gf.tensor(rng.standard_normal((256, 1024)).astype(np.float32), requires_grad=True)
idx = gf.tensor(rng.integers(0, 256, 256))
mask = gf.tensor(rng.random((256, 1024)) < 0.5)


def step(index):
    x.grad = None
    x[index].sum().backward()
    return x.grad.numpy()


for label, index in (("x[idx]", idx), ("x[mask]", mask)):
    grads = {}
    for key, impl in IMPLS.items():
        Backend.index_add = impl
        grads[key] = step(index).copy()
    assert np.array_equal(grads["add.at"], grads["new"])
    for clock in (time.perf_counter, time.thread_time):
        times = {key: [] for key in IMPLS}
        for r in range(200):
            for key in (list(IMPLS) if r % 2 else list(IMPLS)[::-1]):
                Backend.index_add = IMPLS[key]
                start = clock()
                step(index)
                times[key].append(clock() - start)
        o, n = np.array(times["add.at"]) * 1e3, np.array(times["new"]) * 1e3
        print(f"{label} [{clock.__name__}] median {np.median(o):.2f} ms (add.at) -> {np.median(n):.2f} ms (new), "
              f"min {o.min():.2f} -> {n.min():.2f}; paired ratio median {np.median(o / n):.2f}x "
              f"(IQR {np.percentile(o / n, 25):.2f}-{np.percentile(o / n, 75):.2f})")
Backend.index_add = IMPLS["new"]
