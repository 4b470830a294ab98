"""Optimizer: parameter groups, per-parameter state, zero_grad, and a checked state_dict.

Subclasses implement ``_update(param, grad_array, state, group)``; the math itself lives in the
backend kernel table (``sgd_update``, ``adam_update``) so a CUDA twin runs the same rule on the
GPU. Updates act in place on ``p.data`` and never record a graph.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.graph import increment_version
from ..backends import NUMPY, device_of_array, of_array
from ..errors import ShapeError
from ..tensor import Tensor


def check_hyperparameters(owner, **values):
    """Raise ValueError naming the first hyperparameter that is NaN, infinite or negative.

    ``x < 0`` is False for NaN, so a plain sign test would let NaN through to the update.
    """
    for name, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value}")


def placement(array):
    """(array type, device name, dtype): what the arrays one multi-tensor kernel call updates
    share. Read off the array (``Tensor.device`` and ``.dtype`` are Python properties)."""
    if type(array) is np.ndarray:
        return np.ndarray, "cpu", array.dtype
    return type(array), str(device_of_array(array)), array.dtype


_CHECKED = ("lr", "momentum", "dampening", "weight_decay", "eps")  # numbers every group must hold finite


class Optimizer:
    """Base class. ``params`` is an iterable of Tensors or of dicts ``{"params": [...], "lr": ...}``."""

    # Per-parameter state entries that are arrays shaped like the parameter (others are numbers).
    array_state_keys: tuple = ()

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        self.state = {}
        seen = set()
        for group in groups:
            group = dict(group)
            group["params"] = list(group["params"])
            for p in group["params"]:
                if not isinstance(p, Tensor):
                    raise TypeError(f"optimizer params must be Tensors, got {type(p).__name__}")
                if not p.is_leaf:
                    raise ValueError("optimizer can only update leaf tensors (a parameter, not a result of ops)")
                if id(p) in seen:
                    raise ValueError("a parameter appears twice in the optimizer's parameter groups")
                seen.add(id(p))
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            check_hyperparameters(f"{type(self).__name__} param group {len(self.param_groups)}",
                                  **{k: v for k, v in group.items() if k in _CHECKED and k in self.defaults})
            self.param_groups.append(group)

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                # ._grad, not .grad: reading .grad hands the array to the caller, and the engine
                # then stops adding into it in place (autograd/engine.py [who owns a gradient array]).
                if set_to_none or p._grad is None:
                    p._grad, p._grad_owned = None, False  # the .grad setter's work for None
                else:
                    p._grad.data[...] = 0
                    increment_version(p._grad)  # a graph may have saved it (create_graph)

    @no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a ``.grad``; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            from ..autograd.grad_mode import enable_grad

            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p._grad is not None]  # ._grad: see zero_grad
            self._update_group(params, group)
            for p in params:
                increment_version(p)  # graphs that saved p can no longer backward through it
        return loss

    def _update_group(self, params, group):
        """Update every parameter of ``group`` that has a gradient; an optimizer with a
        multi-tensor kernel (Adam) overrides this to update them in one launch."""
        for p in params:
            self._update(p, p._grad.data, self.state.setdefault(p, {}), group)

    def _update(self, param, grad, state, group):
        raise NotImplementedError

    def _state_dtype(self, param, name):
        """The dtype state entry ``name`` is kept in for ``param`` (its own, unless overridden)."""
        return param.dtype

    # ----- state_dict --------------------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{hyperparameters, "params": [indices]}]}``.

        Parameters are named by their position across groups, so the dict holds no Tensors and can
        be loaded into an optimizer built over another copy of the model.
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state; checks everything first so a mismatch never half-loads."""
        groups = state_dict.get("param_groups")
        saved_state = state_dict.get("state", {})
        if not isinstance(groups, list) or len(groups) != len(self.param_groups):
            raise ValueError(f"optimizer state_dict has {len(groups) if isinstance(groups, list) else 'no'} "
                             f"parameter groups, this optimizer has {len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved.get("params", ())) != len(own["params"]):
                raise ValueError(f"optimizer state_dict group {i} has {len(saved.get('params', ()))} parameters, "
                                 f"this optimizer's has {len(own['params'])}")
        params = self._params()
        by_index = {}
        for group_saved, own in zip(groups, self.param_groups):
            by_index.update(zip((int(i) for i in group_saved["params"]), own["params"]))
        new_state = {}
        for key, entry in saved_state.items():
            key = int(key)
            if key not in by_index:
                raise ValueError(f"optimizer state_dict has state for parameter {key}, but there are only "
                                 f"{len(params)} parameters")
            p = by_index[key]
            unknown = set(entry) - set(self.array_state_keys) - {"step"}
            if unknown:
                raise ValueError(f"optimizer state_dict: unknown state {sorted(unknown)} for parameter {key} "
                                 f"({type(self).__name__} keeps {list(self.array_state_keys) + ['step']})")
            staged = {}
            for name, value in entry.items():
                if name == "step":
                    staged[name] = int(value)
                    continue
                array = value.data if isinstance(value, Tensor) else value
                if tuple(array.shape) != p.shape:
                    raise ShapeError(f"optimizer state_dict: {name} of parameter {key} has shape "
                                     f"{tuple(array.shape)}, the parameter has shape {p.shape}")
                staged[name] = _copy_like(p.data, array, self._state_dtype(p, name))
            new_state[p] = staged
        for group_saved, own in zip(groups, self.param_groups):
            own.update({k: v for k, v in group_saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            settings = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {settings}")
        return "\n".join(lines + [")"])


def _copy_like(like, array, dtype=None):
    """A fresh array with ``like``'s backend and dtype (or ``dtype``) holding ``array``'s values."""
    backend = of_array(like)
    try:
        host = of_array(array).to_numpy(array)
    except Exception:  # plain NumPy-compatible data (lists, npz members)
        host = np.asarray(array)
    out = host.astype(like.dtype if dtype is None else dtype, copy=True)
    if backend is NUMPY:
        return out
    with backend.device_scope(like):  # on the parameter's GPU (cuda:N), not the current one
        return backend.xp.asarray(out)
