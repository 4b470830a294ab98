"""The NCCL path: collectives on CUDA tensors across two GPUs (skipped, with the reason, elsewhere)."""
import pytest

from mpi_launch import check_ok, run_mpi


def _why_not_two_gpus():
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy with NCCL is not usable here ({type(exc).__name__}: {exc})"
    return None if count >= 2 else f"needs two CUDA devices for NCCL between ranks, found {count}"


@pytest.mark.gpu
@pytest.mark.mpirun
def test_nccl_all_reduce_and_data_parallel_on_two_gpus():
    reason = _why_not_two_gpus()
    if reason:
        pytest.skip(reason)
    check_ok(run_mpi("nccl.py", env={"GRADFLOW_DEVICE": "cuda"}))
