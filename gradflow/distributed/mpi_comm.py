"""The MPI communicator: collectives on host (NumPy) buffers through mpi4py.

Every collective is issued non-blocking and then polled, so that a collective another rank never
joins (it died, hangs, or called a different collective) raises DistributedTimeoutError after
``timeout`` seconds instead of blocking forever. Polling also drives MPICH's progress engine, so a
tight first phase keeps small all-reduces fast; after that the poll sleeps, so a rank that waits
for a slow peer does not steal the (shared) cores the peer needs.
"""
from __future__ import annotations

import time

import numpy as np

from .errors import DistributedError, DistributedTimeoutError

_SPIN_SECONDS = 2e-3      # busy-poll this long first: a healthy collective usually ends here
_MAX_SLEEP_SECONDS = 5e-3  # then sleep between polls, growing up to this


def import_mpi():
    """mpi4py's MPI module, or a DistributedError saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:  # mpi4py missing, or its MPI library missing
        raise DistributedError(
            "gradflow.distributed needs mpi4py and an MPI library: pip install 'gradflow[distributed]' "
            f"(mpi4py plus the mpich wheel), then launch with mpirun -n N ({exc})") from exc
    return MPI


class MPICommunicator:
    """Collectives over ``MPI.COMM_WORLD`` (or ``comm``) on contiguous NumPy arrays, in place."""

    name = "mpi"

    def __init__(self, comm=None, timeout=None):
        self.MPI = import_mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = timeout
        self._ops = {"sum": self.MPI.SUM, "max": self.MPI.MAX, "min": self.MPI.MIN}

    def _wait(self, request, what):
        if self.timeout is None:
            request.Wait()
            return
        start = time.perf_counter()
        deadline = start + self.timeout
        sleep = 1e-5
        while not request.Test():
            now = time.perf_counter()
            if now > deadline:
                raise DistributedTimeoutError(
                    f"rank {self.rank}/{self.size}: {what} did not finish within {self.timeout:g} s; another "
                    "rank probably died, hangs, or called a different collective (raise the limit with "
                    "gradflow.distributed.init(timeout=...) or GRADFLOW_DIST_TIMEOUT if it is just slow)")
            if now - start > _SPIN_SECONDS:
                time.sleep(sleep)
                sleep = min(sleep * 2, _MAX_SLEEP_SECONDS)

    def all_reduce(self, array, op="sum"):
        """Reduce ``array`` (contiguous NumPy) over all ranks, in place."""
        if op not in self._ops:
            raise ValueError(f"all_reduce op must be one of {sorted(self._ops)} here, got {op!r}")
        _check_contiguous(array, "all_reduce")
        if self.size > 1:
            self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self._ops[op]),
                       f"all_reduce of {array.size} {array.dtype} values")
        return array

    def broadcast(self, array, root=0):
        """Overwrite ``array`` on every rank with root's values, in place."""
        _check_contiguous(array, "broadcast")
        if self.size > 1:
            self._wait(self.comm.Ibcast(array, root=root), f"broadcast of {array.size} {array.dtype} values")
        return array

    def barrier(self):
        if self.size > 1:
            self._wait(self.comm.Ibarrier(), "barrier")

    def bcast_object(self, value, root=0):
        """A small picklable value from root (e.g. the NCCL unique id); blocking, setup only."""
        return self.comm.bcast(value, root=root)

    def abort(self, code=1):
        self.comm.Abort(code)


def _check_contiguous(array, what):
    if not isinstance(array, np.ndarray):
        raise DistributedError(f"the MPI communicator's {what} takes host NumPy arrays, got {type(array).__name__}")
    if not array.flags.c_contiguous:
        raise DistributedError(f"{what} needs a C-contiguous buffer (got shape {array.shape} with strides "
                               f"{array.strides}); pass np.ascontiguousarray(...)")
