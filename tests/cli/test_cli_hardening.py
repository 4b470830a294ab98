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


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_memory_output_paths_are_checked_before_the_sweep(capsys, tmp_path, flag):
    (tmp_path / "afile").write_text("not a folder")
    line = one_line_error(capsys, "memory", "--model", "mlp:4-3", "--batch-sizes", "1,2", flag,
                          tmp_path / "afile" / "out.json")
    assert f"error: {flag}: cannot write" in line and "is a file, not a folder" in line


def test_a_writable_save_path_still_trains_and_saves(capsys, tmp_path, blobs):
    code, out, err = run(capsys, "train", "--dataset", blobs, "--epochs", 1, "--hidden", 8, "--no-progress",
                         "--save", tmp_path / "model.npz")
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# ----- item 12: a file that is no checkpoint is called so, never a pickle ---------------------------------
@pytest.mark.parametrize("name, content, kind", [
    ("notes.txt", b"epoch 3, loss 0.21\n", "a text file"),
    ("empty.npz", b"", "an empty file"),
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


# ----- item 13: errors that name their source -------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, blobs):
    """A trained checkpoint on ``blobs`` and variants with a wrong-shaped scaling and a word for the epoch."""
    import json

    import gradflow as gf
    from gradflow.checkpoint_io import save_checkpoint

    d = tmp_path_factory.mktemp("checkpoints")
    gf.manual_seed(0)
    model = gf.nn.MLP([4, 8, 3])
    opt = gf.optim.SGD(model.parameters(), lr=0.05)
    config = {"sizes": [4, 8, 3], "activation": "relu", "dataset": str(blobs)}
    save_checkpoint(d / "good.npz", model, opt, epoch=1, config=config, extra={"mean": np.zeros(4), "std": np.ones(4)})
    save_checkpoint(d / "bad_mean.npz", model, opt, epoch=1, config=config,
                    extra={"mean": np.zeros(3), "std": np.ones(4)})
    save_checkpoint(d / "bad_std.npz", model, opt, epoch=1, config=config,
                    extra={"mean": np.zeros(4), "std": np.ones((4, 1))})
    with np.load(d / "good.npz") as archive:
        members = {k: archive[k] for k in archive.files}
    meta = json.loads(str(members["meta"]))
    np.savez(d / "epoch_word.npz", **{**members, "meta": np.array(json.dumps({**meta, "epoch": "eleven"}))})
    return d


@pytest.mark.parametrize("argv", [("train", "--seed", -1), ("memory", "--seed", -1, "--model", "mlp:4-3")])
def test_a_negative_seed_is_named_by_its_flag(capsys, argv):
    assert one_line_error(capsys, *argv).endswith("error: --seed must be a non-negative integer, got -1")


@pytest.mark.parametrize("name, field, shape", [("bad_mean.npz", "mean", "(3,)"), ("bad_std.npz", "std", "(4, 1)")])
def test_a_checkpoint_scaling_of_the_wrong_shape_names_the_entry(capsys, checkpoints, blobs, name, field, shape):
    path = checkpoints / name
    expected = (f"checkpoint {str(path)!r}: extra/{field} has shape {shape} but the model takes 4 features, "
                "so it must be (4,)")
    for argv in (("eval", "--checkpoint", path), ("train", "--dataset", blobs, "--resume", path, "--epochs", 2)):
        assert one_line_error(capsys, *argv).endswith(expected)


def test_resume_names_what_is_wrong_with_the_path(capsys, checkpoints, blobs):
    line = one_line_error(capsys, "train", "--dataset", blobs, "--resume", checkpoints / "epoch_word.npz",
                          "--epochs", 2)
    assert line.endswith("'meta' needs 'epoch' as a non-negative integer, got 'eleven'")
    line = one_line_error(capsys, "train", "--dataset", blobs, "--resume", checkpoints, "--epochs", 2)
    assert line.endswith(f"checkpoint {str(checkpoints)!r} is a folder, not a file")


def written(path, content):
    path.write_bytes(content)
    return path


def labels_file(path, labels):
    np.savez(path, x=np.arange(2 * len(labels), dtype=np.float32).reshape(len(labels), 2), y=labels)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: written(d / "binary.csv", bytes(range(256)) * 4),
     "binary.csv: not a text CSV file (it holds bytes that are not UTF-8)"),
    (lambda d: written(d / "one_row.csv", b"0.5,1.5,1\n"),
     "one_row.csv: 1 sample is too few to split into train and test sets (at least 2 rows are needed)"),
    (lambda d: written(d / "header_one_row.csv", b"a,b,label\n0.5,1.5,1\n"),
     "header_one_row.csv: 1 sample is too few to split"),
    (lambda d: labels_file(d / "huge.npz", np.array([0, 1, 2 ** 63 + 5] * 4, dtype=np.uint64)),
     "huge.npz (train): label 9223372036854775813 is too large for a class index"),
    (lambda d: labels_file(d / "one_row.npz", np.array([1])),
     "one_row.npz: 1 sample is too few to split"),
])
def test_dataset_errors_name_the_file(capsys, tmp_path, make, message):
    path = make(tmp_path)
    line = one_line_error(capsys, "train", "--dataset", path, "--epochs", 1)
    assert str(tmp_path) in line and message in line, line
    assert "-922337" not in line  # uint64 labels are never shown wrapped to negative


def test_uint64_labels_below_two_to_the_63_still_load(tmp_path):
    from gradflow.data import load_npz

    dataset = load_npz(labels_file(tmp_path / "u64.npz", np.array([0, 1, 2] * 4, dtype=np.uint64)))
    assert dataset.n_classes == 3 and dataset.y_train.dtype == np.int64


# ----- item 15: friction -------------------------------------------------------------------------------------
def test_viz_is_an_attribute_of_the_package_in_a_fresh_interpreter():
    import subprocess

    code = "import gradflow as gf; print(gf.viz.draw.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "gradflow.viz", result.stderr


def test_dataset_folder_expands_the_home_directory(capsys, monkeypatch, tmp_path):
    from gradflow.data import load_dataset, write_idx

    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem, n in (("train", 12), ("t10k", 6)):
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 4, 4), dtype=np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", (np.arange(n) % 3).astype(np.uint8))
    monkeypatch.setenv("HOME", str(tmp_path))
    dataset = load_dataset("fashion-mnist:~/data")
    assert (len(dataset.x_train), len(dataset.x_test), dataset.n_features) == (12, 6, 16)
    np.savez(tmp_path / "blobs.npz", x=rng.standard_normal((10, 2)), y=np.arange(10) % 2)
    assert load_dataset("~/blobs.npz").n_features == 2  # what `--dataset=~/blobs.npz` passes unexpanded
    line = one_line_error(capsys, "train", "--dataset", "mnist:~/missing")
    assert line.endswith(f"mnist: dataset folder {str(tmp_path / 'missing')!r} does not exist")


@pytest.mark.parametrize("hidden", ["", ",", "8,,4", "8,"])
def test_hidden_with_an_empty_size_is_refused(capsys, blobs, hidden):
    line = one_line_error(capsys, "train", "--dataset", blobs, "--hidden", hidden)
    assert line.endswith(f"--hidden {hidden!r} has an empty size; give positive integers such as --hidden 256 "
                         "or --hidden 256,128")


def test_graph_without_graphviz_warns_once_naming_the_dot_file(capsys, monkeypatch, tmp_path):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # as on a machine without Graphviz
    code, out, err = run(capsys, "graph", "--out", tmp_path / "x.png")
    dot = str(tmp_path / "x.dot")
    assert code == 0 and out.splitlines() == [dot]
    assert err.splitlines() == [f"gradflow graph: warning: Graphviz's `dot` was not found: wrote {dot} only. "
                                "Install Graphviz (apt-get install graphviz) to render PNG."]
    assert (tmp_path / "x.dot").read_text().startswith("digraph")
