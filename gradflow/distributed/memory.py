"""Per-rank activation memory: what each rank's graph keeps for backward for a given global batch.

Data parallelism divides the activations (not the parameters) by the number of ranks, so this is
the number that answers "does the graph fit if I split the batch over N devices". It is measured,
not estimated: each rank's shard is run forward and the saved arrays of its graph are summed.
"""
from __future__ import annotations

import numpy as np

from .runtime import _mpi, is_initialized


def _is_array(value):
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy")


def _saved_arrays(value):
    """The arrays a saved entry keeps alive: unwraps Tensors, saved outputs and packed values."""
    for _ in range(4):  # wrappers nest at most a few deep (packed -> Tensor -> array)
        if value is None or _is_array(value):
            break
        inner = getattr(value, "data", None)
        value = inner if inner is not None else getattr(value, "value", None)
    return [value] if _is_array(value) else []


def _base(array):
    """The array that owns the memory a view keeps alive."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _address(array):
    """Where ``array``'s memory starts: two arrays (or wrappers) over one buffer share it."""
    pointer = getattr(array, "data", None)
    if hasattr(pointer, "ptr"):  # CuPy
        return pointer.ptr
    return array.__array_interface__["data"][0]


def saved_activation_bytes(output):
    """Bytes of the distinct buffers saved by ``output``'s graph, parameters excluded.

    Walks the nodes from ``output.grad_fn`` over ``node.next``. A saved view counts its whole base
    buffer once (that is what it keeps alive); buffers of the leaves that require grad (the
    parameters), and views of them such as a transposed weight, are not activations and are skipped.
    """
    seen_nodes, saved, parameters = set(), {}, set()
    stack = [output.grad_fn] if output.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        for value in node.saved_raw or ():
            for array in _saved_arrays(value):
                base = _base(array)
                saved[_address(base)] = base
        for target in node.next:
            if target is None:
                continue
            if hasattr(target, "saved_raw"):
                stack.append(target)
            else:  # a leaf tensor that requires grad
                parameters.add(_address(_base(target.data)))
    return sum(int(base.nbytes) for key, base in saved.items() if key not in parameters)


def activation_memory_per_rank(model, loss_fn, inputs, targets, world=None):
    """``[{"rank", "batch", "activation_bytes"}, ...]`` for one global batch split over ``world`` ranks.

    Under mpirun (``world`` None): each rank measures its own shard and the list is gathered from
    all ranks. In one process with ``world=N``: the N shards are measured one after another, to
    plan a split before launching it.

    >>> activation_memory_per_rank(model, F.cross_entropy, x, y, world=2)   # doctest: +SKIP
    [{'rank': 0, 'batch': 64, 'activation_bytes': 1234}, {'rank': 1, ...}]
    """
    from ..tensor import Tensor

    def measure(rank, size):
        index = np.array_split(np.arange(len(inputs)), size)[rank]
        x, y = inputs[index], targets[index]
        loss = loss_fn(model(x if isinstance(x, Tensor) else Tensor(x)), y if isinstance(y, Tensor) else Tensor(y))
        return {"rank": rank, "batch": len(index), "activation_bytes": saved_activation_bytes(loss)}

    if world is None:
        if not is_initialized():
            return [measure(0, 1)]
        mpi = _mpi()
        return mpi.comm.allgather(measure(mpi.rank, mpi.size))
    return [measure(r, world) for r in range(world)]
