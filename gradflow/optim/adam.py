"""Adam and AdamW (decoupled weight decay), PyTorch's update rules."""
from __future__ import annotations

from ..backends import of_array
from .optimizer import Optimizer, check_hyperparameters


class Adam(Optimizer):
    """Adam: ``m = β1 m + (1-β1) g``, ``v = β2 v + (1-β2) g²``, ``p -= lr m̂ / (√v̂ + ε)``.

    ``weight_decay`` here is L2 (added to the gradient); use AdamW for decoupled decay.

    >>> import gradflow as gf, gradflow.optim
    >>> w = gf.nn.Parameter(gf.ones(2))
    >>> opt = gf.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.tolist()[0], 4)
    0.9
    """

    array_state_keys = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        check_hyperparameters(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        if not all(0 <= b < 1 for b in betas):  # False for NaN, so NaN betas are refused too
            raise ValueError(f"{type(self).__name__} betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, param, grad, state, group):
        backend = of_array(param.data)
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = backend.xp.zeros_like(param.data)
            state["exp_avg_sq"] = backend.xp.zeros_like(param.data)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        backend.kernels.adam_update(param.data, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                                    group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                                    weight_decay=group["weight_decay"], decoupled=self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr·λ`` before the Adam step (default λ = 0.01)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
