"""The process group: ``init``, ``rank``, ``world_size`` and the tensor collectives.

World size and rank come from the MPI launcher (``mpirun -n N python train.py``); a script run
without mpirun is a world of one, and every collective is then a no-op, so the same script runs
both ways. Collectives on CUDA tensors go through NCCL when it is available (``backend="auto"``),
otherwise through MPI with the data staged in host memory.

# Note: [one failing rank must not hang the others]
MPI collectives block until every rank joins. If one rank raises, the others would wait forever.
``init`` therefore installs an excepthook that prints the traceback and then calls
``MPI_Abort``, which makes the launcher kill every rank; a rank that dies outright (a signal,
``os._exit``) is torn down by the launcher itself; and a rank that merely hangs is caught by the
collective timeout (DistributedTimeoutError on the ranks still waiting, which then abort too).
"""
from __future__ import annotations

import os
import sys
import time

from ..backends import NUMPY, of_array
from .errors import DistributedError
from .mpi_comm import MPICommunicator
from .nccl_comm import NCCLCommunicator, nccl_available

DEFAULT_TIMEOUT = 600.0  # seconds; long enough for a rank-0 evaluation or checkpoint in between
_state = {"mpi": None, "nccl": None, "backend": None, "previous_hook": None}


def init(backend="auto", timeout=None, abort_on_error=True):
    """Join the MPI world (idempotent); returns ``(rank, world_size)``.

    ``backend``: "auto" (NCCL for CUDA tensors when available, else MPI), "mpi" or "nccl".
    ``timeout``: seconds a collective may wait for the other ranks before raising
    DistributedTimeoutError (default ``$GRADFLOW_DIST_TIMEOUT`` or 600; ``0`` waits forever).
    ``abort_on_error``: an uncaught exception on any rank aborts all ranks (see the note above).

    >>> import gradflow.distributed as dist
    >>> dist.init()          # under `mpirun -n 2`: (0, 2) on one process, (1, 2) on the other
    (0, 1)
    """
    if backend not in ("auto", "mpi", "nccl"):
        raise ValueError(f"backend must be 'auto', 'mpi' or 'nccl', got {backend!r}")
    if timeout is None:
        timeout = float(os.environ.get("GRADFLOW_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    timeout = None if timeout <= 0 else float(timeout)
    if _state["mpi"] is None:
        _state["mpi"] = MPICommunicator(timeout=timeout)
    else:
        _state["mpi"].timeout = timeout
    _state["backend"] = backend
    if backend == "nccl":
        _nccl()
    if abort_on_error and _state["previous_hook"] is None:
        _state["previous_hook"] = sys.excepthook
        sys.excepthook = _abort_hook
    return rank(), world_size()


def is_initialized():
    return _state["mpi"] is not None


def _mpi():
    if _state["mpi"] is None:
        raise DistributedError("gradflow.distributed is not initialised: call gradflow.distributed.init() "
                               "first (and launch with mpirun -n N)")
    return _state["mpi"]


def _nccl():
    if _state["nccl"] is None:
        _state["nccl"] = NCCLCommunicator(_mpi(), timeout=_mpi().timeout)
    return _state["nccl"]


def rank():
    """This process's index in the world, 0 .. world_size() - 1."""
    return _mpi().rank


def world_size():
    return _mpi().size


def is_main_process():
    """True on rank 0 (or when not initialised): the rank that logs and saves checkpoints."""
    return _state["mpi"] is None or _state["mpi"].rank == 0


def barrier():
    """Wait until every rank reaches this call."""
    _mpi().barrier()


def communicator_for(array):
    """The communicator that moves ``array``: NCCL for CUDA arrays under "auto"/"nccl", else MPI."""
    mpi = _mpi()
    if of_array(array) is NUMPY or _state["backend"] == "mpi":
        return mpi
    if _state["backend"] == "nccl" or nccl_available()[0]:
        return _nccl()
    return mpi


def all_reduce_array(array, op="sum"):
    """Reduce a contiguous NumPy/CuPy array in place over all ranks (``op`` sum, mean, max or min)."""
    if op == "mean" and array.dtype.kind != "f":
        raise DistributedError(f"all_reduce(op='mean') needs a floating dtype, got {array.dtype}; "
                               "use op='sum' for integer counts")
    comm = communicator_for(array)
    reduce_op = "sum" if op == "mean" else op
    if comm.name == "mpi" and of_array(array) is not NUMPY:
        host = of_array(array).to_numpy(array)  # CUDA without NCCL: stage through host memory
        comm.all_reduce(host, reduce_op)
        array[...] = of_array(array).xp.asarray(host)
    else:
        comm.all_reduce(array, reduce_op)
    if op == "mean" and comm.size > 1:
        array /= array.dtype.type(comm.size)
    return array


def broadcast_array(array, root=0):
    """Overwrite a contiguous NumPy/CuPy array with root's values, in place."""
    comm = communicator_for(array)
    if not 0 <= root < comm.size:
        raise DistributedError(f"broadcast root {root} is not a rank of this world of {comm.size}")
    if comm.name == "mpi" and of_array(array) is not NUMPY:
        host = of_array(array).to_numpy(array)
        comm.broadcast(host, root)
        array[...] = of_array(array).xp.asarray(host)
    else:
        comm.broadcast(array, root)
    return array


def _writable_buffer(tensor):
    """``tensor.data`` if a collective can work on it in place, else a contiguous copy."""
    data = tensor.data
    flags = data.flags
    if flags.c_contiguous and getattr(flags, "writeable", True):
        return data
    return of_array(data).xp.ascontiguousarray(data).copy()


def all_reduce(tensor, op="sum"):
    """Reduce ``tensor`` over all ranks in place and return it (``op``: sum, mean, max, min).

    A non-contiguous or read-only tensor gets a new contiguous array as its ``.data``. Under
    ``mpirun -n 2``:

    >>> t = gradflow.tensor([1.0, 2.0])
    >>> gradflow.distributed.all_reduce(t, op="sum")  # doctest: +SKIP
    tensor([2., 4.])
    """
    buffer = _writable_buffer(tensor)
    all_reduce_array(buffer, op)
    tensor.data = buffer
    return tensor


def broadcast(tensor, root=0):
    """Overwrite ``tensor`` on every rank with rank ``root``'s values, in place, and return it."""
    buffer = _writable_buffer(tensor)
    broadcast_array(buffer, root)
    tensor.data = buffer
    return tensor


def _abort_hook(exc_type, exc, tb):
    """Print the error, then take every rank down with MPI_Abort (see the note above)."""
    previous = _state["previous_hook"] or sys.__excepthook__
    previous(exc_type, exc, tb)
    mpi = _state["mpi"]
    if mpi is None or mpi.size == 1:
        return
    print(f"gradflow.distributed: rank {mpi.rank} of {mpi.size} failed with {exc_type.__name__}: {exc}; "
          f"aborting all {mpi.size} ranks", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # MPI_Abort tears the job down at once; on a loaded machine the launcher had not yet forwarded
    # what this rank printed and the reason was lost. A moment's grace lets it arrive.
    time.sleep(0.5)
    mpi.abort(1)
