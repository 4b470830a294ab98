"""Checkpoint writes (issue 16 item 8): concurrent writers and readers of one path, failures clean up."""
import os
import threading

import numpy as np
import pytest

from gradflow import nn
from gradflow.checkpoint_io import load_checkpoint, save_checkpoint


def model_filled_with(value):
    model = nn.MLP([64, 64, 10])  # ~21 KB per file: big enough that a write takes several syscalls
    for p in model.parameters():
        p.data[...] = value
    return model


def test_two_writers_and_a_reader_see_only_complete_checkpoints(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, model_filled_with(0.0), epoch=0)
    errors, loads, done = [], [], threading.Event()

    def write(writer):
        try:
            for i in range(1, 26):
                value = writer * 1000 + i  # every array of one file holds the same value, its epoch too
                save_checkpoint(path, model_filled_with(value), epoch=value)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    def read():
        while not done.is_set():
            try:
                ck = load_checkpoint(path)
                values = {float(v) for array in ck.model_state.values() for v in np.unique(array)}
                if values != {float(ck.epoch)}:
                    errors.append(AssertionError(f"mixed file: epoch {ck.epoch}, values {sorted(values)[:4]}"))
                loads.append(ck.epoch)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    writers = [threading.Thread(target=write, args=(w,)) for w in (1, 2)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert not errors, errors[:3]
    assert len(loads) > 0
    assert load_checkpoint(path).epoch in (1025, 2025)  # one writer's last file, whole
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, failure):
    path = tmp_path / "c.npz"
    save_checkpoint(path, model_filled_with(1.0), epoch=1)
    before = path.read_bytes()

    def failing_savez(f, **members):
        f.write(b"PK\x03\x04 half an archive")
        raise failure

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(type(failure)):
        save_checkpoint(path, model_filled_with(2.0), epoch=2)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]


def test_save_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError):
        save_checkpoint(tmp_path / "no" / "c.npz", model_filled_with(1.0))
    assert os.listdir(tmp_path) == []
