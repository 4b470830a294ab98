"""JAX on the CPU, op by op (``jax``) and compiled with ``jax.jit`` (``jax-jit``).

Results are blocked on (``block_until_ready``) so asynchronous dispatch is not mistaken for speed,
and data is passed as arguments, never closed over: a jitted closure would let XLA constant-fold
part of the work at compile time.
"""
from __future__ import annotations

from ..workloads import LAMBDA, LR, chain_length
from . import Unsupported

try:
    import jax
    import jax.numpy as jnp
    AVAILABLE, MISSING = True, ""
except ImportError:  # an optional contender
    jax = jnp = None
    AVAILABLE, MISSING = False, "jax is not installed (pip install jax jaxlib)"


def mlp_loss(params, x, labels, lam=LAMBDA):
    h = x
    last = len(params) - 1
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        if i < last:
            h = jnp.maximum(h, 0)
    logp = jax.nn.log_softmax(h, axis=1)
    loss = -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))
    return loss + sum(jnp.sum(w * w) for w, _ in params) * (lam / 2)


def chain(x, y, repeats):
    t = x
    for _ in range(repeats):
        t = jnp.tanh(((t * y) + x) * y - x)
    return jnp.sum(t)


def build(case, jit):
    wrap = jax.jit if jit else (lambda f, **kw: f)
    a = case.arrays
    if case.workload.startswith("chain"):
        x, y = jnp.asarray(a["x"]), jnp.asarray(a["y"])
        repeats = chain_length(case.workload) // 5
        grad = wrap(jax.grad(chain, argnums=(0, 1)), static_argnums=2)
        return lambda: jax.block_until_ready(grad(x, y, repeats))
    if case.workload not in ("mlp", "deep", "mlp_step", "hvp"):
        raise Unsupported(case.workload)
    x, labels = jnp.asarray(a["x"]), jnp.asarray(a["labels"])
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in a["layers"]]
    if case.workload == "hvp":
        vs = [(jnp.asarray(vw), jnp.asarray(vb)) for vw, vb in a["v"]]

        def dot(p, x, labels, vs):  # reverse over reverse, as the other contenders do it
            grads = jax.grad(mlp_loss)(p, x, labels)
            return sum(jnp.vdot(gw, vw) + jnp.vdot(gb, vb) for (gw, gb), (vw, vb) in zip(grads, vs))
        hvp = wrap(jax.grad(dot))
        return lambda: jax.block_until_ready(hvp(params, x, labels, vs))
    grad = jax.grad(mlp_loss)
    if case.workload == "mlp_step":
        def sgd(p, x, labels):
            grads = grad(p, x, labels)
            return [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(p, grads)]
        update = wrap(sgd)
        state = {"params": params}

        def step():
            state["params"] = jax.block_until_ready(update(state["params"], x, labels))
        return step
    grad = wrap(grad)
    return lambda: jax.block_until_ready(grad(params, x, labels))
