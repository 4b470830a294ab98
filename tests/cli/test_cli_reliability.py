"""Issue 16: bad files and flags end in one line and exit 2; resume applies or refuses flags; NaN weights.

The commands run in-process through ``gradflow.cli.main`` (no interpreter start per case), which is
the same code path the ``gradflow`` script takes.
"""
import gzip
import json
import math
import re

import numpy as np
import pytest

import gradflow as gf
from gradflow.checkpoint_io import CheckpointError, load_checkpoint, save_checkpoint
from gradflow.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(capsys, argv, pattern):
    code, out, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    assert lines[0].startswith(f"gradflow {argv[0]}: error: ") and "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]
    assert "train loss" not in out  # refused before any training


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small dataset, a checkpoint trained on it, and broken variants of both."""
    d = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    np.savez(d / "blobs.npz", x=rng.standard_normal((60, 4)) + 3 * y[:, None], y=y)
    raw = (d / "blobs.npz").read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    np.save(d / "array.npy", np.ones((4, 4)))
    (d / "array.npz").write_bytes((d / "array.npy").read_bytes())  # a .npy under a .npz name
    (d / "text.npz").write_text("hello, this is not a checkpoint\n")
    np.savez(d / "scalars.npz", x=np.array(1.0), y=np.array(2))
    table = b"".join(b"%d,%d,%d\n" % (i, i + 1, i % 2) for i in range(40))
    (d / "truncated.csv.gz").write_bytes(gzip.compress(table)[:40])
    (d / "plain.csv.gz").write_bytes(table)
    gf.manual_seed(0)
    model = gf.nn.MLP([4, 8, 3])
    opt = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    config = {"sizes": [4, 8, 3], "activation": "relu", "dataset": str(d / "blobs.npz")}
    extra = {"mean": np.zeros(4), "std": np.ones(4)}
    save_checkpoint(d / "good.npz", model, opt, epoch=1, config=config, extra=extra)
    with np.load(d / "good.npz") as archive:
        members = {k: archive[k] for k in archive.files}
    meta = json.loads(str(members["meta"]))
    np.savez(d / "meta_list.npz", **{**members, "meta": np.array(json.dumps([meta]))})
    np.savez(d / "meta_no_epoch.npz", **{**members, "meta": np.array(json.dumps({k: v for k, v in meta.items()
                                                                                if k != "epoch"}))})
    np.savez(d / "meta_bad_optimizer.npz", **{**members, "meta": np.array(json.dumps({**meta, "optimizer": 3}))})
    model.state_dict()["0.weight"].data[1, 2] = np.nan
    save_checkpoint(d / "nan.npz", model, opt, epoch=1, config=config, extra=extra)
    return d


# One row per issue-16 item 9 case (and item 12's text file): command, file, the line's pattern.
BAD_FILES = [
    (("train", "--dataset"), "truncated.npz", "is truncated or corrupt"),
    (("train", "--dataset"), "array.npz", r"'.*array.npz' is not a .npz archive \(a single .npy array\)"),
    (("train", "--dataset"), "text.npz", r"'.*text.npz' is not a .npz archive \(a text file\)"),
    (("train", "--dataset"), "scalars.npz", r"arrays \['x', 'y'\] are 0-d scalars"),
    (("train", "--dataset"), "truncated.csv.gz", "not a readable gzip-compressed CSV file"),
    (("train", "--dataset"), "plain.csv.gz", "not a readable gzip-compressed CSV file"),
    (("eval", "--checkpoint"), "array.npz", r"checkpoint .* is not a gradflow checkpoint \(a single .npy array\)"),
    (("eval", "--checkpoint"), "text.npz", r"is not a gradflow checkpoint \(a text file\)"),
    (("eval", "--checkpoint"), "truncated.npz", "is truncated or corrupt"),
    (("eval", "--checkpoint"), "meta_list.npz", "'meta' is a JSON list, not an object"),
    (("eval", "--checkpoint"), "meta_no_epoch.npz", "needs 'epoch' as a non-negative integer, got None"),
    (("eval", "--checkpoint"), "meta_bad_optimizer.npz", "malformed 'optimizer' entry"),
    (("memory", "--model"), "array.npz", "is not a gradflow checkpoint"),
    (("train", "--epochs", 3, "--resume"), "meta_list.npz", "not an object"),
    (("train", "--epochs", 3, "--resume"), ".", r"checkpoint '.*' is a folder, not a file"),
]


@pytest.mark.parametrize("command, name, pattern", BAD_FILES)
def test_bad_files_are_one_line_errors(capsys, files, command, name, pattern):
    assert_one_line_error(capsys, [*command, files / name], pattern)


@pytest.mark.parametrize("name", ["array.npz", "text.npz", "truncated.npz", "meta_list.npz", "meta_no_epoch.npz"])
def test_load_checkpoint_raises_checkpoint_error(files, name):
    with pytest.raises(CheckpointError, match=re.escape(str(files / name)) + "|" + name):
        load_checkpoint(files / name)


@pytest.mark.parametrize("flags, pattern", [
    (["--lr", "inf"], "--lr must be a finite number, got inf"),
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--lr", "0"], "--lr must be positive, got 0.0"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number, got nan"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number, got inf"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
    (["--optimizer", "sgd", "--momentum", "nan"], "--momentum must be a finite number, got nan"),
    (["--momentum", "0.5"], "--momentum applies to --optimizer sgd, not adam"),
])
def test_non_finite_flags_are_refused(capsys, files, flags, pattern):
    assert_one_line_error(capsys, ["train", "--dataset", files / "blobs.npz", *flags], pattern)


def test_resume_applies_optimizer_flags_and_the_header_says_so(capsys, files, tmp_path):
    saved = tmp_path / "resumed.npz"
    code, out, err = run(capsys, "train", "--dataset", files / "blobs.npz", "--resume", files / "good.npz",
                         "--epochs", 2, "--weight-decay", 0.1, "--lr", 0.02, "--save", saved, "--no-progress")
    assert code == 0, err
    assert "SGD lr=0.02 weight_decay=0.1 momentum=0.9" in out.splitlines()[0]
    group = load_checkpoint(saved).optimizer_state["param_groups"][0]
    assert (group["lr"], group["weight_decay"], group["momentum"]) == (0.02, 0.1, 0.9)
    # Flags left out keep the checkpoint's values (not the CLI defaults: lr 0.05 is SGD's default too,
    # so the momentum the checkpoint has is the tell).
    code, out, err = run(capsys, "train", "--dataset", files / "blobs.npz", "--resume", saved, "--epochs", 3,
                         "--save", tmp_path / "again.npz", "--no-progress")
    assert code == 0, err
    assert "SGD lr=0.02 weight_decay=0.1 momentum=0.9" in out.splitlines()[0]
    assert load_checkpoint(tmp_path / "again.npz").optimizer_state["param_groups"][0]["lr"] == 0.02


@pytest.mark.parametrize("flags, pattern", [
    (["--hidden", "16"], "--hidden 16 conflicts with checkpoint .*whose hidden layers are 8"),
    (["--activation", "tanh"], "--activation tanh conflicts with checkpoint .*trained with relu"),
    (["--optimizer", "adam"], "--optimizer adam conflicts with checkpoint .*trained with SGD"),
])
def test_resume_refuses_architecture_conflicts(capsys, files, flags, pattern):
    assert_one_line_error(capsys, ["train", "--dataset", files / "blobs.npz", "--resume", files / "good.npz",
                                   "--epochs", 2, *flags], pattern)


def test_resume_accepts_flags_that_match_the_checkpoint(capsys, files):
    code, out, err = run(capsys, "train", "--dataset", files / "blobs.npz", "--resume", files / "good.npz",
                         "--epochs", 2, "--hidden", 8, "--activation", "relu", "--optimizer", "sgd", "--no-progress")
    assert code == 0, err
    assert "MLP[4, 8, 3] relu" in out and "final test accuracy" in out


def test_eval_refuses_nan_weights_unless_allowed(capsys, files):
    assert_one_line_error(capsys, ["eval", "--checkpoint", files / "nan.npz"],
                          r"holds NaN or infinite values in model/0.weight \(1\); pass --allow-nonfinite")
    code, out, err = run(capsys, "eval", "--checkpoint", files / "nan.npz", "--allow-nonfinite")
    assert code == 0 and "warning: checkpoint" in err and "NaN or infinite" in err
    assert "test accuracy" in out
    code, out, err = run(capsys, "eval", "--checkpoint", files / "good.npz")
    assert code == 0 and err == "" and not math.isnan(float(re.search(r"test accuracy: ([0-9.]+)", out).group(1)))
