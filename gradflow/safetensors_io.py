"""The safetensors format for checkpoints, beside ``.npz`` (``pip install 'gradflow[interop]'``).

A ``.safetensors`` file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range (plus an optional ``__metadata__`` object of strings), then
the raw bytes. It holds no code, like gradflow's ``.npz`` checkpoints, and PyTorch, JAX and
Hugging Face tools read and write it.

Layout of a gradflow checkpoint in this format (``checkpoint_io`` decides what goes in it):

- model weights under their ``state_dict`` names (``0.weight``), exactly as a PyTorch model with
  the same layer names names them, so ``safetensors.torch.load_file`` + ``load_state_dict``
  reads them back (a gradflow file's other entries all contain ``/``, which module names never do);
- ``optim/<index>/<key>`` and ``extra/<name>`` as in the ``.npz`` layout;
- ``__metadata__["gradflow"]``: the same JSON ``meta`` the ``.npz`` keeps as a member.

A file without that metadata entry (written by PyTorch, say) is read as model weights only.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

METADATA_KEY = "gradflow"
# safetensors dtype names NumPy can hold (BF16 and the FP8 types have no NumPy dtype).
_NUMPY_DTYPES = {"F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"}
_MODEL_PREFIX = "model/"


def require(error):
    """``safetensors.numpy``, or ``error`` saying how to install it."""
    try:
        import safetensors.numpy
    except ImportError:
        raise error("reading or writing .safetensors files needs the safetensors package: "
                    "pip install 'gradflow[interop]'") from None
    return safetensors.numpy


def encode(members, meta, error):
    """The bytes of a ``.safetensors`` file holding ``members`` (npz-style names) and ``meta``."""
    st = require(error)
    tensors = {(name[len(_MODEL_PREFIX):] if name.startswith(_MODEL_PREFIX) else name): np.ascontiguousarray(a)
               for name, a in members.items()}
    metadata = None if meta is None else {METADATA_KEY: json.dumps(meta)}
    return st.save(tensors, metadata=metadata)


def _header(raw, path, error):
    """The parsed JSON header, checked to cover the file exactly as the format requires."""
    def corrupt(why):
        return error(f"checkpoint {str(path)!r} is truncated or corrupt ({why})")

    if len(raw) < 8:
        raise corrupt(f"{len(raw)} bytes, shorter than the 8-byte header length")
    (size,) = struct.unpack("<Q", raw[:8])
    if size > len(raw) - 8:
        raise corrupt(f"header of {size} bytes but the file has {len(raw) - 8} after the length")
    try:
        header = json.loads(raw[8:8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise corrupt("header is not a JSON object")
    return header


def decode(path, error):
    """``(members with npz-style names, meta dict or None)`` from the ``.safetensors`` file at ``path``.

    Everything is read and checked before anything is returned; problems raise ``error`` with
    one sentence naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"checkpoint {str(path)!r} " + ("is a folder, not a file" if path.is_dir() else "does not exist"))
    st = require(error)
    raw = path.read_bytes()
    header = _header(raw, path, error)
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if dtype not in _NUMPY_DTYPES:
            raise error(f"checkpoint {str(path)!r}: tensor {name!r} has dtype {dtype}, which NumPy cannot hold; "
                        "save it as float32 (in PyTorch: {k: v.float() for k, v in state_dict.items()})")
    try:
        tensors = st.load(raw)
    except Exception as exc:  # noqa: BLE001  (SafetensorError and friends from the Rust reader)
        raise error(f"checkpoint {str(path)!r} is truncated or corrupt ({exc})") from None
    metadata = header.get("__metadata__") or {}
    meta = None
    if METADATA_KEY in metadata:
        try:
            meta = json.loads(metadata[METADATA_KEY])
        except (TypeError, json.JSONDecodeError):
            raise error(f"{path}: not a gradflow checkpoint (its '{METADATA_KEY}' metadata is not JSON)") from None
    members = {(name if "/" in name else _MODEL_PREFIX + name): array for name, array in tensors.items()}
    return members, meta
