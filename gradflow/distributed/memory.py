"""Per-rank activation memory: what each rank's graph keeps for backward for a given global batch.

Data parallelism divides the activations (not the parameters) by the number of ranks, so this is
the number that answers "does the graph fit if I split the batch over N devices". It is measured,
not estimated: each rank's shard runs forward under ``gradflow.memory.track``, the tracker that
counts every saved buffer at the graph's one chokepoint (``Node.save``).
"""
from __future__ import annotations

import numpy as np

from ..memory import track
from .runtime import _mpi, is_initialized


def _measure(model, loss_fn, inputs, targets, rank, world):
    from ..tensor import Tensor

    index = np.array_split(np.arange(len(inputs)), world)[rank]
    x, y = inputs[index], targets[index]
    with track() as tracker:
        loss = loss_fn(model(x if isinstance(x, Tensor) else Tensor(x)), y if isinstance(y, Tensor) else Tensor(y))
        measured = {"rank": rank, "batch": len(index), "activation_bytes": tracker.retained_bytes,
                    "saved_input_bytes": tracker.saved_input_bytes}
    del loss  # frees the graph before the next shard is measured
    return measured


def activation_memory_per_rank(model, loss_fn, inputs, targets, world=None):
    """``[{"rank", "batch", "activation_bytes", "saved_input_bytes"}, ...]`` for one global batch over ranks.

    Under mpirun (``world`` None): each rank measures its own shard of ``inputs``/``targets`` and
    the list is gathered from all ranks. In one process with ``world=N``: the N shards are
    measured one after another, to plan a split before launching it.

    >>> activation_memory_per_rank(model, F.cross_entropy, x, y, world=2)   # doctest: +SKIP
    [{'rank': 0, 'batch': 64, 'activation_bytes': 1234, ...}, {'rank': 1, ...}]
    """
    if world is None:
        if not is_initialized():
            return [_measure(model, loss_fn, inputs, targets, 0, 1)]
        mpi = _mpi()
        return mpi.comm.allgather(_measure(model, loss_fn, inputs, targets, mpi.rank, mpi.size))
    return [_measure(model, loss_fn, inputs, targets, r, world) for r in range(world)]
