"""`gradflow train --model transformer`: trains on a synthetic sequence task, saves, resumes, evaluates."""
import re

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


def test_unknown_task_is_one_line_error():
    result = gradflow("train", "--model", "transformer", "--task", "sorting")
    assert result.returncode == 2
    assert "first_last, majority" in result.stderr and "Traceback" not in result.stderr
