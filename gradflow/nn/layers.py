"""Layers with state or structure: Linear, Sequential, Dropout, Flatten, Unflatten, MLP."""
from __future__ import annotations

import math

from .. import creation, dtypes as _dtypes, ops
from . import functional as F, init
from .activations import ACTIVATION_MODULES
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """``y = x Wᵀ + b`` with ``weight`` shaped (out_features, in_features), PyTorch's default init.

    >>> import gradflow as gf
    >>> gf.nn.Linear(3, 2)(gf.ones(5, 3)).shape
    (5, 2)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, device=None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear needs positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = _dtypes.resolve(dtype) or _dtypes.default_float()
        self.weight = Parameter(creation.empty(out_features, in_features, dtype=dtype, device=device))
        self.bias = Parameter(creation.empty(out_features, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default: kaiming_uniform(a=√5) gives U(±1/√fan_in) for the weight, and the
        # bias uses the same bound, so outputs start with roughly unit-scale variance.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x, activation=None):
        """``activation`` (a name) applies φ in the same op when it can (``F.linear_act``):
        how ``MLP`` fuses each hidden layer with its activation."""
        if activation is None:
            return F.linear(x, self.weight, self.bias)
        return F.linear_act(x, self.weight, self.bias, activation)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _NumberedChildren(Module):
    """Children named "0", "1", ... in order: what Sequential and ModuleList share. A slice gives
    a new container of the same kind (``_of``) holding the same modules."""

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        children = list(self._modules.values())
        if isinstance(index, slice):
            return self._of(children[index])
        return children[index]

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class Sequential(_NumberedChildren):
    """Calls its modules in order; children are named "0", "1", ..."""

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            self.add_module(str(index), module)

    @staticmethod
    def _of(children):
        return Sequential(*children)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(_NumberedChildren):
    """Holds modules in a list, registered as children "0", "1", ... (PyTorch's ModuleList); it has
    no forward of its own.

    >>> import gradflow as gf
    >>> layers = gf.nn.ModuleList([gf.nn.Linear(2, 2) for _ in range(3)])
    >>> len(layers), [name for name, _ in layers.named_parameters()][-1]
    (3, '2.bias')
    """

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    @staticmethod
    def _of(children):
        return ModuleList(children)

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self


class Dropout(Module):
    """Inverted dropout in training mode; the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Flattens dimensions ``start_dim..end_dim`` (all but the batch dimension by default)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return ops.flatten(x, self.start_dim, self.end_dim)


class Unflatten(Module):
    """Splits dimension ``dim`` into ``unflattened_size`` (PyTorch's Unflatten): (N, 64) -> (N, 1, 8, 8)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(int(s) for s in unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        return ops.reshape(x, x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


def _activation_module(activation):
    if isinstance(activation, str):
        if activation not in ACTIVATION_MODULES:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATION_MODULES)}")
        return ACTIVATION_MODULES[activation]()
    if isinstance(activation, Module):
        raise TypeError("MLP needs an activation name or a Module class (one instance per layer), "
                        f"got the instance {activation!r}")
    return activation()


class MLP(Sequential):
    """Linear layers of ``sizes`` (input, hidden..., output) with ``activation`` between them.

    ``MLP([64, 256, 10])`` is the textbook network ``o = W2 φ(W1 x + b1) + b2``; parameters are
    named like a Sequential ("0.weight", "2.weight"). ``dropout`` adds Dropout after each activation.

    ``fused=True`` (the default) runs each hidden Linear and its activation as one op
    (``linear_relu``...) where the activation allows it (see ``F.linear_act``); the modules,
    parameter names and results are the same either way, so a checkpoint loads into both.
    ``fused=False`` records the textbook graph op by op (``linear`` then ``relu``).

    >>> import gradflow as gf
    >>> gf.nn.MLP([4, 8, 3], activation="tanh")(gf.ones(2, 4)).shape
    (2, 3)
    """

    def __init__(self, sizes, activation="relu", dropout=0.0, bias=True, dtype=None, device=None,
                 fused=True):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got {sizes}")
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, bias=bias, dtype=dtype, device=device))
            if i < len(sizes) - 2:
                layers.append(_activation_module(activation))
                if dropout:
                    layers.append(Dropout(dropout))
        super().__init__(*layers)
        self.sizes = sizes
        self.activation = activation if isinstance(activation, str) else getattr(activation, "__name__", "custom")
        self.fused = bool(fused)

    def forward(self, x):
        if not self.fused:
            return super().forward(x)
        modules = list(self._modules.values())
        index = 0
        while index < len(modules):
            module = modules[index]
            following = modules[index + 1] if index + 1 < len(modules) else None
            fused_name = getattr(following, "fused_name", None)
            if isinstance(module, Linear) and module.bias is not None and fused_name in F.FUSED_ACTIVATIONS:
                x = module(x, activation=fused_name)
                index += 2
            else:
                x = module(x)
                index += 1
        return x
