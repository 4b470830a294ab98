"""The primitive table's machinery: ``primitive`` declares an op, ``@op.vjp`` its gradient.

A primitive is declared once: its forward on raw arrays (``forward(backend, *arrays, **params)``),
what it saves for backward, and next to it the VJP rule written in gradflow ops. The same rule
serves both orders (see the note [rules on raw arrays] in autograd/node.py): with
``create_graph=True`` it gets Tensors and records the backward graph, so it can be differentiated
again; in a first-order backward it gets raw arrays and runs straight on the array module. Read
array data in a rule with ``data_of(x)`` and make masks with ``constant(array)``, which work in both.
An op may add ``@op.fast_vjp``, an array-level rule that calls a fused kernel of the backend's
kernel table; the first-order backward prefers it, and tests check it agrees with the
differentiable rule.

Save specs name forward arguments or ``"out"``; a variadic op (``forward(backend, *xs)``) saves
all its inputs by naming ``"xs"``. ``save_when`` makes saving conditional: saving
``y`` for ``x * y`` is only needed if ``x`` needs a gradient (matmul's weight is not kept when its
input does not require grad). An unsaved slot reads as None in ``ctx.saved``.
"""
from __future__ import annotations

import inspect

from ..autograd import node as _node
from ..autograd.grad_mode import _state
from ..autograd.node import ALL_INPUTS, OUT, apply
from ..backends import as_array
from ..errors import BackwardError


class Op:
    """One primitive: its forward, what it saves, and its derivative rules."""

    __slots__ = ("name", "forward", "save", "save_when", "same_dtype", "vjp_rule",
                 "fast_vjp_rule", "jvp_rule", "doc", "flops", "accumulate_slot", "accumulate_rule",
                 "reuses_grad", "keeps", "backward_arrays", "save_plan", "save_pair", "saves_output_only")
    # The contract the engine's in-place sums rest on (the note [who owns a gradient array] in
    # autograd/engine.py): a primitive's first-order rule returns, per input, its incoming
    # gradient, a view, or a new writable array that nothing else holds (no cache, no saved value).
    # tests/test_ownership.py checks it for every row of the op table.
    fresh_grads = True

    def __init__(self, name, forward, save=(), save_when=None, same_dtype=False, flops=None, keeps=0):
        self.name = name
        # keeps > 0: forward returns (output, *keeps arrays) and the node keeps those arrays after
        # its saved values (autograd/node.py's _Kept); rules find them at the end of ctx.saved.
        self.keeps = keeps
        # flops(arrays, out) -> int for the dispatch counter; None: one per element touched.
        self.flops = flops
        self.forward = forward
        params = [p for p in inspect.signature(forward).parameters][1:]
        positional = [p.name for p in inspect.signature(forward).parameters.values()
                      if p.kind == p.POSITIONAL_OR_KEYWORD][1:]

        variadic = [p.name for p in inspect.signature(forward).parameters.values() if p.kind == p.VAR_POSITIONAL]

        def index(name):
            if name == "out":
                return OUT
            if name in variadic:
                return ALL_INPUTS
            if name not in positional:
                raise ValueError(f"op {self.name!r} saves {name!r}, which is not one of its inputs {params}")
            return positional.index(name)

        self.save = tuple(index(n) for n in save)
        self.save_when = None if save_when is None else tuple(
            None if w is None else index(w) for w in save_when)
        # (what, unless) per saved value, for apply: input index or OUT, and the input whose
        # needing no gradient makes saving it unnecessary (None: always saved).
        self.save_plan = tuple(zip(self.save, self.save_when or (None,) * len(self.save)))
        # The two plans most ops have, for apply's written-out paths (its note [apply is the hot
        # path]): two inputs (i, unless_i, j, unless_j), or the output alone; else None / False.
        plan = self.save_plan
        self.save_pair = (plan[0] + plan[1] if not keeps and len(plan) == 2 and plan[0][0] >= 0
                          and plan[1][0] >= 0 else None)
        self.saves_output_only = not keeps and plan == ((OUT, None),)
        self.same_dtype = same_dtype
        self.vjp_rule = self.fast_vjp_rule = self.jvp_rule = None
        # backward_arrays(node, g): the first-order backward on raw arrays — the fast rule itself
        # once one is declared, else the VJP rule itself run on arrays (no wrapper frame per
        # node either way: it may return one gradient rather than a tuple, and the engine wraps
        # it); until a rule is declared, a method that raises.
        self.backward_arrays = self._vjp_on_arrays
        self.accumulate_slot = self.accumulate_rule = None
        # True: its fast rules may write over their incoming gradient when ``may_overwrite(g)``
        # says so (the note [a gradient the rule may overwrite] in autograd/node.py).
        self.reuses_grad = False
        self.doc = forward.__doc__

    def __call__(self, *inputs, **params):
        if not isinstance(inputs[0], _node._Tensor) and _state.raw:
            return _node._apply_raw(self, inputs, params)  # a rule on raw arrays: no Tensor, no Node
        return apply(self, inputs, params)

    def __repr__(self):
        return f"<gradflow primitive {self.name}>"

    def vjp(self, rule):
        """Declare ``rule(ctx, g) -> grad or tuple of grads`` (Tensors or None), one per input."""
        self.vjp_rule = rule
        if self.fast_vjp_rule is None:
            self.backward_arrays = rule
        return rule

    def fast_vjp(self, rule):
        """Declare ``rule(ctx, g_array) -> tuple of arrays or None``, used when create_graph is False."""
        self.fast_vjp_rule = self.backward_arrays = rule
        return rule

    def fast_vjp_into(self, slot):
        """Declare ``rule(ctx, g_array, grad_buffer)``: the fast rule (called with None for the
        buffer), which may also add input ``slot``'s gradient straight into that leaf's existing
        ``.grad`` array and return ``ACCUMULATED`` in its place. The engine passes a buffer only
        when nobody else can see it (see the note [who owns a gradient array] in engine.py)."""
        def declare(rule):
            self.fast_vjp_rule = self.backward_arrays = lambda ctx, g: rule(ctx, g, None)
            self.accumulate_slot, self.accumulate_rule = slot, rule
            return rule
        return declare

    def jvp(self, rule):
        """Declare ``rule(ctx, *tangents) -> output tangent`` (forward mode; tangents may be None)."""
        self.jvp_rule = rule
        return rule

    def backward(self, node, g, create_graph):
        """Backward on Tensors, recorded (the engine uses it when create_graph is True)."""
        if self.vjp_rule is None:
            raise BackwardError(f"op {self.name!r} has no gradient")
        grads = self.vjp_rule(node, g)
        return grads if type(grads) is tuple else (grads,)

    def _vjp_on_arrays(self, node, g):
        """First-order backward on raw arrays without a fast rule: the VJP rule run on arrays."""
        if self.vjp_rule is None:
            raise BackwardError(f"op {self.name!r} has no gradient")
        grads = self.vjp_rule(node, g)
        return grads if type(grads) is tuple else (grads,)


def constant(array):
    """A gradient-free operand computed inside a rule (a mask, a share): a Tensor, or the array
    itself while a first-order backward runs its rules on raw arrays."""
    if _state.raw:
        return array
    return _node._Tensor(as_array(array))


def data_of(value):
    """The array behind a rule's operand, whether the rule got Tensors or raw arrays."""
    return value.data if isinstance(value, _node._Tensor) else value


def primitive(name, save=(), save_when=None, same_dtype=False, flops=None, keeps=0):
    """Decorator: turn ``forward(backend, *arrays, **params)`` into a recorded primitive Op.

    ``keeps=k``: the forward also makes ``k`` arrays backward needs that are neither inputs nor
    the output (max-pool's argmax indices); it returns ``(out, *those)`` and the node keeps them,
    counted by the memory tracker as activations."""
    def make(forward):
        return Op(name, forward, save, save_when, same_dtype, flops, keeps)
    return make
