"""Forward-mode differentiation with dual tensors: ``dual_level``, ``make_dual``, ``unpack_dual``.

A dual tensor is a primal value paired with a tangent ``v``; every op applied to it also computes
the output tangent ``J v`` from the op's ``jvp`` rule, in the same forward pass.

>>> import gradflow as gf
>>> from gradflow.autograd import forward_ad as fwAD
>>> x = gf.tensor([1.0, 2.0], dtype="float64")
>>> with fwAD.dual_level():
...     out = (fwAD.make_dual(x, gf.ones_like(x)) ** 2).sum()
...     fwAD.unpack_dual(out).tangent.item()          # d/dt sum((x + t)^2) = 2 * (1 + 2)
6.0

# Note: [where tangents live]
Tensor and Node have fixed slots, so tangents live in a side table that exists only while a level
is open, keyed by a tensor's *carrier*: its grad_fn Node when it has one, the Tensor otherwise.
Keying a non-leaf by its Node matters for forward-over-reverse: a VJP rule reads an op's saved
output through ``ctx.saved``, which rewraps the array in a *new* Tensor with the same grad_fn;
keyed by Node, that Tensor still finds the output's tangent. Entries hold their carrier by weak
reference, so forward mode keeps no intermediate alive (memory stays that of the live tensors,
which is forward mode's advantage) and an entry leaves the table when its carrier dies.

# Note: [the hook in apply]
``node.apply`` checks one module global, ``node.jvp_hook``: None outside a dual level, so plain
reverse-mode code pays one global lookup per op. Inside a level the hook collects the inputs'
tangents and, when any is present, calls the op's ``jvp`` rule with the hook switched off (a
tangent has no tangent of its own at this level). The rule runs in the current grad mode: when
its inputs require grad it is recorded, so a tangent can be differentiated in reverse mode.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import NamedTuple

from ..errors import BackwardError, DeviceError, DTypeError, ShapeError
from . import grad_mode, node as _node

# carrier id -> (weak reference to the carrier, tangent Tensor); None while no level is open.
_table: dict | None = None
# Whether jvp rules are recorded for reverse mode (see dual_level's record_tangents).
_record_tangents = True


class ForwardADError(BackwardError):
    """Forward mode was used in a way it does not support (no level open, nested levels, no jvp rule)."""


class UnpackedDual(NamedTuple):
    primal: object
    tangent: object


class JvpContext:
    """What a ``jvp`` rule receives: the op's input Tensors, its output Tensor, params and input shapes."""

    __slots__ = ("inputs", "out", "params", "shapes")

    def __init__(self, inputs, out, params):
        self.inputs = inputs
        self.out = out
        self.params = params
        self.shapes = tuple(t.data.shape for t in inputs)


def is_active() -> bool:
    """Whether a dual level is open (tangents are being propagated)."""
    return _table is not None


@contextlib.contextmanager
def dual_level(record_tangents=True):
    """Open a forward-mode level; every tangent made inside it is dropped when it closes.

    Levels do not nest: forward-over-forward is not supported (use forward-over-reverse instead,
    as ``gradflow.func.hessian`` and ``hvp`` do). ``record_tangents=False`` computes tangents
    without recording them, when nothing will differentiate a tangent in reverse mode (``hvp``
    differentiates the primal computation only): it saves the graph the rules would build.
    """
    global _table, _record_tangents
    if _table is not None:
        raise ForwardADError("dual_level() is already open; nested forward-mode levels are not supported "
                             "(compose forward mode with reverse mode instead, e.g. func.jacfwd(func.jacrev(f)))")
    _table, _record_tangents = {}, record_tangents
    _node.jvp_hook = _propagate
    try:
        yield
    finally:
        _node.jvp_hook = None
        _table, _record_tangents = None, True


def _carrier(tensor):
    return tensor.grad_fn if tensor.grad_fn is not None else tensor


def tangent_of(tensor):
    """The tangent carried by ``tensor`` at the open level, or None."""
    if _table is None:
        return None
    carrier = _carrier(tensor)
    entry = _table.get(id(carrier))
    if entry is None or entry[0]() is not carrier:
        return None
    return entry[1]


def _attach(tensor, tangent):
    table = _table
    key = id(_carrier(tensor))

    def forget(_ref, key=key):
        # The carrier died: drop its entry, unless the level closed or the id was reused since.
        if _table is table and table.get(key, (None,))[0] is _ref:
            del table[key]

    table[key] = (weakref.ref(_carrier(tensor), forget), tangent)


def make_dual(tensor, tangent):
    """A tensor with ``tensor``'s value that carries ``tangent`` (same shape, dtype and device).

    The result is differentiable with respect to ``tensor`` in reverse mode when ``tensor``
    requires grad; ``tensor`` itself is left unchanged.
    """
    from ..tensor import Tensor

    if _table is None:
        raise ForwardADError("make_dual() needs an open level: use it inside `with dual_level():`")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual() takes two Tensors, got {type(tensor).__name__} and {type(tangent).__name__}")
    if tangent.shape != tensor.shape:
        raise ShapeError(f"make_dual(): tangent of shape {tangent.shape} for a primal of shape {tensor.shape}; "
                         "the tangent must have the primal's shape")
    if tensor.dtype.kind != "f" or tangent.dtype != tensor.dtype:
        raise DTypeError(f"make_dual(): primal of dtype {tensor.dtype} with tangent of dtype {tangent.dtype}; "
                         "both must be the same floating dtype")
    if type(tangent.data) is not type(tensor.data):
        raise DeviceError(f"make_dual(): primal on {tensor.device} but tangent on {tangent.device}")
    if tensor.requires_grad:
        # A recorded identity (a zero-copy reshape) keeps the dual connected to the primal's graph.
        from ..ops.shape import _reshape

        previous, _node.jvp_hook = _node.jvp_hook, None
        try:
            dual = _reshape(tensor, shape=tensor.shape)
        finally:
            _node.jvp_hook = previous
    else:
        dual = Tensor(tensor.data)
    _attach(dual, tangent)
    return dual


def unpack_dual(tensor):
    """``(primal, tangent)`` of ``tensor``; the tangent is None when it carries none.

    The primal is ``tensor`` itself (its tangent is dropped when the level closes).
    """
    return UnpackedDual(tensor, tangent_of(tensor))


def _propagate(op, inputs, params, out):
    """The hook ``apply`` calls inside a level: attach ``J v`` to ``out`` if any input has a tangent."""
    tangents = [tangent_of(t) for t in inputs]
    if all(t is None for t in tangents):
        return
    rule = getattr(op, "jvp_rule", None)
    if rule is None:
        raise ForwardADError(f"op {op.name!r} has no forward-mode (jvp) rule; declare one with @{op.name}.jvp")
    _node.jvp_hook = None
    try:
        if _record_tangents:
            tangent = rule(JvpContext(inputs, out, params), *tangents)
        else:
            with grad_mode.no_grad():
                tangent = rule(JvpContext(inputs, out, params), *tangents)
    finally:
        _node.jvp_hook = _propagate
    if tangent is None:
        return
    if tangent.data.shape != out.data.shape:
        raise ShapeError(f"{op.name} jvp returned a tangent of shape {tuple(tangent.data.shape)} "
                         f"for an output of shape {tuple(out.data.shape)}")
    if tangent.dtype != out.dtype and out.dtype.kind == "f":
        from ..ops.shape import cast

        tangent = cast(tangent, out.dtype)
    _attach(out, tangent)
