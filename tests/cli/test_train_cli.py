"""`gradflow train` / `gradflow eval` run as subprocesses: the bar, determinism, resume, error paths."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gradflow(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "gradflow", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def numbers(stdout):
    """The per-epoch table without the time columns (which vary from run to run)."""
    rows = [line.split() for line in stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    return [row[:4] for row in rows]


def final_accuracy(stdout):
    return float(re.search(r"final test accuracy: ([0-9.]+)", stdout).group(1))


@pytest.fixture
def table(tmp_path):
    """A small separable 3-class CSV problem with a header row."""
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0, 0], [4, 4, 0, 0], [0, 0, 4, 4]])
    y = np.arange(150) % 3
    x = centers[y] + rng.standard_normal((150, 4))
    lines = ["f1,f2,f3,f4,label"] + [",".join(f"{v:.5f}" for v in row) + f",{c}" for row, c in zip(x, y)]
    path = tmp_path / "blobs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_default_train_reaches_97_percent():
    result = gradflow("train", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert final_accuracy(result.stdout) >= 0.97
    assert len(numbers(result.stdout)) == 20


def test_same_seed_same_numbers(table):
    runs = [gradflow("train", "--dataset", table, "--epochs", 3, "--hidden", 16, "--seed", 3) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert numbers(runs[0].stdout) == numbers(runs[1].stdout) and len(numbers(runs[0].stdout)) == 3
    other = gradflow("train", "--dataset", table, "--epochs", 3, "--hidden", 16, "--seed", 4)
    assert numbers(other.stdout) != numbers(runs[0].stdout)


def test_the_header_says_where_auto_put_the_run_and_why(table):
    env = dict(os.environ, GRADFLOW_DEVICE="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [sys.executable, "-m", "gradflow", "train", "--dataset", str(table), "--epochs", "1", "--hidden", "4"]
    auto = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert auto.returncode == 0 and auto.stderr == "", auto.stderr
    assert " on cpu (auto: GRADFLOW_DEVICE=cpu is set); model" in auto.stdout.splitlines()[0]
    explicit = subprocess.run(args + ["--device", "cpu"], capture_output=True, text=True, env=env, timeout=120)
    assert " on cpu; model" in explicit.stdout.splitlines()[0]


def test_a_reader_that_stops_early_ends_the_run_quietly(table):
    # `gradflow train | head -1`: the pipe closes after the first line.
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.Popen([sys.executable, "-m", "gradflow", "train", "--dataset", str(table), "--epochs", "50",
                            "--hidden", "4", "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, text=True)
    assert run.stdout.readline().startswith("gradflow train:")
    run.stdout.close()
    stderr = run.stderr.read()
    assert run.wait(timeout=120) == 141 and stderr == "", stderr


def test_fused_and_unfused_training_agree(table):
    # Fused hidden layers compute the same numbers as linear then relu: the table (loss and
    # accuracies to the printed digits) is the same.
    fused = gradflow("train", "--dataset", table, "--epochs", 3, "--hidden", 16)
    unfused = gradflow("train", "--dataset", table, "--epochs", 3, "--hidden", 16, "--no-fused")
    assert fused.returncode == unfused.returncode == 0, unfused.stderr
    assert "(unfused)" in unfused.stdout and "(unfused)" not in fused.stdout
    assert numbers(fused.stdout) == numbers(unfused.stdout)


def test_save_eval_and_resume_equal_uninterrupted(table, tmp_path):
    common = ["--dataset", table, "--hidden", "16,8", "--optimizer", "sgd", "--lr", 0.05, "--activation", "tanh"]
    straight = gradflow("train", *common, "--epochs", 4)
    first = gradflow("train", *common, "--epochs", 2, "--save", tmp_path / "c.npz")
    resumed = gradflow("train", *common, "--epochs", 4, "--resume", tmp_path / "c.npz", "--save", tmp_path / "c.npz")
    for r in (straight, first, resumed):
        assert r.returncode == 0, r.stderr
    assert numbers(resumed.stdout) == numbers(straight.stdout)[2:]
    assert final_accuracy(straight.stdout) > 0.9
    evaluated = gradflow("eval", "--checkpoint", tmp_path / "c.npz")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy: {final_accuracy(straight.stdout):.4f}" in evaluated.stdout
    assert "(epoch 4)" in evaluated.stdout


def assert_clean_error(result, *patterns):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradflow "), result.stderr
    for pattern in patterns:
        assert re.search(pattern, lines[0]), lines[0]
    assert "epoch" not in result.stdout  # stopped before any training


def test_error_missing_dataset(tmp_path):
    assert_clean_error(gradflow("train", "--dataset", tmp_path / "nope.npz"), "does not exist")
    assert_clean_error(gradflow("train", "--dataset", f"mnist:{tmp_path / 'none'}"), "does not exist")


def test_error_nan_features(tmp_path):
    x = np.ones((20, 3))
    x[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(20) % 2)
    assert_clean_error(gradflow("train", "--dataset", tmp_path / "nan.npz"), "NaN or infinite")


def test_error_labels_out_of_range(tmp_path, table):
    (tmp_path / "neg.csv").write_text("".join(f"{i},{i % 3 - 1}\n" for i in range(12)))
    assert_clean_error(gradflow("train", "--dataset", tmp_path / "neg.csv"), "labels must be >= 0")
    gradflow("train", "--dataset", table, "--epochs", 1, "--hidden", 4, "--save", tmp_path / "c.npz")
    four = [f"{i},{i},{i},{i},{i % 4}" for i in range(40)]
    (tmp_path / "four.csv").write_text("\n".join(four) + "\n")
    assert_clean_error(gradflow("eval", "--checkpoint", tmp_path / "c.npz", "--dataset", tmp_path / "four.csv"),
                       "has label 3, out of range for the checkpoint.s 3 classes")


def test_error_wrong_feature_count_for_checkpoint(tmp_path, table):
    assert gradflow("train", "--dataset", table, "--epochs", 1, "--hidden", 4,
                    "--save", tmp_path / "c.npz").returncode == 0
    for command in (("eval", "--checkpoint"), ("train", "--epochs", 3, "--resume")):
        result = gradflow(*command, tmp_path / "c.npz", "--dataset", "digits")
        assert_clean_error(result, "expects 4 features but dataset 'digits' has 64")


def test_error_bad_checkpoint_and_flags(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    assert_clean_error(gradflow("eval", "--checkpoint", tmp_path / "junk.npz"), "truncated or corrupt")
    assert_clean_error(gradflow("train", "--hidden", "64,x"), "--hidden sizes must be positive integers")
    assert_clean_error(gradflow("train", "--epochs", 0), "--epochs must be positive")


@pytest.mark.slow
def test_cnn_trains_on_the_digits_and_its_checkpoint_evaluates(tmp_path):
    """`--model cnn`: conv-BatchNorm-ReLU-pool blocks reach 98.5% on the 8×8 digits in 10 epochs;
    the checkpoint carries BatchNorm's running statistics, so eval (in eval mode) gives the same."""
    path = tmp_path / "cnn.npz"
    result = gradflow("train", "--model", "cnn", "--epochs", 10, "--save", path, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "model cnn" in result.stdout and "Conv2d" in result.stdout
    accuracy = final_accuracy(result.stdout)
    assert accuracy >= 0.985
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert len(rows) == 10 and all(row[-2:] != ["-"] and row[-1] == "KiB" for row in rows)  # retained memory
    evaluated = gradflow("eval", "--checkpoint", path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy: {accuracy:.4f}" in evaluated.stdout


def test_cnn_needs_an_image_dataset(table):
    result = gradflow("train", "--model", "cnn", "--dataset", table, "--epochs", 1)
    assert result.returncode != 0
    assert "--model cnn needs an image dataset" in result.stderr and "Traceback" not in result.stderr
