"""gf.save_model / gf.load_model (issue 17): .safetensors and .npz, PyTorch's weights both ways, and
every bad file as one CheckpointError that leaves the model untouched."""
import re

import numpy as np
import pytest

import gradflow as gf
from gradflow.checkpoint_io import CheckpointError, load_checkpoint
from gradflow.cli import main

pytest.importorskip("safetensors", reason="needs the interop extra: pip install 'gradflow[interop]'")
import safetensors.numpy  # noqa: E402


def mlp(seed, sizes=(4, 8, 3)):
    gf.manual_seed(seed)
    return gf.nn.MLP(list(sizes))


def weights(model):
    return {name: t.numpy().copy() for name, t in model.state_dict().items()}


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_save_and_load_round_trip(tmp_path, suffix):
    source, target = mlp(0), mlp(1)
    gf.save_model(source, tmp_path / f"m{suffix}")
    assert gf.load_model(target, tmp_path / f"m{suffix}") is target
    x = gf.randn(5, 4)
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    assert [p.tolist() for p in target.parameters()] == [p.tolist() for p in source.parameters()]


def test_a_safetensors_file_names_weights_as_the_state_dict(tmp_path):
    model = mlp(0)
    gf.save_model(model, tmp_path / "m.safetensors")
    with open(tmp_path / "m.safetensors", "rb") as f:
        stored = safetensors.numpy.load(f.read())
    assert sorted(stored) == sorted(model.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    for name, array in stored.items():
        np.testing.assert_array_equal(array, model.state_dict()[name].numpy())


def make_bad_files(tmp_path):
    model = mlp(0)
    good = tmp_path / "good.safetensors"
    gf.save_model(model, good)
    raw = good.read_bytes()
    ref = weights(model)
    files = {
        "truncated in the data": (raw[:-7], "truncated or corrupt"),
        "truncated in the header": (raw[:40], "truncated or corrupt"),
        "too short": (raw[:5], "truncated or corrupt"),
        "not safetensors": (b"hello world, no header here at all", r"is not a gradflow checkpoint \(a text file\)"),
        "wrong names": ({**{k: v for k, v in ref.items() if k != "2.bias"}, "4.bias": ref["2.bias"]},
                        r"missing keys \['2.bias'\], unexpected keys \['4.bias'\]"),
        "wrong shape": ({**ref, "0.weight": np.zeros((8, 5), np.float32)}, r"'0.weight' has shape \(8, 5\)"),
        "float64": ({**ref, "2.weight": ref["2.weight"].astype(np.float64)},
                    "'2.weight' has dtype float64 but the model's parameter is float32"),
        "integer": ({**ref, "0.bias": np.zeros(8, np.int32)}, "'0.bias' has dtype int32, expected floating point"),
    }
    paths = {}
    for label, (content, pattern) in files.items():
        path = tmp_path / (label.replace(" ", "_") + ".safetensors")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(safetensors.numpy.save(content))
        paths[label] = (path, pattern)
    return paths


def test_bad_files_raise_one_error_and_load_nothing(tmp_path):
    target = mlp(1)
    before = weights(target)
    for label, (path, pattern) in make_bad_files(tmp_path).items():
        with pytest.raises(CheckpointError, match=pattern) as info:
            gf.load_model(target, path)
        assert path.name in str(info.value) and "\n" not in str(info.value), label
        after = weights(target)
        assert all(np.array_equal(before[k], after[k]) for k in before), f"{label}: model changed"
    with pytest.raises(CheckpointError, match="does not exist"):
        gf.load_model(target, tmp_path / "missing.safetensors")


@pytest.fixture
def torch():
    module = pytest.importorskip("torch", reason="PyTorch (CPU) is needed for the PyTorch weight tests")
    import safetensors.torch  # noqa: F401  (safetensors.torch below)

    return module


def torch_mlp(seed):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def test_pytorch_weights_load_and_reproduce_pytorchs_outputs(tmp_path, torch):
    reference = torch_mlp(0)
    safetensors.torch.save_file(reference.state_dict(), tmp_path / "torch.safetensors")
    model = gf.load_model(mlp(5), tmp_path / "torch.safetensors")
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(gf.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gradflow_weights_load_into_pytorch_and_reproduce_gradflows_outputs(tmp_path, torch):
    model = mlp(3)
    gf.save_model(model, tmp_path / "gf.safetensors")
    reference = torch_mlp(9)
    reference.load_state_dict(safetensors.torch.load_file(tmp_path / "gf.safetensors"))  # strict: same names
    x = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    with torch.no_grad():
        got = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, model(gf.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_pytorch_bfloat16_weights_are_refused_with_the_fix(tmp_path, torch):
    safetensors.torch.save_file({k: v.bfloat16() for k, v in torch_mlp(0).state_dict().items()},
                                tmp_path / "bf16.safetensors")
    with pytest.raises(CheckpointError, match="dtype BF16, which NumPy cannot hold"):
        gf.load_model(mlp(0), tmp_path / "bf16.safetensors")


# ----- the CLI: --save and --checkpoint choose the format by suffix --------------------------------------
def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def blobs(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    np.savez(tmp_path / "blobs.npz", x=rng.standard_normal((90, 4)) + 3 * y[:, None], y=y)
    return tmp_path / "blobs.npz"


def test_train_save_resume_and_eval_a_safetensors_checkpoint(capsys, tmp_path, blobs, torch):
    common = ["--dataset", blobs, "--hidden", 8, "--optimizer", "sgd", "--no-progress"]
    code, straight, err = run(capsys, "train", *common, "--epochs", 3, "--save", tmp_path / "s.npz")
    assert code == 0, err
    code, _, err = run(capsys, "train", *common, "--epochs", 2, "--save", tmp_path / "c.safetensors")
    assert code == 0, err
    ck = load_checkpoint(tmp_path / "c.safetensors")
    assert ck.epoch == 2 and ck.optimizer_class == "SGD" and ck.config["sizes"] == [4, 8, 3]
    code, resumed, err = run(capsys, "train", "--dataset", blobs, "--no-progress", "--epochs", 3,
                             "--resume", tmp_path / "c.safetensors", "--save", tmp_path / "c.safetensors")
    assert code == 0, err
    last_row = [line.split()[:4] for line in straight.splitlines() if line.strip().startswith("3 ")]
    assert last_row == [line.split()[:4] for line in resumed.splitlines() if line.strip().startswith("3 ")]
    code, out, err = run(capsys, "eval", "--checkpoint", tmp_path / "c.safetensors")
    assert code == 0 and "(epoch 3)" in out, err
    accuracy = re.search(r"final test accuracy: ([0-9.]+)", straight).group(1)
    assert f"test accuracy: {accuracy}" in out
    # The same training checkpoint's weights load into a plain model, and into PyTorch.
    model = gf.load_model(gf.nn.MLP([4, 8, 3]), tmp_path / "c.safetensors")
    reference = torch_mlp(0)
    stored = safetensors.torch.load_file(tmp_path / "c.safetensors")
    reference.load_state_dict({k: v for k, v in stored.items() if "/" not in k})
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(reference(torch.from_numpy(x)).numpy(), model(gf.tensor(x)).numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_cli_errors_for_safetensors_files_are_one_line(capsys, tmp_path, blobs, torch):
    paths = make_bad_files(tmp_path)
    safetensors.torch.save_file(torch_mlp(0).state_dict(), tmp_path / "torch.safetensors")
    cases = [(paths["truncated in the data"][0], "truncated or corrupt"),
             (tmp_path / "torch.safetensors", "was not written by 'gradflow train'")]
    for path, pattern in cases:
        for argv in (["eval", "--checkpoint", path], ["train", "--dataset", blobs, "--resume", path]):
            code, out, err = run(capsys, *argv)
            assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(pattern, err), (argv, err)
