"""Checkpoints: model + optimizer + epoch in one ``.npz`` file, loaded without pickle.

Layout (every member a plain array, so ``np.load(..., allow_pickle=False)`` reads it):

- ``meta``: a JSON string — format tag and version, epoch, optimizer class, the optimizer's
  param groups and scalar state (Adam's ``step``), and a free ``config`` dict (the CLI stores
  the model's sizes and activation there);
- ``model/<name>``: each entry of ``model.state_dict()``;
- ``optim/<index>/<key>``: each array of the optimizer's per-parameter state;
- ``extra/<name>``: any other arrays the caller passes (the CLI's feature scaling).

Writing goes to a temporary file that replaces the target at the end, so an interrupted save
leaves the old checkpoint intact. Loading reads and checks every member first; ``restore`` then
loads model and optimizer together and puts the model back if the optimizer does not fit, so a
bad file never leaves a half-loaded model.
"""
from __future__ import annotations

import json
import os
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
    members["meta"] = np.array(json.dumps(meta))
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as f:
        np.savez(f, **members)
    os.replace(temporary, path)


def load_checkpoint(path) -> Checkpoint:
    """Read and check a checkpoint file; raises CheckpointError (naming the file) if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt ({exc})") from None
    try:
        meta = json.loads(str(members.pop("meta")))
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a gradflow checkpoint (no readable 'meta' member)") from None
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
        info = meta["optimizer"]
        state = {}
        for index in set(optim_arrays) | set(info.get("scalars", {})):
            state[int(index)] = {**info.get("scalars", {}).get(index, {}), **optim_arrays.get(index, {})}
        optimizer_state = {"state": state, "param_groups": info["param_groups"]}
        optimizer_class = info["class"]
    return Checkpoint(int(meta["epoch"]), model_state, optimizer_state, optimizer_class,
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

