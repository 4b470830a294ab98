"""Activation modules: thin wrappers over the activation primitives (no parameters).

``fused_name`` names the activation a preceding Linear can apply in its own op (``MLP`` fuses
them, see ``F.linear_act``); None where the module's φ has no fused form.
"""
from __future__ import annotations

from .. import ops
from . import functional as F
from .module import Module


class ReLU(Module):
    fused_name = "relu"

    def forward(self, x):
        return ops.relu(x)


class GELU(Module):
    """GELU; ``approximate="tanh"`` selects the tanh approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return ops.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return "" if self.approximate == "none" else f"approximate={self.approximate!r}"


class Sigmoid(Module):
    fused_name = "sigmoid"

    def forward(self, x):
        return ops.sigmoid(x)


class Tanh(Module):
    fused_name = "tanh"

    def forward(self, x):
        return ops.tanh(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, and x where ``beta x > threshold`` (PyTorch's arguments).

    With the defaults (beta 1, threshold 20) it is the softplus primitive alone, as the fused
    ``linear_softplus`` a preceding Linear may merge it into: fused and op-by-op MLPs then record
    the same graph and keep the same bytes. The primitive has no threshold; past 20 it differs
    from x by less than exp(-20) relative (nothing in float32)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        if beta <= 0:
            raise ValueError(f"Softplus beta must be positive, got {beta}")
        self.beta = float(beta)
        self.threshold = threshold

    @property
    def fused_name(self):
        return "softplus" if self.beta == 1.0 else None

    def forward(self, x):
        if self.beta == 1.0 and self.threshold == 20.0:
            return ops.softplus(x)
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        parts = ([] if self.beta == 1.0 else [f"beta={self.beta}"]) + (
            [] if self.threshold == 20.0 else [f"threshold={self.threshold}"])
        return ", ".join(parts)


class _Elementwise(Module):
    """An activation without parameters: ``forward`` applies the functional ``function``."""

    function = None

    def forward(self, x):
        return type(self).function(x)


class SELU(_Elementwise):
    function = staticmethod(F.selu)


class Mish(_Elementwise):
    function = staticmethod(F.mish)


class Hardswish(_Elementwise):
    function = staticmethod(F.hardswish)


class Hardsigmoid(_Elementwise):
    function = staticmethod(F.hardsigmoid)


class LogSigmoid(_Elementwise):
    function = staticmethod(F.logsigmoid)


class Softsign(_Elementwise):
    function = staticmethod(F.softsign)


class ReLU6(_Elementwise):
    function = staticmethod(F.relu6)


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class CELU(ELU):
    def forward(self, x):
        return F.celu(x, self.alpha)


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh min_val {min_val} is above max_val {max_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Softmin(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmin(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


# Names the ``MLP(activation=...)`` argument and the CLI's ``--activation`` accept.
ACTIVATION_MODULES = {"relu": ReLU, "gelu": GELU, "sigmoid": Sigmoid, "tanh": Tanh,
                      "leaky_relu": LeakyReLU, "softplus": Softplus}
ACTIVATION_MODULES.update({"elu": ELU, "selu": SELU, "celu": CELU, "mish": Mish, "hardswish": Hardswish,
                           "hardsigmoid": Hardsigmoid, "softsign": Softsign, "relu6": ReLU6, "hardtanh": Hardtanh})
