"""gradflow.distributed under ``mpirun -n 2``: each test launches one script from scripts/.

The scripts check themselves against single-process references and print ``OK rank r``; a test
here only checks the exit status and those lines, so a failure shows the ranks' whole output.
"""
import time

import pytest

from mpi_launch import check_ok, run_mpi

pytestmark = pytest.mark.mpirun


def test_all_reduce_and_broadcast_equal_numpy_reference():
    check_ok(run_mpi("collectives.py"))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_ranks_train_like_one_process_and_stay_bit_identical(dtype):
    check_ok(run_mpi("data_parallel.py", args=[dtype]))


def test_activation_memory_per_rank_matches_the_plan():
    check_ok(run_mpi("memory.py"))


@pytest.mark.parametrize("mode, message", [
    ("raise", "rank 1 of 2 failed with ValueError: rank 1 failed on purpose; aborting all 2 ranks"),
    ("exit", None),  # os._exit: no Python runs, the launcher itself ends the job
    ("hang", "DistributedTimeoutError: rank 0/2: all_reduce of 2 float32 values did not finish within 3 s"),
])
def test_a_failing_rank_ends_the_job_instead_of_hanging(mode, message):
    start = time.perf_counter()
    result = run_mpi("failures.py", args=[mode], timeout=60)
    elapsed = time.perf_counter() - start
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "finished an all_reduce it should never have" not in output
    assert elapsed < 30, f"the job took {elapsed:.1f} s to end"
    if message:
        assert message in output, output
