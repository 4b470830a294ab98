"""The digits CNN's max-pool and batch-norm primitives on arrays, each beside its plain path.

    python -m benchmarks.cnn_layers [--repeat 300] [--rounds 7]

At the two blocks' shapes (batch 64: 16×8×8 and 32×4×4 float32), one thread, process CPU time,
best of ``--rounds`` rounds of ``--repeat`` calls, in one process:

- max_pool2d(2) forward and its backward scatter: the tiling fast path (ops/pool_tiles.py)
  against the general window path (``window_max`` / ``window_scatter_cols``) it must equal;
- batch_norm's training forward (with the running-statistics update) and first-order backward,
  against the same formulas with NumPy's reductions over axes (0, 2, 3) and the running update's
  own mean/variance pass (how the primitive computed them before).

Set OPENBLAS/OMP_NUM_THREADS=1 yourself for one thread (none of these calls a GEMM).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

SHAPES = ((64, 16, 8, 8), (64, 32, 4, 4))


def _best(call, repeat, rounds):
    for _ in range(10):
        call()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(repeat):
            call()
        best = min(best, (time.process_time() - started) / repeat)
    return best


def _plain_batch_norm(x, weight, bias, running_mean, running_var, momentum=0.1, eps=1e-5):
    """The forward as written with NumPy's middle-axis reductions, running update apart."""
    axes, m = (0, 2, 3), x.size // x.shape[1]
    running_mean *= 1 - momentum
    running_mean += momentum * x.mean(axis=axes)
    running_var *= 1 - momentum
    running_var += momentum * x.var(axis=axes) * (m / (m - 1))
    xhat = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt((xhat * xhat).mean(axis=axes, keepdims=True) + np.float32(eps))
    xhat *= inv_std
    return xhat * weight[:, None, None] + bias[:, None, None], xhat, inv_std


def _plain_batch_norm_backward(g, weight, xhat, inv_std):
    axes, shape = (0, 2, 3), (1, -1, 1, 1)
    m = g.size // g.shape[1]
    g_bias, g_weight = g.sum(axis=axes), (g * xhat).sum(axis=axes)
    gx = g - (g_bias / m).reshape(shape)
    gx -= xhat * (g_weight / m).reshape(shape)
    gx *= (weight * inv_std.reshape(-1)).reshape(shape)
    return gx, g_weight, g_bias


class _Ctx:
    """What a node hands the fast batch-norm rule: its saved arrays and which inputs need grads."""

    needs_input_grad = (True, True, True)

    def __init__(self, saved):
        self.saved = saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    import gradflow as gf
    from gradflow.backends import of_array
    from gradflow.ops import norm, pool

    rng = np.random.default_rng(0)
    params = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
    print(f"{'primitive':<34} {'shape':<16} {'gradflow':>9} {'plain':>9}   (ms, best of {args.rounds} × {args.repeat})")

    def row(name, shape, fast, plain):
        f, p = (_best(c, args.repeat, args.rounds) * 1e3 for c in (fast, plain))
        print(f"{name:<34} {'x'.join(map(str, shape)):<16} {f:>9.3f} {p:>9.3f}")

    for shape in SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        backend, c = of_array(x), shape[1]
        _, index = pool._max_pool2d.forward(backend, x, **params)
        g = rng.standard_normal(index.shape).astype(np.float32)
        row("max_pool2d(2) forward", shape, lambda: pool._max_pool2d.forward(backend, x, **params),
            lambda: pool.window_max(backend, x, **params))
        row("max_pool2d(2) backward scatter", shape,
            lambda: pool.window_scatter.forward(backend, g, index, shape[2:], **params),
            lambda: pool.window_scatter_cols(backend, g, index, shape[2:], **params))
        weight, bias = np.ones(c, np.float32), np.zeros(c, np.float32)
        running = (gf.zeros(c), gf.ones(c), 0.1)
        plain_running = (np.zeros(c, np.float32), np.ones(c, np.float32))
        row("batch_norm forward + running stats", shape,
            lambda: norm._batch_norm.forward(backend, x, weight, bias, eps=1e-5, running=running),
            lambda: _plain_batch_norm(x, weight, bias, *plain_running))
        _, xhat, inv_std = norm._batch_norm.forward(backend, x, weight, bias, eps=1e-5)
        gy = rng.standard_normal(shape).astype(np.float32)
        ctx = _Ctx((weight, xhat, inv_std))
        row("batch_norm backward (first order)", shape, lambda: norm._batch_norm_arrays(ctx, gy),
            lambda: _plain_batch_norm_backward(gy, weight, xhat, inv_std))


if __name__ == "__main__":
    main()
