"""Checkpoints: round trip of model + optimizer + epoch, and corrupt or mismatched files."""
import zipfile

import numpy as np
import pytest

import gradflow as gf
import gradflow.optim as optim
from gradflow import nn
from gradflow.checkpoint_io import CheckpointError, load_checkpoint, restore, save_checkpoint


def trained(seed=0, sizes=(4, 6, 3), optimizer=optim.Adam):
    gf.manual_seed(seed)
    model = nn.MLP(list(sizes))
    opt = optimizer(model.parameters(), lr=0.01)
    for _ in range(2):
        loss = gf.nn.functional.cross_entropy(model(gf.randn(5, sizes[0])), gf.tensor([0, 1, 2, 0, 1]))
        opt.zero_grad(); loss.backward(); opt.step()
    return model, opt


def test_round_trip(tmp_path):
    model, opt = trained()
    save_checkpoint(tmp_path / "c.npz", model, opt, epoch=7, config={"sizes": [4, 6, 3]},
                    extra={"mean": np.arange(4.0)})
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:  # no pickle anywhere
        assert "meta" in archive.files
    ck = load_checkpoint(tmp_path / "c.npz")
    assert ck.epoch == 7 and ck.config == {"sizes": [4, 6, 3]} and ck.optimizer_class == "Adam"
    assert np.array_equal(ck.extra["mean"], np.arange(4.0))
    model2, opt2 = trained(seed=1)
    restore(ck, model2, opt2)
    for p, q in zip(model.parameters(), model2.parameters()):
        assert np.array_equal(p.data, q.data)
    x, y = gf.randn(5, 4), gf.tensor([2, 1, 0, 0, 1])
    for m, o in ((model, opt), (model2, opt2)):  # one more step lands on the same weights
        loss = gf.nn.functional.cross_entropy(m(x), y)
        o.zero_grad(); loss.backward(); o.step()
    for p, q in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_truncated_file(tmp_path):
    model, opt = trained()
    save_checkpoint(tmp_path / "c.npz", model, opt)
    raw = (tmp_path / "c.npz").read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30, 10):
        (tmp_path / "t.npz").write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_checkpoint(tmp_path / "t.npz")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.npz")


def test_corrupted_member_is_detected(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path / "c.npz", model)
    raw = bytearray((tmp_path / "c.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        info = z.getinfo("model/0.weight.npy")
    raw[info.header_offset + 200] ^= 0xFF  # flip a byte inside the stored weight
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "bad.npz")


def test_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a gradflow checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")


def test_mismatched_model_never_half_loads(tmp_path):
    model, opt = trained(sizes=(4, 6, 3))
    save_checkpoint(tmp_path / "c.npz", model, opt)
    other, other_opt = trained(seed=2, sizes=(4, 6, 5))
    before = [p.data.copy() for p in other.parameters()]
    with pytest.raises(CheckpointError, match=r"'2.weight' has shape \(3, 6\).*\(5, 6\)"):
        restore(load_checkpoint(tmp_path / "c.npz"), other, other_opt)
    assert all(np.array_equal(p.data, b) for p, b in zip(other.parameters(), before))


def test_mismatched_optimizer_rolls_model_back(tmp_path):
    model, opt = trained()
    save_checkpoint(tmp_path / "c.npz", model, opt)
    ck = load_checkpoint(tmp_path / "c.npz")
    other, _ = trained(seed=3)
    before = [p.data.copy() for p in other.parameters()]
    with pytest.raises(CheckpointError, match="saved with optimizer Adam, not SGD"):
        restore(ck, other, optim.SGD(other.parameters(), lr=0.1))
    ck.optimizer_state["state"][0]["exp_avg"] = np.zeros((2, 2))
    with pytest.raises(CheckpointError, match="optimizer state does not fit"):
        restore(ck, other, optim.Adam(other.parameters()))
    assert all(np.array_equal(p.data, b) for p, b in zip(other.parameters(), before))
