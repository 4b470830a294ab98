"""Finite-difference checks of gradients: ``gradcheck`` (first order) and ``gradgradcheck``.

The check is projected: one backward with a random cotangent ``u`` gives ``Jᵀu``, and central
differences give ``uᵀ ∂f/∂xᵢ`` for every input element i. The two agree for every i only if the
VJP is right (a wrong rule would have to be orthogonal to a random u to slip through).
"""
from __future__ import annotations

import numpy as np

from ..errors import GradflowError
from . import grad_mode
from .engine import grad as autograd_grad


class GradcheckError(GradflowError, AssertionError):
    """An analytical gradient disagreed with finite differences."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    return out if isinstance(out, (tuple, list)) else (out,)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check the gradients of ``fn`` at ``inputs`` against central differences (use float64)."""
    from ..tensor import Tensor

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    differentiable = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not differentiable:
        raise GradcheckError("gradcheck needs at least one input with requires_grad=True")
    rng = np.random.default_rng(seed)
    outputs = _outputs(fn, inputs)
    kept = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    if not kept:
        raise GradcheckError("none of fn's outputs requires grad")
    cotangents = [Tensor(rng.standard_normal(o.shape).astype(o.dtype)) for o in kept]
    analytical = autograd_grad(kept, [inputs[i] for i in differentiable], cotangents, allow_unused=True)

    def projected(values):
        total = 0.0
        outs = [o for o in _outputs(fn, values) if isinstance(o, Tensor) and o.dtype.kind == "f"]
        for o, u in zip(outs[:len(cotangents)], cotangents):
            total += float((o.data * u.data).sum())
        return total

    # Grad mode stays on: gradgradcheck's fn calls grad() inside.
    with grad_mode.enable_grad():
        for k, i in enumerate(differentiable):
            x = inputs[i]
            base = x.data.copy()
            numerical = np.zeros(base.shape)
            for flat in range(base.size):
                position = np.unravel_index(flat, base.shape)
                shifted = []
                for sign in (1, -1):
                    moved = base.copy()
                    moved[position] += sign * eps
                    values = list(inputs)
                    values[i] = Tensor(moved, requires_grad=True)
                    shifted.append(projected(values))
                numerical[position] = (shifted[0] - shifted[1]) / (2 * eps)
            got = np.zeros(base.shape) if analytical[k] is None else np.asarray(analytical[k].numpy(), float)
            if not np.allclose(got, numerical, atol=atol, rtol=rtol):
                worst = np.unravel_index(np.argmax(np.abs(got - numerical)), base.shape) if base.ndim else ()
                message = (f"gradient of input {i} (shape {base.shape}) disagrees with finite differences: "
                           f"analytical {got[worst]!r} vs numerical {numerical[worst]!r} at index {worst}\n"
                           f"analytical:\n{got}\nnumerical:\n{numerical}")
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=1):
    """Check second derivatives: gradcheck of the VJP ``(x, u) -> Jᵀu`` built with create_graph."""
    from ..tensor import Tensor

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    rng = np.random.default_rng(seed)
    outputs = [o for o in _outputs(fn, inputs) if isinstance(o, Tensor) and o.requires_grad]
    cotangents = [Tensor(rng.standard_normal(o.shape).astype(o.dtype), requires_grad=True) for o in outputs]
    differentiable = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    n_inputs = len(inputs)

    def first_derivative(*values):
        xs, us = values[:n_inputs], values[n_inputs:]
        outs = [o for o in _outputs(fn, xs) if isinstance(o, Tensor) and o.requires_grad]
        grads = autograd_grad(outs, [xs[i] for i in differentiable], list(us), create_graph=True,
                              allow_unused=True)
        return tuple(g for g in grads if g is not None and g.requires_grad)

    return gradcheck(first_derivative, tuple(inputs) + tuple(cotangents), eps, atol, rtol, raise_exception)
