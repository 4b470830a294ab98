"""Module: the base class of layers, with PyTorch's registration, traversal and state_dict rules.

Setting a Parameter or Module as an attribute registers it (in insertion order), so
``named_parameters()`` names follow the attribute path: ``"0.weight"``, ``"mlp.2.bias"``.

# Note: [module path for the memory tracker]
While a module's forward runs, ``__call__`` pushes the module's dotted path onto
``gradflow.autograd.node.module_path`` and every graph node records the innermost entry. Paths
are those of ``named_modules()`` relative to the outermost module called (``"0"``, ``"mlp.0"``);
the outermost module itself, whose named_modules name is ``""``, records its class name so that a
node made by it is still told apart from one made outside any module. A module called from a
module that does not own it (a shared helper) records ``"<caller path>.<ClassName>"``.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import node as _node
from ..autograd.graph import increment_version
from ..backends import for_device, of_array, resolve as resolve_device
from .. import dtypes as _dtypes
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

# (module, path) of each forward now running, outermost first; mirrors node.module_path.
_active: list = []


class Module:
    """Base class: subclass it, assign layers/Parameters in ``__init__``, write ``forward``.

    >>> import gradflow as gf
    >>> class Net(gf.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = gf.nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    >>> [name for name, _ in Net().named_parameters()]
    ['fc.weight', 'fc.bias']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    # ----- registration ---------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                 f"assigning {name!r}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if name in self.__dict__.get("_buffers", ()):
            if value is None or (isinstance(value, Tensor) and not isinstance(value, Parameter)):
                self._buffers[name] = value  # assigning a Tensor to a buffer's name replaces the buffer
            else:
                del self._buffers[name]
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent optional one such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}) needs a Parameter or None, got {type(param).__name__}")
        setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Register ``tensor`` as non-trainable state (BatchNorm's running statistics): it is an
        attribute, moves with ``to()``, and ``state_dict`` carries it unless ``persistent=False``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}) needs a Tensor or None, got {type(tensor).__name__}")
        if isinstance(tensor, Parameter):
            raise TypeError(f"register_buffer({name!r}): a Parameter is trainable; use register_parameter")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer({name!r}): the name is already a parameter or submodule")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def named_buffers(self, prefix=""):
        """(dotted name, buffer) pairs of this module and all below, registration order."""
        for module_name, module in self.named_modules(prefix):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def add_module(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}) needs a Module, got {type(module).__name__}")
        setattr(self, str(name), module)

    # ----- traversal --------------------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module (name ``prefix``) and all below, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            stack.extend(reversed([(f"{name}.{child_name}" if name else child_name, child)
                                   for child_name, child in module._modules.items()]))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs; a Parameter shared by two layers is listed once."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self):
        return (p for _, p in self.named_parameters())

    # ----- modes and gradients --------------------------------------------------------------------
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's ``.grad`` (to None, so the next backward allocates afresh)."""
        for p in self.parameters():
            # ._grad: reading .grad would hand the array out (autograd/engine.py), as in optim.
            if set_to_none or p._grad is None:
                p.grad = None
            else:
                p._grad.data[...] = 0
                increment_version(p._grad)

    # ----- device and dtype ----------------------------------------------------------------------
    def to(self, *args, device=None, dtype=None):
        """Move (``"cuda"``) and/or cast (``gf.float64``) every parameter in place; returns self.

        Parameters keep their identity, so an optimizer built before ``to`` still holds them.
        """
        for arg in args:
            if isinstance(arg, str) or type(arg).__name__ == "Device":
                device = arg
            else:
                dtype = arg
        target = None if device is None else resolve_device(device)
        dtype = _dtypes.resolve(dtype)
        if dtype is not None and dtype.kind != "f":
            raise DTypeError(f"Module.to: parameters must stay floating, got dtype {dtype}")
        for p in self.parameters():
            p.data = _convert(p.data, target, dtype)
            if p.grad is not None:
                p.grad = Tensor(_convert(p.grad.data, target, dtype))
        for b in self.buffers():  # counters (BatchNorm's num_batches_tracked) keep their integer dtype
            b.data = _convert(b.data, target, dtype if b.dtype.kind == "f" else None)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def double(self):
        return self.to(_dtypes.float64)

    def float(self):
        return self.to(_dtypes.float32)

    # ----- state -------------------------------------------------------------------------------
    def state_dict(self):
        """Name -> detached Tensor (sharing memory with the parameter or buffer): each module's
        parameters then its persistent buffers, module by module, as in PyTorch."""
        return OrderedDict((name, t.detach()) for name, t in self._named_state())

    def _named_state(self):
        seen = set()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield prefix + name, param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    yield prefix + name, buffer

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` (Tensors or arrays) into the parameters and buffers, in place.

        Everything is checked before anything is copied, so a bad state dict never half-loads the
        model. ``strict`` (default) also requires the keys to match exactly.
        """
        own = OrderedDict(self._named_state())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for name, param in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            array = value.data if isinstance(value, Tensor) else value
            if not hasattr(array, "shape"):
                array = np.asarray(array)
            if tuple(array.shape) != tuple(param.shape):
                raise ShapeError(f"load_state_dict: {name!r} has shape {tuple(array.shape)} in the state dict "
                                 f"but {param.shape} in the model")
            if array.dtype.kind not in "fiu":
                raise DTypeError(f"load_state_dict: {name!r} has non-numeric dtype {array.dtype}")
            staged.append((param, array))
        for param, array in staged:
            param.data[...] = _on_backend_of(param.data, array)
            increment_version(param)
        return IncompatibleKeys(missing, unexpected)

    # ----- calling -------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        path = self._path_in_caller()
        _active.append((self, path))
        _node.module_path.append(path or type(self).__name__)
        try:
            return self.forward(*args, **kwargs)
        finally:
            _node.module_path.pop()
            _active.pop()

    def _path_in_caller(self):
        """This module's named_modules path below the outermost running module ("" at the top)."""
        if not _active:
            return ""
        caller, caller_path = _active[-1]
        for name, child in caller._modules.items():
            if child is self:
                return f"{caller_path}.{name}" if caller_path else name
        own = type(self).__name__
        return f"{caller_path}.{own}" if caller_path else own

    # ----- printing -------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")


def _on_backend_of(like, array):
    """``array`` as an array of ``like``'s backend (host copies cross devices explicitly)."""
    from ..backends import NUMPY, _by_array_type

    backend = of_array(like)
    if type(array) in _by_array_type:
        if of_array(array) is backend:
            return array
        array = of_array(array).to_numpy(array)
    return backend.xp.asarray(np.asarray(array)) if backend is not NUMPY else np.asarray(array)


def _convert(array, target, dtype):
    if target is not None and of_array(array) is not for_device(target):
        if target.type == "cpu":
            array = of_array(array).to_numpy(array)
        else:
            array = for_device(target).xp.asarray(array)
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
    return array


__all__ = ["Module", "IncompatibleKeys"]
