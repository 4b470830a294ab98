"""`gradflow train --model transformer`: trains on a synthetic sequence task, saves, resumes, evaluates,
and runs data-parallel under mpirun."""
import re

import numpy as np
import pytest

from tests.cli.test_train_cli import final_accuracy, gradflow, numbers


@pytest.mark.slow
def test_transformer_trains_well_above_chance_saves_resumes_and_evaluates(tmp_path):
    checkpoint = tmp_path / "transformer.npz"
    first = gradflow("train", "--model", "transformer", "--epochs", "1", "--no-progress", "--save", checkpoint)
    assert first.returncode == 0, first.stderr
    assert "TransformerClassifier" in first.stdout and "majority" in first.stdout
    # majority over 8 tokens: the most common class is 19% of the test set; one epoch gets far above it.
    assert final_accuracy(first.stdout) > 0.5
    memory = re.search(r"(\d+\.\d) MiB\s*$", first.stdout.splitlines()[2])
    assert memory is not None, first.stdout   # the retained-memory column is filled
    resumed = gradflow("train", "--model", "transformer", "--epochs", "2", "--no-progress", "--resume", checkpoint,
                       "--save", checkpoint)
    assert resumed.returncode == 0, resumed.stderr
    assert [row[0] for row in numbers(resumed.stdout)] == ["2"]
    evaluated = gradflow("eval", "--checkpoint", checkpoint, "--device", "cpu")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy: {final_accuracy(resumed.stdout):.4f}" in evaluated.stdout


@pytest.mark.slow
def test_reverse_reaches_whole_sequence_accuracy_in_one_epoch_and_evaluates(tmp_path):
    checkpoint = tmp_path / "reverse.npz"
    result = gradflow("train", "--model", "transformer", "--task", "reverse", "--epochs", "1", "--no-progress",
                      "--save", checkpoint)
    assert result.returncode == 0, result.stderr
    assert "TransformerTagger" in result.stdout and "whole-sequence accuracy" in result.stdout
    # Chance of a whole length-10 sequence over 10 tokens is 1e-10; one epoch is enough to get most right
    # (the full default run reaches 100%: see the README).
    assert final_accuracy(result.stdout) > 0.9
    assert re.search(r"(\d+\.\d) MiB\s*$", result.stdout.splitlines()[3]), result.stdout   # memory column
    evaluated = gradflow("eval", "--checkpoint", checkpoint)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy: {final_accuracy(result.stdout):.4f}" in evaluated.stdout


def test_unknown_task_is_one_line_error():
    result = gradflow("train", "--model", "transformer", "--task", "sorting")
    assert result.returncode == 2
    assert "first_last, majority" in result.stderr and "Traceback" not in result.stderr


def test_transformer_distributed_follows_the_single_process_run(tmp_path):
    from tests.distributed.mpi_launch import run_python, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    common = ["-m", "gradflow", "train", "--model", "transformer", "--epochs", "1", "--batch-size", "256",
              "--optimizer", "sgd", "--no-progress"]
    single = run_python([*common, "--save", tmp_path / "one.npz"], n=None, timeout=120)
    double = run_python([*common, "--distributed", "--save", tmp_path / "two.npz"], n=2, timeout=120)
    for result in (single, double):
        assert result.returncode == 0, result.stdout + result.stderr
    assert "distributed: 2 ranks over MPI, global batch 256" in double.stdout
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    weights = [k for k in one.files if k.startswith("model/")]
    assert weights and set(weights) <= set(two.files)
    for key in weights:  # float32: equal up to the rounding of a different summation order
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)
