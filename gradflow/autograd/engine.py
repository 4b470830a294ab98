"""The reverse-mode engine: ``backward`` and ``grad``.

Nodes are visited in decreasing creation order, taken from a heap (Chainer's rank trick). A node
is always created after the nodes of its inputs, so when a node is popped every gradient flowing
into it has already arrived: the walk is a reverse topological order without a recursive sort,
and a chain of any length runs in constant stack depth. Each node's backward runs once, with the
sum of its upstream gradients (the copy gate); leaves get their sum after all nodes ran.
"""
from __future__ import annotations

import heapq
import sys
import weakref

import numpy as np

from ..errors import AnomalyError, BackwardError, GraphFreedError, ShapeError, check_like
from ..backends import as_array, of_array
from . import grad_mode
from . import node as node_module
from .node import ACCUMULATED, Node, anomaly, check_finite


def _as_sequence(value):
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ones_like(array):
    return of_array(array).ones_like(array)  # no fill kernel on a GPU (Backend.ones_like)


def _root_grads(roots, grads, create_graph):
    Tensor = node_module._Tensor
    if grads is None and len(roots) == 1:  # the usual loss.backward(): skip the general checks
        root = roots[0]
        if isinstance(root, Tensor) and root._requires_grad and root.data.size == 1:
            return [Tensor(_ones_like(root.data))]
    if grads is None:
        grads = [None] * len(roots)
    if len(grads) != len(roots):
        raise BackwardError(f"got {len(roots)} outputs but {len(grads)} gradients")
    result = []
    for i, (root, g) in enumerate(zip(roots, grads)):
        if not isinstance(root, Tensor):
            raise TypeError(f"backward needs Tensors, got {type(root).__name__} as output {i}")
        if not root.requires_grad:
            raise BackwardError(
                f"output {i} does not require grad and has no grad_fn: nothing in its computation "
                "requires grad (set requires_grad=True on the leaves, and do not compute it under no_grad)")
        if g is None:
            if root.data.size != 1:
                raise BackwardError(
                    f"backward() on a non-scalar output of shape {root.shape} needs a gradient: "
                    "pass gradient= with that shape (or reduce the output to a scalar, e.g. .sum())")
            g = Tensor(_ones_like(root.data))
        elif not isinstance(g, Tensor):
            from ..tensor import tensor as make_tensor

            g = make_tensor(g, dtype=root.dtype, device=root.device)
        check_like(g, root, "gradient", f"output {i}")
        result.append(g)
    return result


def _check_grad(node, index, g):
    shape = node.shapes[index]
    if g.shape != shape:
        raise ShapeError(f"{node.op.name} backward returned a gradient of shape {tuple(g.shape)} "
                         f"for input {index} of shape {shape}")
    if anomaly["enabled"]:
        array = g.data if isinstance(g, node_module._Tensor) else g
        check_finite(f"{node.op.name} backward", array, f"the gradient of input {index}")


def _materialize(array):
    """A gradient array safe to keep as ``.grad``: never a broadcast or read-only view."""
    if type(array) is not np.ndarray:
        array = as_array(array)
    if (0 in array.strides and array.size > 1) or not getattr(array.flags, "writeable", True):
        return array.copy()
    return array


# Note: [accumulating into .grad]
# An op with a fast_vjp_into rule (linear's weight) can add its gradient straight into a leaf's
# existing .grad array (gemm with beta = 1) instead of allocating it and then a sum. Doing so
# must not be visible anywhere else, so the engine offers a .grad array only when
# - it allocated that array itself, as the sum of an earlier .grad and a new gradient (_owned):
#   never an array the user assigned, a gradient that passed through from a root or a hook, or
#   a view into someone's packed buffer;
# - nothing but the .grad Tensor refers to it: no one kept the Tensor (old = p.grad), its array
#   or a view of it (reference counts, calibrated below against a private probe);
# - the backward is first order, writes .grad at all (not grad(), and the leaf is in inputs=),
#   the leaf has no hooks (they must see the whole gradient first) and anomaly mode is off.
# The sum is then (old + g1) + g2 rather than old + (g1 + g2): the same to rounding. One
# difference remains: a backward that raises midway may already have added to a .grad.
# id(.grad Tensor) -> (a weak reference to it, the array the engine allocated for it). Keyed by
# id because Tensor's == is elementwise; the entry goes when the Tensor does.
_owned: dict = {}


def _own(grad):
    key = id(grad)
    _owned[key] = (weakref.ref(grad, lambda _, key=key: _owned.pop(key, None)), grad.data)


def _is_owned(grad):
    entry = _owned.get(id(grad))
    return entry is not None and entry[0]() is grad and entry[1] is grad.data


def _reference_counts(leaf):
    grad = leaf._grad
    data = grad.data
    return sys.getrefcount(grad), sys.getrefcount(data)


def _calibrate():
    """The counts _reference_counts sees when only the leaf, its grad and _owned hold them."""
    class Probe:
        __slots__ = ("_grad", "data", "__weakref__")

    leaf = Probe()
    leaf._grad = Probe()
    leaf._grad.data = np.zeros(1)
    _own(leaf._grad)
    counts = _reference_counts(leaf)  # no local name holds the grad or its array here
    del leaf._grad  # its weak reference's callback removes the entry
    return counts


_PRIVATE_COUNTS = _calibrate()


def _private_grad(leaf):
    """``leaf``'s .grad array when the engine may add into it in place (see the note), else None."""
    grad = leaf._grad
    if grad is None or grad._requires_grad or not _is_owned(grad):
        return None
    if getattr(grad.data, "base", None) is not None:
        return None
    del grad  # counted as _calibrate counts: no local name may hold the grad or its array
    grad_refs, data_refs = _reference_counts(leaf)
    if grad_refs > _PRIVATE_COUNTS[0] or data_refs > _PRIVATE_COUNTS[1]:
        return None
    return leaf._grad.data


def _accumulation_buffer(node, accumulate_into):
    target = node.next[node.op.accumulate_slot]
    if not isinstance(target, node_module._Tensor) or target._leaf_hooks or anomaly["enabled"]:
        return None
    if accumulate_into is not None and id(target) not in accumulate_into:
        return None
    buffer = _private_grad(target)
    if buffer is None or buffer.shape != node.shapes[node.op.accumulate_slot]:
        return None
    return buffer


def run(roots, root_grads, retain_graph, create_graph, capture=None, accumulate_into=None):
    """``_run`` under the roots' device: arrays the rules allocate and kernels they launch go to
    the graph's GPU (CuPy uses the *current* device), so a graph on cuda:1 runs there."""
    if root_grads:
        first = root_grads[0].data
        backend = of_array(first)
        if backend.xp is not np:
            with backend.device_scope(first):
                return _run(roots, root_grads, retain_graph, create_graph, capture, accumulate_into)
    return _run(roots, root_grads, retain_graph, create_graph, capture, accumulate_into)


def _run(roots, root_grads, retain_graph, create_graph, capture=None, accumulate_into=None):
    """Propagate ``root_grads`` from ``roots`` to the leaves.

    ``capture``: tensors whose gradients to return instead of touching any ``.grad`` (for ``grad``).
    ``accumulate_into``: when given, only these leaves' ``.grad`` are updated (``backward(inputs=)``).

    Without create_graph, gradients travel as raw arrays and rules run on arrays (see the note
    [rules on raw arrays] in node.py); they become Tensors only where a user sees them (hooks,
    ``.grad``, ``grad()``'s results).
    """
    Tensor = node_module._Tensor
    raw = not create_graph
    heap, pending, leaf_grads, leaves = [], {}, {}, {}
    capture_nodes, captured = {}, {}
    if capture is not None:
        for i, t in enumerate(capture):
            if t.grad_fn is not None:
                capture_nodes.setdefault(t.grad_fn, []).append(i)
    push, pop = heapq.heappush, heapq.heappop
    may_accumulate = raw and capture is None
    observers = node_module.observers

    previous_mode, previous_raw = grad_mode.is_grad_enabled(), node_module.raw_rules
    previous_freeing = node_module.freeing_graph
    grad_mode._set(create_graph)
    node_module.raw_rules = raw
    node_module.freeing_graph = not retain_graph
    try:
        for root, g in zip(roots, root_grads):
            g = g.data if raw else g
            node = root.grad_fn
            if node is None:
                _add_leaf_grad(leaf_grads, leaves, root, g, raw)
            elif node in pending:
                _accumulate(pending, node, g, raw)
            else:
                pending[node] = g
                push(heap, (-node.seq, node))
        while heap:
            node = pop(heap)[1]
            g = pending.pop(node)
            if node.pre_hooks:
                g = _run_hooks(node.pre_hooks, g, raw)
            if node.retained is not None:
                owner = node.retained()
                if owner is not None:
                    kept = Tensor(_materialize(g)) if raw else g
                    owner._grad = kept if owner._grad is None else owner._grad + kept
            if capture_nodes and node in capture_nodes:
                for i in capture_nodes[node]:
                    captured[i] = Tensor(g) if raw else g
            op = node.op
            if node.saved_raw is None:
                raise GraphFreedError(
                    f"backward through {node.op.name!r} a second time: the graph's saved tensors were "
                    "freed by the first backward. Pass retain_graph=True to the first backward() "
                    "(or autograd.grad()) if you need to go through the graph again.")
            buffer = None
            if may_accumulate and op.accumulate_rule is not None:
                buffer = _accumulation_buffer(node, accumulate_into)
            if raw and op.reuses_grad and sys.getrefcount(g) <= _SOLE_REFS and _owns_memory(g):
                node_module.free_grad = g
            try:
                if buffer is not None:
                    grads = op.accumulate_rule(node, g, buffer)
                else:
                    grads = op.backward_arrays(node, g) if raw else op.backward(node, g, True)
            except AnomalyError as exc:
                raise AnomalyError(f"{op.name} backward: {exc}") from None
            finally:
                node_module.free_grad = None
            if not retain_graph:
                if observers:
                    node.release()
                else:
                    node.saved_raw = None  # Node.release without observers to tell
            shapes = node.shapes
            index = -1
            for target, gi in zip(node.next, grads):
                index += 1
                if target is None or gi is None or gi is ACCUMULATED:
                    continue
                if gi.shape != shapes[index] or anomaly["enabled"]:
                    _check_grad(node, index, gi)
                if type(target) is Node:
                    previous = pending.get(target)
                    if previous is None:
                        pending[target] = gi
                        push(heap, (-target.seq, target))
                    else:
                        _accumulate(pending, target, gi, raw)
                else:
                    _add_leaf_grad(leaf_grads, leaves, target, gi, raw)
            grads = gi = None  # pending holds the gradients now: let a rule find them free
    finally:
        grad_mode._set(previous_mode)
        node_module.raw_rules = previous_raw
        node_module.freeing_graph = previous_freeing

    for key, g in leaf_grads.items():
        leaf = leaves[key]
        if leaf._leaf_hooks:
            g = _run_hooks(leaf._leaf_hooks, g, raw)
        if capture is not None:
            for i, t in enumerate(capture):
                if t is leaf:
                    captured[i] = Tensor(g) if raw else g
            continue
        if accumulate_into is not None and id(leaf) not in accumulate_into:
            continue
        g = Tensor(_materialize(g)) if raw else g
        if leaf._grad is None:
            leaf._grad = g
        else:
            leaf._grad = leaf._grad + g
            if raw and not leaf._grad._requires_grad:
                _own(leaf._grad)  # a fresh sum: the engine's own array
    return captured


def _add_leaf_grad(leaf_grads, leaves, leaf, g, raw):
    key = id(leaf)
    if key in leaf_grads:
        _accumulate(leaf_grads, key, g, raw)
    else:
        leaf_grads[key], leaves[key] = g, leaf


# Note: [summing gradients in place]
# The copy gate sums a value's gradients. The running sum is added into in place when nothing but
# the engine's own table refers to it (a fresh array from a rule: refcount at its baseline, owning
# its memory), which saves a full-size allocation per extra contribution — for a weight with an
# L2 penalty, one per step. Anything a user, a saved tensor, a hook or a view can still see has
# a higher refcount or is a view, and gets an out-of-place sum as before.
def _accumulate(table, key, g, raw):
    previous = table[key]
    if (raw and sys.getrefcount(previous) <= _EXCLUSIVE_REFS and type(previous) is type(g)
            and previous.base is None and previous.shape == g.shape and previous.dtype == g.dtype
            and getattr(previous.flags, "writeable", True)):
        previous += g
    else:
        table[key] = previous + g


def _exclusive_baseline():
    """The refcount ``_accumulate`` sees for an array that only its table holds (measured the same
    way, so it holds on any CPython version)."""
    def measure(table, key):
        previous = table[key]
        return sys.getrefcount(previous)

    return measure({0: np.zeros(2)}, 0)


_EXCLUSIVE_REFS = _exclusive_baseline()


def _sole_reference_baseline():
    """sys.getrefcount of ``g`` in ``run`` when only its local name refers to the array."""
    def measure(table, key):
        g = table.pop(key)
        return sys.getrefcount(g)

    return measure({0: np.zeros(2)}, 0)


_SOLE_REFS = _sole_reference_baseline()


def _owns_memory(g):
    """A writable, C-contiguous array that is not a view (of a saved tensor, say)."""
    flags = g.flags
    return g.base is None and flags.c_contiguous and getattr(flags, "writeable", True)


def _run_hooks(hooks, g, raw):
    """Hooks see Tensors; a hook's returned Tensor replaces the gradient."""
    view = node_module._Tensor(g) if raw else g
    previous_raw, node_module.raw_rules = node_module.raw_rules, False
    try:
        for hook in hooks:
            replaced = hook(view)
            if replaced is not None:
                view = replaced
    finally:
        node_module.raw_rules = previous_raw
    return view.data if raw else view


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves they depend on.

    ``grad_tensors`` is required for non-scalar outputs. Without ``retain_graph`` the saved
    tensors are freed, and a second backward through the same graph raises GraphFreedError.
    """
    roots = _as_sequence(tensors)
    grads = _root_grads(roots, _as_sequence(grad_tensors), create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    only = None
    if inputs is not None:
        only = {id(t) for t in _as_sequence(inputs)}
    run(roots, grads, retain_graph, create_graph, accumulate_into=only)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Return d(outputs)/d(inputs) as a tuple, without touching any ``.grad``.

    >>> x = gradflow.tensor(3.0, dtype="float64", requires_grad=True)
    >>> (dx,) = gradflow.autograd.grad(x ** 3, x, create_graph=True)   # 3x² = 27
    >>> gradflow.autograd.grad(dx, x)[0].item()                         # 6x = 18
    18.0
    """
    roots = _as_sequence(outputs)
    targets = _as_sequence(inputs)
    for i, t in enumerate(targets):
        if not t.requires_grad:
            raise BackwardError(f"input {i} of grad() does not require grad")
    grads = _root_grads(roots, _as_sequence(grad_outputs), create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    captured = run(roots, grads, retain_graph, create_graph, capture=targets)
    result = []
    for i, t in enumerate(targets):
        g = captured.get(i)
        if g is None and not allow_unused:
            raise BackwardError(f"input {i} (shape {t.shape}) was not used to compute the outputs; "
                                "pass allow_unused=True to get None for it")
        result.append(g)
    return tuple(result)
