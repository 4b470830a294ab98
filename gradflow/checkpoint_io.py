"""Checkpoints: model + optimizer + epoch in one ``.npz`` (or ``.safetensors``) file, loaded without pickle.

Layout (every member a plain array, so ``np.load(..., allow_pickle=False)`` reads it):

- ``meta``: a JSON string — format tag and version, epoch, optimizer class, the optimizer's
  param groups and scalar state (Adam's ``step``), and a free ``config`` dict (the CLI stores
  the model's sizes and activation there);
- ``model/<name>``: each entry of ``model.state_dict()``;
- ``optim/<index>/<key>``: each array of the optimizer's per-parameter state;
- ``extra/<name>``: any other arrays the caller passes (the CLI's feature scaling).

A path ending in ``.safetensors`` holds the same entries in that format (``safetensors_io``).

Writing goes to a temporary file of its own (a unique name in the target's folder, removed on
any failure) that replaces the target with one atomic ``os.replace`` at the end: an interrupted
save leaves the old checkpoint intact, two writers never share a temporary file, and a reader
always sees one complete checkpoint, the old or the new. Loading reads and checks every member first; ``restore`` then
loads model and optimizer together and puts the model back if the optimizer does not fit, so a
bad file never leaves a half-loaded model.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import GradflowError

FORMAT = "gradflow-checkpoint"
VERSION = 1


class CheckpointError(GradflowError, ValueError):
    """A checkpoint file is missing, truncated, corrupt, or does not fit the model it is loaded into."""


@dataclass
class Checkpoint:
    epoch: int
    model_state: dict
    optimizer_state: dict | None = None
    optimizer_class: str | None = None
    config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def _host(value):
    data = getattr(value, "data", value)
    return data.get() if hasattr(data, "get") and not isinstance(data, np.ndarray) else np.asarray(data)


def save_checkpoint(path, model, optimizer=None, epoch=0, config=None, extra=None):
    """Write ``model`` (and ``optimizer``, ``epoch``, ``config``, ``extra`` arrays) to ``path``."""
    path = Path(path)
    members = {f"model/{name}": _host(t) for name, t in model.state_dict().items()}
    meta = {"format": FORMAT, "version": VERSION, "epoch": int(epoch), "config": config or {}}
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars = {}
        for index, entry in state["state"].items():
            for key, value in entry.items():
                if np.ndim(value) == 0 and not hasattr(value, "shape"):
                    scalars.setdefault(str(index), {})[key] = value
                else:
                    members[f"optim/{index}/{key}"] = _host(value)
        meta["optimizer"] = {"class": type(optimizer).__name__, "param_groups": state["param_groups"],
                             "scalars": scalars}
    for name, value in (extra or {}).items():
        members[f"extra/{name}"] = _host(value)
    if is_safetensors(path):
        from .safetensors_io import encode

        data = encode(members, meta, CheckpointError)
        atomic_write(path, lambda f: f.write(data))
        return
    members["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **members))


def check_writable(path):
    """Raise CheckpointError unless a checkpoint can be written at ``path`` — before any training.

    Refuses a folder named like the file, a missing folder, a file where a folder should be, a
    folder this process cannot create files in (tried for real: permission bits do not tell for
    root or read-only mounts), and ``.safetensors`` without the safetensors package.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{str(path)!r} is a folder; give a file name such as {str(path / 'model.npz')!r}")
    folder = path.parent
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CheckpointError(f"cannot write {str(path)!r}: {str(ancestor)!r} is a file, not a folder")
    if not folder.is_dir():
        raise CheckpointError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    try:
        descriptor, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:
        raise CheckpointError(f"cannot write {str(path)!r}: no file can be created in folder {str(folder)!r} "
                              f"({exc.strerror or exc})") from None
    if is_safetensors(path):
        from .safetensors_io import require

        require(CheckpointError)


def is_safetensors(path):
    """The format follows the suffix: ``.safetensors`` (see safetensors_io), anything else ``.npz``."""
    return Path(path).suffix.lower() == ".safetensors"


def atomic_write(path, write):
    """Call ``write(binary file)`` on a fresh temporary file beside ``path``, then move it over ``path``.

    The temporary name is unique (``mkstemp``), so concurrent writers of one path do not collide;
    it is in the same folder, so ``os.replace`` is an atomic rename; it is removed on any failure
    (including KeyboardInterrupt), so no ``*.tmp`` is left behind.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive's first bytes (an empty archive: the second)


def _content(head):
    """What the first bytes of a file that is not the expected format look like, for the message."""
    if not head:
        return "an empty file"
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array"
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and all(c.isprintable() or c in "\t\r\n" for c in text):
            return "a text file"
        break
    return "binary data, not a zip archive"


def _file_head(path, error, what, size=512):
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {str(path)!r} " + ("is a folder, not a file" if path.is_dir() else "does not exist"))
    with open(path, "rb") as f:
        return f.read(size)


def read_npz(path, error, what, expected="a .npz archive"):
    """Every member of the ``.npz`` archive at ``path`` as a dict, without pickle.

    Anything that is not a readable archive raises ``error`` (one sentence naming ``what`` and
    the file, and saying it is not ``expected``): a missing file, a ``.npy`` array or a text
    file under a ``.npz`` name, a truncated or corrupt archive.
    """
    path = Path(path)
    head = _file_head(path, error, what)
    if head[:4] not in _ZIP_MAGIC:
        raise error(f"{what} {str(path)!r} is not {expected} ({_content(head)})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, RuntimeError) as exc:
        raise error(f"{what} {str(path)!r} is truncated or corrupt ({exc})") from None


def load_checkpoint(path) -> Checkpoint:
    """Read and check a checkpoint file; raises CheckpointError (naming the file) if it is unusable."""
    path = Path(path)
    if is_safetensors(path):
        from .safetensors_io import decode

        if _content(_file_head(path, CheckpointError, "checkpoint", 64)) == "a text file":
            raise CheckpointError(f"checkpoint {str(path)!r} is not a gradflow checkpoint (a text file)")
        members, meta = decode(path, CheckpointError)
        if meta is None:  # weights written by another framework: a model state and nothing else
            meta = {"format": FORMAT, "version": VERSION, "epoch": 0, "config": {}}
    else:
        members = read_npz(path, CheckpointError, "checkpoint", "a gradflow checkpoint")
        try:
            meta = json.loads(str(members.pop("meta")))
        except (KeyError, json.JSONDecodeError):
            raise CheckpointError(f"{path}: not a gradflow checkpoint (no readable 'meta' member)") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not a gradflow checkpoint ('meta' is a JSON {type(meta).__name__}, "
                              "not an object)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gradflow checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')} is not supported "
                              f"(this gradflow reads version {VERSION})")
    model_state, extra, optim_arrays = {}, {}, {}
    for name, array in members.items():
        group, _, key = name.partition("/")
        if group == "model":
            model_state[key] = array
        elif group == "extra":
            extra[key] = array
        elif group == "optim":
            index, _, state_key = key.partition("/")
            optim_arrays.setdefault(index, {})[state_key] = array
        else:
            raise CheckpointError(f"{path}: unexpected member {name!r}")
    optimizer_state = optimizer_class = None
    if "optimizer" in meta:
        try:
            info = meta["optimizer"]
            state = {}
            for index in set(optim_arrays) | set(info.get("scalars", {})):
                state[int(index)] = {**info.get("scalars", {}).get(index, {}), **optim_arrays.get(index, {})}
            optimizer_state = {"state": state, "param_groups": info["param_groups"]}
            optimizer_class = info["class"]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: malformed 'optimizer' entry in 'meta' ({type(exc).__name__}: "
                                  f"{exc})") from None
    epoch = meta.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{path}: 'meta' needs 'epoch' as a non-negative integer, got {epoch!r}")
    if not isinstance(meta.get("config", {}), dict):
        raise CheckpointError(f"{path}: 'meta' field 'config' must be an object, got {meta['config']!r}")
    return Checkpoint(epoch, model_state, optimizer_state, optimizer_class,
                      meta.get("config", {}), extra)


def restore(checkpoint, model, optimizer=None):
    """Load ``checkpoint`` into ``model`` (and ``optimizer``): both or neither."""
    if optimizer is not None:
        if checkpoint.optimizer_state is None:
            raise CheckpointError("checkpoint holds no optimizer state to resume from")
        if checkpoint.optimizer_class != type(optimizer).__name__:
            raise CheckpointError(f"checkpoint was saved with optimizer {checkpoint.optimizer_class}, "
                                  f"not {type(optimizer).__name__}")
    try:
        own = model.state_dict()
        for name, array in checkpoint.model_state.items():
            # Parameters are floating; a buffer may be an integer counter (num_batches_tracked).
            expected = "f" if name not in own or own[name].dtype.kind == "f" else "iu"
            if array.dtype.kind not in expected:
                raise CheckpointError(f"entry {name!r} has dtype {array.dtype}, expected "
                                      f"{'floating point' if expected == 'f' else 'an integer type'}")
            if name in own and array.dtype != own[name].dtype:  # no precision silently gained or lost
                raise CheckpointError(f"entry {name!r} has dtype {array.dtype} but the model's parameter is "
                                      f"{own[name].dtype}; convert one of them (model.to({str(array.dtype)!r}))")
        backup = {name: t.data.copy() for name, t in own.items()}
        model.load_state_dict(checkpoint.model_state)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint does not fit the model: {exc}") from None
    if optimizer is not None:
        try:
            optimizer.load_state_dict(checkpoint.optimizer_state)
        except (KeyError, ValueError, TypeError) as exc:
            model.load_state_dict(backup)
            raise CheckpointError(f"checkpoint's optimizer state does not fit: {exc}") from None

