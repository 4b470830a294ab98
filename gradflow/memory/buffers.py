"""What a saved value really keeps alive: its buffers, their owners, sizes and kinds.

# Note: [counting buffers, not tensors]
Two nodes may save the same tensor (relu saves its output, the next matmul saves it as input), and
a saved tensor may be a view (``W.T``) of a bigger array. What the allocator sees is the *owner* of
the memory, so every saved array is reduced to its owner: on NumPy the end of the ``.base`` chain,
on CuPy the pooled memory block under ``.data``. The owner's identity is the dedup key and its size
is what is counted. The key is an ``id``; it stays unique because the graph keeps the owner alive
for as long as the tracker holds the key.
"""
from __future__ import annotations

import numpy as np

ACTIVATION = "activation"   # made while recording and kept only by the graph ("retained")
INPUT = "input"             # a leaf without grad (the batch, labels, constants): exists anyway
PARAMETER = "parameter"     # a leaf requiring grad: exists anyway
KINDS = (ACTIVATION, INPUT, PARAMETER)


class Buffer:
    """One owned block of memory that some node saved."""

    __slots__ = ("key", "nbytes", "kind", "device", "shape", "dtype", "op", "module", "savers")

    def __init__(self, key, nbytes, kind, device, shape, dtype, op, module):
        self.key, self.nbytes, self.kind, self.device = key, nbytes, kind, device
        self.shape, self.dtype, self.op, self.module = shape, dtype, op, module
        self.savers = 0  # how many live nodes hold it


def owner_of(array):
    """(key, nbytes, device) of the memory ``array`` lives in."""
    if isinstance(array, np.ndarray) or isinstance(array, np.generic):
        root = array
        while isinstance(getattr(root, "base", None), np.ndarray):
            root = root.base
        return id(root), int(root.nbytes), "cpu"
    data = getattr(array, "data", None)
    memory = getattr(data, "mem", None)
    if memory is not None:  # CuPy: the pool block, whose size is what the pool counts as used
        device = getattr(getattr(array, "device", None), "id", 0)
        return ("cuda", device, int(memory.ptr)), int(memory.size), f"cuda:{device}"
    return id(array), int(getattr(array, "nbytes", 0)), "cpu"


def arrays_in(value):
    """The arrays a saved value holds: Tensors, raw arrays, packed values and their containers."""
    from ..tensor import Tensor

    if value is None or isinstance(value, (bool, int, float, str)):
        return []
    if isinstance(value, Tensor):
        return [(value.data, value)]
    if hasattr(value, "__array_interface__") or hasattr(value, "__cuda_array_interface__"):
        return [(value, None)]
    if isinstance(value, (tuple, list)):
        return [pair for item in value for pair in arrays_in(item)]
    if isinstance(value, dict):
        return [pair for item in value.values() for pair in arrays_in(item)]
    inner = getattr(value, "value", None)  # node.py's _Packed wrappers
    if inner is not None:
        return arrays_in(inner)
    data = getattr(value, "data", None)  # node.py's _Output and graph.py's PackedTensor
    if data is not None and data is not value:
        return arrays_in(data)
    return []


def kind_of_tensor(tensor, key):
    """ACTIVATION, INPUT or PARAMETER for a saved Tensor whose buffer has ``key``.

    A non-leaf tensor is an activation unless it is a view of a leaf (``W.T`` saved by matmul is the
    weight's memory): then the walk back through the view ops finds that leaf.
    """
    if tensor.grad_fn is None:
        return PARAMETER if tensor.requires_grad else INPUT
    if owner_of(tensor.data)[0] == key and getattr(tensor.data, "base", None) is None:
        return ACTIVATION
    stack, seen = [tensor.grad_fn], 0
    while stack and seen < 64:  # views are short chains; bound the walk on deep graphs
        node = stack.pop()
        seen += 1
        for target in node.next:
            if target is None:
                continue
            if hasattr(target, "saved_raw"):
                stack.append(target)
            elif owner_of(target.data)[0] == key:
                return PARAMETER
    return ACTIVATION


def nbytes_of_tensors(tensors):
    """Bytes of the distinct buffers under ``tensors`` (Tensors or arrays, Nones skipped)."""
    seen = {}
    for t in tensors:
        for array, _ in arrays_in(t):
            key, size, _ = owner_of(array)
            seen[key] = size
    return sum(seen.values())
