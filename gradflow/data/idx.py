"""The IDX file format of MNIST and Fashion-MNIST, read (gzipped or not) with size checks.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian int32 per
dimension, then the values big-endian. A file shorter or longer than its header says raises.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("=").name: k for k, v in _TYPES.items()}


class IDXFormatError(ValueError):
    """An IDX file is malformed or truncated (names the file and what was expected)."""


def read_idx(path) -> np.ndarray:
    """The array in an IDX file (``.gz`` decompressed), in native byte order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # a truncated .gz raises EOFError, a non-gzip OSError
        raise IDXFormatError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise IDXFormatError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", ndim, 4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise IDXFormatError(f"{path}: header says shape {shape} of {dtype.newbyteorder('=').name} "
                             f"({expected} bytes with the header) but the file has {len(raw)} bytes"
                             + (" (truncated?)" if len(raw) < expected else ""))
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write ``array`` as IDX (gzipped when ``path`` ends in .gz); used by tests and converters."""
    array = np.asarray(array)
    if array.dtype.name not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(_CODES)}")
    header = bytes([0, 0, _CODES[array.dtype.name], array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + body)
