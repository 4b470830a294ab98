"""Hessian-vector product vs one gradient, on a 3-layer MLP of about 100k parameters.

Issue 6's bar: ``func.hvp`` costs at most 4x one gradient evaluation (forward + backward).
Both hvp methods are timed in the same run as the gradient, on the same data:

    python -m benchmarks.hvp [--batch 64] [--repeat 20] [--dtype float32]

Counting matmuls per layer: a gradient does 3 (forward, dX, dW); forward-over-reverse does those
3 plus their tangents (2 for the forward product rule, 4 for the backward's); reverse-over-reverse
does about as many matmuls but fewer elementwise ops, and measured faster, so it is the default.
Time with one BLAS thread (OPENBLAS_NUM_THREADS=1) on a shared machine, or the medians wander.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import func

SIZES = (256, 256, 128, 10)   # 256·256 + 256·128 + 128·10 = 99,584 weights


def make_problem(batch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = gf.tensor(rng.standard_normal((batch, SIZES[0])).astype(dtype))
    y = gf.tensor(rng.integers(0, SIZES[-1], size=batch))
    weights = tuple(gf.tensor((rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype))
                    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]))

    def objective(*weights):
        h = x
        for i, W in enumerate(weights):
            h = F.linear(h, W)
            if i < len(weights) - 1:
                h = gf.tanh(h)
        return F.cross_entropy(h, y) + F.l2_penalty(weights, 1e-4)

    tangents = tuple(gf.tensor(rng.standard_normal(W.shape).astype(dtype)) for W in weights)
    return objective, weights, tangents


def best_of(fn, repeat):
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args(argv)

    objective, weights, tangents = make_problem(args.batch, args.dtype)
    n_params = sum(W.data.size for W in weights)
    gradient = func.grad(objective, argnums=tuple(range(len(weights))))
    grad_min, grad_median = best_of(lambda: gradient(*weights), args.repeat)
    print(f"3-layer MLP {'-'.join(map(str, SIZES))}, {n_params:,} parameters, batch {args.batch}, {args.dtype}")
    print(f"{'':24s}{'best ms':>10s}{'median ms':>11s}{'x grad':>8s}")
    print(f"{'gradient':24s}{grad_min * 1e3:10.2f}{grad_median * 1e3:11.2f}{1.0:8.2f}")
    ratios = {}
    for method in ("forward-over-reverse", "reverse-over-reverse"):
        t_min, t_median = best_of(lambda: func.hvp(objective, weights, tangents, method=method), args.repeat)
        ratios[method] = t_min / grad_min
        print(f"{'hvp ' + method:24s}{t_min * 1e3:10.2f}{t_median * 1e3:11.2f}{ratios[method]:8.2f}")
    ratio = ratios["reverse-over-reverse"]  # func.hvp's default method
    print(f"hvp (default method) / gradient = {ratio:.2f}x (bar: <= 4x) {'OK' if ratio <= 4 else 'OVER'}")
    return 0 if ratio <= 4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
