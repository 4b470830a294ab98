"""The NCCL communicator: collectives on CUDA (CuPy) buffers through ``cupy.cuda.nccl``.

NCCL needs every rank to hold the same unique id before it can connect; rank 0 makes it and MPI
broadcasts it (the ChainerMN pattern), so MPI is the launcher and control channel and NCCL only
moves gradient bytes GPU to GPU. Each rank uses the GPU ``local_rank % device_count``.
"""
from __future__ import annotations

import time

from .errors import DistributedError, DistributedTimeoutError


def nccl_available():
    """(True, "") when CuPy with NCCL is importable and a GPU is visible, else (False, why)."""
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401
    except Exception as exc:  # ImportError, or CuPy's own error for a missing libnccl
        return False, f"cupy.cuda.nccl is not importable ({exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"no usable CUDA device ({exc})"
    return (count > 0), ("" if count else "no CUDA device is visible")


class NCCLCommunicator:
    """Collectives on contiguous CuPy arrays, in place, on the current stream."""

    name = "nccl"

    def __init__(self, mpi_comm, timeout=None):
        ok, why = nccl_available()
        if not ok:
            raise DistributedError(f"the NCCL communicator is unavailable: {why}; use backend='mpi' "
                                   "(CUDA tensors are then staged through host memory)")
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl = cupy, nccl
        self.rank, self.size, self.timeout = mpi_comm.rank, mpi_comm.size, timeout
        local = mpi_comm.comm.Split_type(mpi_comm.MPI.COMM_TYPE_SHARED)
        self.device = local.Get_rank() % cupy.cuda.runtime.getDeviceCount()
        local.Free()
        cupy.cuda.Device(self.device).use()
        unique_id = mpi_comm.bcast_object(nccl.get_unique_id() if self.rank == 0 else None)
        self.comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self._ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}
        self._types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                       "float64": nccl.NCCL_FLOAT64, "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64,
                       "uint8": nccl.NCCL_UINT8, "int8": nccl.NCCL_INT8}

    def _dtype(self, array):
        try:
            return self._types[str(array.dtype)]
        except KeyError:
            raise DistributedError(f"NCCL cannot reduce dtype {array.dtype}; supported: "
                                   f"{', '.join(self._types)}") from None

    def _wait(self, stream, what):
        # NCCL calls only enqueue work; a peer that never joins leaves the stream busy forever.
        if self.timeout is None:
            stream.synchronize()
            return
        deadline = time.perf_counter() + self.timeout
        while not stream.done:
            if time.perf_counter() > deadline:
                self.comm.abort()
                raise DistributedTimeoutError(
                    f"rank {self.rank}/{self.size}: NCCL {what} did not finish within {self.timeout:g} s; "
                    "another rank probably died or called a different collective")
            time.sleep(1e-4)

    def all_reduce(self, array, op="sum"):
        if op not in self._ops:
            raise ValueError(f"all_reduce op must be one of {sorted(self._ops)} here, got {op!r}")
        _check(array, self.cupy, "all_reduce")
        stream = self.cupy.cuda.get_current_stream()
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, self._dtype(array), self._ops[op],
                            stream.ptr)
        self._wait(stream, f"all_reduce of {array.size} {array.dtype} values")
        return array

    def broadcast(self, array, root=0):
        _check(array, self.cupy, "broadcast")
        stream = self.cupy.cuda.get_current_stream()
        self.comm.bcast(array.data.ptr, array.size, self._dtype(array), root, stream.ptr)
        self._wait(stream, f"broadcast of {array.size} {array.dtype} values")
        return array


def _check(array, cupy, what):
    if not isinstance(array, cupy.ndarray) or not array.flags.c_contiguous:
        raise DistributedError(f"the NCCL communicator's {what} takes C-contiguous CuPy arrays, got "
                               f"{type(array).__name__} of shape {getattr(array, 'shape', '?')}")
