"""The reverse-mode engine: ``backward`` and ``grad``.

Nodes are visited in decreasing creation order, taken from a heap (Chainer's rank trick). A node
is always created after the nodes of its inputs, so when a node is popped every gradient flowing
into it has already arrived: the walk is a reverse topological order without a recursive sort,
and a chain of any length runs in constant stack depth. Each node's backward runs once, with the
sum of its upstream gradients (the copy gate); leaves get their sum after all nodes ran.
"""
from __future__ import annotations

import heapq

import numpy as np

from ..errors import AnomalyError, BackwardError, GraphFreedError, ShapeError, check_like
from ..backends import _by_array_type as _ARRAY_TYPES, as_array, of_array
from . import node as node_module
from .grad_mode import _state
from .node import ACCUMULATED, Node, anomaly, check_finite, check_versions


def _as_sequence(value):
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ones_like(array):
    if type(array) is np.ndarray and array.ndim == 0:  # a scalar loss: np.ones_like's layers cost more
        return np.array(1, array.dtype)
    return of_array(array).ones_like(array)  # no fill kernel on a GPU (Backend.ones_like)


def _root_grads(roots, grads, create_graph):
    Tensor = node_module._Tensor
    if grads is None and len(roots) == 1:  # the usual loss.backward(): skip the general checks
        root = roots[0]
        if isinstance(root, Tensor) and root._requires_grad and root._data.size == 1:
            return [Tensor(_ones_like(root._data))]
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


# Note: [who owns a gradient array]
# Summing gradients in place saves an allocation per extra contribution (a weight with an L2
# penalty gets two each step), and an op declared ``reuses_grad`` may write its result over its
# incoming gradient. Neither may change an array anyone else can see: a tensor's data, a gradient
# passed to backward(gradient=...), what a hook got or returned, a retained or captured
# gradient, a .grad the user holds. So the engine writes only into arrays it owns, and ownership
# is recorded when an array is made, never guessed:
# - a first-order backward owns a primitive's result (Op.fresh_grads: every primitive's rule
#   returns, per input, its incoming gradient, a view, or a new array nobody else holds — the op
#   table test checks this) when it is not the incoming gradient, not a view, and not returned
#   twice; and every sum the engine makes itself;
# - ``owned`` (local to one run) holds the table keys (nodes, leaves' ids) whose waiting
#   gradient is such an array;
#   a gradient leaves it when it is handed out: to a hook, a retained .grad, grad()'s results;
# - custom Functions and checkpoint segments run user code: their results are never owned.
# A leaf's .grad is the engine's own (``leaf._grad_owned``) when the engine made its array and no
# one has read it through ``Tensor.grad`` since: that getter (and the setter) clear the mark
# (internal readers that keep nothing, like an optimizer step, read ``_grad``). Only an owned
# .grad is added into in place — by the engine, or by linear's GEMM (beta = 1;
# Op.fast_vjp_into) when the backward is first order, writes .grad at all (not grad(), and the
# leaf is in inputs=), the leaf has no hooks (they must see the whole gradient first) and anomaly
# mode is off. The sum is then (old + g1) + g2 rather than old + (g1 + g2): the same to rounding.
# One difference remains: a backward that raises midway may already have added to a .grad.


def _private_grad(leaf):
    """``leaf``'s .grad array when the engine may add into it in place (see the note), else None."""
    grad = leaf._grad
    if not leaf._grad_owned or grad is None or grad._requires_grad:
        return None
    return grad._data


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


def _distinct(grads):
    """False when one array is among ``grads`` twice (it must not be written for either input)."""
    for i in range(len(grads) - 1):
        gi = grads[i]
        if gi is not None:
            for j in range(i + 1, len(grads)):
                if grads[j] is gi:
                    return False
    return True


def _owned_results(grads, g):
    """Bit i set when run() takes result i of a primitive's first-order rule as the engine's own
    (run() decides this inline; tests/test_ownership.py checks the contract with it)."""
    if not _distinct(grads):
        return 0
    mask = 0
    for i, gi in enumerate(grads):
        if gi is not None and gi is not g and type(gi) in _ARRAY_TYPES and gi.base is None:
            mask |= 1 << i
    return mask


_push, _pop = heapq.heappush, heapq.heappop


def run(roots, root_grads, retain_graph, create_graph, capture=None, accumulate_into=None):
    """``_run`` under the roots' device: arrays the rules allocate and kernels they launch go to
    the graph's GPU (CuPy uses the *current* device), so a graph on cuda:1 runs there."""
    if root_grads:
        first = root_grads[0].data
        if type(first) is not np.ndarray:
            backend = of_array(first)
            if backend.xp is not np:
                with backend.device_scope(first):
                    return _run(roots, root_grads, retain_graph, create_graph, capture, accumulate_into)
    return _run(roots, root_grads, retain_graph, create_graph, capture, accumulate_into)


# Note: [a chain skips the heap]
# When the heap is empty and a node's rule makes exactly one new node pending (a chain of ops,
# the other inputs leaves), that node is the only one pending, so the heap would hand it out
# next anyway: it is run next without a push and a pop. As soon as a second node is pending,
# both go on the heap and the order is the heap's again.
#
# Note: [the engine's walk is the hot path]
# A chain of tiny ops spends as long in this loop as in its rules, so what a node needs only in
# rare cases is decided by one test and done out of line: hooks, a retained .grad and grad()'s
# capture by ``_before_rule``, the version check's loop over saved tensors only when some
# tensor was written in place after the node was made (node.py's ``last_write``), linear's
# ``.grad`` buffer only when the leaf already holds an engine-owned one. Every rule, check and
# ownership decision is the same as on the rare path.
def _run(roots, root_grads, retain_graph, create_graph, capture=None, accumulate_into=None):
    """Propagate ``root_grads`` from ``roots`` to the leaves.

    ``capture``: tensors whose gradients to return instead of touching any ``.grad`` (for ``grad``).
    ``accumulate_into``: when given, only these leaves' ``.grad`` are updated (``backward(inputs=)``).

    Without create_graph, gradients travel as raw arrays and rules run on arrays (see the note
    [rules on raw arrays] in node.py); they become Tensors only where a user sees them (hooks,
    ``.grad``, ``grad()``'s results). The switches this sets live in the calling thread's state
    (grad_mode's note [state belongs to a call]) and are restored on the way out.
    """
    raw = not create_graph
    heap, pending, leaf_grads, leaves = [], {}, {}, {}
    owned = set()  # keys of table entries the engine may write (the note [who owns a gradient array])
    capture_nodes = captured = None  # grad()'s tables; backward() has none
    if capture is not None:
        capture_nodes, captured = {}, {}
        for i, t in enumerate(capture):
            if t.grad_fn is not None:
                capture_nodes.setdefault(t.grad_fn, []).append(i)
    capturing = bool(capture_nodes)
    push, pop = _push, _pop
    may_accumulate = raw and capture is None
    observers = node_module.observers
    last_write = node_module.last_write
    state = _state

    # free_grad is None outside the one rule it is set for, so it needs no saving.
    previous_state = state.enabled, state.raw, state.freeing
    state.enabled, state.raw, state.freeing = create_graph, raw, not retain_graph
    try:
        if len(roots) == 1 and roots[0].grad_fn is not None:  # one loss: its node is the first to run
            node = roots[0].grad_fn
            pending[node] = root_grads[0]._data if raw else root_grads[0]
        else:
            for root, g in zip(roots, root_grads):
                g = g._data if raw else g
                node = root.grad_fn
                if node is None:
                    _add_leaf_grad(leaf_grads, leaves, root, g, False, owned)
                elif node in pending:
                    _accumulate(pending, node, g, False, owned)
                else:
                    pending[node] = g
                    push(heap, (-node.seq, node))
            node = pop(heap)[1] if heap else None
        while node is not None:
            g = pending.pop(node)
            if node in owned:
                owned.discard(node)
                mine = True
            else:
                mine = False
            if node.pre_hooks or node.retained is not None or capturing:
                g, mine = _before_rule(node, g, mine, raw, capture_nodes, captured)
            op = node.op
            saved = node.saved_raw
            if saved:
                if last_write[0] > node.seq:  # the note [version counters] in node.py
                    check_versions(node)
                saved = None  # a rule may let a saved value go early (Node.release_saved)
            elif saved is None:
                raise GraphFreedError(
                    f"backward through {node.op.name!r} a second time: the graph's saved tensors were "
                    "freed by the first backward. Pass retain_graph=True to the first backward() "
                    "(or autograd.grad()) if you need to go through the graph again.")
            try:
                if not raw:
                    grads = op.backward(node, g, True)
                elif op.accumulate_rule is None and not (mine and op.reuses_grad):
                    grads = op.backward_arrays(node, g)  # the usual rule: the branch below, in short
                    if type(grads) is not tuple:  # a VJP rule's single gradient (Op.backward_arrays)
                        grads = (grads,)
                else:
                    buffer = None
                    if may_accumulate and op.accumulate_rule is not None:
                        target = node.next[op.accumulate_slot]
                        # Only a leaf whose .grad the engine owns can lend it (_private_grad).
                        if target is not None and type(target) is not Node and target._grad_owned:
                            buffer = _accumulation_buffer(node, accumulate_into)
                    if mine and op.reuses_grad and _owns_memory(g):
                        state.free_grad = g
                        try:
                            grads = (op.backward_arrays(node, g) if buffer is None
                                     else op.accumulate_rule(node, g, buffer))
                        finally:
                            state.free_grad = None
                    elif buffer is None:
                        grads = op.backward_arrays(node, g)
                    else:
                        grads = op.accumulate_rule(node, g, buffer)
                    buffer = None
                    if type(grads) is not tuple:  # a VJP rule's single gradient (Op.backward_arrays)
                        grads = (grads,)
            except AnomalyError as exc:
                raise AnomalyError(f"{op.name} backward: {exc}") from None
            # Which results the engine owns (the note [who owns a gradient array]): a primitive's
            # new arrays, unless one array was returned for two inputs.
            fresh = raw and op.fresh_grads
            if fresh and len(grads) > 1:
                if len(grads) == 2:
                    fresh = grads[0] is None or grads[0] is not grads[1]
                elif len(grads) == 3:  # linear's (gX, gW, gb): _distinct written out
                    g0, g1, g2 = grads
                    fresh = ((g0 is None or (g0 is not g1 and g0 is not g2))
                             and (g1 is None or g1 is not g2))
                    g0 = g1 = g2 = None
                else:
                    fresh = _distinct(grads)
            if not retain_graph:
                if observers:
                    node.release()
                else:
                    node.saved_raw = None  # Node.release without observers to tell
            shapes = node.shapes
            checking = anomaly["enabled"]
            index = -1
            chained = None  # the note [a chain skips the heap]
            for target, gi in zip(node.next, grads):
                index += 1
                if target is None or gi is None or gi is ACCUMULATED:
                    continue
                if gi.shape != shapes[index] or checking:
                    _check_grad(node, index, gi)
                # (A NumPy scalar from 0-d arithmetic is immutable: never owned.)
                own = fresh and gi is not g and type(gi) in _ARRAY_TYPES and gi.base is None
                if type(target) is Node:
                    if target in pending:
                        _accumulate(pending, target, gi, own, owned)
                    else:
                        pending[target] = gi
                        if chained is None and not heap:
                            chained = target
                        else:
                            if chained is not None:
                                push(heap, (-chained.seq, chained))
                                chained = None
                            push(heap, (-target.seq, target))
                        if own:
                            owned.add(target)
                else:
                    key = id(target)
                    previous = leaf_grads.get(key)
                    if previous is None:
                        leaf_grads[key], leaves[key] = gi, target
                        if own:
                            owned.add(key)
                    elif (key in owned and type(previous) is type(gi) and previous.shape == gi.shape
                          and previous.dtype == gi.dtype):
                        previous += gi  # _accumulate's first case, the usual one, written out
                    else:
                        _accumulate(leaf_grads, key, gi, own, owned)
                    previous = None
            grads = gi = g = None  # the tables hold the gradients now: let a rule find them free
            node = chained if chained is not None else (pop(heap)[1] if heap else None)
    finally:
        state.enabled, state.raw, state.freeing = previous_state

    Tensor = node_module._Tensor
    for key, g in leaf_grads.items():
        leaf = leaves[key]
        mine = key in owned
        if leaf._leaf_hooks:
            g = _run_hooks(leaf._leaf_hooks, g, raw)
            mine = False
        if capture is not None:
            for i, t in enumerate(capture):
                if t is leaf:
                    captured[i] = Tensor(g) if raw else g
            continue
        if accumulate_into is not None and id(leaf) not in accumulate_into:
            continue
        if raw and mine and leaf._grad is None:
            leaf._grad = Tensor(g)   # the usual first backward: the engine's new array as .grad
            leaf._grad_owned = True  # (owned arrays are never views: the note above)
        elif raw:
            _store_grad(leaf, g, mine)
        elif leaf._grad is None:
            leaf._grad = g
        else:
            leaf._grad = leaf._grad + g
    return captured


def _before_rule(node, g, mine, raw, capture_nodes, captured):
    """What a node with hooks, a retained .grad or a captured gradient does before its rule:
    returns the (possibly replaced) gradient and whether the engine still owns it."""
    if node.pre_hooks:
        hooks = node.pre_hooks
        if mine:
            mine = not node_module.hands_out(hooks)
        g_before = g
        g = _run_hooks(hooks, g, raw)
        if g is not g_before:
            mine = False  # a hook's returned Tensor: the hook may hold it
    Tensor = node_module._Tensor
    if node.retained is not None:
        owner = node.retained()
        if owner is not None:
            kept = Tensor(_materialize(g)) if raw else g
            owner._grad = kept if owner._grad is None else owner._grad + kept
            mine = False
    if capture_nodes and node in capture_nodes:
        for i in capture_nodes[node]:
            captured[i] = Tensor(g) if raw else g
        mine = False
    return g, mine


def _store_grad(leaf, g, mine):
    """Add a first-order gradient array into ``leaf.grad``, in place where the engine owns one
    side (the note [who owns a gradient array])."""
    Tensor = node_module._Tensor
    if not mine:
        materialized = _materialize(g)
        mine = materialized is not g  # a copy the engine just made
        g = materialized
    old = leaf._grad
    if old is None:
        leaf._grad = Tensor(g)
        leaf._grad_owned = mine and g.base is None
        return
    buffer = _private_grad(leaf)
    if buffer is not None and _addable(buffer, g):
        buffer += g
    elif mine and g.base is None and _addable(g, old._data) and not old._requires_grad:
        g += old._data  # addition commutes: the same sum, in the array the engine owns
        leaf._grad = Tensor(g)
        leaf._grad_owned = True
    else:
        leaf._grad = grad = old + Tensor(g)
        leaf._grad_owned = not grad._requires_grad  # a fresh sum: the engine's own array


def _addable(target, g):
    """``target += g`` gives ``target + g`` exactly: same type, shape and dtype, and writable."""
    return (type(target) is type(g) and target.shape == g.shape and target.dtype == g.dtype
            and getattr(target.flags, "writeable", True))


def _add_leaf_grad(leaf_grads, leaves, leaf, g, mine, owned):
    key = id(leaf)
    if key in leaf_grads:
        _accumulate(leaf_grads, key, g, mine, owned)
    else:
        leaf_grads[key], leaves[key] = g, leaf
        if mine:
            owned.add(key)


# Note: [summing gradients in place]
# The copy gate sums a value's gradients. The running sum is added into in place when the engine
# owns it (the note [who owns a gradient array]), or the new contribution is added into when the
# engine owns that one instead (addition commutes, so the sum is the same); otherwise the sum is
# a new array, which the engine then owns. A weight with an L2 penalty thus gets its two
# contributions summed without a third weight-sized array.
def _accumulate(table, key, g, mine, owned):
    previous = table[key]
    # Owned arrays are writable, C-or-F arrays of the backend's type (their contract in
    # ops/registry.py): only the operands' shapes and dtypes need to agree for += to be exact.
    if key in owned:
        if type(previous) is type(g) and previous.shape == g.shape and previous.dtype == g.dtype:
            previous += g
            return
    elif mine and type(g) is type(previous) and g.shape == previous.shape and g.dtype == previous.dtype:
        g += previous
        table[key] = g
        owned.add(key)
        return
    table[key] = total = previous + g
    if type(total) in _ARRAY_TYPES:  # first order, and not a NumPy scalar: a new array nobody holds
        owned.add(key)
    else:
        owned.discard(key)


def _owns_memory(g):
    """A writable, C-contiguous array that is not a view (of a saved tensor, say)."""
    flags = g.flags
    return g.base is None and flags.c_contiguous and getattr(flags, "writeable", True)


def _run_hooks(hooks, g, raw):
    """Hooks see Tensors; a hook's returned Tensor replaces the gradient."""
    view = node_module._Tensor(g) if raw else g
    previous_raw, _state.raw = _state.raw, False
    try:
        for hook in hooks:
            replaced = hook(view)
            if replaced is not None:
                view = replaced
    finally:
        _state.raw = previous_raw
    return view._data if raw else view


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves they depend on.

    ``grad_tensors`` is required for non-scalar outputs. Without ``retain_graph`` the saved
    tensors are freed, and a second backward through the same graph raises GraphFreedError.
    """
    if (grad_tensors is None and inputs is None and not create_graph and not retain_graph
            and type(tensors) is node_module._Tensor):
        # The usual ``loss.backward()`` on the CPU: what _root_grads and run() would decide for a
        # one-element root, settled here without their layers.
        data = tensors._data
        if type(data) is np.ndarray and data.size == 1 and tensors._requires_grad:
            _run((tensors,), (node_module._Tensor(_ones_like(data)),), False, False)
            return
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
