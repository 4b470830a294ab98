"""Issue 16 items 10, 12, 13 and 15: paths checked before training, errors that name their source, friction.

Commands run in-process through ``gradflow.cli.main`` like test_cli_reliability.py.
"""
import os
import re
import sys

import numpy as np
import pytest

from gradflow.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv):
    """The command's single stderr line, after checking it refused (exit 2) before any training."""
    code, out, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert lines[0].startswith(f"gradflow {argv[0]}: error: ")
    assert "train loss" not in out
    return lines[0]


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    y = np.arange(60) % 3
    np.savez(path, x=np.random.default_rng(0).standard_normal((60, 4)) + 3 * y[:, None], y=y)
    return path


def temporaries(folder):
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ----- item 10: --save is checked before epoch 1 ------------------------------------------------------
SAVE_CASES = {
    "a file as folder": (lambda d: d / "afile" / "model.npz", r"'.*afile' is a file, not a folder"),
    "a file as grandparent": (lambda d: d / "afile" / "sub" / "model.npz", r"'.*afile' is a file, not a folder"),
    "a folder named like the file": (lambda d: d / "model.npz", r"'.*model.npz' is a folder; give a file name"),
    "a missing folder": (lambda d: d / "missing" / "model.npz", r"folder '.*missing' does not exist"),
}
FAMILIES = [[], ["--model", "transformer"]]  # the MLP path (train.py) and the family path (train_family.py)


@pytest.mark.parametrize("family", FAMILIES, ids=["mlp", "transformer"])
@pytest.mark.parametrize("case", sorted(SAVE_CASES))
def test_save_path_is_checked_before_training(capsys, tmp_path, blobs, family, case):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "model.npz").mkdir()
    target, pattern = SAVE_CASES[case]
    dataset = [] if family else ["--dataset", blobs]
    line = one_line_error(capsys, "train", *family, *dataset, "--epochs", 1, "--save", target(tmp_path))
    assert line.startswith("gradflow train: error: --save: ")
    assert re.search(pattern, line), line
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("family", FAMILIES, ids=["mlp", "transformer"])
def test_save_into_an_unwritable_folder_is_refused(capsys, tmp_path, blobs, family):
    # Root ignores permission bits, so the folder that refuses files is a read-only one of the
    # kernel's where one exists, and a chmod-ed one otherwise.
    if os.geteuid() == 0:
        if not os.path.isdir("/proc/self"):
            pytest.skip("running as root without /proc: no folder refuses new files")
        folder = "/proc"
    else:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
    dataset = [] if family else ["--dataset", blobs]
    line = one_line_error(capsys, "train", *family, *dataset, "--epochs", 1, "--save", f"{folder}/model.npz")
    assert "--save: cannot write" in line and "no file can be created in folder" in line
    assert temporaries(tmp_path) == []


def test_safetensors_save_without_the_package_is_refused_before_training(capsys, monkeypatch, tmp_path, blobs):
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import safetensors raises ImportError
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    for family in FAMILIES:
        dataset = [] if family else ["--dataset", blobs]
        line = one_line_error(capsys, "train", *family, *dataset, "--epochs", 1,
                              "--save", tmp_path / "model.safetensors")
        assert "needs the safetensors package: pip install 'gradflow[interop]'" in line
    assert list(tmp_path.iterdir()) == []


def test_a_writable_save_path_still_trains_and_saves(capsys, tmp_path, blobs):
    code, out, err = run(capsys, "train", "--dataset", blobs, "--epochs", 1, "--hidden", 8, "--no-progress",
                         "--save", tmp_path / "model.npz")
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# ----- item 12: a file that is no checkpoint is called so, never a pickle ---------------------------------
@pytest.mark.parametrize("name, content, kind", [
    ("notes.txt", b"epoch 3, loss 0.21\n", "a text file"),
    ("notes.npz", b"epoch 3, loss 0.21\n", "a text file"),
    ("notes.safetensors", b"epoch 3, loss 0.21 and some more text\n", "a text file"),
    ("weights.pkl", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02e.", "binary data, not a zip archive"),
])
def test_a_file_that_is_no_checkpoint_says_so(capsys, tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    for argv in (("eval", "--checkpoint", path), ("train", "--resume", path, "--epochs", 2)):
        line = one_line_error(capsys, *argv)
        assert line.endswith(f"checkpoint {str(path)!r} is not a gradflow checkpoint ({kind})"), line
        assert "pickle" not in line.lower() and "unsafe" not in line.lower()
