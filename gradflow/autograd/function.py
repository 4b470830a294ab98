"""Custom ops: subclass ``Function`` with static ``forward(ctx, ...)`` and ``backward(ctx, *grads)``.

>>> class Cube(gradflow.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x ** 3
...     @staticmethod
...     def backward(ctx, g):
...         (x,) = ctx.saved_tensors
...         return g * 3 * x ** 2
>>> Cube.apply(gradflow.tensor(2.0, requires_grad=True))
tensor(8., grad_fn=<CubeBackward>)

``forward`` runs without recording; ``backward`` returns one gradient (or None) per input of
``forward`` and is written in gradflow ops, so it is recorded when ``create_graph=True`` and
the custom op can be differentiated twice.
"""
from __future__ import annotations

from ..errors import BackwardError
from . import grad_mode
from .node import Node


class FunctionCtx:
    """What ``forward`` hands to ``backward``: saved tensors plus any attributes you set."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._to_save = ()
        self._node = None
        self._output_data = None

    def save_for_backward(self, *tensors):
        self._to_save = tensors

    @property
    def saved_tensors(self):
        node = self._node
        if node is None:
            return tuple(self._to_save)
        return node.saved


class _FunctionOp:
    """Makes a Function subclass look like a primitive to the engine."""

    accumulate_rule = None  # custom ops never write into .grad buffers themselves
    reuses_grad = False     # nor over the incoming gradient
    fresh_grads = False     # and the engine never owns what user code returns (engine.py)

    __slots__ = ("function", "name", "jvp_rule")

    def __init__(self, function):
        self.function = function
        self.name = function.__name__
        self.jvp_rule = None

    def backward(self, node, g, create_graph):
        ctx = node.params["ctx"]
        grads = self.function.backward(ctx, g)
        if not isinstance(grads, tuple):
            grads = (grads,)
        tensor_count = len(node.shapes)
        grads = tuple(grads[i] for i in node.params["tensor_positions"]) if len(grads) != tensor_count else grads
        if len(grads) != tensor_count:
            raise BackwardError(f"{self.name}.backward returned {len(grads)} gradients for "
                                f"{tensor_count} tensor inputs")
        from ..tensor import Tensor, constant_like

        return tuple(g_i if g_i is None or isinstance(g_i, Tensor) else constant_like(g_i, g) for g_i in grads)

    def backward_arrays(self, node, g):
        """First-order backward: the user's rule still sees Tensors, the engine gets arrays back."""
        return tensor_backward_on_arrays(self, node, g)


def tensor_backward_on_arrays(op, node, g):
    """Run ``op.backward`` (written on Tensors) inside a first-order backward that passes arrays:
    raw mode is off while it runs, and the gradients go back to the engine as arrays."""
    from . import node as node_module
    from .grad_mode import _state

    previous, _state.raw = _state.raw, False
    try:
        grads = op.backward(node, node_module._Tensor(g), False)
    finally:
        _state.raw = previous
    return tuple(None if g_i is None else g_i.data for g_i in grads)


class Function:
    """Base class of user-defined differentiable ops (PyTorch's ``autograd.Function`` contract)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..tensor import Tensor
        from .node import _Output

        positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
        tensors = [args[i] for i in positions]
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
        with grad_mode.no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls.__name__}.forward must return one Tensor, got {type(out).__name__}")
        inner, out = out, Tensor(out.data)
        if not (grad_mode.is_grad_enabled() and any(t.requires_grad for t in tensors)):
            _carry_tangent(cls.__name__, tensors, inner, out)
            return out
        op = cls.__dict__.get("_gradflow_op")
        if op is None:
            op = _FunctionOp(cls)
            cls._gradflow_op = op
        node = Node(op, tensors, {"ctx": ctx, "tensor_positions": positions},
                    tuple(t.data.shape for t in tensors), out.data)
        out._requires_grad, out.grad_fn = True, node
        # Saving the output itself would make a cycle; save its array and rewrap it on the node.
        node.save([_Output(out.data) if t is out or (isinstance(t, Tensor) and t.data is out.data) else t
                   for t in ctx._to_save])
        ctx._to_save = ()  # the node holds them now; a second reference would outlive backward's free
        ctx._node = node
        _carry_tangent(cls.__name__, tensors, inner, out)
        return out


def _carry_tangent(name, inputs, inner, out):
    """Forward mode through a custom Function: its forward ran gradflow ops, which carried the
    tangent to ``inner``; hand it to the rewrapped output, or refuse if the forward hid it."""
    from . import node as node_module

    if node_module.jvp_hook is None:
        return
    from . import forward_ad

    if all(forward_ad.tangent_of(t) is None for t in inputs):
        return
    tangent = forward_ad.tangent_of(inner)
    if tangent is None:
        raise forward_ad.ForwardADError(
            f"{name}.forward computed its result outside gradflow ops (e.g. on .data), so forward mode "
            "cannot follow it; write forward with gradflow ops to use it under dual_level()")
    forward_ad._attach(out, tangent)


def once_differentiable(backward):
    """Mark a Function.backward that computes on raw arrays: it refuses create_graph=True."""
    def wrapper(ctx, *grads):
        if grad_mode.is_grad_enabled():
            raise BackwardError(f"{backward.__qualname__} is once-differentiable: it cannot be used "
                                "with create_graph=True")
        return backward(ctx, *grads)
    wrapper.__name__ = backward.__name__
    return wrapper
