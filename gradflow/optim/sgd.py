"""SGD with momentum, dampening, Nesterov momentum and (L2) weight decay. A group's parameters
are updated by one multi-tensor kernel call (``sgd_update_multi``: one launch on a GPU)."""
from __future__ import annotations

from ..backends import of_array
from .optimizer import Optimizer, check_hyperparameters, placement


class SGD(Optimizer):
    """PyTorch's SGD: ``d = g + λp``; ``b = μb + (1-τ)d`` (``b = d`` at first); ``p -= lr·(d + μb if nesterov else b)``.

    ``weight_decay`` λ adds ``λp`` to the gradient, the same update as putting the textbook's
    ``λ/2 Σ‖W‖²`` (``nn.functional.l2_penalty``) into the loss.

    >>> import gradflow as gf, gradflow.optim
    >>> w = gf.nn.Parameter(gf.ones(2))
    >>> opt = gf.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.tolist()
    [0.800000011920929, 0.800000011920929]
    """

    array_state_keys = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        check_hyperparameters("SGD", lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update_group(self, params, group):
        # One kernel call per (device, dtype, first step or not): normally the whole group.
        momentum = group["momentum"]
        batches = {}
        for p in params:
            state = self.state.setdefault(p, {})
            first_step = bool(momentum) and state.get("momentum_buffer") is None
            if first_step:
                backend = of_array(p.data)
                with backend.device_scope(p.data):  # on the parameter's GPU
                    state["momentum_buffer"] = backend.xp.zeros_like(p.data)
            key = placement(p._data) + (first_step,)
            batches.setdefault(key, []).append((p, state))
        for (_, _, _, first_step), batch in batches.items():
            of_array(batch[0][0].data).kernels.sgd_update_multi(
                [p.data for p, _ in batch], [p._grad.data for p, _ in batch],
                [s["momentum_buffer"] for _, s in batch] if momentum else None, group["lr"],
                momentum=momentum, dampening=group["dampening"], weight_decay=group["weight_decay"],
                nesterov=group["nesterov"], first_step=first_step)

    def _update(self, param, grad, state, group):
        kernels = of_array(param.data).kernels
        momentum = group["momentum"]
        buffer = state.get("momentum_buffer")
        first_step = False
        if momentum and buffer is None:
            backend = of_array(param.data)
            with backend.device_scope(param.data):  # on the parameter's GPU, not the current one
                buffer = state["momentum_buffer"] = backend.xp.zeros_like(param.data)
            first_step = True
        kernels.sgd_update(param.data, grad, buffer, group["lr"], momentum=momentum,
                           dampening=group["dampening"], weight_decay=group["weight_decay"],
                           nesterov=group["nesterov"], first_step=first_step)
