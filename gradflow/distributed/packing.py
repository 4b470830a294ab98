"""Gradients packed into one flat buffer per (device, dtype), so a step costs one all-reduce each.

Many small all-reduces pay the network latency once per parameter; one large one pays it once and
runs at full bandwidth. Packing is a concatenate and unpacking hands back views of the reduced
buffer, so the only extra memory is one copy of the gradients.
"""
from __future__ import annotations

from ..backends import of_array
from .runtime import all_reduce_array


def group_by_buffer(params):
    """Parameters grouped by (device, dtype), each group in the given (rank-independent) order."""
    groups = {}
    for p in params:
        groups.setdefault((str(p.device), str(p.dtype)), []).append(p)
    return groups


def reduce_gradients(params, op="mean", scale=None):
    """All-reduce the ``.grad`` of ``params`` over all ranks: one flat buffer per (device, dtype).

    A parameter without a gradient on this rank (unused in its forward) contributes zeros, so every
    rank packs the same layout and the collectives line up. ``scale`` multiplies this rank's
    gradients first (the weight of an uneven shard, see ``shard_batches``).
    Returns the number of bytes reduced.
    """
    from ..tensor import Tensor

    total = 0
    for group in group_by_buffer(params).values():
        xp = of_array(group[0].data).xp
        pieces = [p.grad.data.reshape(-1) if p.grad is not None else xp.zeros(p.data.size, p.data.dtype)
                  for p in group]
        flat = xp.concatenate(pieces) if len(pieces) > 1 else pieces[0].copy()
        if scale is not None and scale != 1:
            flat *= flat.dtype.type(scale)
        all_reduce_array(flat, op)
        offset = 0
        for p in group:
            n = p.data.size
            p.grad = Tensor(flat[offset:offset + n].reshape(p.data.shape))
            offset += n
        total += flat.nbytes
    return total
