"""Which samples each rank reads: disjoint shards that together cover the data, from one seed.

Every rank draws the same permutation (same seed and epoch), so no indices are ever sent. The
permutation is cut into global batches exactly as a single process would cut it, and each global
batch into ``world`` contiguous pieces, one per rank: averaging the ranks' mean gradients then
reproduces the single-process gradient of that global batch.
"""
from __future__ import annotations

import numpy as np


def _permutation(n, seed, epoch, shuffle):
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def shard_indices(n, rank, world, seed=0, epoch=0, shuffle=True):
    """This rank's sample indices for one epoch: disjoint across ranks, covering ``range(n)``.

    >>> [shard_indices(5, r, 2, shuffle=False).tolist() for r in range(2)]
    [[0, 1, 2], [3, 4]]
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    return np.array_split(_permutation(n, seed, epoch, shuffle), world)[rank]


def shard_batches(n, global_batch, rank, world, seed=0, epoch=0, shuffle=True, drop_last=False):
    """``[(indices, weight), ...]``: this rank's piece of every global batch of one epoch.

    Every rank gets the same number of steps (the collectives must line up). ``weight`` is
    ``len(indices) * world / len(global batch)``: 1.0 when the batch splits evenly; pass it to
    ``DistributedOptimizer.step(scale=weight)`` so an uneven last batch still averages correctly.
    A rank whose piece is empty (a last batch smaller than the world) has weight 0.

    >>> [(i.tolist(), w) for i, w in shard_batches(5, 4, 1, 2, shuffle=False)]
    [([2, 3], 1.0), ([], 0.0)]
    """
    if global_batch < 1:
        raise ValueError(f"global batch size must be positive, got {global_batch}")
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    order = _permutation(n, seed, epoch, shuffle)
    batches = []
    for start in range(0, n, global_batch):
        batch = order[start:start + global_batch]
        if drop_last and len(batch) < global_batch:
            break
        piece = np.array_split(batch, world)[rank]
        batches.append((piece, len(piece) * world / len(batch)))
    return batches
