"""GradScaler: dynamic loss scaling for mixed precision, PyTorch's ``torch.amp.GradScaler`` shape.

Half-precision gradients below ~6e-8 flush to zero. Multiplying the loss by a large ``scale``
before backward lifts them into range; ``step`` divides the gradients by it again (in their own
dtype: float32 for float32 master weights) and skips the optimizer step when any gradient is
inf or NaN, and ``update`` halves the scale after such a step and doubles it after
``growth_interval`` clean ones.

Deciding whether to skip reads one flag from the device: one device-to-host copy per step, as
in PyTorch.
"""
from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..backends import of_array


class GradScaler:
    """``scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()``.

    >>> import gradflow as gf
    >>> w = gf.nn.Parameter(gf.ones(2))
    >>> opt, scaler = gf.optim.SGD([w], lr=0.5), gf.optim.GradScaler(init_scale=1024.0)
    >>> scaler.scale((w * w).sum()).backward()
    >>> scaler.step(opt); scaler.update()
    >>> w.tolist(), w.grad.tolist()
    ([0.0, 0.0], [2.0, 2.0])
    """

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if not (init_scale > 0 and math.isfinite(init_scale)):
            raise ValueError(f"GradScaler init_scale must be a positive finite number, got {init_scale}")
        if not growth_factor > 1.0 or not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler needs growth_factor > 1 and 0 < backoff_factor < 1, got "
                             f"{growth_factor} and {backoff_factor}")
        if growth_interval < 1:
            raise ValueError(f"GradScaler growth_interval must be >= 1, got {growth_interval}")
        self.enabled = enabled
        self._scale = float(init_scale)
        self.growth_factor, self.backoff_factor = growth_factor, backoff_factor
        self.growth_interval = growth_interval
        self._clean_steps = 0
        self._found_inf = None  # per step: None (not unscaled yet), False or True
        self.skipped_steps = 0

    def get_scale(self) -> float:
        return self._scale if self.enabled else 1.0

    def scale(self, loss):
        """``loss * scale`` (the loss itself when disabled)."""
        return loss * self._scale if self.enabled else loss

    @no_grad()
    def unscale_(self, optimizer):
        """Divide the optimizer's gradients by the scale in place and note whether any is inf/NaN."""
        if not self.enabled or self._found_inf is not None:
            return
        inverse = 1.0 / self._scale
        checks, xp, seen = [], None, set()
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p._grad is None:  # ._grad: reading .grad would hand the engine's buffer out
                    continue
                g = p._grad.data
                # Leaves may share one gradient array (both inputs of an add get the same g):
                # unscale each buffer once.
                address = (g.data.ptr if hasattr(g.data, "ptr") else g.ctypes.data, g.nbytes)
                if address in seen:
                    continue
                seen.add(address)
                g *= g.dtype.type(inverse)
                xp = of_array(g).xp
                checks.append(xp.isfinite(g).all())  # stays on the device
        # One read for all gradients: the step's only device-to-host copy.
        self._found_inf = bool(checks) and not bool(xp.stack(checks).all())

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step()`` on unscaled gradients, skipped when one of them is inf or NaN."""
        if not self.enabled:
            return optimizer.step(*args, **kwargs)
        self.unscale_(optimizer)
        if self._found_inf:
            self.skipped_steps += 1
            return None
        return optimizer.step(*args, **kwargs)

    def update(self):
        """Back off after a skipped step; grow after ``growth_interval`` clean ones."""
        if not self.enabled:
            return
        if self._found_inf:
            self._scale *= self.backoff_factor
            self._clean_steps = 0
        elif self._found_inf is not None:
            self._clean_steps += 1
            if self._clean_steps == self.growth_interval:
                self._scale *= self.growth_factor
                self._clean_steps = 0
        self._found_inf = None

    def state_dict(self):
        return {"scale": self._scale, "growth_factor": self.growth_factor,
                "backoff_factor": self.backoff_factor, "growth_interval": self.growth_interval,
                "clean_steps": self._clean_steps}

    def load_state_dict(self, state):
        self._scale = float(state["scale"])
        self.growth_factor, self.backoff_factor = state["growth_factor"], state["backoff_factor"]
        self.growth_interval, self._clean_steps = state["growth_interval"], state["clean_steps"]
