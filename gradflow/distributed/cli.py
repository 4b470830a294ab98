"""``gradflow train --distributed``: the training command's data-parallel mode, kept here.

The command builds its model, optimizer and batch iterator as usual; ``distribute`` then makes
them data-parallel. Each rank walks the *same* global batches the single-process command would
(same seed, same order) and keeps its piece of each, so ``mpirun -n N gradflow train
--distributed`` follows the single-process run's trajectory up to float rounding. Rank 0 alone
prints and saves checkpoints.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..tensor import Tensor
from .data_parallel import DataParallel, DistributedOptimizer
from .errors import DistributedError
from .runtime import init


def add_arguments(parser):
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the ranks of `mpirun -n N gradflow train --distributed` "
                             "(pip install 'gradflow[distributed]'); --batch-size is the global batch, "
                             "split over the ranks; rank 0 prints and saves")


class ShardedBatches:
    """This rank's piece of every global batch that ``batches`` yields, and its weight for the step.

    A global batch smaller than the world (a last batch of fewer samples than ranks) would leave a
    rank with nothing to average, so it is skipped on every rank alike.
    """

    def __init__(self, batches, rank, world, optimizer):
        self.batches, self.rank, self.world, self.optimizer = batches, rank, world, optimizer

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for global_batch in self.batches:
            n = len(global_batch[0])
            if n < self.world:
                continue
            piece = np.array_split(np.arange(n), self.world)[self.rank]
            start, stop = int(piece[0]), int(piece[-1]) + 1
            self.optimizer.scale = len(piece) * self.world / n  # exact 1.0 when the batch splits evenly
            yield tuple(Tensor(t.data[start:stop]) for t in global_batch)


def check_batch_size(batch_size, world):
    """Every rank needs a sample of each global batch: ``--batch-size`` below the world trains nothing."""
    if batch_size < world:
        raise DistributedError(f"--batch-size {batch_size} is the global batch, split over the {world} ranks; it "
                               f"must be at least the number of ranks ({world}) so each rank gets a sample")


def distribute(args, model, optimizer, batches):
    """``(optimizer, batches)`` made data-parallel; ``model``'s parameters broadcast from rank 0."""
    rank, world = init()
    try:
        check_batch_size(args.batch_size, world)  # on every rank alike, before any collective
    except DistributedError:
        if rank != 0:
            raise SystemExit(2) from None  # rank 0 alone says why: one line, not one per rank
        raise
    DataParallel(model)  # broadcast rank 0's parameters; every rank must have built the same model
    optimizer = DistributedOptimizer(optimizer, list(model.parameters()))
    if rank != 0:
        args.save = None  # one writer per checkpoint file
        args.no_progress = True
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (lives as long as the process)
    print(f"distributed: {world} ranks over MPI, global batch {args.batch_size} "
          f"(~{-(-args.batch_size // world)} per rank); train loss/acc and samples/s below are rank 0's piece",
          flush=True)
    return optimizer, ShardedBatches(batches, rank, world, optimizer)
