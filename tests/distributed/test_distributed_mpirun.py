"""gradflow.distributed under ``mpirun -n 2``: each test launches one script from scripts/.

The scripts check themselves against single-process references and print ``OK rank r``; a test
here only checks the exit status and those lines, so a failure shows the ranks' whole output.
"""
import time

import numpy as np
import pytest

from mpi_launch import check_ok, run_mpi, run_python

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


def test_gradflow_train_distributed_follows_the_single_process_run(tmp_path):
    common = ["-m", "gradflow", "train", "--epochs", "1", "--hidden", "32", "--optimizer", "sgd", "--seed", "3",
              "--no-progress"]
    single = run_python([*common, "--save", tmp_path / "one.npz"], n=None)
    double = run_python([*common, "--distributed", "--save", tmp_path / "two.npz"], n=2)
    for result in (single, double):
        assert result.returncode == 0, result.stdout + result.stderr
    assert double.stdout.count("final test accuracy") == 1, double.stdout  # rank 0 alone prints
    assert "distributed: 2 ranks over MPI, global batch 64" in double.stdout
    accuracy = [r.stdout.split("final test accuracy: ")[1].split()[0] for r in (single, double)]
    assert accuracy[0] == accuracy[1], (single.stdout, double.stdout)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    weights = [k for k in one.files if k.startswith("model/")]
    assert weights and set(weights) <= set(two.files)
    for key in weights:  # float32 parameters: equal up to the rounding of a different summation order
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_gradflow_train_distributed_refuses_a_batch_smaller_than_the_world():
    result = run_python(["-m", "gradflow", "train", "--distributed", "--batch-size", "1", "--epochs", "1",
                         "--hidden", "8", "--no-progress"], n=2)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr  # rank 0's line alone
    assert lines[0].startswith("gradflow train: error: --batch-size 1 is the global batch, split over the 2 ranks")
    assert "must be at least the number of ranks (2)" in lines[0] and "final test accuracy" not in result.stdout
