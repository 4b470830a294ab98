"""The engine writes in place only into arrays it made and never handed out.

See the note [who owns a gradient array] in gradflow/autograd/engine.py. Two kinds of check:
- the contract it rests on, for every row of the op table: what a primitive's first-order rule
  returns is its incoming gradient, a view, or a new array sharing memory with nothing it could see;
- end to end: arrays a user can see (tensor data, a held .grad, an upstream gradient, what a hook
  got or returned, retained and captured gradients) are bit-for-bit unchanged by backward, in
  graphs built so that every in-place path (sums, .grad accumulation, overwritten gradients) runs.
"""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import engine
from gradflow.autograd.grad_mode import _state
from gradflow.autograd.node import Node
from op_table import OP_CASES, sample_inputs


def _nodes(out):
    seen, stack, nodes = set(), [out.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or type(node) is not Node or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(node.next)
    return nodes


def _arrays_in(value):
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, gf.Tensor):
        return [value.data]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays_in(v)]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays_in(v)]
    return []


@pytest.mark.parametrize("case", OP_CASES, ids=str)
def test_every_primitive_returns_new_arrays_the_engine_may_own(case):
    rng = np.random.default_rng(0)
    xs = [gf.tensor(a, requires_grad=True) for a in sample_inputs(case, rng, np.float64)]
    out = case.fn(*xs)
    visible = [x.data for x in xs] + [out.data]
    for node in _nodes(out):
        if not getattr(node.op, "fresh_grads", False):
            continue
        g = rng.standard_normal(node.out_shape)
        previous = _state.raw, _state.enabled
        _state.raw, _state.enabled = True, False
        try:
            saved = _arrays_in(node.saved)
            grads = node.op.backward_arrays(node, g)
            if type(grads) is not tuple:  # a VJP rule's single gradient, as the engine wraps it
                grads = (grads,)
        finally:
            _state.raw, _state.enabled = previous
        owned = engine._owned_results(grads, g)
        seen = [g] + saved + _arrays_in(node.params) + visible
        for i, gi in enumerate(grads):
            if owned >> i & 1:
                assert gi.flags.writeable, f"{node.op.name}: the gradient of input {i} is read-only"
                assert not any(np.shares_memory(gi, a) for a in seen), (
                    f"{node.op.name}: the gradient of input {i} shares memory with an array the rule could see")
                assert not any(np.shares_memory(gi, other) for j, other in enumerate(grads)
                               if j != i and isinstance(other, np.ndarray)), f"{node.op.name}: result {i} returned twice"


class Snapshot:
    """Copies of arrays a user can see, to check later that none changed."""

    def __init__(self):
        self.kept = []

    def add(self, *arrays):
        for a in arrays:
            a = a.data if isinstance(a, gf.Tensor) else a
            self.kept.append((a, a.copy()))
        return arrays[0] if len(arrays) == 1 else arrays

    def check(self):
        for array, copy in self.kept:
            np.testing.assert_array_equal(array, copy)


def _leaf(rng, *shape):
    return gf.tensor(rng.standard_normal(shape), requires_grad=True)


def test_user_visible_arrays_are_never_written():
    rng = np.random.default_rng(1)
    seen = Snapshot()
    w1, b1, w2 = _leaf(rng, 6, 4), _leaf(rng, 6), _leaf(rng, 3, 6)
    x = gf.tensor(rng.standard_normal((5, 4)))
    for step in range(4):
        held = [p.grad for p in (w1, b1, w2) if p.grad is not None]   # a .grad the user holds
        seen.add(*held) if held else None
        seen.add(x, w1, b1, w2)                                        # tensors' data
        hooked, returned = [], []

        def hook(g, hooked=hooked, returned=returned):
            hooked.append(seen.add(g))                                 # what a hook got ...
            out = gf.tensor(np.full(g.shape, 0.5))
            returned.append(seen.add(out))                             # ... and what it returned
            return out

        h = F.linear_act(x, w1, b1, "tanh")                            # gz may go over g
        h.register_hook(hook) if step == 1 else None
        h2 = h * 2.0
        h2.retain_grad()
        y = F.linear(h2 + h, w2)                                       # h gets two contributions
        loss = (y * y).sum() + 0.5 * (w1 * w1).sum() + (w2 * 3.0).sum()
        upstream = seen.add(gf.tensor(np.array(1.5)))                  # backward(gradient=...)
        loss.backward(upstream)
        seen.add(h2.grad)                                              # a retained gradient
        (gw,) = gf.autograd.grad((F.linear(x, w1) ** 2).sum(), [w1])
        seen.add(gw)                                                   # grad()'s result
        seen.check()


def test_a_gradient_a_leaf_hook_returned_is_not_added_into():
    rng = np.random.default_rng(2)
    w = _leaf(rng, 4, 3)
    mine = gf.tensor(np.ones((4, 3)))
    w.register_hook(lambda g: mine)
    x = gf.tensor(rng.standard_normal((2, 3)))
    for _ in range(3):
        F.linear(x, w).sum().backward()
    np.testing.assert_array_equal(mine.numpy(), np.ones((4, 3)))
    np.testing.assert_array_equal(w.grad.numpy(), np.full((4, 3), 3.0))


def test_the_results_match_out_of_place_sums():
    # The same training steps with every in-place path and with the engine's ownership emptied
    # before each write (so every sum is out of place) agree to rounding.
    def train(read_grads):
        rng = np.random.default_rng(3)
        w1, w2 = _leaf(rng, 8, 5), _leaf(rng, 2, 8)
        x = gf.tensor(rng.standard_normal((7, 5)))
        for _ in range(3):
            h = F.linear_act(x, w1, None, "sigmoid")
            loss = (F.linear(h + h * h, w2) ** 2).sum() + 0.1 * ((w1 * w1).sum() + (w2 * w2).sum())
            loss.backward()
            if read_grads:
                [w1.grad, w2.grad]  # handing them out turns the .grad accumulation off
        return w1.grad.numpy(), w2.grad.numpy()

    for a, b in zip(train(False), train(True)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
