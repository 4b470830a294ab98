"""Adam and AdamW (decoupled weight decay), PyTorch's update rules.

A group's parameters are updated by one multi-tensor kernel call (``adam_update_multi``: one
launch on a GPU, a loop over ``adam_update`` on the CPU). float16 parameters keep float32 master
weights and float32 moments (mixed precision): in half precision the second moment of a gradient
below ~7.7e-3 underflows to 0 and the step divides by eps, and small updates round away.
"""
from __future__ import annotations

import numpy as np

from ..backends import of_array
from .optimizer import Optimizer, check_hyperparameters, placement


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

    array_state_keys = ("exp_avg", "exp_avg_sq", "master_param")
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 capturable=False):
        check_hyperparameters(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        if not all(0 <= b < 1 for b in betas):  # False for NaN, so NaN betas are refused too
            raise ValueError(f"{type(self).__name__} betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        # Note: [capturable Adam]
        # capturable=True (PyTorch's name) keeps the step number in a 1-element int64 array on
        # the parameters' device, incremented there (one small kernel) before the multi-tensor
        # kernel reads it: every step then launches the same kernels with the same argument
        # bytes, which is what a captured CUDA graph replays (a host step count passed by value
        # would be frozen at its captured value). The host-side state["step"] still counts the
        # steps run through Python; after graph replays only the device counter is current.
        self.capturable = bool(capturable)
        self._step_counts = {}  # (array type, device, dtype) -> the device step counter

    def _state_dtype(self, param, name):
        return np.dtype(np.float32) if param.dtype == np.float16 else param.dtype

    def _init_state(self, param, state):
        backend = of_array(param.data)
        dtype = self._state_dtype(param, None)
        if "step" not in state:
            state["step"] = 0
            with backend.device_scope(param.data):
                state["exp_avg"] = backend.xp.zeros(param.shape, dtype)
                state["exp_avg_sq"] = backend.xp.zeros(param.shape, dtype)
        if dtype != param.dtype and "master_param" not in state:
            with backend.device_scope(param.data):
                state["master_param"] = param.data.astype(dtype)

    def _update_group(self, params, group):
        # One kernel call per (device, dtype, step): normally the whole group.
        batches = {}
        for p in params:
            state = self.state.setdefault(p, {})
            self._init_state(p, state)
            state["step"] += 1
            key = placement(p._data) + (state["step"],)
            batches.setdefault(key, []).append((p, state))
        beta1, beta2 = group["betas"]
        for (array_type, device, dtype, step), batch in batches.items():
            states = [state for _, state in batch]
            half = self._state_dtype(batch[0][0], None) != dtype
            extra = {}
            if self.capturable:
                extra["step_count"] = self._device_step(batch[0][0], (array_type, device, dtype), step)
            of_array(batch[0][0].data).kernels.adam_update_multi(
                [p.data for p, _ in batch], [p._grad.data for p, _ in batch],
                [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], step,
                group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                weight_decay=group["weight_decay"], decoupled=self.decoupled,
                masters=[s["master_param"] for s in states] if half else None, **extra)

    def _device_step(self, param, key, step):
        """The device step counter of ``key``'s batch, incremented on the device to ``step``
        (created holding step - 1, the host's count, the first time)."""
        backend = of_array(param.data)
        counter = self._step_counts.get(key)
        with backend.device_scope(param.data):
            if counter is None:
                counter = self._step_counts[key] = backend.xp.asarray(np.array([step - 1], np.int64))
            counter += 1  # in place, on the device: no host value in the launch arguments
        return counter

    def _update(self, param, grad, state, group):
        self._init_state(param, state)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        half = "master_param" in state
        of_array(param.data).kernels.adam_update_multi(
            [param.data], [grad], [state["exp_avg"]], [state["exp_avg_sq"]], state["step"],
            group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], decoupled=self.decoupled,
            masters=[state["master_param"]] if half else None)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr·λ`` before the Adam step (default λ = 0.01)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 capturable=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         capturable=capturable)
